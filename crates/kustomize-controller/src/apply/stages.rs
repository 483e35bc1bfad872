//! Apply stages: which objects must exist before others can be validated and applied.

use std::collections::HashMap;

use kube::api::DynamicObject;
use kube::discovery::{ApiResource, Scope};

use super::changeset::split_api_version;
use super::discovery::ResolvedKind;

/// The stage an object is applied in; stages run in this order and prune runs them backwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// CustomResourceDefinitions, Namespaces and ClusterRoles: what other objects are validated
    /// against. CRDs are waited on until Established before later stages are validated.
    ClusterDefinitions,
    /// Kinds whose name ends in `Class` (StorageClass, IngressClass, PriorityClass, ...), and
    /// namespaced Roles.
    ///
    /// Roles come before RoleBindings so that a binding, validated under impersonation, finds
    /// the Role it grants (the API server's escalation check reads it).
    Classes,
    /// Everything else, ClusterRoleBindings included (their ClusterRole exists by then).
    Rest,
}

impl Stage {
    /// All stages in apply order.
    pub const ALL: [Stage; 3] = [Stage::ClusterDefinitions, Stage::Classes, Stage::Rest];
}

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
const CRD_GROUP: &str = "apiextensions.k8s.io";

/// The stage of a kind.
pub fn stage_of(group: &str, kind: &str) -> Stage {
    match (group, kind) {
        (CRD_GROUP, "CustomResourceDefinition")
        | ("", "Namespace")
        | (RBAC_GROUP, "ClusterRole") => Stage::ClusterDefinitions,
        (RBAC_GROUP, "Role") => Stage::Classes,
        (_, kind) if kind.ends_with("Class") => Stage::Classes,
        _ => Stage::Rest,
    }
}

/// Whether `obj` is a CustomResourceDefinition.
pub fn is_crd(obj: &DynamicObject) -> bool {
    obj.types.as_ref().is_some_and(|t| {
        split_api_version(&t.api_version).0 == CRD_GROUP && t.kind == "CustomResourceDefinition"
    })
}

/// A kind that a CRD in the applied set defines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrdKind {
    /// The CRD's name (`<plural>.<group>`).
    pub crd_name: String,
    /// The scope of its objects.
    pub scope: Scope,
    /// The plural resource name.
    pub plural: String,
    /// The versions the CRD serves.
    pub served: Vec<String>,
}

/// The kinds defined by the CRDs in an applied set, keyed by (group, kind).
#[derive(Debug, Default, Clone)]
pub struct CrdKinds(HashMap<(String, String), CrdKind>);

impl CrdKinds {
    /// Reads `spec.group`, `spec.names.kind` and `spec.scope` of every CRD among `objects`.
    pub fn from_objects<'a>(objects: impl IntoIterator<Item = &'a DynamicObject>) -> Self {
        let mut kinds = HashMap::new();
        for obj in objects.into_iter().filter(|o| is_crd(o)) {
            let spec = &obj.data["spec"];
            let (Some(group), Some(kind), Some(plural), Some(name)) = (
                spec["group"].as_str(),
                spec["names"]["kind"].as_str(),
                spec["names"]["plural"].as_str(),
                obj.metadata.name.as_deref(),
            ) else {
                continue;
            };
            let scope = if spec["scope"].as_str() == Some("Cluster") {
                Scope::Cluster
            } else {
                Scope::Namespaced
            };
            let served = spec["versions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|v| v["served"].as_bool() != Some(false))
                .filter_map(|v| v["name"].as_str().map(str::to_string))
                .collect();
            kinds.insert(
                (group.to_string(), kind.to_string()),
                CrdKind {
                    crd_name: name.to_string(),
                    scope,
                    plural: plural.to_string(),
                    served,
                },
            );
        }
        Self(kinds)
    }

    /// The CRD defining (group, kind), if one is in the set.
    pub fn get(&self, group: &str, kind: &str) -> Option<&CrdKind> {
        self.0.get(&(group.to_string(), kind.to_string()))
    }

    /// The API resource a CRD in the set will serve for (group, version, kind), and the CRD's
    /// name; None when no CRD in the set serves that version of the kind.
    pub fn resolve(&self, group: &str, version: &str, kind: &str) -> Option<(ResolvedKind, &str)> {
        let crd = self.get(group, kind)?;
        if !crd.served.iter().any(|v| v == version) {
            return None;
        }
        let resolved = ResolvedKind {
            resource: ApiResource {
                group: group.to_string(),
                version: version.to_string(),
                api_version: format!("{group}/{version}"),
                kind: kind.to_string(),
                plural: crd.plural.clone(),
            },
            scope: crd.scope.clone(),
        };
        Some((resolved, crd.crd_name.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_fall_into_stages() {
        assert_eq!(
            stage_of("apiextensions.k8s.io", "CustomResourceDefinition"),
            Stage::ClusterDefinitions
        );
        assert_eq!(stage_of("", "Namespace"), Stage::ClusterDefinitions);
        assert_eq!(
            stage_of(RBAC_GROUP, "ClusterRole"),
            Stage::ClusterDefinitions
        );
        assert_eq!(stage_of("storage.k8s.io", "StorageClass"), Stage::Classes);
        assert_eq!(
            stage_of("networking.k8s.io", "IngressClass"),
            Stage::Classes
        );
        assert_eq!(
            stage_of("scheduling.k8s.io", "PriorityClass"),
            Stage::Classes
        );
        assert_eq!(
            stage_of("gateway.networking.k8s.io", "GatewayClass"),
            Stage::Classes
        );
        assert_eq!(stage_of(RBAC_GROUP, "Role"), Stage::Classes);
        assert_eq!(stage_of(RBAC_GROUP, "RoleBinding"), Stage::Rest);
        assert_eq!(stage_of(RBAC_GROUP, "ClusterRoleBinding"), Stage::Rest);
        assert_eq!(stage_of("", "ConfigMap"), Stage::Rest);
        // A core-group kind named like a Namespace in another group is not a Namespace.
        assert_eq!(stage_of("example.com", "Namespace"), Stage::Rest);
        assert!(Stage::ClusterDefinitions < Stage::Classes && Stage::Classes < Stage::Rest);
    }

    #[test]
    fn crd_kinds_are_read_from_the_set() {
        let crd: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Cluster",
                     "names": {"kind": "Widget", "plural": "widgets"},
                     "versions": [{"name": "v1", "served": true},
                                  {"name": "v0", "served": false}]}
        }))
        .expect("crd");
        let kinds = CrdKinds::from_objects([&crd]);
        let widget = kinds.get("example.com", "Widget").expect("widget");
        assert_eq!(widget.crd_name, "widgets.example.com");
        assert_eq!(widget.scope, Scope::Cluster);
        assert!(kinds.get("example.com", "Gadget").is_none());
        let (resolved, crd_name) = kinds.resolve("example.com", "v1", "Widget").expect("v1");
        assert_eq!(resolved.resource.plural, "widgets");
        assert_eq!(resolved.resource.api_version, "example.com/v1");
        assert!(!resolved.namespaced());
        assert_eq!(crd_name, "widgets.example.com");
        assert!(kinds.resolve("example.com", "v0", "Widget").is_none());
        assert!(is_crd(&crd));
    }
}
