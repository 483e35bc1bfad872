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

use self::metadata::Metadata;

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
    formats::emit(format, &loaded.branches)
        .map(Some)
        .map_err(|reason| error(format!("writing the decrypted file failed: {reason}")))
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
