//! `ssa: Override` (the default): take over the fields that `kubectl` (edit, patch, label,
//! client-side apply) and pre-SSA tools set, so that the next apply removes the ones git does
//! not declare. `ssa: Merge` skips this and leaves those fields alone.
//!
//! Server-side apply only removes fields that the applier itself owned. A label added with
//! `kubectl label` is owned by `kubectl-label`, so applying without it would keep it forever;
//! moving its ownership into the controller's Apply entry first makes the apply remove it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};
use serde_json::Value;

/// Whether a managedFields entry belongs to a tool whose fields Override takes over.
fn taken_over(entry: &ManagedFieldsEntry, own_manager: &str) -> bool {
    let Some(manager) = entry.manager.as_deref() else {
        return false;
    };
    if manager == own_manager || entry.subresource.as_deref().is_some_and(|s| !s.is_empty()) {
        return false;
    }
    let operation = entry.operation.as_deref().unwrap_or_default();
    // `kubectl` covers kubectl-edit, kubectl-patch, kubectl-label, kubectl-client-side-apply
    // and kubectl --server-side; `before-first-apply` is what the API server names fields that
    // existed before an object's first server-side apply.
    (manager.starts_with("kubectl") && matches!(operation, "Apply" | "Update"))
        || (manager == "before-first-apply" && operation == "Update")
}

/// Whether any entry would be taken over (so the live managedFields are worth reading).
pub fn needs_takeover(entries: &[ManagedFieldsEntry], own_manager: &str) -> bool {
    entries.iter().any(|e| taken_over(e, own_manager))
}

/// The managedFields list with every taken-over entry merged into `own_manager`'s Apply entry
/// (created with `api_version` when missing); None when there is nothing to take over.
pub fn take_over(
    entries: &[ManagedFieldsEntry],
    own_manager: &str,
    api_version: &str,
) -> Option<Vec<ManagedFieldsEntry>> {
    if !needs_takeover(entries, own_manager) {
        return None;
    }
    let mut taken = Value::Object(Default::default());
    let mut kept: Vec<ManagedFieldsEntry> = Vec::new();
    for entry in entries {
        if taken_over(entry, own_manager) {
            if let Some(FieldsV1(fields)) = &entry.fields_v1 {
                merge(&mut taken, fields);
            }
        } else {
            kept.push(entry.clone());
        }
    }
    let own = kept.iter_mut().find(|e| {
        e.manager.as_deref() == Some(own_manager)
            && e.operation.as_deref() == Some("Apply")
            && e.subresource.as_deref().unwrap_or_default().is_empty()
    });
    match own {
        Some(own) => {
            let mut fields = own
                .fields_v1
                .take()
                .map_or(Value::Object(Default::default()), |f| f.0);
            merge(&mut fields, &taken);
            own.fields_v1 = Some(FieldsV1(fields));
        }
        None => kept.push(ManagedFieldsEntry {
            manager: Some(own_manager.to_string()),
            operation: Some("Apply".to_string()),
            api_version: Some(api_version.to_string()),
            fields_type: Some("FieldsV1".to_string()),
            fields_v1: Some(FieldsV1(taken)),
            ..Default::default()
        }),
    }
    Some(kept)
}

/// Union of two FieldsV1 sets (nested objects of `f:`/`k:`/`v:`/`i:` keys).
fn merge(into: &mut Value, from: &Value) {
    let (Value::Object(into), Value::Object(from)) = (into, from) else {
        return;
    };
    for (key, value) in from {
        match into.get_mut(key) {
            Some(existing) => merge(existing, value),
            None => {
                into.insert(key.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(manager: &str, operation: &str, fields: Value) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.into()),
            operation: Some(operation.into()),
            api_version: Some("v1".into()),
            fields_type: Some("FieldsV1".into()),
            fields_v1: Some(FieldsV1(fields)),
            ..Default::default()
        }
    }

    #[test]
    fn kubectl_fields_merge_into_the_own_apply_entry() {
        let entries = vec![
            entry("mooring", "Apply", json!({"f:data": {"f:a": {}}})),
            entry(
                "kubectl-label",
                "Update",
                json!({"f:metadata": {"f:labels": {"f:x": {}}}}),
            ),
            entry("kubectl-edit", "Update", json!({"f:data": {"f:b": {}}})),
            entry("other-controller", "Update", json!({"f:data": {"f:c": {}}})),
        ];
        let merged = take_over(&entries, "mooring", "v1").expect("takeover");
        let managers: Vec<_> = merged.iter().filter_map(|e| e.manager.as_deref()).collect();
        assert_eq!(managers, ["mooring", "other-controller"]);
        assert_eq!(
            merged[0].fields_v1.as_ref().expect("fields").0,
            json!({"f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {"f:labels": {"f:x": {}}}})
        );
    }

    #[test]
    fn an_own_entry_is_created_when_missing() {
        let entries = vec![entry(
            "kubectl-client-side-apply",
            "Update",
            json!({"f:data": {"f:a": {}}}),
        )];
        let merged = take_over(&entries, "mooring", "v1").expect("takeover");
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].manager.as_deref(), Some("mooring"));
        assert_eq!(merged[0].operation.as_deref(), Some("Apply"));
    }

    #[test]
    fn nothing_to_take_over_from_controllers_or_status_writers() {
        let mut status = entry("kubectl-edit", "Update", json!({"f:status": {}}));
        status.subresource = Some("status".into());
        let entries = vec![
            entry("mooring", "Apply", json!({})),
            entry(
                "hpa-controller",
                "Update",
                json!({"f:spec": {"f:replicas": {}}}),
            ),
            entry("before-first-apply", "Apply", json!({})),
            status,
        ];
        assert!(!needs_takeover(&entries, "mooring"));
        assert!(take_over(&entries, "mooring", "v1").is_none());
        assert!(needs_takeover(
            &[entry("before-first-apply", "Update", json!({}))],
            "mooring"
        ));
    }
}
