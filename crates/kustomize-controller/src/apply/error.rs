//! Errors of apply and prune, and how API server refusals are read.

use std::time::Duration;

use super::changeset::ChangeSet;

/// Why an apply, prune or deletion failed. Object names read `Kind/namespace/name`.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A manifest lacks apiVersion, kind or metadata.name.
    #[error("object #{index} ({what}) has no apiVersion, kind or metadata.name")]
    InvalidObject {
        /// Position in the applied list.
        index: usize,
        /// What is known of it.
        what: String,
    },
    /// Reading discovery failed.
    #[error("discovering the kinds of {api_version}: {source}")]
    Discovery {
        /// The group-version being read.
        api_version: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The API server does not serve the kind, even after re-reading discovery.
    #[error(
        "{object}: the API server has no kind {kind} in {api_version}; \
         its CustomResourceDefinition does not exist (or does not serve {api_version})"
    )]
    UnknownKind {
        /// The object.
        object: String,
        /// Its apiVersion.
        api_version: String,
        /// Its kind.
        kind: String,
    },
    /// The server-side dry-run refused the object; nothing of its stage was written.
    #[error("{object} dry-run failed: {reason}")]
    DryRun {
        /// The object.
        object: String,
        /// The API server's message.
        reason: String,
    },
    /// An immutable field changed and recreation is not enabled for the object.
    #[error(
        "{object} cannot be updated: {reason} (set spec.force or annotate the object with \
         kustomize.mooring.dev/force: enabled to delete and recreate it)"
    )]
    Immutable {
        /// The object.
        object: String,
        /// The API server's message.
        reason: String,
    },
    /// The server-side apply itself failed.
    #[error("{object} apply failed: {reason}")]
    Apply {
        /// The object.
        object: String,
        /// The API server's message.
        reason: String,
    },
    /// RBAC refused the request (HTTP 403 naming a user).
    #[error("{identity} is not allowed to {verb} {object}: {reason}")]
    Forbidden {
        /// The user the API server saw, e.g. `system:serviceaccount:team-a:deployer`.
        identity: String,
        /// The refused verb.
        verb: String,
        /// The object.
        object: String,
        /// The API server's message.
        reason: String,
    },
    /// A CRD applied in this revision did not become Established in time.
    #[error("CustomResourceDefinition {name} did not become Established within {timeout:?}")]
    NotEstablished {
        /// The CRD name.
        name: String,
        /// How long was waited.
        timeout: Duration,
    },
    /// Watching an object (for CRD establishment or termination) failed.
    #[error("watching {object}: {reason}")]
    Watch {
        /// The object.
        object: String,
        /// What went wrong.
        reason: String,
    },
    /// Reading an object failed.
    #[error("reading {object}: {reason}")]
    Get {
        /// The object.
        object: String,
        /// The API server's message.
        reason: String,
    },
    /// Deleting an object failed.
    #[error("deleting {object}: {reason}")]
    Delete {
        /// The object.
        object: String,
        /// The API server's message.
        reason: String,
    },
    /// Deleted objects were still present when the wait ended.
    #[error("still terminating after {timeout:?}: {}", objects.join(", "))]
    TerminationTimeout {
        /// The objects still present, with their finalizers.
        objects: Vec<String>,
        /// How long was waited.
        timeout: Duration,
    },
    /// Several objects failed; each is listed.
    #[error("{}", join(.0))]
    Many(Vec<ApplyError>),
    /// A later stage failed after earlier writes; `applied` lists what was written.
    #[error("{source}\napplied before the failure:\n{applied}")]
    Partial {
        /// The failure.
        source: Box<ApplyError>,
        /// The writes done before it.
        applied: ChangeSet,
    },
}

fn join(errors: &[ApplyError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl ApplyError {
    /// A stable short name of the failure, for metrics and event reasons.
    pub fn label(&self) -> &'static str {
        match self {
            Self::InvalidObject { .. } => "InvalidObject",
            Self::Discovery { .. } => "Discovery",
            Self::UnknownKind { .. } => "UnknownKind",
            Self::DryRun { .. } => "DryRunFailed",
            Self::Immutable { .. } => "ImmutableField",
            Self::Apply { .. } => "ApplyFailed",
            Self::Forbidden { .. } => "Forbidden",
            Self::NotEstablished { .. } => "CRDNotEstablished",
            Self::Watch { .. } => "WatchFailed",
            Self::Get { .. } => "GetFailed",
            Self::Delete { .. } => "DeleteFailed",
            Self::TerminationTimeout { .. } => "TerminationTimeout",
            Self::Many(errors) => errors.first().map_or("Many", ApplyError::label),
            Self::Partial { source, .. } => source.label(),
        }
    }

    /// The failures without the `Partial` and `Many` wrappers.
    pub fn failures(&self) -> Vec<&ApplyError> {
        match self {
            Self::Many(errors) => errors.iter().flat_map(ApplyError::failures).collect(),
            Self::Partial { source, .. } => source.failures(),
            other => vec![other],
        }
    }

    /// One error for a list of failures: the failure itself when there is one.
    pub(crate) fn from_many(mut errors: Vec<ApplyError>) -> Option<ApplyError> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(Self::Many(errors)),
        }
    }

    /// Wraps `self` with the writes done so far, when there were any.
    pub(crate) fn after(self, applied: &ChangeSet) -> ApplyError {
        if applied.has_writes() {
            Self::Partial {
                source: Box::new(self),
                applied: ChangeSet {
                    entries: applied.writes().cloned().collect(),
                },
            }
        } else {
            self
        }
    }
}
