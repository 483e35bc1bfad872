//! Objects read back with `kubectl get -o json`, stripped of what the API server assigns, so
//! that two clusters can be compared and Mooring's objects restored elsewhere.

use serde_json::Value;

use crate::cli::Error;
use crate::cluster::Cluster;

/// Metadata fields the API server sets; they differ between clusters by nature.
const SERVER_METADATA: [&str; 6] = [
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "managedFields",
    "generation",
    "finalizers",
];

/// `kubectl get <resource> <name> -n <namespace> -o json`, parsed (no `-n` when `namespace` is
/// empty: a cluster-scoped object).
pub fn get(cluster: &Cluster, resource: &str, name: &str, namespace: &str) -> Result<Value, Error> {
    let mut args = vec!["get", resource, name, "-o", "json"];
    if !namespace.is_empty() {
        args.extend_from_slice(&["--namespace", namespace]);
    }
    let json = cluster.kubectl(&args)?;
    serde_json::from_str(&json).map_err(|e| Error::Output {
        command: format!("kubectl get {resource} {name} -o json"),
        reason: e.to_string(),
    })
}

/// `object` as it could be applied to another cluster: no status, no server-set metadata.
pub fn for_restore(mut object: Value) -> Value {
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in SERVER_METADATA {
            metadata.remove(field);
        }
        if let Some(annotations) = metadata
            .get_mut("annotations")
            .and_then(Value::as_object_mut)
        {
            // kubectl's own bookkeeping, not part of what the user declared.
            annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
            if annotations.is_empty() {
                metadata.remove("annotations");
            }
        }
    }
    object
}

/// `object` without what the API server assigns, including a Service's allocated IPs.
pub fn comparable(object: Value) -> Value {
    let mut object = for_restore(object);
    if object.get("kind").and_then(Value::as_str) == Some("Service")
        && let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    }
    object
}

/// One inventory entry of a Kustomization: `<namespace>_<name>_<group>_<kind>` and a version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    /// The entry's `id`.
    pub id: String,
    /// The entry's `v`.
    pub version: String,
}

impl Entry {
    /// The object's (kubectl resource `Kind[.group]`, name, namespace).
    pub fn target(&self) -> Option<(String, String, String)> {
        let mut parts = self.id.splitn(4, '_');
        let namespace = parts.next()?.to_string();
        let name = parts.next()?.to_string();
        let group = parts.next()?;
        let kind = parts.next()?;
        let resource = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        Some((resource, name, namespace))
    }
}

/// The inventory of the Kustomization `name`, sorted.
pub fn inventory(cluster: &Cluster, name: &str, namespace: &str) -> Result<Vec<Entry>, Error> {
    let ks = get(cluster, "kustomization", name, namespace)?;
    let entries = ks
        .pointer("/status/inventory/entries")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut inventory: Vec<Entry> = entries
        .iter()
        .map(|e| Entry {
            id: e
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            version: e
                .get("v")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        })
        .collect();
    inventory.sort();
    Ok(inventory)
}

/// Every object of the inventory, read back and made [`comparable`], in inventory order.
pub fn managed_objects(cluster: &Cluster, inventory: &[Entry]) -> Result<Vec<Value>, Error> {
    inventory
        .iter()
        .map(|entry| {
            let (resource, name, namespace) = entry.target().ok_or_else(|| Error::Output {
                command: "kubectl get kustomization".to_string(),
                reason: format!(
                    "inventory id {:?} is not <ns>_<name>_<group>_<kind>",
                    entry.id
                ),
            })?;
            get(cluster, &resource, &name, &namespace).map(comparable)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_ids_name_kubectl_resources() {
        let core = Entry {
            id: "default_sample-config__ConfigMap".to_string(),
            version: "v1".to_string(),
        };
        assert_eq!(
            core.target(),
            Some(("ConfigMap".into(), "sample-config".into(), "default".into()))
        );
        let rbac = Entry {
            id: "default_reader_rbac.authorization.k8s.io_Role".to_string(),
            version: "v1".to_string(),
        };
        assert_eq!(
            rbac.target(),
            Some((
                "Role.rbac.authorization.k8s.io".into(),
                "reader".into(),
                "default".into()
            ))
        );
    }

    #[test]
    fn comparable_drops_what_the_server_assigns() {
        let service = serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "s", "uid": "u", "resourceVersion": "1", "labels": {"a": "b"}},
            "spec": {"clusterIP": "10.0.0.5", "clusterIPs": ["10.0.0.5"], "ports": [{"port": 80}]},
            "status": {"loadBalancer": {}}
        });
        assert_eq!(
            comparable(service),
            serde_json::json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "s", "labels": {"a": "b"}},
                "spec": {"ports": [{"port": 80}]}
            })
        );
    }
}
