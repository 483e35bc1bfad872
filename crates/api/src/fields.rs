//! Which spec fields the controllers implement and which they refuse.
//!
//! The schemas accept every field of Flux's v1 APIs so that a Flux manifest validates. A field
//! a controller does not implement must not be silently ignored: an object that sets one is
//! refused (Stalled) with a message naming the field. [`KUSTOMIZATION_REFUSED`] and
//! [`GITREPOSITORY_REFUSED`] and [`RECEIVER_REFUSED`] are those fields; a test walks both schemas and fails on any field
//! that is neither implemented nor listed here.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray,
};
use serde_json::Value;

/// A field that is accepted by the schema but not implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// The field, from `spec`, with `[]` for the items of a list: `spec.dependsOn[].readyExpr`.
    pub path: &'static str,
    /// The condition reason.
    pub reason: &'static str,
    /// What to do instead, appended to "<path> is not supported".
    pub advice: &'static str,
}

impl Refused {
    /// The condition message: names the field, says why and what to do.
    pub fn message(&self) -> String {
        format!("{} is not supported: {}", self.path, self.advice)
    }
}

/// Kustomization fields that are refused.
pub const KUSTOMIZATION_REFUSED: &[Refused] = &[
    Refused {
        path: "spec.decryption.serviceAccountName",
        reason: crate::conditions::reasons::RECONCILIATION_FAILED,
        advice: "workload identity for cloud key services (AWS KMS, GCP KMS, Azure Key Vault, \
                 Vault) is not implemented; encrypt for age or OpenPGP keys held in \
                 spec.decryption.secretRef",
    },
    Refused {
        path: "spec.healthCheckExprs",
        reason: crate::conditions::reasons::RECONCILIATION_FAILED,
        advice: "CEL health checks are not implemented; use healthChecks on kinds that follow \
                 the Ready/Reconciling/Stalled conventions",
    },
    Refused {
        path: "spec.dependsOn[].readyExpr",
        reason: crate::conditions::reasons::RECONCILIATION_FAILED,
        advice: "CEL readiness of dependencies is not implemented; a dependency is ready when \
                 it is Ready at its current generation",
    },
    Refused {
        path: "spec.ignore",
        reason: crate::conditions::reasons::RECONCILIATION_FAILED,
        advice: "ignore rules are not implemented; leave fields that others own out of the \
                 manifests (server-side apply then leaves them alone)",
    },
    Refused {
        path: "spec.kubeConfig.configMapRef",
        reason: crate::conditions::reasons::RECONCILIATION_FAILED,
        advice: "workload identity for remote clusters is not implemented; use \
                 spec.kubeConfig.secretRef",
    },
];

/// GitRepository fields that are refused.
pub const GITREPOSITORY_REFUSED: &[Refused] = &[Refused {
    path: "spec.recurseSubmodules",
    reason: crate::conditions::reasons::GIT_OPERATION_FAILED,
    advice: "submodules are not implemented yet; vendor the submodule or use spec.include",
}];

/// Receiver fields that are refused. `spec.type` and `spec.resources[].kind` are implemented
/// for some values only; the source-controller refuses the others naming the value.
pub const RECEIVER_REFUSED: &[Refused] = &[Refused {
    path: "spec.resourceFilter",
    reason: crate::conditions::reasons::RECONCILIATION_FAILED,
    advice: "CEL resource filters are not implemented; select the GitRepositories by name or \
             with matchLabels",
}];

/// The first refused field that `spec` (the spec as JSON) sets.
pub fn refused<'r>(spec: &Value, refused: &'r [Refused]) -> Option<&'r Refused> {
    refused.iter().find(|r| {
        let path = r.path.strip_prefix("spec.").unwrap_or(r.path);
        is_set(spec, &path.split('.').collect::<Vec<_>>())
    })
}

/// Whether `value` holds something at `path` other than null, false, an empty string or an
/// empty list. A segment ending in `[]` looks into every item of a list.
fn is_set(value: &Value, path: &[&str]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return match value {
            Value::Null | Value::Bool(false) => false,
            Value::String(s) => !s.is_empty(),
            Value::Array(items) => !items.is_empty(),
            _ => true,
        };
    };
    let (name, each) = match first.strip_suffix("[]") {
        Some(name) => (name, true),
        None => (*first, false),
    };
    let Some(child) = value.get(name) else {
        return false;
    };
    if each {
        child
            .as_array()
            .is_some_and(|items| items.iter().any(|item| is_set(item, rest)))
    } else {
        is_set(child, rest)
    }
}

/// A leaf field of a schema: its path from `spec` and its JSON type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// `spec.a.b[].c`.
    pub path: String,
    /// `string`, `boolean`, `integer`, `object` (a map or a free-form object) or `array`
    /// (of scalars).
    pub type_: String,
}

/// Every leaf field under `spec` of the first version of `crd`.
pub fn spec_fields(crd: &CustomResourceDefinition) -> Vec<Field> {
    let mut fields = Vec::new();
    let spec = crd
        .spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|root| root.properties.as_ref())
        .and_then(|p| p.get("spec"));
    if let Some(spec) = spec {
        walk(spec, "spec".to_string(), &mut fields);
    }
    fields
}

fn walk(schema: &JSONSchemaProps, path: String, out: &mut Vec<Field>) {
    if let Some(properties) = schema.properties.as_ref().filter(|p| !p.is_empty()) {
        for (name, child) in properties {
            walk(child, format!("{path}.{name}"), out);
        }
        return;
    }
    if let Some(JSONSchemaPropsOrArray::Schema(item)) = &schema.items
        && item.properties.as_ref().is_some_and(|p| !p.is_empty())
    {
        walk(item, format!("{path}[]"), out);
        return;
    }
    out.push(Field {
        path,
        type_: schema.type_.clone().unwrap_or_else(|| "object".to_string()),
    });
}

#[cfg(test)]
#[path = "fields_tests.rs"]
mod tests;
