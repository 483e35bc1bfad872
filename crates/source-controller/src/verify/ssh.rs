//! SSH signatures (git's `gpg.format=ssh`), verified with `ssh-key`'s SSHSIG in the `git`
//! namespace against the keys of the Secret.
//!
//! An SSH signature carries its public key, which picks the trusted key; `valid-after` and
//! `valid-before` of an `allowed_signers` line bound when that key may be used.

use ssh_key::{HashAlg, SshSig};

use super::keys::SshSigner;
use super::{KeyKind, SignerInfo, VerifyError};

/// The SSHSIG namespace git signs commits and tags in.
const NAMESPACE: &str = "git";

/// Verifies the armored signature `armored` over `payload` with the keys in `ring`, at `now`
/// (seconds since the epoch).
pub fn verify(
    object: &str,
    armored: &str,
    payload: &[u8],
    ring: &[SshSigner],
    now: i64,
) -> Result<SignerInfo, VerifyError> {
    let signature = SshSig::from_pem(armored.trim()).map_err(|e| VerifyError::Malformed {
        object: object.to_owned(),
        detail: format!("reading the SSH signature: {e}"),
    })?;
    let fingerprint = signature
        .public_key()
        .fingerprint(HashAlg::Sha256)
        .to_string();
    let Some(trusted) = ring
        .iter()
        .find(|k| k.key.key_data() == signature.public_key())
    else {
        return Err(VerifyError::UnknownKey {
            object: object.to_owned(),
            key: format!("SSH key {fingerprint}"),
        });
    };
    let signer = SignerInfo {
        kind: KeyKind::Ssh,
        fingerprint,
        identity: trusted.identity.clone(),
    };
    if let Some(before) = trusted.valid_before
        && before <= now
    {
        let at = jiff::Timestamp::from_second(before)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| before.to_string());
        return Err(VerifyError::ExpiredKey {
            object: object.to_owned(),
            signer: signer.to_string(),
            expired_at: at,
        });
    }
    if trusted.valid_after.is_some_and(|after| now < after) {
        return Err(VerifyError::BadSignature {
            object: object.to_owned(),
            signer: signer.to_string(),
            detail: "the key is not valid yet (valid-after)".into(),
        });
    }
    if signature.namespace() != NAMESPACE {
        return Err(VerifyError::BadSignature {
            object: object.to_owned(),
            signer: signer.to_string(),
            detail: format!(
                "signed in namespace '{}', not '{NAMESPACE}'",
                signature.namespace()
            ),
        });
    }
    trusted
        .key
        .verify(NAMESPACE, payload, &signature)
        .map_err(|e| VerifyError::BadSignature {
            object: object.to_owned(),
            signer: signer.to_string(),
            detail: e.to_string(),
        })?;
    Ok(signer)
}
