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

/// How the API server refused a request, as far as apply and prune care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// 404 on the object itself.
    NotFound,
    /// 404 because the object's namespace does not exist.
    NamespaceMissing(String),
    /// 422/409 about an immutable field.
    Immutable(String),
    /// 403 naming a user.
    Forbidden {
        /// The user.
        identity: String,
        /// The verb, when the message names one.
        verb: Option<String>,
        /// The message.
        message: String,
    },
    /// Anything else: the Status message, or the client error.
    Other(String),
}

/// Reads a kube error into a [`Refusal`].
pub(crate) fn refusal(err: &kube::Error) -> Refusal {
    let kube::Error::Api(status) = err else {
        return Refusal::Other(err.to_string());
    };
    let message = if status.message.is_empty() {
        err.to_string()
    } else {
        status.message.clone()
    };
    match status.code {
        404 => match &status.details {
            Some(d) if d.kind == "namespaces" => Refusal::NamespaceMissing(d.name.clone()),
            _ => Refusal::NotFound,
        },
        409 | 422 if message.to_ascii_lowercase().contains("immutable") => {
            Refusal::Immutable(message)
        }
        403 => match forbidden_identity(&message) {
            Some((identity, verb)) => Refusal::Forbidden {
                identity,
                verb,
                message,
            },
            None => Refusal::Other(message),
        },
        _ => Refusal::Other(message),
    }
}

/// The user (and verb) in an RBAC refusal: `... User "system:serviceaccount:a:b" cannot patch ...`
/// or `... user "..." (groups=...) is attempting to grant RBAC permissions ...`.
fn forbidden_identity(message: &str) -> Option<(String, Option<String>)> {
    let lower = message.to_ascii_lowercase();
    let start = lower.find("user \"")? + "user \"".len();
    let len = message[start..].find('"')?;
    let identity = message[start..start + len].to_string();
    let rest = &message[start + len..];
    let verb = rest
        .find(" cannot ")
        .and_then(|i| rest[i + " cannot ".len()..].split_whitespace().next())
        .map(str::to_string);
    Some((identity, verb))
}

/// The error for a refusal of `verb` on `object` that is not handled otherwise.
pub(crate) fn refused(
    refusal: Refusal,
    verb: &str,
    object: &str,
    fallback: impl FnOnce(String, String) -> ApplyError,
) -> ApplyError {
    match refusal {
        Refusal::Forbidden {
            identity,
            verb: said,
            message,
        } => ApplyError::Forbidden {
            identity,
            verb: said.unwrap_or_else(|| verb.to_string()),
            object: object.to_string(),
            reason: message,
        },
        Refusal::Immutable(m) | Refusal::Other(m) => fallback(object.to_string(), m),
        Refusal::NotFound => fallback(object.to_string(), "not found".into()),
        Refusal::NamespaceMissing(ns) => {
            fallback(object.to_string(), format!("namespace {ns} does not exist"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16, message: &str, details_kind: &str) -> kube::Error {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": code, "message": message,
            "details": {"kind": details_kind, "name": "team-a"}
        }))
        .expect("status");
        kube::Error::Api(Box::new(status))
    }

    #[test]
    fn rbac_refusals_name_user_and_verb() {
        let err = api_error(
            403,
            "configmaps \"x\" is forbidden: User \"system:serviceaccount:team-a:deployer\" \
             cannot patch resource \"configmaps\" in API group \"\" in the namespace \"team-a\"",
            "configmaps",
        );
        let Refusal::Forbidden { identity, verb, .. } = refusal(&err) else {
            panic!("not forbidden: {:?}", refusal(&err));
        };
        assert_eq!(identity, "system:serviceaccount:team-a:deployer");
        assert_eq!(verb.as_deref(), Some("patch"));
        let escalation = api_error(
            403,
            "rolebindings.rbac.authorization.k8s.io \"b\" is forbidden: user \"system:serviceaccount:a:b\" \
             (groups=[\"system:serviceaccounts\"]) is attempting to grant RBAC permissions not currently held",
            "rolebindings",
        );
        let err = refused(refusal(&escalation), "patch", "RoleBinding/a/b", |o, r| {
            ApplyError::DryRun {
                object: o,
                reason: r,
            }
        });
        assert_eq!(err.label(), "Forbidden");
        assert!(
            err.to_string()
                .starts_with("system:serviceaccount:a:b is not allowed to patch RoleBinding/a/b"),
            "{err}"
        );
    }

    #[test]
    fn terminating_namespace_403_is_not_an_rbac_refusal() {
        let err = api_error(
            403,
            "unable to create new content in namespace x because it is being terminated",
            "",
        );
        assert!(matches!(refusal(&err), Refusal::Other(_)));
    }

    #[test]
    fn missing_namespaces_and_immutable_fields_are_recognised() {
        let missing = api_error(404, "namespaces \"team-a\" not found", "namespaces");
        assert_eq!(
            refusal(&missing),
            Refusal::NamespaceMissing("team-a".into())
        );
        assert_eq!(
            refusal(&api_error(404, "x", "configmaps")),
            Refusal::NotFound
        );
        let immutable = api_error(
            422,
            "ConfigMap \"c\" is invalid: data: Forbidden: field is immutable when `immutable` is set",
            "configmaps",
        );
        assert!(matches!(refusal(&immutable), Refusal::Immutable(_)));
        let invalid = api_error(
            422,
            "Service \"s\" is invalid: spec.ports[0].port",
            "services",
        );
        assert!(matches!(refusal(&invalid), Refusal::Other(_)));
    }
}
