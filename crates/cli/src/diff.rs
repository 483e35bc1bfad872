//! `mooring diff kustomization NAME [--path DIR]`: what applying the render (of a local
//! checkout of the source, or of its current artifact) would change in the cluster, object by object, found
//! with a server-side dry-run apply as the kustomize-controller's field manager. Exit code 1
//! when something would change.

use std::collections::BTreeSet;
use std::io::IsTerminal;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::Scope;
use mooring_api::Kustomization;
use mooring_api::constants::KUSTOMIZE_FIELD_MANAGER;
use mooring_kustomize_controller::apply::{KindCache, SsaMode, may_delete, ssa_mode};
use mooring_kustomize_controller::inventory::{InventoryEntry, ObjectId, Owner};
use serde::Serialize;
use serde_json::Value;

use crate::args::{DiffArgs, Global};
use crate::client::{Cluster, connect};
use crate::error::Error;
use crate::kinds::fetch;
use crate::output::{print_structured, write_stdout};
use crate::render::{Origin, render};
use crate::textdiff;

/// Unchanged lines shown around each change.
const CONTEXT: usize = 3;

/// One object that would change.
#[derive(Debug, Serialize)]
pub struct Change {
    /// `Kind/namespace/name`.
    pub object: String,
    /// `created`, `configured`, `deleted`, or `invalid` (the dry run refused it).
    pub action: &'static str,
    /// The line diff of the object's YAML, or the API server's refusal for `invalid`.
    pub diff: String,
}

/// Runs `diff`.
pub async fn run(global: &Global, args: DiffArgs) -> Result<(), Error> {
    let cluster = connect(global).await?;
    let ks: Kustomization = fetch(&cluster, &cluster.namespace, &args.name).await?;
    let origin = match &args.path {
        Some(path) => Origin::Local(path.clone()),
        None => Origin::Artifact,
    };
    let rendered = render(
        &cluster,
        &ks,
        &origin,
        &args.render.kustomize,
        args.render.strict_substitution,
    )
    .await?;
    let colour = global.output.is_none() && std::io::stdout().is_terminal();
    let mut changes = Vec::new();
    let mut ids = BTreeSet::new();
    for object in &rendered.objects {
        let id = ObjectId::of(object).map_err(|e| Error::Failed(e.to_string()))?;
        if let Some(change) = compare(&cluster, &rendered.kinds, object, &id, colour).await? {
            changes.push(change);
        }
        ids.insert(id);
    }
    if ks.spec.prune {
        let owner = Owner::new(&cluster.namespace, &args.name);
        let entries = ks
            .status
            .as_ref()
            .and_then(|s| s.inventory.clone())
            .map(|i| i.entries)
            .unwrap_or_default();
        for entry in entries {
            let entry = InventoryEntry::parse(&entry).map_err(|e| Error::Failed(e.to_string()))?;
            if ids.contains(&entry.id) {
                continue;
            }
            if let Some(change) = pruned(&cluster, &rendered.kinds, &entry, &owner, colour).await? {
                changes.push(change);
            }
        }
    }
    match global.output {
        Some(format) => print_structured(format, &serde_json::json!({ "changes": changes }))?,
        None if changes.is_empty() => write_stdout("✔ no changes\n")?,
        None => write_stdout(
            &changes
                .iter()
                .map(|c| format!("► {} {}\n{}", c.object, c.action, c.diff))
                .collect::<String>(),
        )?,
    }
    if changes.is_empty() {
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "{} object(s) would change",
            changes.len()
        )))
    }
}

/// The API of an object's kind, when the API server serves it.
async fn api_for(
    cluster: &Cluster,
    kinds: &KindCache,
    api_version: &str,
    kind: &str,
    namespace: &str,
) -> Result<Option<Api<DynamicObject>>, Error> {
    let resolved = kinds
        .resolve(&cluster.client, api_version, kind)
        .await
        .map_err(Error::api(format!("discovering {api_version} {kind}")))?;
    Ok(resolved.map(|r| match r.scope {
        Scope::Namespaced => Api::namespaced_with(cluster.client.clone(), namespace, &r.resource),
        Scope::Cluster => Api::all_with(cluster.client.clone(), &r.resource),
    }))
}

/// The change applying `object` would make, found by a dry-run apply; `None` when none.
async fn compare(
    cluster: &Cluster,
    kinds: &KindCache,
    object: &DynamicObject,
    id: &ObjectId,
    colour: bool,
) -> Result<Option<Change>, Error> {
    let subject = id.subject();
    let api_version = object
        .types
        .as_ref()
        .map(|t| t.api_version.clone())
        .unwrap_or_default();
    let desired = yaml(object)?;
    let Some(api) = api_for(cluster, kinds, &api_version, &id.kind, &id.namespace).await? else {
        // A kind no one serves yet (its CRD may be in this very render): it would be created.
        return Ok(Some(Change {
            object: subject,
            action: "created",
            diff: textdiff::render(&textdiff::diff("", &desired), CONTEXT, colour),
        }));
    };
    let live = api
        .get_opt(&id.name)
        .await
        .map_err(Error::api(format!("reading {subject}")))?;
    match (ssa_mode(&object.metadata), &live) {
        (SsaMode::Ignore, _) | (SsaMode::IfNotPresent, Some(_)) => return Ok(None),
        _ => {}
    }
    let params = PatchParams::apply(KUSTOMIZE_FIELD_MANAGER)
        .force()
        .dry_run();
    let after = match api.patch(&id.name, &params, &Patch::Apply(object)).await {
        Ok(after) => after,
        // Not found, for an object that does not exist yet: its namespace (or its kind's CRD)
        // comes with the same render, and the controller creates it first.
        Err(e) if live.is_none() && crate::error::is_not_found(&e) => {
            return Ok(Some(Change {
                object: subject,
                action: "created",
                diff: textdiff::render(&textdiff::diff("", &desired), CONTEXT, colour),
            }));
        }
        Err(e) => {
            return Ok(Some(Change {
                object: subject,
                action: "invalid",
                diff: format!("  {e}\n"),
            }));
        }
    };
    let before = live.as_ref().map(yaml).transpose()?.unwrap_or_default();
    let after = yaml(&after)?;
    if before == after {
        return Ok(None);
    }
    Ok(Some(Change {
        object: subject,
        action: if live.is_some() {
            "configured"
        } else {
            "created"
        },
        diff: textdiff::render(&textdiff::diff(&before, &after), CONTEXT, colour),
    }))
}

/// The deletion pruning `entry` would make, when the object exists and may be deleted.
async fn pruned(
    cluster: &Cluster,
    kinds: &KindCache,
    entry: &InventoryEntry,
    owner: &Owner,
    colour: bool,
) -> Result<Option<Change>, Error> {
    let id = &entry.id;
    let Some(api) = api_for(cluster, kinds, &entry.version, &id.kind, &id.namespace).await? else {
        return Ok(None);
    };
    let live = api
        .get_opt(&id.name)
        .await
        .map_err(Error::api(format!("reading {}", id.subject())))?;
    let Some(live) = live.filter(|l| may_delete(&l.metadata, owner).is_ok()) else {
        return Ok(None);
    };
    let before = yaml(&live)?;
    Ok(Some(Change {
        object: id.subject(),
        action: "deleted",
        diff: textdiff::render(&textdiff::diff(&before, ""), CONTEXT, colour),
    }))
}

/// The object as YAML without what the server alone writes (status, managed fields, versions,
/// uid, times), so that only what an apply sets is compared.
fn yaml(object: &DynamicObject) -> Result<String, Error> {
    let mut value = serde_json::to_value(object).map_err(|e| Error::Output(e.to_string()))?;
    if let Some(map) = value.as_object_mut() {
        map.remove("status");
    }
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "selfLink",
        ] {
            meta.remove(key);
        }
    }
    serde_saphyr::to_string(&value).map_err(|e| Error::Output(e.to_string()))
}
