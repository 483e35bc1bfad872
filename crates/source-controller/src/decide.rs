//! The GitRepository reconciler's decisions, as plain data in and plain data out: whether the
//! stored artifact is current, and what the status becomes after a pass.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use mooring_api::conditions::{ConditionStatus, reasons, remove_condition, set_condition, types};
use mooring_api::{
    Artifact, GitPerson, GitProvenance, GitRepositorySpec, GitRepositoryStatus, GitSigner,
    GitVerificationMode,
};

/// Why the artifact must be built again, or `None` when the stored one is current.
///
/// The stored artifact is current when it exists on disk with its digest, was built from the
/// resolved revision, and every content setting (ignore rules, includes and their artifacts,
/// sparse checkout) is the one it was built with.
pub fn rebuild_reason(
    spec: &GitRepositorySpec,
    status: &GitRepositoryStatus,
    resolved_revision: &str,
    artifact_in_storage: bool,
    included: &[Artifact],
) -> Option<String> {
    let Some(artifact) = &status.artifact else {
        return Some("building artifact: no artifact yet".to_string());
    };
    if artifact.revision != resolved_revision {
        return Some(format!(
            "building artifact: new upstream revision '{resolved_revision}'"
        ));
    }
    if !artifact_in_storage {
        return Some("building artifact: disappeared from storage".to_string());
    }
    if status.observed_ignore != spec.ignore
        || status.observed_include != spec.include
        || status.observed_sparse_checkout != spec.sparse_checkout
    {
        return Some("building artifact: content configuration changed".to_string());
    }
    let digests = |artifacts: &[Artifact]| -> Vec<Option<String>> {
        artifacts.iter().map(|a| a.digest.clone()).collect()
    };
    if digests(&status.included_artifacts) != digests(included) {
        return Some("building artifact: an included artifact changed".to_string());
    }
    None
}

/// How a reconcile pass ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The artifact for the resolved revision is stored and served.
    Ready {
        /// The current artifact (new or unchanged).
        artifact: Artifact,
        /// The artifacts of `spec.include`, in order.
        included: Vec<Artifact>,
        /// The signature verification that let the artifact through, when `spec.verify` is
        /// set.
        verified: Option<Verified>,
    },
    /// The signature of the fetched commit or tag did not verify: nothing new is served.
    Unverified {
        /// `InvalidCommitSignature`, `InvalidTagSignature` or `VerificationError`.
        reason: String,
        /// What failed, naming the commit or tag and the key.
        message: String,
        /// Whether the served artifact is withdrawn from the status, because it no longer
        /// verifies with the current keys either.
        withdraw: bool,
    },
    /// A step failed; it will be retried with backoff. The previous artifact stays.
    Failed {
        /// The condition type naming the failed step (`FetchFailed`, ...).
        condition: &'static str,
        /// The condition reason.
        reason: String,
        /// A message naming the cause, without secrets.
        message: String,
    },
    /// The spec cannot work as written; nothing happens until it changes.
    Stalled {
        /// The condition reason.
        reason: String,
        /// A message naming the field at fault.
        message: String,
    },
}

/// A successful signature verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The mode that was verified (`head` is recorded as `HEAD`).
    pub mode: GitVerificationMode,
    /// Which objects were verified and who signed them.
    pub message: String,
}

/// Conditions that describe a failed step, cleared when a pass succeeds.
const FAILURE_CONDITIONS: [&str; 4] = [
    types::FETCH_FAILED,
    types::STORAGE_OPERATION_FAILED,
    types::INCLUDE_UNAVAILABLE,
    types::ARTIFACT_OUTDATED,
];

/// The status after a pass that ended with `outcome`.
///
/// `now` is used only for conditions whose status changes, so an unchanged object yields an
/// identical status and no write.
pub fn next_status(
    current: &GitRepositoryStatus,
    spec: &GitRepositorySpec,
    generation: i64,
    outcome: &Outcome,
    requested_at: Option<&str>,
    now: &Time,
) -> GitRepositoryStatus {
    let mut status = current.clone();
    let generation_opt = Some(generation);
    if let Some(requested_at) = requested_at {
        status.last_handled_reconcile_at = Some(requested_at.to_string());
    }
    let conditions = &mut status.conditions;
    match outcome {
        Outcome::Ready {
            artifact,
            included,
            verified,
        } => {
            let message = format!("stored artifact for revision '{}'", artifact.revision);
            for type_ in FAILURE_CONDITIONS
                .into_iter()
                .chain([types::STALLED, types::RECONCILING])
            {
                remove_condition(conditions, type_);
            }
            set_condition(
                conditions,
                types::ARTIFACT_IN_STORAGE,
                ConditionStatus::True,
                reasons::SUCCEEDED,
                &message,
                generation_opt,
                now,
            );
            set_condition(
                conditions,
                types::READY,
                ConditionStatus::True,
                reasons::SUCCEEDED,
                &message,
                generation_opt,
                now,
            );
            match verified {
                Some(verified) => {
                    set_condition(
                        conditions,
                        types::SOURCE_VERIFIED,
                        ConditionStatus::True,
                        reasons::SUCCEEDED,
                        &verified.message,
                        generation_opt,
                        now,
                    );
                    status.source_verification_mode = Some(verified.mode);
                }
                None => {
                    remove_condition(conditions, types::SOURCE_VERIFIED);
                    status.source_verification_mode = None;
                }
            }
            status.provenance = Some(provenance(artifact));
            status.artifact = Some(artifact.clone());
            status.included_artifacts = included.clone();
            status.observed_generation = Some(generation);
            status.observed_ignore = spec.ignore.clone();
            status.observed_include = spec.include.clone();
            status.observed_sparse_checkout = spec.sparse_checkout.clone();
            status.observed_recurse_submodules = spec.recurse_submodules;
        }
        Outcome::Failed {
            condition,
            reason,
            message,
        } => {
            for type_ in FAILURE_CONDITIONS.into_iter().filter(|t| t != condition) {
                remove_condition(conditions, type_);
            }
            remove_condition(conditions, types::STALLED);
            set_failure(
                conditions,
                (condition, ConditionStatus::True),
                reason,
                message,
                generation_opt,
                now,
            );
        }
        Outcome::Unverified {
            reason,
            message,
            withdraw,
        } => {
            // Fetching worked: only the verification failed.
            for type_ in FAILURE_CONDITIONS.into_iter().chain([types::STALLED]) {
                remove_condition(conditions, type_);
            }
            set_failure(
                conditions,
                (types::SOURCE_VERIFIED, ConditionStatus::False),
                reason,
                message,
                generation_opt,
                now,
            );
            if *withdraw {
                remove_condition(conditions, types::ARTIFACT_IN_STORAGE);
                status.artifact = None;
                status.provenance = None;
                status.included_artifacts.clear();
                status.source_verification_mode = None;
            }
        }
        Outcome::Stalled { reason, message } => {
            for type_ in FAILURE_CONDITIONS.into_iter().chain([types::RECONCILING]) {
                remove_condition(conditions, type_);
            }
            set_condition(
                conditions,
                types::STALLED,
                ConditionStatus::True,
                reason,
                message,
                generation_opt,
                now,
            );
            set_condition(
                conditions,
                types::READY,
                ConditionStatus::False,
                reason,
                message,
                generation_opt,
                now,
            );
            status.observed_generation = Some(generation);
        }
    }
    status
}

/// A failure that will be retried: `condition` (a failure condition, or SourceVerified=False)
/// and Ready=False with `reason` and `message`, and Reconciling=True.
fn set_failure(
    conditions: &mut Vec<Condition>,
    (condition, status): (&str, ConditionStatus),
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) {
    set_condition(
        conditions, condition, status, reason, message, generation, now,
    );
    set_condition(
        conditions,
        types::RECONCILING,
        ConditionStatus::True,
        reasons::PROGRESSING_WITH_RETRY,
        "retrying after a failure",
        generation,
        now,
    );
    set_condition(
        conditions,
        types::READY,
        ConditionStatus::False,
        reason,
        message,
        generation,
        now,
    );
}

/// How old a shared ref listing this pass may use (`None`: list now). An explicit reconcile
/// request not handled yet, a spec change of an object already reconciled, or a last pass
/// that failed all list afresh; an idle interval pass, and an object's first pass, take a
/// listing made for another object with the same URL and credentials within half of
/// `interval`. So the objects of one URL and credential list at most about twice per
/// interval however many they are, and a commit is seen at most half an interval later than
/// each object listing for itself would see it.
pub fn listing_max_age(
    status: Option<&GitRepositoryStatus>,
    generation: Option<i64>,
    requested_at: Option<&str>,
    interval: std::time::Duration,
) -> Option<std::time::Duration> {
    let Some(status) = status.filter(|s| !s.conditions.is_empty()) else {
        return Some(interval / 2);
    };
    let unhandled_request =
        requested_at.is_some() && requested_at != status.last_handled_reconcile_at.as_deref();
    let spec_changed = status.observed_generation != generation;
    let failed = mooring_api::conditions::find_condition(&status.conditions, types::READY)
        .is_some_and(|c| c.status == ConditionStatus::False.as_str());
    (!(unhandled_request || spec_changed || failed)).then_some(interval / 2)
}

/// `status.provenance`, read from the artifact's metadata (`git.*` and `verify.signer.*`).
pub fn provenance(artifact: &Artifact) -> GitProvenance {
    let empty = Default::default();
    let metadata = artifact.metadata.as_ref().unwrap_or(&empty);
    let get = |key: &str| metadata.get(key).cloned().unwrap_or_default();
    let person = |who: &str, time: &str| {
        let text = metadata.get(who)?;
        let (name, email) = match text.rsplit_once('<') {
            Some((name, rest)) => (name.trim(), rest.trim_end_matches('>')),
            None => (text.as_str(), ""),
        };
        Some(GitPerson {
            name: name.to_owned(),
            email: email.to_owned(),
            time: get(time),
        })
    };
    let signer = metadata
        .get("verify.signer.fingerprint")
        .map(|fingerprint| GitSigner {
            type_: get("verify.signer.type"),
            fingerprint: fingerprint.clone(),
            identity: get("verify.signer.identity"),
        });
    GitProvenance {
        revision: artifact.revision.clone(),
        author: person("git.author", "git.authorTime"),
        committer: person("git.committer", "git.commitTime"),
        tagger: person("git.tagger", "git.tagTime"),
        signer,
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
