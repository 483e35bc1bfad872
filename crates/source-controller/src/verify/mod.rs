//! Verification of commit and tag signatures against the public keys of a Secret, in process:
//! OpenPGP with rPGP (`pgp`), SSH signatures (git's `gpg.format=ssh`) with `ssh-key`'s SSHSIG.
//! Nothing runs `gpg` or `ssh-keygen`.
//!
//! The signed bytes are cut from the raw object as git stored it (never re-serialized), so
//! what is verified is exactly what was fetched; see [`object`].

mod keys;
mod object;
mod openpgp;
mod source;
mod ssh;

use std::fmt;
use std::path::Path;

use mooring_api::conditions::reasons;

pub use keys::{KeyError, Keyring};
pub use object::{Signature, Signed, header, split_commit, split_tag};
pub use source::{Revision, SourceSigners, mode, mode_name, verify_fetched};

/// What kind of key made a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// An OpenPGP key.
    OpenPgp,
    /// An SSH key.
    Ssh,
}

impl KeyKind {
    /// `openpgp` or `ssh`, as written into artifact metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::OpenPgp => "openpgp",
            KeyKind::Ssh => "ssh",
        }
    }
}

/// The key that made a good signature, and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerInfo {
    /// OpenPGP or SSH.
    pub kind: KeyKind,
    /// OpenPGP: the fingerprint of the (sub)key that signed, upper-case hex. SSH: the key's
    /// `SHA256:<base64>` fingerprint.
    pub fingerprint: String,
    /// OpenPGP: the primary user id. SSH: the `allowed_signers` principals, or the key's
    /// comment.
    pub identity: String,
}

impl fmt::Display for SignerInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            KeyKind::OpenPgp => "OpenPGP",
            KeyKind::Ssh => "SSH",
        };
        if self.identity.is_empty() {
            write!(f, "{kind} key {}", self.fingerprint)
        } else {
            write!(f, "{kind} key {} ({})", self.fingerprint, self.identity)
        }
    }
}

/// Why a commit or tag is not verified. `object` is `commit <sha>` or `tag '<name>'`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The object carries no signature.
    #[error("{object} is not signed")]
    Unsigned { object: String },
    /// The signature or its key cannot be read.
    #[error("{object}: {detail}")]
    Malformed { object: String, detail: String },
    /// The signing key is not among the trusted keys.
    #[error("{object} is signed by {key}, which is not in the verification Secret")]
    UnknownKey { object: String, key: String },
    /// The signing key has expired.
    #[error("{object} is signed by {signer}, which expired at {expired_at}")]
    ExpiredKey {
        object: String,
        signer: String,
        expired_at: String,
    },
    /// The signing key is revoked.
    #[error("{object} is signed by {signer}, which is revoked")]
    RevokedKey { object: String, signer: String },
    /// The signature does not match the content.
    #[error("{object}: the signature by {signer} does not match the content: {detail}")]
    BadSignature {
        object: String,
        signer: String,
        detail: String,
    },
    /// The object could not be read from the repository.
    #[error("reading {object}: {detail}")]
    Read { object: String, detail: String },
}

impl VerifyError {
    /// The condition reason: `InvalidTagSignature` for a tag, `InvalidCommitSignature` for a
    /// commit.
    pub fn reason(&self) -> &'static str {
        let object = match self {
            VerifyError::Unsigned { object }
            | VerifyError::Malformed { object, .. }
            | VerifyError::UnknownKey { object, .. }
            | VerifyError::ExpiredKey { object, .. }
            | VerifyError::RevokedKey { object, .. }
            | VerifyError::BadSignature { object, .. }
            | VerifyError::Read { object, .. } => object,
        };
        if object.starts_with("tag ") {
            reasons::INVALID_TAG_SIGNATURE
        } else {
            reasons::INVALID_COMMIT_SIGNATURE
        }
    }
}

/// Verifies `signed` (the signature cut from `object`) with `ring` at `now` (seconds since the
/// epoch).
pub fn verify_signed(
    object: &str,
    signed: Option<Signed>,
    ring: &Keyring,
    now: i64,
) -> Result<SignerInfo, VerifyError> {
    let Some(signed) = signed else {
        return Err(VerifyError::Unsigned {
            object: object.to_owned(),
        });
    };
    match &signed.signature {
        Signature::OpenPgp(armored) => {
            openpgp::verify(object, armored, &signed.payload, &ring.openpgp, now)
        }
        Signature::Ssh(armored) => ssh::verify(object, armored, &signed.payload, &ring.ssh, now),
        Signature::Other(_) => Err(VerifyError::Malformed {
            object: object.to_owned(),
            detail: "the signature is neither OpenPGP nor SSH (X.509 is not supported)".into(),
        }),
    }
}

/// The raw bytes of the object `id` in the repository at `repo_path`, with `what` naming it
/// in errors.
pub fn read_object(repo_path: &Path, id: &str, what: &str) -> Result<Vec<u8>, VerifyError> {
    let read = |detail: String| VerifyError::Read {
        object: what.to_owned(),
        detail,
    };
    let repo = gix::open_opts(repo_path, gix::open::Options::isolated())
        .map_err(|e| read(e.to_string()))?;
    let oid = gix::ObjectId::from_hex(id.as_bytes()).map_err(|e| read(e.to_string()))?;
    let object = repo.find_object(oid).map_err(|e| read(e.to_string()))?;
    Ok(object.data.clone())
}

/// Verifies the commit `commit` of the repository at `repo_path`.
pub fn verify_commit(
    repo_path: &Path,
    commit: &str,
    ring: &Keyring,
    now: i64,
) -> Result<SignerInfo, VerifyError> {
    let object = format!("commit {commit}");
    let raw = read_object(repo_path, commit, &object)?;
    verify_signed(&object, split_commit(&raw), ring, now)
}

/// Verifies the annotated tag `name`, whose tag object is `tag_object` (`None`: a lightweight
/// tag, which cannot be signed).
pub fn verify_tag(
    repo_path: &Path,
    name: &str,
    tag_object: Option<&str>,
    ring: &Keyring,
    now: i64,
) -> Result<(SignerInfo, Vec<u8>), VerifyError> {
    let object = format!("tag '{name}'");
    let Some(id) = tag_object else {
        return Err(VerifyError::Unsigned {
            object: format!("{object} (lightweight, so it has no signature)"),
        });
    };
    let raw = read_object(repo_path, id, &object)?;
    let signer = verify_signed(&object, split_tag(&raw), ring, now)?;
    Ok((signer, raw))
}

#[cfg(test)]
mod tests;
