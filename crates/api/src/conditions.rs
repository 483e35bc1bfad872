//! Status condition types, reasons, and pure helpers to maintain a list of conditions.
//!
//! Conditions follow the Kubernetes convention (`metav1.Condition`). `Ready` summarizes the
//! object; `Reconciling` and `Stalled` are present only while true ("abnormal-true"), so that
//! kstatus-style tools can tell progress from a blocked object.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Condition types.
pub mod types {
    /// Summary of the object's state; True when the last reconciliation succeeded.
    pub const READY: &str = "Ready";
    /// Present (True) while the controller is working towards the desired state.
    pub const RECONCILING: &str = "Reconciling";
    /// Present (True) when progress is impossible without a change of the spec.
    pub const STALLED: &str = "Stalled";
    /// GitRepository: the artifact in the status exists in storage.
    pub const ARTIFACT_IN_STORAGE: &str = "ArtifactInStorage";
    /// GitRepository: the stored artifact is older than the desired content.
    pub const ARTIFACT_OUTDATED: &str = "ArtifactOutdated";
    /// GitRepository: fetching from the git server failed.
    pub const FETCH_FAILED: &str = "FetchFailed";
    /// GitRepository: an included repository has no usable artifact.
    pub const INCLUDE_UNAVAILABLE: &str = "IncludeUnavailable";
    /// GitRepository: writing or reading the artifact storage failed.
    pub const STORAGE_OPERATION_FAILED: &str = "StorageOperationFailed";
    /// GitRepository: result of the signature verification.
    pub const SOURCE_VERIFIED: &str = "SourceVerified";
    /// GitRepository: building the artifact failed.
    pub const BUILD_FAILED: &str = "BuildFailed";
    /// Kustomization: result of the health checks.
    pub const HEALTHY: &str = "Healthy";
}

/// Condition reasons.
pub mod reasons {
    /// The step succeeded.
    pub const SUCCEEDED: &str = "Succeeded";
    /// Work is in progress.
    pub const PROGRESSING: &str = "Progressing";
    /// Work is in progress again after a failure.
    pub const PROGRESSING_WITH_RETRY: &str = "ProgressingWithRetry";
    /// A referenced object does not exist.
    pub const NOT_FOUND: &str = "NotFound";
    /// Access to a referenced object is not allowed.
    pub const ACCESS_DENIED: &str = "AccessDenied";
    /// The spec asks for a feature that is turned off.
    pub const FEATURE_GATE_DISABLED: &str = "FeatureGateDisabled";

    /// The URL is not valid.
    pub const URL_INVALID: &str = "URLInvalid";
    /// The provider settings are inconsistent.
    pub const INVALID_PROVIDER_CONFIGURATION: &str = "InvalidProviderConfiguration";
    /// Credentials are missing or were refused.
    pub const AUTHENTICATION_FAILED: &str = "AuthenticationFailed";
    /// A git operation (listing refs, fetching, checking out) failed.
    pub const GIT_OPERATION_FAILED: &str = "GitOperationFailed";
    /// The repository has no commits.
    pub const EMPTY_GIT_REPOSITORY: &str = "EmptyGitRepository";
    /// The upstream has a new revision.
    pub const NEW_REVISION: &str = "NewRevision";
    /// The set or content of included repositories changed.
    pub const INCLUDE_CHANGE: &str = "IncludeChange";
    /// A referenced source has no artifact yet.
    pub const NO_ARTIFACT: &str = "NoArtifact";
    /// A storage directory could not be created.
    pub const DIRECTORY_CREATION_FAILED: &str = "DirectoryCreationFailed";
    /// A storage file could not be inspected.
    pub const STAT_OPERATION_FAILED: &str = "StatOperationFailed";
    /// A storage path is not valid.
    pub const INVALID_PATH: &str = "InvalidPath";
    /// A path would leave the artifact's root.
    pub const ILLEGAL_PATH: &str = "IllegalPath";
    /// Writing the archive failed.
    pub const ARCHIVE_OPERATION_FAILED: &str = "ArchiveOperationFailed";
    /// Copying an included artifact failed.
    pub const COPY_FAILURE: &str = "CopyFailure";
    /// The verification keys could not be read.
    pub const VERIFICATION_ERROR: &str = "VerificationError";
    /// The verification mode does not fit the reference.
    pub const INVALID_VERIFICATION_MODE: &str = "InvalidVerificationMode";
    /// The object to verify is not signed or not valid.
    pub const INVALID_GIT_OBJECT: &str = "InvalidGitObject";
    /// The tag signature did not verify.
    pub const INVALID_TAG_SIGNATURE: &str = "InvalidTagSignature";
    /// The commit signature did not verify.
    pub const INVALID_COMMIT_SIGNATURE: &str = "InvalidCommitSignature";

    /// Kustomization: everything was applied and is healthy.
    pub const RECONCILIATION_SUCCEEDED: &str = "ReconciliationSucceeded";
    /// Kustomization: applying or preparing to apply failed.
    pub const RECONCILIATION_FAILED: &str = "ReconciliationFailed";
    /// Kustomization: the source artifact could not be obtained.
    pub const ARTIFACT_FAILED: &str = "ArtifactFailed";
    /// Building, decrypting or substituting the manifests failed.
    pub const BUILD_FAILED: &str = "BuildFailed";
    /// Kustomization: an applied object did not become healthy in time.
    pub const HEALTH_CHECK_FAILED: &str = "HealthCheckFailed";
    /// Kustomization: health checks stopped because a new reconciliation started.
    pub const HEALTH_CHECK_CANCELED: &str = "HealthCheckCanceled";
    /// Kustomization: a dependency is not ready.
    pub const DEPENDENCY_NOT_READY: &str = "DependencyNotReady";
    /// Kustomization: pruning removed objects failed.
    pub const PRUNE_FAILED: &str = "PruneFailed";
    /// Kustomization: a temporary directory could not be created.
    pub const DIR_CREATION_FAILED: &str = "DirCreationFailed";
    /// Kustomization: a CEL expression of the spec does not compile.
    pub const INVALID_CEL_EXPRESSION: &str = "InvalidCELExpression";
}

/// The status of a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// It is not known whether the condition holds.
    Unknown,
}

impl ConditionStatus {
    /// The value written in `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }

    /// `True` or `False` from a boolean.
    pub fn from_bool(value: bool) -> Self {
        if value { Self::True } else { Self::False }
    }
}

/// Longest condition message kept; longer messages are cut at a character boundary.
pub const MAX_MESSAGE_LENGTH: usize = 20_000;

/// Sets the condition of type `type_`, adding it when missing, and returns whether anything
/// changed.
///
/// `lastTransitionTime` becomes `now` only when the condition is added or its status changes,
/// so setting the same values again leaves the list identical.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: ConditionStatus,
    reason: &str,
    message: &str,
    observed_generation: Option<i64>,
    now: &Time,
) -> bool {
    let message = truncate(message, MAX_MESSAGE_LENGTH);
    let Some(existing) = conditions.iter_mut().find(|c| c.type_ == type_) else {
        conditions.push(Condition {
            type_: type_.to_owned(),
            status: status.as_str().to_owned(),
            reason: reason.to_owned(),
            message: message.to_owned(),
            observed_generation,
            last_transition_time: now.clone(),
        });
        return true;
    };
    let mut changed = false;
    if existing.status != status.as_str() {
        existing.status = status.as_str().to_owned();
        existing.last_transition_time = now.clone();
        changed = true;
    }
    changed |= replace(&mut existing.reason, reason);
    changed |= replace(&mut existing.message, message);
    if existing.observed_generation != observed_generation {
        existing.observed_generation = observed_generation;
        changed = true;
    }
    changed
}

/// Removes the condition of type `type_` and returns whether it was present.
pub fn remove_condition(conditions: &mut Vec<Condition>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|c| c.type_ != type_);
    conditions.len() != before
}

/// The condition of type `type_`, if present.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of type `type_` is present with status `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find_condition(conditions, type_).is_some_and(|c| c.status == ConditionStatus::True.as_str())
}

/// Whether the `Ready` condition is `True`.
pub fn is_ready(conditions: &[Condition]) -> bool {
    is_true(conditions, types::READY)
}

/// Whether the `Stalled` condition is `True`.
pub fn is_stalled(conditions: &[Condition]) -> bool {
    is_true(conditions, types::STALLED)
}

fn replace(field: &mut String, value: &str) -> bool {
    if field == value {
        return false;
    }
    value.clone_into(field);
    true
}

fn truncate(message: &str, max: usize) -> &str {
    if message.len() <= max {
        return message;
    }
    let mut end = max;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}
