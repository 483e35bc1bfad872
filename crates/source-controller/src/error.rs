//! Why a GitRepository reconcile failed, one variant per failed step.

use mooring_api::conditions::{reasons, types};

use crate::decide::Outcome;

/// A failed step of the GitRepository reconciler.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec cannot work as written (waits for a change).
    #[error("{field}: {message}")]
    InvalidSpec {
        /// The field at fault, e.g. `spec.url`.
        field: &'static str,
        /// The Flux condition reason.
        reason: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// Reading a Secret named by the spec failed.
    #[error("{what} Secret '{name}': {message}")]
    ReadSecret {
        /// `spec.secretRef` or `spec.proxySecretRef`.
        what: &'static str,
        /// The Secret's name.
        name: String,
        /// What went wrong (never a value).
        message: String,
    },
    /// The Secret's contents are not usable credentials.
    #[error("auth Secret '{name}': {message}")]
    Credentials {
        /// The Secret's name.
        name: String,
        /// What is wrong (never a value).
        message: String,
    },
    /// Listing refs or fetching from the remote failed.
    #[error("{message}")]
    Git {
        /// The Flux condition reason.
        reason: &'static str,
        /// The cause, with URL credentials redacted.
        message: String,
    },
    /// An included GitRepository is missing or has no artifact yet.
    #[error("{message}")]
    IncludeUnavailable {
        /// `NotFound` or `NoArtifact`.
        reason: &'static str,
        /// Which include and why.
        message: String,
    },
    /// Building or storing the artifact failed.
    #[error("{message}")]
    Storage {
        /// The Flux condition reason.
        reason: &'static str,
        /// The cause.
        message: String,
    },
    /// The fetched commit or tag did not verify, or the verification keys are unusable.
    #[error("{message}")]
    Verification {
        /// `InvalidCommitSignature`, `InvalidTagSignature` or `VerificationError`.
        reason: &'static str,
        /// What failed, naming the commit or tag and the key.
        message: String,
        /// Whether the served artifact must be withdrawn too.
        withdraw: bool,
    },
    /// Writing the status failed.
    #[error("patching status: {0}")]
    PatchStatus(#[source] kube::Error),
    /// Adding or removing the finalizer failed.
    #[error("finalizer: {0}")]
    Finalizer(String),
}

impl Error {
    /// A stable short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Error::InvalidSpec { .. } => "invalid_spec",
            Error::ReadSecret { .. } => "read_secret",
            Error::Credentials { .. } => "credentials",
            Error::Git { .. } => "git",
            Error::IncludeUnavailable { .. } => "include_unavailable",
            Error::Storage { .. } => "storage",
            Error::Verification { .. } => "verification",
            Error::PatchStatus(_) => "patch_status",
            Error::Finalizer(_) => "finalizer",
        }
    }

    /// How this failure shows in the status.
    pub fn outcome(&self) -> Outcome {
        let message = self.to_string();
        match self {
            Error::InvalidSpec { reason, .. } => Outcome::Stalled {
                reason: reason.to_string(),
                message,
            },
            Error::ReadSecret { .. } | Error::Credentials { .. } => Outcome::Failed {
                condition: types::FETCH_FAILED,
                reason: reasons::AUTHENTICATION_FAILED.to_string(),
                message,
            },
            Error::Git { reason, .. } => Outcome::Failed {
                condition: types::FETCH_FAILED,
                reason: reason.to_string(),
                message,
            },
            Error::IncludeUnavailable { reason, .. } => Outcome::Failed {
                condition: types::INCLUDE_UNAVAILABLE,
                reason: reason.to_string(),
                message,
            },
            Error::Storage { reason, .. } => Outcome::Failed {
                condition: types::STORAGE_OPERATION_FAILED,
                reason: reason.to_string(),
                message,
            },
            Error::Verification {
                reason, withdraw, ..
            } => Outcome::Unverified {
                reason: reason.to_string(),
                message,
                withdraw: *withdraw,
            },
            Error::PatchStatus(_) | Error::Finalizer(_) => Outcome::Failed {
                condition: types::STORAGE_OPERATION_FAILED,
                reason: reasons::PROGRESSING_WITH_RETRY.to_string(),
                message,
            },
        }
    }
}
