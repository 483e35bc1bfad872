//! SOPS values: `ENC[AES256_GCM,data:...,iv:...,tag:...,type:...]`, opened with AES-256-GCM
//! (a 32-byte nonce) whose additional data is the value's key path, and the MAC: SHA-512 over
//! the cleartext values in tree order, stored encrypted with `lastmodified` as additional data.

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha512};

use super::metadata::Metadata;
use super::tree::Node;

type Cipher = AesGcm<Aes256, U32>;

/// The SHA-256 of "sops": what a MAC over only the encrypted values starts with.
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// Why a value or the MAC could not be opened. Never holds a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// The value at this path is not an `ENC[...]` string.
    NotEncrypted(String),
    /// The value at this path does not authenticate (tampered, or another data key).
    Tampered(String),
    /// The MAC does not match the values.
    MacMismatch,
    /// The file has no MAC.
    NoMac,
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotEncrypted(path) => {
                write!(f, "the value at '{path}' should be encrypted but is not")
            }
            Self::Tampered(path) => write!(
                f,
                "the value at '{path}' does not authenticate: it was changed after encryption"
            ),
            Self::MacMismatch => f.write_str(
                "the MAC does not match the values: the file was changed after encryption",
            ),
            Self::NoMac => f.write_str("the file has no MAC: refusing to trust its values"),
        }
    }
}

/// Opens one `ENC[...]` value with `key`, `aad` the additional data. `None` when it does not
/// parse or authenticate.
fn open(value: &str, key: &[u8], aad: &str) -> Option<Node> {
    let inner = value.strip_prefix("ENC[AES256_GCM,")?.strip_suffix(']')?;
    let mut data = None;
    let mut iv = None;
    let mut tag = None;
    let mut kind = None;
    for part in inner.split(',') {
        let (name, field) = part.split_once(':')?;
        match name {
            "data" => data = Some(STANDARD.decode(field).ok()?),
            "iv" => iv = Some(STANDARD.decode(field).ok()?),
            "tag" => tag = Some(STANDARD.decode(field).ok()?),
            "type" => kind = Some(field),
            _ => return None,
        }
    }
    let (mut data, iv, tag, kind) = (data?, iv?, tag?, kind?);
    if iv.len() != 32 || tag.len() != 16 {
        return None;
    }
    let cipher = Cipher::new_from_slice(key).ok()?;
    data.extend_from_slice(&tag);
    let nonce = Nonce::<U32>::try_from(iv.as_slice()).ok()?;
    let plain = cipher
        .decrypt(
            &nonce,
            Payload {
                msg: &data,
                aad: aad.as_bytes(),
            },
        )
        .ok()?;
    let text = || String::from_utf8(plain.clone()).ok();
    Some(match kind {
        "str" | "bytes" => match String::from_utf8(plain) {
            Ok(s) => Node::Str(s),
            Err(e) => Node::Bytes(e.into_bytes()),
        },
        "int" => Node::Int(text()?.trim().parse().ok()?),
        "float" => Node::Float(text()?.trim().parse().ok()?),
        "bool" => Node::Bool(match text()?.as_str() {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
            "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
            _ => return None,
        }),
        // A time keeps its text: emitted as a string, hashed as Go's MarshalText writes it.
        "time" => Node::Str(text()?),
        _ => return None,
    })
}

/// Decrypts every encrypted value of `branches` in place and checks the MAC.
pub fn decrypt_tree(branches: &mut [Node], meta: &Metadata, key: &[u8]) -> Result<(), OpenError> {
    let mut hasher = Sha512::new();
    if meta.mac_only_encrypted {
        hasher.update(MAC_ONLY_ENCRYPTED_INIT);
    }
    let mut path = Vec::new();
    for branch in branches.iter_mut() {
        walk(branch, &mut path, meta, key, &mut hasher)?;
    }
    let computed = hex::encode_upper(hasher.finalize());
    if meta.mac.is_empty() {
        return Err(OpenError::NoMac);
    }
    match open(&meta.mac, key, &meta.last_modified) {
        Some(Node::Str(stored)) if stored == computed => Ok(()),
        _ => Err(OpenError::MacMismatch),
    }
}

fn walk(
    node: &mut Node,
    path: &mut Vec<String>,
    meta: &Metadata,
    key: &[u8],
    hasher: &mut Sha512,
) -> Result<(), OpenError> {
    match node {
        Node::Map(entries) => {
            for (k, v) in entries.iter_mut() {
                path.push(k.clone());
                walk(v, path, meta, key, hasher)?;
                path.pop();
            }
        }
        Node::List(items) => {
            for item in items.iter_mut() {
                walk(item, path, meta, key, hasher)?;
            }
        }
        Node::Null => {}
        leaf => {
            let encrypted = meta.is_encrypted(path);
            if encrypted {
                let aad = format!("{}:", path.join(":"));
                let Node::Str(value) = &*leaf else {
                    return Err(OpenError::NotEncrypted(path.join(".")));
                };
                // SOPS leaves empty strings as they are.
                if !value.is_empty() {
                    if !value.starts_with("ENC[") {
                        return Err(OpenError::NotEncrypted(path.join(".")));
                    }
                    *leaf = open(value, key, &aad)
                        .ok_or_else(|| OpenError::Tampered(path.join(".")))?;
                }
            }
            if (!meta.mac_only_encrypted || encrypted)
                && let Some(bytes) = leaf.mac_bytes()
            {
                hasher.update(&bytes);
            }
        }
    }
    Ok(())
}
