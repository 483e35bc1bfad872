//! The apply: objects of the plan go to the API server with server-side apply; everything else
//! costs no request. Before anything new is created, the inventory in status is widened to hold
//! it, so a crash or a failed stage never leaves an object that no Kustomization knows of.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use kube::api::Api;
use kube::{Client, ResourceExt};
use mooring_api::conditions::reasons;
use mooring_api::constants::KUSTOMIZE_FIELD_MANAGER;
use mooring_api::kustomization::{ResourceInventory, ResourceRef};
use mooring_api::{Kustomization, KustomizationStatus};
use mooring_runtime::status::{OwnWrites, apply_status};

use crate::apply::{self, ApplyError, ApplyOptions, ChangeSet};
use crate::error::Error;
use crate::inventory::{self, InventoryEntry, ObjectId};
use crate::state::{Assessed, Written};
use crate::steps::plan::Plan;
use crate::steps::render::Render;

/// What an apply wrote, for the memory.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// One line per rendered object.
    pub changes: ChangeSet,
    /// What our writes left, per object the server answered for.
    pub written: Vec<(ObjectId, Written)>,
    /// The health of those objects in the server's answer.
    pub assessed: Vec<(ObjectId, Assessed)>,
}

/// The inventory that covers both `old` and the render: written to status before objects that
/// `old` lacks are created. None when `old` already covers the render.
pub fn widened_inventory(
    old: &[InventoryEntry],
    render: &Render,
) -> Result<Option<ResourceInventory>, inventory::InventoryError> {
    let known: BTreeSet<&ObjectId> = old.iter().map(|e| &e.id).collect();
    if render.objects.iter().all(|d| known.contains(&d.id)) {
        return Ok(None);
    }
    let mut entries: BTreeSet<ResourceRef> = old.iter().map(InventoryEntry::to_ref).collect();
    entries.extend(render.inventory().entries);
    Ok(Some(ResourceInventory {
        entries: entries.into_iter().collect(),
        cluster: None,
    }))
}

/// Writes `status` with `inventory`, before the objects it adds are created, and remembers the
/// write in `writes`. Talks to the API server (with the controller's identity: status is the
/// controller's own).
pub async fn record_intent(
    client: &Client,
    writes: &OwnWrites,
    ks: &Kustomization,
    status: &KustomizationStatus,
    inventory: ResourceInventory,
) -> Result<KustomizationStatus, Error> {
    let mut next = status.clone();
    next.inventory = Some(inventory);
    let api: Api<Kustomization> =
        Api::namespaced(client.clone(), &ks.namespace().unwrap_or_default());
    let written = apply_status(&api, &ks.name_any(), KUSTOMIZE_FIELD_MANAGER, &next)
        .await
        .map_err(Error::PatchStatus)?;
    writes.wrote(&written);
    Ok(next)
}

/// Applies the objects of `plan` (the rest is reported Unchanged without a request). On
/// failure, what was written before it is still returned in the error, for the memory.
/// Talks to the API server.
pub async fn apply(
    client: &Client,
    render: &Render,
    plan: &Plan,
    opts: &ApplyOptions,
) -> Result<Applied, (Error, Applied)> {
    let hashes: HashMap<&ObjectId, u64> = render.objects.iter().map(|d| (&d.id, d.hash)).collect();
    let unchanged =
        |o: &kube::api::DynamicObject| ObjectId::of(o).is_ok_and(|id| !plan.applies(&id));
    let remember = |changes: ChangeSet| {
        let mut applied = Applied::default();
        for entry in &changes.entries {
            let id = entry.key.id();
            let (Some(hash), Some(observed)) = (hashes.get(&id), &entry.observed) else {
                continue;
            };
            let live = observed.live.clone();
            applied.assessed.push((
                id.clone(),
                Assessed {
                    resource_version: live.resource_version.clone(),
                    health: observed.health.clone(),
                },
            ));
            applied.written.push((
                id,
                Written {
                    hash: *hash,
                    live: live.into(),
                    at: Instant::now(),
                },
            ));
        }
        applied.changes = changes;
        applied
    };
    match apply::apply_all(client, render.manifests(), opts, &unchanged).await {
        Ok(changes) => Ok(remember(changes)),
        Err(source) => {
            let partial = match &source {
                ApplyError::Partial { applied, .. } => remember(applied.clone()),
                _ => Applied::default(),
            };
            let error = Error::Apply {
                revision: render.revision.clone(),
                reason: reasons::RECONCILIATION_FAILED,
                missing: plan.missing(),
                source: Box::new(source),
            };
            Err((error, partial))
        }
    }
}
