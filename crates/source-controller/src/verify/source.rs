//! What `spec.verify` asks of a fetched revision: which objects to verify for a mode, and the
//! provenance recorded for the served artifact.

use std::collections::BTreeMap;
use std::path::PathBuf;

use mooring_api::conditions::reasons;
use mooring_api::{GitCheckout, GitRepositorySpec, GitVerificationMode};

use super::{Keyring, SignerInfo, VerifyError, header, verify_commit, verify_tag};
use crate::error::Error;
use crate::git::Fetched;

/// The verification mode of `spec`, `None` without `spec.verify`. A tag mode needs a tag to
/// verify: `ref.tag`, `ref.semver` or a `ref.name` under `refs/tags/`; anything else is a
/// spec error naming `spec.verify.mode`.
pub fn mode(spec: &GitRepositorySpec) -> Result<Option<GitVerificationMode>, Error> {
    let Some(verify) = &spec.verify else {
        return Ok(None);
    };
    let mode = match verify.mode.unwrap_or(GitVerificationMode::Head) {
        GitVerificationMode::LegacyHead => GitVerificationMode::Head,
        other => other,
    };
    let tagged = match spec.checkout() {
        GitCheckout::Tag(_) | GitCheckout::Semver(_) => true,
        GitCheckout::Name(name) => name.starts_with("refs/tags/"),
        GitCheckout::Branch(_) | GitCheckout::Commit { .. } => false,
    };
    if mode.verifies_tag() && !tagged {
        return Err(Error::InvalidSpec {
            field: "spec.verify.mode",
            reason: reasons::INVALID_VERIFICATION_MODE,
            message: format!(
                "mode {} verifies a tag, so spec.ref must set tag, semver, or a name under \
                 refs/tags/",
                mode_name(mode)
            ),
        });
    }
    Ok(Some(mode))
}

/// The mode as written in the spec.
pub fn mode_name(mode: GitVerificationMode) -> &'static str {
    match mode {
        GitVerificationMode::LegacyHead | GitVerificationMode::Head => "HEAD",
        GitVerificationMode::Tag => "Tag",
        GitVerificationMode::TagAndHEAD => "TagAndHEAD",
    }
}

/// The signers of a verified revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSigners {
    /// The mode that was verified.
    pub mode: GitVerificationMode,
    /// The commit that was verified (40 hex).
    pub commit: String,
    /// The commit's signer, in the HEAD modes.
    pub commit_signer: Option<SignerInfo>,
    /// The tag's name and signer, in the tag modes.
    pub tag: Option<(String, SignerInfo)>,
    /// The tag's `tagger` (`Name <email>`) and tagging time (RFC 3339), in the tag modes.
    pub tagger: Option<(String, String)>,
}

impl SourceSigners {
    /// One sentence naming what was verified and by whom (condition message and Event note).
    pub fn message(&self) -> String {
        let mut parts = Vec::new();
        if let Some((name, signer)) = &self.tag {
            parts.push(format!("tag '{name}' signed by {signer}"));
        }
        if let Some(signer) = &self.commit_signer {
            parts.push(format!("commit {} signed by {signer}", self.commit));
        }
        format!("verified {}", parts.join(" and "))
    }

    /// Provenance entries for `status.artifact.metadata`.
    pub fn metadata(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        out.insert("verify.mode".to_owned(), mode_name(self.mode).to_owned());
        // The signer of the served content: the commit's when it was verified, else the tag's.
        let signer = self
            .commit_signer
            .as_ref()
            .or(self.tag.as_ref().map(|(_, s)| s));
        if let Some(signer) = signer {
            out.insert("verify.signer.type".into(), signer.kind.as_str().into());
            out.insert(
                "verify.signer.fingerprint".into(),
                signer.fingerprint.clone(),
            );
            out.insert("verify.signer.identity".into(), signer.identity.clone());
        }
        if let Some((_, signer)) = &self.tag {
            out.insert(
                "verify.tagSigner.fingerprint".into(),
                signer.fingerprint.clone(),
            );
            out.insert("verify.tagSigner.identity".into(), signer.identity.clone());
        }
        if let Some((tagger, time)) = &self.tagger {
            out.insert("git.tagger".into(), tagger.clone());
            out.insert("git.tagTime".into(), time.clone());
        }
        out
    }
}

/// What to verify of a fetched revision.
#[derive(Debug, Clone)]
pub struct Revision {
    /// The cache repository holding it.
    pub repo_path: PathBuf,
    /// The commit (40 hex).
    pub commit: String,
    /// The revision (`v1.0.0@sha1:<hex>`), whose name is the tag in the tag modes.
    pub revision: String,
    /// The annotated tag object, if the ref points to one.
    pub tag_object: Option<String>,
}

impl From<&Fetched> for Revision {
    fn from(fetched: &Fetched) -> Self {
        Revision {
            repo_path: fetched.repo_path.clone(),
            commit: fetched.commit.clone(),
            revision: fetched.revision.clone(),
            tag_object: fetched.tag_object.clone(),
        }
    }
}

/// Verifies what `mode` asks of the fetched revision, with `ring`, at `now` (seconds since the
/// epoch). Reads the cache repository; blocking.
pub fn verify_fetched(
    fetched: &Revision,
    mode: GitVerificationMode,
    ring: &Keyring,
    now: i64,
) -> Result<SourceSigners, VerifyError> {
    let mut signers = SourceSigners {
        mode,
        commit: fetched.commit.clone(),
        commit_signer: None,
        tag: None,
        tagger: None,
    };
    if mode.verifies_tag() {
        let name = fetched
            .revision
            .rsplit_once('@')
            .map_or(fetched.revision.as_str(), |(name, _)| name);
        let name = name.strip_prefix("refs/tags/").unwrap_or(name);
        let (signer, raw) = verify_tag(
            &fetched.repo_path,
            name,
            fetched.tag_object.as_deref(),
            ring,
            now,
        )?;
        signers.tag = Some((name.to_owned(), signer));
        signers.tagger = header(&raw, "tagger").map(person_and_time);
    }
    if mode.verifies_head() {
        signers.commit_signer = Some(verify_commit(
            &fetched.repo_path,
            &fetched.commit,
            ring,
            now,
        )?);
    }
    Ok(signers)
}

/// `Name <email> 1700000000 +0000` as (`Name <email>`, RFC 3339 time in UTC).
fn person_and_time(line: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(line);
    let Some((person, rest)) = text.rsplit_once('>') else {
        return (text.into_owned(), String::new());
    };
    let seconds = rest.split_whitespace().next().and_then(|s| s.parse().ok());
    let time = seconds
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map(|t| t.to_string())
        .unwrap_or_default();
    (format!("{}>", person.trim()), time)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> GitRepositorySpec {
        serde_json::from_value(json).expect("spec")
    }

    #[test]
    fn tag_modes_need_a_tag() {
        let base = |reference: serde_json::Value, mode: &str| {
            spec(serde_json::json!({
                "url": "https://example.com/r.git", "interval": "1m", "ref": reference,
                "verify": {"mode": mode, "secretRef": {"name": "keys"}},
            }))
        };
        let branch = serde_json::json!({"branch": "main"});
        assert_eq!(
            mode(&base(branch.clone(), "head")).expect("ok"),
            Some(GitVerificationMode::Head)
        );
        let err = mode(&base(branch, "Tag")).expect_err("no tag");
        assert!(
            matches!(
                err,
                Error::InvalidSpec {
                    field: "spec.verify.mode",
                    ..
                }
            ),
            "{err}"
        );
        for reference in [
            serde_json::json!({"tag": "v1"}),
            serde_json::json!({"semver": ">=1"}),
            serde_json::json!({"name": "refs/tags/v1"}),
        ] {
            assert_eq!(
                mode(&base(reference, "TagAndHEAD")).expect("ok"),
                Some(GitVerificationMode::TagAndHEAD)
            );
        }
        let err = mode(&base(serde_json::json!({"name": "refs/heads/main"}), "Tag"));
        assert!(err.is_err());
    }

    #[test]
    fn tagger_line_is_split_into_person_and_time() {
        assert_eq!(
            person_and_time(b"Rel Eng <rel@x> 1700000060 +0200"),
            ("Rel Eng <rel@x>".into(), "2023-11-14T22:14:20Z".into())
        );
    }
}
