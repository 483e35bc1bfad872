//! How API server refusals are read: missing namespaces, immutable fields, RBAC denials.

use super::error::ApplyError;

/// How the API server refused a request, as far as apply and prune care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// 404: the object, or something the request needs (e.g. the Role a binding grants,
    /// read by RBAC's escalation check), does not exist.
    NotFound {
        /// The plural resource named by the Status details, e.g. `roles`.
        resource: String,
        /// Its name.
        name: String,
        /// The message.
        message: String,
    },
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
            details => Refusal::NotFound {
                resource: details.as_ref().map(|d| d.kind.clone()).unwrap_or_default(),
                name: details.as_ref().map(|d| d.name.clone()).unwrap_or_default(),
                message,
            },
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
        Refusal::Immutable(m) | Refusal::Other(m) | Refusal::NotFound { message: m, .. } => {
            fallback(object.to_string(), m)
        }
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
        assert!(matches!(
            refusal(&api_error(404, "x", "roles")),
            Refusal::NotFound { resource, name, .. } if resource == "roles" && name == "team-a"
        ));
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
