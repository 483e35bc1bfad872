//! SOPS decryption, in process: the data key of a file is unwrapped with an age identity or an
//! OpenPGP private key from the Kustomization's decryption Secret, each `ENC[...]` value is
//! opened with AES-256-GCM, and the MAC over the cleartext is checked before any value is used.
//!
//! Errors name the file and, when no key fits, the recipients the file is encrypted for; they
//! never hold a key or a decrypted value.

mod cipher;
mod formats;
mod keys;
mod metadata;
mod tree;

pub use formats::Format;
pub use keys::Keys;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use self::metadata::Metadata;
use self::tree::Node;

/// Files larger than this are not decrypted (Flux's limit too).
pub const MAX_FILE_SIZE: usize = 5 << 20;

/// Why an encrypted file could not be decrypted. The message never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct DecryptError {
    /// The file (relative to the artifact) or object.
    pub file: String,
    /// What went wrong.
    pub reason: String,
}

/// Decrypts `bytes`, a file in `format`, with `keys`. `Ok(None)` when the file is not
/// SOPS-encrypted; `file` names it in errors.
pub fn decrypt(
    bytes: &[u8],
    format: Format,
    keys: &Keys,
    file: &str,
) -> Result<Option<Vec<u8>>, DecryptError> {
    Ok(decrypt_revealing(bytes, format, keys, file)?.map(|decrypted| decrypted.bytes))
}

/// A decrypted file, and the texts that must not appear in any message from now on.
#[derive(Debug, Clone, Default)]
pub struct Decrypted {
    /// The file, decrypted.
    pub bytes: Vec<u8>,
    /// Each decrypted string value, its base64 form (as a Secret's `data` or a generator holds
    /// it), and the base64 form of the whole file (a generator's `files` entry): what a later
    /// error (kustomize prints whole objects in some) must have scrubbed out.
    pub revealed: Vec<String>,
}

/// [`decrypt`], also returning what the decryption revealed.
pub fn decrypt_revealing(
    bytes: &[u8],
    format: Format,
    keys: &Keys,
    file: &str,
) -> Result<Option<Decrypted>, DecryptError> {
    let error = |reason: String| DecryptError {
        file: file.to_owned(),
        reason,
    };
    if bytes.len() > MAX_FILE_SIZE {
        // Only refused when it holds encrypted values; a large plain file is left to kustomize.
        let marker = b"ENC[AES256_GCM,";
        return if bytes.windows(marker.len()).any(|w| w == marker) {
            Err(error(format!(
                "the encrypted file is larger than {MAX_FILE_SIZE} bytes"
            )))
        } else {
            Ok(None)
        };
    }
    let Some(mut loaded) = formats::load(format, bytes)
        .map_err(|reason| error(format!("SOPS-encrypted, but {reason}")))?
    else {
        return Ok(None);
    };
    let meta = Metadata::parse(&loaded.metadata)
        .map_err(|reason| error(format!("SOPS-encrypted, but {reason}")))?;
    let key = keys.data_key(&meta).ok_or_else(|| {
        error(format!(
            "no key in the decryption Secret can decrypt this file; it is encrypted for: {}",
            meta.recipients()
        ))
    })?;
    cipher::decrypt_tree(&mut loaded.branches, &meta, &key).map_err(|e| error(e.to_string()))?;
    let bytes = formats::emit(format, &loaded.branches)
        .map_err(|reason| error(format!("writing the decrypted file failed: {reason}")))?;
    let mut revealed = Vec::new();
    let mut path = Vec::new();
    // Only a YAML or JSON document can be an object; dotenv and INI keys are all data.
    let object = matches!(format, Format::Yaml | Format::Json);
    for branch in &loaded.branches {
        collect_revealed(branch, &mut path, &meta, object, &mut revealed);
    }
    revealed.push(BASE64.encode(&bytes));
    Ok(Some(Decrypted { bytes, revealed }))
}

/// A Kubernetes object's own description: `kind`, `metadata.name` and the rest are recorded in
/// status (inventory, events) anyway, so they are not counted as revealed even when a file has
/// them encrypted (sops encrypts every value unless told otherwise); scrubbing `Secret` from
/// every message would only mangle them.
const OBJECT_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "type"];

/// The string values of `node` at encrypted paths, each as it is and in base64.
fn collect_revealed(
    node: &Node,
    path: &mut Vec<String>,
    meta: &Metadata,
    object: bool,
    out: &mut Vec<String>,
) {
    match node {
        Node::Map(entries) => {
            for (k, v) in entries {
                if object && path.is_empty() && OBJECT_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                path.push(k.clone());
                collect_revealed(v, path, meta, object, out);
                path.pop();
            }
        }
        Node::List(items) => {
            for item in items {
                collect_revealed(item, path, meta, object, out);
            }
        }
        Node::Str(value) if meta.is_encrypted(path) => {
            out.push(BASE64.encode(value.as_bytes()));
            out.push(value.clone());
        }
        Node::Bytes(value) if meta.is_encrypted(path) => out.push(BASE64.encode(value)),
        _ => {}
    }
}

/// Whether `bytes`, a file in `format`, carries SOPS metadata.
pub fn is_encrypted(bytes: &[u8], format: Format) -> bool {
    matches!(formats::load(format, bytes), Ok(Some(_)))
}

/// Whether one YAML document of a render carries SOPS metadata (a top-level `sops` map).
pub fn is_encrypted_document(document: &str) -> bool {
    document.contains("sops")
        && matches!(
            formats::load(Format::Yaml, document.as_bytes()),
            Ok(Some(_))
        )
}

#[cfg(test)]
mod tests;
