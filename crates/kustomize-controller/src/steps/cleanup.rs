//! Deletion of a Kustomization: what it applied is deleted or left, as `deletionPolicy` says.

use kube::ResourceExt;
use mooring_api::kustomization::ResourceInventory;
use mooring_api::{DeletionPolicy, Kustomization};

use crate::apply::{self, ApplyOptions, ChangeSet, ObjectKey};
use crate::context::Context;
use crate::error::Error;
use crate::inventory::Owner;
use crate::live::Lookup;
use crate::steps::prune::read_inventory_live;
use crate::target::{self, TargetError};

/// How a deletion that cannot tell where the inventory's objects are ends without deleting.
const LEAVE_THEM: &str = "or spec.suspend: true or spec.deletionPolicy: Orphan to leave them";

/// Deletes the inventory's objects unless the policy keeps them, with the Kustomization's own
/// identity. Returns what was deleted. Talks to the API server.
pub async fn cleanup(ks: &Kustomization, ctx: &Context) -> Result<ChangeSet, Error> {
    let ns = ks.namespace().unwrap_or_default();
    let owner = Owner::new(&ns, &ks.name_any());
    let memory = ctx.memories.get(&owner);
    let policy = ks.spec.deletion_policy();
    let delete = match policy {
        DeletionPolicy::Delete | DeletionPolicy::WaitForTermination => true,
        DeletionPolicy::MirrorPrune => ks.spec.prune,
        DeletionPolicy::Orphan => false,
    };
    let stored: ResourceInventory = ks
        .status
        .as_ref()
        .and_then(|s| s.inventory.clone())
        .unwrap_or_default();
    if !delete || stored.entries.is_empty() || ks.spec.suspend {
        ctx.memories.forget(&owner);
        return Ok(ChangeSet::default());
    }
    let clients = target::clients(ks, ctx).await.map_err(|e| match e {
        TargetError::Unsupported(why) => Error::Finalizer(format!(
            "{why}; the objects of the inventory are not deleted, since it cannot be told which \
             cluster holds them: set spec.kubeConfig.secretRef again, {LEAVE_THEM}"
        )),
        other => Error::Finalizer(other.to_string()),
    })?;
    let cluster = clients.target.cluster;
    if let Some(there) = stored.cluster.as_deref().filter(|c| *c != cluster.name) {
        let here = cluster.described();
        return Err(Error::Finalizer(format!(
            "status.inventory is on {}, and spec.kubeConfig names {here}: its objects are not \
             deleted from {here}, where the same ids are other objects; set spec.kubeConfig \
             back, {LEAVE_THEM}",
            target::described(there)
        )));
    }
    let client = clients.target.client;
    let default_namespace = ks
        .spec
        .target_namespace
        .clone()
        .unwrap_or_else(|| ns.clone());
    let entries = read_inventory_live(&client, &cluster.kinds, &stored, &default_namespace)
        .await
        .map_err(|e| Error::Finalizer(e.to_string()))?;
    // An object that the live view has listed as absent, and that no write of ours may have
    // created since, needs no request: the inventory may list objects whose creation was
    // refused (it is widened before creating), which the Kustomization's identity may not even
    // read.
    let keys = entries
        .iter()
        .filter(|entry| {
            let absent = matches!(cluster.live.lookup(&entry.id), Lookup::Absent { .. });
            !absent || memory.written.contains_key(&entry.id)
        })
        .map(ObjectKey::of_entry)
        .collect();
    let mut opts = ApplyOptions::new(ns.clone());
    opts.kinds = cluster.kinds.clone();
    let wait = matches!(policy, DeletionPolicy::WaitForTermination);
    let deleted = apply::delete_all(&client, keys, &owner, &opts, wait)
        .await
        .map_err(|e| Error::Finalizer(e.to_string()))?;
    ctx.memories.forget(&owner);
    Ok(deleted)
}
