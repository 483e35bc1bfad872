//! The prune: objects of the previous inventory that left the render are deleted, where their
//! ownership labels still name this Kustomization.

use std::collections::{BTreeMap, BTreeSet};

use kube::Client;
use mooring_api::conditions::reasons;
use mooring_api::kustomization::ResourceInventory;

use crate::apply::{self, ApplyOptions, ChangeSet, KindCache, ObjectKey};
use crate::error::Error;
use crate::inventory::{self, InventoryEntry, ObjectId, Owner};
use crate::steps::render::Render;

/// The entries of a stored inventory, each namespaced object with its namespace. Inventories
/// written by earlier versions recorded objects that named no namespace with an empty one; those
/// are read as `default_namespace`, where they were applied. `namespaced` says whether
/// (apiVersion, kind) is namespaced; kinds it does not know are kept as stored.
pub fn read_inventory(
    stored: &ResourceInventory,
    default_namespace: &str,
    namespaced: &BTreeMap<(String, String), bool>,
) -> Result<Vec<InventoryEntry>, inventory::InventoryError> {
    let mut seen = BTreeSet::new();
    let mut entries = Vec::new();
    for stored in &stored.entries {
        let mut entry = InventoryEntry::parse(stored)?;
        let key = (entry.version.clone(), entry.id.kind.clone());
        if entry.id.namespace.is_empty() && namespaced.get(&key) == Some(&true) {
            entry.id.namespace = default_namespace.to_string();
        }
        if seen.insert(entry.id.clone()) {
            entries.push(entry);
        }
    }
    Ok(entries)
}

/// [`read_inventory`] with the scopes asked of discovery. Talks to the API server for
/// group-versions not cached yet.
pub async fn read_inventory_live(
    client: &Client,
    kinds: &KindCache,
    stored: &ResourceInventory,
    default_namespace: &str,
) -> Result<Vec<InventoryEntry>, inventory::InventoryError> {
    let mut scopes = BTreeMap::new();
    for stored in &stored.entries {
        let Ok(entry) = InventoryEntry::parse(stored) else {
            continue;
        };
        if !entry.id.namespace.is_empty() {
            continue;
        }
        let key = (entry.version.clone(), entry.id.kind.clone());
        if scopes.contains_key(&key) {
            continue;
        }
        if let Ok(Some(kind)) = kinds.resolve(client, &key.0, &key.1).await {
            scopes.insert(key, kind.namespaced());
        }
    }
    read_inventory(stored, default_namespace, &scopes)
}

/// The entries of `old` that are not in `render`, in prune order (the reverse of apply order).
pub fn stale(old: &[InventoryEntry], render: &Render) -> Vec<InventoryEntry> {
    let current: BTreeSet<&ObjectId> = render.objects.iter().map(|d| &d.id).collect();
    let mut stale: Vec<InventoryEntry> = old
        .iter()
        .filter(|e| !current.contains(&e.id))
        .cloned()
        .collect();
    stale.sort_by(|a, b| inventory::apply_order_key(&b.id).cmp(&inventory::apply_order_key(&a.id)));
    stale
}

/// Deletes `stale` objects still owned by `owner`. Talks to the API server.
pub async fn prune(
    client: &Client,
    stale: &[InventoryEntry],
    owner: &Owner,
    revision: &str,
    opts: &ApplyOptions,
) -> Result<ChangeSet, Error> {
    if stale.is_empty() {
        return Ok(ChangeSet::default());
    }
    let keys = stale.iter().map(ObjectKey::of_entry).collect();
    apply::prune(client, keys, owner, opts)
        .await
        .map_err(|source| Error::Apply {
            revision: revision.to_string(),
            reason: reasons::PRUNE_FAILED,
            missing: Vec::new(),
            source: Box::new(source),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mooring_api::kustomization::ResourceRef;

    fn stored(ids: &[(&str, &str)]) -> ResourceInventory {
        ResourceInventory {
            entries: ids
                .iter()
                .map(|(id, v)| ResourceRef {
                    id: id.to_string(),
                    v: v.to_string(),
                })
                .collect(),
            cluster: None,
        }
    }

    #[test]
    fn inventories_of_earlier_versions_are_read_with_their_namespace() {
        let old = stored(&[
            ("_guestbook-ui_apps_Deployment", "apps/v1"),
            ("apps_guestbook-ui__Service", "v1"),
            ("_apps__Namespace", "v1"),
            ("_guestbook-ui_example.com_Widget", "example.com/v1"),
        ]);
        let scopes = BTreeMap::from([
            (("apps/v1".to_string(), "Deployment".to_string()), true),
            (("v1".to_string(), "Namespace".to_string()), false),
        ]);
        let read = read_inventory(&old, "apps", &scopes).expect("read");
        let ids: Vec<String> = read.iter().map(|e| e.id.to_string()).collect();
        assert_eq!(
            ids,
            vec![
                "apps_guestbook-ui_apps_Deployment",
                "apps_guestbook-ui__Service",
                "_apps__Namespace",
                "_guestbook-ui_example.com_Widget",
            ]
        );
    }

    #[test]
    fn an_old_and_a_new_id_of_one_object_are_one_entry() {
        let old = stored(&[
            ("_web_apps_Deployment", "apps/v1"),
            ("apps_web_apps_Deployment", "apps/v1"),
        ]);
        let scopes = BTreeMap::from([(("apps/v1".to_string(), "Deployment".to_string()), true)]);
        assert_eq!(
            read_inventory(&old, "apps", &scopes).expect("read").len(),
            1
        );
    }
}
