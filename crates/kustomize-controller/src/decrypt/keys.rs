//! The private keys of a decryption Secret, and the unwrapping of a file's data key with them.
//!
//! Key names follow Flux: `*.agekey` holds age identities (one `AGE-SECRET-KEY-1...` per
//! line, `#` comments allowed), `*.asc` armored OpenPGP private keys. Nothing here ever puts
//! key material into an error.

use std::collections::BTreeMap;
use std::io::Read;

use pgp::composed::{Deserializable, Message, SignedSecretKey};
use pgp::types::Password;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::metadata::Metadata;

/// The key a SOPS file's values are encrypted with.
pub type DataKey = Zeroizing<Vec<u8>>;

/// The private keys read from a decryption Secret.
#[derive(Clone, Default)]
pub struct Keys {
    age: Vec<age::x25519::Identity>,
    pgp: Vec<SignedSecretKey>,
    /// SHA-256 over the Secret's key entries: tells key sets apart and keys the render digest.
    fingerprint: [u8; 32],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("age", &self.age.len())
            .field("pgp", &self.pgp.len())
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// Reads the keys of a Secret's data; errors name the Secret key, never its content.
    pub fn from_secret_data(data: &BTreeMap<String, Vec<u8>>) -> Result<Self, String> {
        let mut keys = Keys::default();
        let mut hasher = Sha256::new();
        for (name, value) in data {
            if name.ends_with(".agekey") {
                let text = std::str::from_utf8(value)
                    .map_err(|_| format!("key '{name}' is not UTF-8 text"))?;
                let before = keys.age.len();
                for (line_no, line) in text.lines().enumerate() {
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    let identity = line.parse::<age::x25519::Identity>().map_err(|_| {
                        format!(
                            "key '{name}', line {}: not an age identity (AGE-SECRET-KEY-1...)",
                            line_no + 1
                        )
                    })?;
                    keys.age.push(identity);
                }
                if keys.age.len() == before {
                    return Err(format!("key '{name}' holds no age identity"));
                }
            } else if name.ends_with(".asc") {
                let (parsed, _) = SignedSecretKey::from_armor_many(value.as_slice())
                    .map_err(|_| format!("key '{name}' is not an armored OpenPGP private key"))?;
                let before = keys.pgp.len();
                for key in parsed {
                    let key = key.map_err(|_| {
                        format!("key '{name}' is not an armored OpenPGP private key")
                    })?;
                    keys.pgp.push(key);
                }
                if keys.pgp.len() == before {
                    return Err(format!("key '{name}' holds no OpenPGP private key"));
                }
            } else {
                continue;
            }
            hasher.update((name.len() as u64).to_be_bytes());
            hasher.update(name.as_bytes());
            hasher.update((value.len() as u64).to_be_bytes());
            hasher.update(value);
        }
        keys.fingerprint = hasher.finalize().into();
        Ok(keys)
    }

    /// Whether the Secret held no key of a supported kind.
    pub fn is_empty(&self) -> bool {
        self.age.is_empty() && self.pgp.is_empty()
    }

    /// A secret value derived from the keys: the key of the render digest's HMAC.
    pub fn fingerprint(&self) -> &[u8; 32] {
        &self.fingerprint
    }

    /// Unwraps the data key of a file with any key that can; `None` when none can.
    pub fn data_key(&self, meta: &Metadata) -> Option<DataKey> {
        for stanza in &meta.age {
            if let Some(key) = self.unwrap_age(&stanza.enc) {
                return Some(key);
            }
        }
        for stanza in &meta.pgp {
            if let Some(key) = self.unwrap_pgp(&stanza.enc) {
                return Some(key);
            }
        }
        None
    }

    fn unwrap_age(&self, enc: &str) -> Option<DataKey> {
        if self.age.is_empty() {
            return None;
        }
        let armored = age::armor::ArmoredReader::new(enc.as_bytes());
        let decryptor = age::Decryptor::new(armored).ok()?;
        let identities = self.age.iter().map(|i| i as &dyn age::Identity);
        let mut reader = decryptor.decrypt(identities).ok()?;
        let mut key = Zeroizing::new(Vec::new());
        reader.read_to_end(&mut key).ok()?;
        Some(key)
    }

    fn unwrap_pgp(&self, enc: &str) -> Option<DataKey> {
        if self.pgp.is_empty() {
            return None;
        }
        let (message, _) = Message::from_string(enc).ok()?;
        let empty = Password::empty();
        let passwords = self.pgp.iter().map(|_| &empty).collect();
        let keys = self.pgp.iter().collect();
        let mut message = message.decrypt_with_keys(passwords, keys).ok()?;
        if message.is_compressed() {
            message = message.decompress().ok()?;
        }
        let mut key = Zeroizing::new(Vec::new());
        message.read_to_end(&mut key).ok()?;
        Some(key)
    }
}
