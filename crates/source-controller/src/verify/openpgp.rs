//! OpenPGP signatures, verified with rPGP against the certificates of the Secret.
//!
//! The issuer named in the signature (fingerprint, or key id for older signers) picks the key:
//! a primary key or a subkey bound to it. That key must not be revoked and must not be expired
//! now, and the signature must verify over the payload. A subkey is also refused when its
//! primary key is revoked or expired.

use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey, SignedPublicSubKey};
use pgp::packet::{Signature, SignatureType};
use pgp::types::{KeyDetails, Tag};

use super::keys::OpenPgpKey;
use super::{KeyKind, SignerInfo, VerifyError};

/// Verifies the armored signature `armored` over `payload` with the certificates in `ring`, at
/// `now` (seconds since the epoch).
pub fn verify(
    object: &str,
    armored: &str,
    payload: &[u8],
    ring: &[OpenPgpKey],
    now: i64,
) -> Result<SignerInfo, VerifyError> {
    let (detached, _) =
        DetachedSignature::from_string(armored).map_err(|e| VerifyError::Malformed {
            object: object.to_owned(),
            detail: format!("reading the OpenPGP signature: {e}"),
        })?;
    let signature = &detached.signature;
    let fingerprints: Vec<String> = signature
        .issuer_fingerprint()
        .iter()
        .map(|f| format!("{f:X}"))
        .collect();
    let key_ids: Vec<String> = signature
        .issuer_key_id()
        .iter()
        .map(|id| hex::encode_upper(id.as_ref()))
        .collect();
    let names = |key: &dyn KeyDetails| {
        let fingerprint = format!("{:X}", key.fingerprint());
        let key_id = hex::encode_upper(key.legacy_key_id().as_ref());
        fingerprints.contains(&fingerprint) || key_ids.contains(&key_id)
    };
    for cert in ring {
        let cert = &cert.key;
        if names(&cert.primary_key) {
            return check_primary(object, cert, signature, payload, now);
        }
        if let Some(sub) = cert.public_subkeys.iter().find(|s| names(&s.key)) {
            return check_subkey(object, cert, sub, signature, payload, now);
        }
    }
    let named = fingerprints
        .first()
        .or(key_ids.first())
        .cloned()
        .unwrap_or_else(|| "(the signature names no issuer)".to_owned());
    Err(VerifyError::UnknownKey {
        object: object.to_owned(),
        key: format!("OpenPGP key {named}"),
    })
}

fn check_primary(
    object: &str,
    cert: &SignedPublicKey,
    signature: &Signature,
    payload: &[u8],
    now: i64,
) -> Result<SignerInfo, VerifyError> {
    let signer = signer_info(cert, &cert.primary_key);
    usable(object, cert, &signer, now)?;
    signature
        .verify(&cert.primary_key, payload)
        .map_err(|e| bad(object, &signer, e))?;
    Ok(signer)
}

fn check_subkey(
    object: &str,
    cert: &SignedPublicKey,
    sub: &SignedPublicSubKey,
    signature: &Signature,
    payload: &[u8],
    now: i64,
) -> Result<SignerInfo, VerifyError> {
    let signer = signer_info(cert, &sub.key);
    usable(object, cert, &signer, now)?;
    sub.verify_bindings(&cert.primary_key)
        .map_err(|e| VerifyError::Malformed {
            object: object.to_owned(),
            detail: format!("{signer} is not bound to its primary key: {e}"),
        })?;
    let revoked = sub
        .signatures
        .iter()
        .any(|s| s.typ() == Some(SignatureType::SubkeyRevocation));
    if revoked {
        return Err(VerifyError::RevokedKey {
            object: object.to_owned(),
            signer: signer.to_string(),
        });
    }
    let binding = sub
        .signatures
        .iter()
        .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding))
        .max_by_key(|s| s.created().map(|t| t.as_secs()));
    if let Some(expiry) = binding.and_then(|b| expires_at(sub.key.created_at().as_secs(), b))
        && expiry <= now
    {
        return Err(expired(object, &signer, expiry));
    }
    signature
        .verify(&sub.key, payload)
        .map_err(|e| bad(object, &signer, e))?;
    Ok(signer)
}

/// Fails when the certificate's primary key is revoked or expired at `now`.
fn usable(
    object: &str,
    cert: &SignedPublicKey,
    signer: &SignerInfo,
    now: i64,
) -> Result<(), VerifyError> {
    let primary = &cert.primary_key;
    let revoked = cert
        .details
        .revocation_signatures
        .iter()
        .any(|s| s.verify_key(primary).is_ok());
    if revoked {
        return Err(VerifyError::RevokedKey {
            object: object.to_owned(),
            signer: signer.to_string(),
        });
    }
    // The newest valid self-signature states the key's current expiry.
    let user_signatures = cert.details.users.iter().flat_map(|user| {
        user.signatures.iter().filter(|s| {
            s.verify_certification(primary, Tag::UserId, &user.id)
                .is_ok()
        })
    });
    let direct = cert
        .details
        .direct_signatures
        .iter()
        .filter(|s| s.verify_key(primary).is_ok());
    let newest = user_signatures
        .chain(direct)
        .max_by_key(|s| s.created().map(|t| t.as_secs()));
    if let Some(expiry) = newest.and_then(|s| expires_at(primary.created_at().as_secs(), s))
        && expiry <= now
    {
        return Err(expired(object, signer, expiry));
    }
    Ok(())
}

/// When a key created at `created` expires according to `self_signature`, if ever.
fn expires_at(created: u32, self_signature: &Signature) -> Option<i64> {
    let after = self_signature.key_expiration_time()?;
    // Zero means "does not expire" (RFC 9580, 5.2.3.13).
    (after.as_secs() != 0).then(|| i64::from(created) + i64::from(after.as_secs()))
}

fn signer_info(cert: &SignedPublicKey, key: &dyn KeyDetails) -> SignerInfo {
    let users = &cert.details.users;
    let user = users
        .iter()
        .find(|u| u.is_primary())
        .or(users.first())
        .map(|u| String::from_utf8_lossy(u.id.id()).into_owned())
        .unwrap_or_default();
    SignerInfo {
        kind: KeyKind::OpenPgp,
        fingerprint: format!("{:X}", key.fingerprint()),
        identity: user,
    }
}

fn expired(object: &str, signer: &SignerInfo, expiry: i64) -> VerifyError {
    let at = jiff::Timestamp::from_second(expiry)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| expiry.to_string());
    VerifyError::ExpiredKey {
        object: object.to_owned(),
        signer: signer.to_string(),
        expired_at: at,
    }
}

fn bad(object: &str, signer: &SignerInfo, error: pgp::errors::Error) -> VerifyError {
    VerifyError::BadSignature {
        object: object.to_owned(),
        signer: signer.to_string(),
        detail: error.to_string(),
    }
}
