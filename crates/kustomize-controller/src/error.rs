//! Why a Kustomization reconcile failed, one variant per failed step.

use mooring_api::conditions::reasons;

use crate::decide::Outcome;

/// A failed step of the Kustomization reconciler.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec cannot work as written (waits for a change).
    #[error("{message}")]
    InvalidSpec {
        /// The Flux condition reason.
        reason: &'static str,
        /// What is wrong, naming the field.
        message: String,
    },
    /// The source or a dependency is not there yet; waits quietly.
    #[error("{message}")]
    Waiting {
        /// `ArtifactFailed` or `DependencyNotReady`.
        reason: &'static str,
        /// What is awaited.
        message: String,
    },
    /// Downloading, verifying or extracting the artifact failed.
    #[error("{message}")]
    Artifact {
        /// The revision whose artifact failed.
        revision: String,
        /// The cause.
        message: String,
    },
    /// kustomize, substitution or parsing the render failed.
    #[error("{message}")]
    Build {
        /// The revision being built.
        revision: String,
        /// The cause, naming the file or object.
        message: String,
    },
    /// Applying or pruning failed; nothing of a failed stage was written.
    #[error("{}{source}", missing_prefix(missing))]
    Apply {
        /// The revision being applied.
        revision: String,
        /// The Flux condition reason (`ReconciliationFailed`, `PruneFailed`).
        reason: &'static str,
        /// "Kind/ns/name" of objects of the inventory that do not exist in the cluster.
        missing: Vec<String>,
        /// The cause, naming the object and the API server's reason.
        #[source]
        source: Box<crate::apply::ApplyError>,
    },
    /// No client could be built for the Kustomization's identity.
    #[error("{message}")]
    Identity {
        /// The revision to apply.
        revision: String,
        /// Why.
        message: String,
    },
    /// Objects failed their health checks, or did not become healthy in time.
    #[error("{message}")]
    Unhealthy {
        /// The revision applied.
        revision: String,
        /// Which objects and why.
        message: String,
        /// The inventory that was applied.
        inventory: mooring_api::kustomization::ResourceInventory,
    },
    /// Writing the status failed.
    #[error("patching status: {0}")]
    PatchStatus(#[source] kube::Error),
    /// Adding or removing the finalizer, or deleting on removal, failed.
    #[error("finalizer: {0}")]
    Finalizer(String),
}

/// "missing: A, B (and N more); " when objects of the inventory are missing, so that Ready's
/// message names them.
fn missing_prefix(missing: &[String]) -> String {
    const NAMED: usize = 5;
    match missing.len() {
        0 => String::new(),
        n if n <= NAMED => format!("missing: {}; ", missing.join(", ")),
        n => format!(
            "missing: {} and {} more; ",
            missing[..NAMED].join(", "),
            n - NAMED
        ),
    }
}

impl Error {
    /// A stable short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Error::InvalidSpec { .. } => "invalid_spec",
            Error::Waiting { .. } => "waiting",
            Error::Artifact { .. } => "artifact",
            Error::Build { .. } => "build",
            Error::Apply { .. } => "apply",
            Error::Identity { .. } => "identity",
            Error::Unhealthy { .. } => "unhealthy",
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
            Error::Waiting { reason, .. } => Outcome::Waiting {
                reason: reason.to_string(),
                message,
            },
            Error::Artifact { revision, .. } => Outcome::Failed {
                revision: Some(revision.clone()),
                reason: reasons::ARTIFACT_FAILED.to_string(),
                message,
                inventory: None,
            },
            Error::Build { revision, .. } => Outcome::Failed {
                revision: Some(revision.clone()),
                reason: reasons::BUILD_FAILED.to_string(),
                message,
                inventory: None,
            },
            Error::Apply {
                revision, reason, ..
            } => Outcome::Failed {
                revision: Some(revision.clone()),
                reason: reason.to_string(),
                message,
                inventory: None,
            },
            Error::Identity { revision, .. } => Outcome::Failed {
                revision: Some(revision.clone()),
                reason: reasons::RECONCILIATION_FAILED.to_string(),
                message,
                inventory: None,
            },
            Error::Unhealthy {
                revision,
                inventory,
                ..
            } => Outcome::Failed {
                revision: Some(revision.clone()),
                reason: reasons::HEALTH_CHECK_FAILED.to_string(),
                message,
                inventory: Some(inventory.clone()),
            },
            Error::PatchStatus(_) | Error::Finalizer(_) => Outcome::Failed {
                revision: None,
                reason: reasons::RECONCILIATION_FAILED.to_string(),
                message,
                inventory: None,
            },
        }
    }
}
