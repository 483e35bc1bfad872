//! Pure decisions of the apply: per-object modes, namespace placement, whether a refused
//! dry-run can wait for an earlier stage, and which action an apply performed.

use std::collections::HashSet;

use kube::api::{DynamicObject, ObjectMeta};
use mooring_api::constants::{
    DISABLED_VALUE, ENABLED_VALUE, FORCE_ANNOTATION, RECONCILE_ANNOTATION, SSA_ANNOTATION,
    SSA_IF_NOT_PRESENT, SSA_IGNORE, SSA_MERGE,
};

use super::changeset::Action;
use super::refusal::Refusal;

/// How one object is applied, from its `kustomize.mooring.dev/ssa` annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsaMode {
    /// Apply, and take over fields set by kubectl so that undeclared ones are removed.
    Override,
    /// Apply, keeping fields that other managers (kubectl included) set.
    Merge,
    /// Create when missing; never update an existing object.
    IfNotPresent,
    /// Never apply (and never prune).
    Ignore,
}

/// The value of a Mooring knob, read from annotations first and labels second (as Flux does).
pub fn knob<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .or_else(|| meta.labels.as_ref().and_then(|l| l.get(key)))
        .map(String::as_str)
}

/// The apply mode of an object; `reconcile: disabled` counts as `Ignore`. Values compare
/// case-insensitively; an unknown value means the default, `Override`.
pub fn ssa_mode(meta: &ObjectMeta) -> SsaMode {
    if knob(meta, RECONCILE_ANNOTATION).is_some_and(|v| v.eq_ignore_ascii_case(DISABLED_VALUE)) {
        return SsaMode::Ignore;
    }
    match knob(meta, SSA_ANNOTATION) {
        Some(v) if v.eq_ignore_ascii_case(SSA_IGNORE) => SsaMode::Ignore,
        Some(v) if v.eq_ignore_ascii_case(SSA_IF_NOT_PRESENT) => SsaMode::IfNotPresent,
        Some(v) if v.eq_ignore_ascii_case(SSA_MERGE) => SsaMode::Merge,
        _ => SsaMode::Override,
    }
}

/// Whether an immutable-field refusal may be resolved by deleting and recreating the object.
pub fn recreate_allowed(meta: &ObjectMeta, force_all: bool) -> bool {
    force_all || knob(meta, FORCE_ANNOTATION).is_some_and(|v| v.eq_ignore_ascii_case(ENABLED_VALUE))
}

/// Puts a namespaced object without a namespace into `default_namespace`, and drops the
/// namespace of a cluster-scoped one (kustomize's `namespace:` stamps it on unknown kinds).
pub fn place(obj: &mut DynamicObject, namespaced: bool, default_namespace: &str) {
    let ns = &mut obj.metadata.namespace;
    if !namespaced {
        *ns = None;
    } else if ns.as_deref().is_none_or(str::is_empty) {
        *ns = Some(default_namespace.to_string());
    }
}

/// What the apply did, told by resourceVersions: the dry-run of an object that does not exist
/// returns none, and an apply that changes nothing does not bump it (the API server skips
/// no-op writes, managedFields timestamps included).
pub fn applied_action(dry_run_version: Option<&str>, applied_version: Option<&str>) -> Action {
    match dry_run_version.filter(|v| !v.is_empty()) {
        None => Action::Created,
        Some(before) if Some(before) == applied_version => Action::Unchanged,
        Some(_) => Action::Configured,
    }
}

/// Names of what the applied set will create in stage order: Namespaces and RBAC roles, to
/// tell whether a refused dry-run only lacks something an earlier stage writes.
#[derive(Debug, Default)]
pub struct Provided {
    /// Namespaces in the set.
    pub namespaces: HashSet<String>,
    /// (kind, namespace or "", name) of Roles and ClusterRoles in the set.
    pub roles: HashSet<(String, String, String)>,
}

impl Provided {
    /// Collects Namespaces, Roles and ClusterRoles from the set.
    pub fn from_objects<'a>(objects: impl IntoIterator<Item = &'a DynamicObject>) -> Self {
        let mut provided = Self::default();
        for obj in objects {
            let (Some(types), Some(name)) = (&obj.types, obj.metadata.name.clone()) else {
                continue;
            };
            match (types.api_version.as_str(), types.kind.as_str()) {
                ("v1", "Namespace") => {
                    provided.namespaces.insert(name);
                }
                ("rbac.authorization.k8s.io/v1", kind @ ("Role" | "ClusterRole")) => {
                    let ns = if kind == "Role" {
                        obj.metadata.namespace.clone().unwrap_or_default()
                    } else {
                        String::new()
                    };
                    provided.roles.insert((kind.to_string(), ns, name));
                }
                _ => {}
            }
        }
        provided
    }

    /// Whether `obj` is a binding whose role is in the set.
    fn binds_provided_role(&self, obj: &DynamicObject) -> bool {
        let kind = obj.types.as_ref().map(|t| t.kind.as_str());
        if !matches!(kind, Some("RoleBinding" | "ClusterRoleBinding")) {
            return false;
        }
        let role_ref = &obj.data["roleRef"];
        let (Some(kind), Some(name)) = (role_ref["kind"].as_str(), role_ref["name"].as_str())
        else {
            return false;
        };
        let ns = if kind == "Role" {
            obj.metadata.namespace.clone().unwrap_or_default()
        } else {
            String::new()
        };
        self.roles
            .contains(&(kind.to_string(), ns, name.to_string()))
    }

    /// Whether a dry-run refusal of `obj` is explained by something this set writes in an
    /// earlier stage: its namespace, or (for a binding refused by RBAC's escalation check,
    /// which reads the bound role) the role it binds.
    pub fn explains(&self, refusal: &Refusal, obj: &DynamicObject) -> bool {
        match refusal {
            Refusal::NamespaceMissing(ns) => self.namespaces.contains(ns),
            // RBAC's escalation check (under impersonation) reads the bound role. While it does
            // not exist the dry-run is refused as Forbidden, or as NotFound (the API server
            // names the binding itself in that 404).
            Refusal::Forbidden { .. } | Refusal::NotFound { .. } => self.binds_provided_role(obj),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(value: serde_json::Value) -> DynamicObject {
        serde_json::from_value(value).expect("object")
    }

    fn annotated(key: &str, value: &str) -> ObjectMeta {
        ObjectMeta {
            annotations: Some([(key.to_string(), value.to_string())].into()),
            ..Default::default()
        }
    }

    #[test]
    fn ssa_modes_come_from_annotations_case_insensitively() {
        assert_eq!(ssa_mode(&ObjectMeta::default()), SsaMode::Override);
        assert_eq!(
            ssa_mode(&annotated(SSA_ANNOTATION, "merge")),
            SsaMode::Merge
        );
        assert_eq!(
            ssa_mode(&annotated(SSA_ANNOTATION, "IfNotPresent")),
            SsaMode::IfNotPresent
        );
        assert_eq!(
            ssa_mode(&annotated(SSA_ANNOTATION, "Ignore")),
            SsaMode::Ignore
        );
        assert_eq!(
            ssa_mode(&annotated(SSA_ANNOTATION, "bogus")),
            SsaMode::Override
        );
        assert_eq!(
            ssa_mode(&annotated(RECONCILE_ANNOTATION, "Disabled")),
            SsaMode::Ignore
        );
        let labelled = ObjectMeta {
            labels: Some([(SSA_ANNOTATION.to_string(), "Merge".to_string())].into()),
            ..Default::default()
        };
        assert_eq!(ssa_mode(&labelled), SsaMode::Merge);
    }

    #[test]
    fn recreation_needs_spec_force_or_the_annotation() {
        assert!(!recreate_allowed(&ObjectMeta::default(), false));
        assert!(recreate_allowed(&ObjectMeta::default(), true));
        assert!(recreate_allowed(
            &annotated(FORCE_ANNOTATION, "Enabled"),
            false
        ));
        assert!(!recreate_allowed(
            &annotated(FORCE_ANNOTATION, "disabled"),
            false
        ));
    }

    #[test]
    fn namespaces_are_defaulted_and_dropped_by_scope() {
        let mut cm =
            obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}));
        place(&mut cm, true, "team-a");
        assert_eq!(cm.metadata.namespace.as_deref(), Some("team-a"));
        let mut kept = obj(json!({"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": "c", "namespace": "b"}}));
        place(&mut kept, true, "team-a");
        assert_eq!(kept.metadata.namespace.as_deref(), Some("b"));
        let mut ns = obj(json!({"apiVersion": "v1", "kind": "Namespace",
                                "metadata": {"name": "n", "namespace": "x"}}));
        place(&mut ns, false, "team-a");
        assert_eq!(ns.metadata.namespace, None);
    }

    #[test]
    fn actions_follow_resource_versions() {
        assert_eq!(applied_action(None, Some("5")), Action::Created);
        assert_eq!(applied_action(Some(""), Some("5")), Action::Created);
        assert_eq!(applied_action(Some("5"), Some("5")), Action::Unchanged);
        assert_eq!(applied_action(Some("5"), Some("6")), Action::Configured);
    }

    #[test]
    fn refusals_explained_by_earlier_stages() {
        let set = [
            obj(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}})),
            obj(
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                       "metadata": {"name": "r", "namespace": "n"}}),
            ),
        ];
        let provided = Provided::from_objects(&set);
        let cm = obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}));
        assert!(provided.explains(&Refusal::NamespaceMissing("n".into()), &cm));
        assert!(!provided.explains(&Refusal::NamespaceMissing("other".into()), &cm));
        let forbidden = Refusal::Forbidden {
            identity: "u".into(),
            verb: None,
            message: String::new(),
        };
        assert!(!provided.explains(&forbidden, &cm));
        let binding = obj(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "b", "namespace": "n"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}}),
        );
        assert!(provided.explains(&forbidden, &binding));
        let foreign = obj(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "b", "namespace": "n"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"}}),
        );
        assert!(!provided.explains(&forbidden, &foreign));
        let not_found = Refusal::NotFound {
            resource: "rolebindings".into(),
            name: "b".into(),
            message: String::new(),
        };
        assert!(provided.explains(&not_found, &binding));
        assert!(!provided.explains(&not_found, &foreign));
        assert!(!provided.explains(&not_found, &cm));
    }
}
