//! Drift detection without polling: one metadata-only watch per kind that inventories contain,
//! selected by the ownership label. A change by someone else, or a deletion, marks the object and
//! wakes its Kustomization, which then re-applies only the marked objects.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use kube::api::{Api, DynamicObject, PartialObjectMeta};
use kube::discovery::ApiResource;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use mooring_api::Kustomization;
use mooring_api::constants::{KUSTOMIZE_NAME_LABEL, KUSTOMIZE_NAMESPACE_LABEL};
use tokio::sync::mpsc;

use crate::inventory::ObjectId;

/// What a watch last saw of a managed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `metadata.generation`, when the kind has one.
    pub generation: Option<i64>,
    /// `metadata.resourceVersion`.
    pub resource_version: String,
    /// The object was deleted.
    pub deleted: bool,
}

/// The Kustomization (namespace, name) that owns an object, from its ownership labels.
pub type Owner = (String, String);

/// Watches managed kinds and records changes per owning Kustomization.
pub struct DriftWatcher {
    client: kube::Client,
    watched: Mutex<HashSet<(String, String, String)>>,
    changes: Arc<Mutex<HashMap<Owner, HashMap<String, Seen>>>>,
    wake: mpsc::UnboundedSender<ObjectRef<Kustomization>>,
    resync: mpsc::UnboundedSender<()>,
    epoch: Arc<AtomicU64>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// The stable key of an object within drift tracking: its inventory id.
pub fn object_id(namespace: &str, name: &str, group: &str, kind: &str) -> String {
    ObjectId {
        namespace: namespace.to_string(),
        name: name.to_string(),
        group: group.to_string(),
        kind: kind.to_string(),
    }
    .to_string()
}

impl DriftWatcher {
    /// A watcher that wakes one Kustomization through `wake`, and all of them through `resync`
    /// when a watch had to list again (events may have been missed meanwhile).
    pub fn new(
        client: kube::Client,
        wake: mpsc::UnboundedSender<ObjectRef<Kustomization>>,
        resync: mpsc::UnboundedSender<()>,
    ) -> Self {
        Self {
            client,
            watched: Mutex::new(HashSet::new()),
            changes: Arc::new(Mutex::new(HashMap::new())),
            wake,
            resync,
            epoch: Arc::new(AtomicU64::new(0)),
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// Changes whenever a watch re-listed after an interruption: everything remembered as
    /// unchanged must then be applied again, since deletions in the gap sent no event.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Starts a metadata watch for the kind of `resource` unless one runs already.
    pub fn ensure_watch(&self, resource: &ApiResource) {
        let key = (
            resource.group.clone(),
            resource.version.clone(),
            resource.kind.clone(),
        );
        {
            let mut watched = self.watched.lock().unwrap_or_else(|p| p.into_inner());
            if !watched.insert(key) {
                return;
            }
        }
        tracing::debug!(kind = %resource.kind, group = %resource.group, "watching managed objects for drift");
        let api: Api<PartialObjectMeta<DynamicObject>> =
            Api::all_with(self.client.clone(), resource);
        let config = watcher::Config::default().labels(KUSTOMIZE_NAME_LABEL);
        let changes = self.changes.clone();
        let wake = self.wake.clone();
        let resync = self.resync.clone();
        let epoch = self.epoch.clone();
        let group = resource.group.clone();
        let kind = resource.kind.clone();
        let task = tokio::spawn(async move {
            let mut events = watcher(api, config).default_backoff().boxed();
            let mut listed = false;
            while let Some(event) = events.next().await {
                let (object, deleted) = match event {
                    Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::InitApply(o)) => (o, false),
                    Ok(watcher::Event::Delete(o)) => (o, true),
                    Ok(watcher::Event::Init) if listed => {
                        epoch.fetch_add(1, Ordering::SeqCst);
                        let _ = resync.send(());
                        continue;
                    }
                    Ok(watcher::Event::InitDone) => {
                        listed = true;
                        continue;
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::debug!(error = %e, %kind, "drift watch error (retrying)");
                        continue;
                    }
                };
                let labels = object.labels();
                let (Some(owner_name), Some(owner_ns)) = (
                    labels.get(KUSTOMIZE_NAME_LABEL),
                    labels.get(KUSTOMIZE_NAMESPACE_LABEL),
                ) else {
                    continue;
                };
                let owner = (owner_ns.clone(), owner_name.clone());
                let id = object_id(
                    &object.namespace().unwrap_or_default(),
                    &object.name_any(),
                    &group,
                    &kind,
                );
                let seen = Seen {
                    generation: object.meta().generation,
                    resource_version: object.resource_version().unwrap_or_default(),
                    deleted,
                };
                changes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(owner.clone())
                    .or_default()
                    .insert(id, seen);
                let _ = wake.send(ObjectRef::new(&owner.1).within(&owner.0));
            }
        });
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
    }

    /// Takes the changes recorded for `owner` since the last call.
    pub fn take_changes(&self, owner: &Owner) -> HashMap<String, Seen> {
        self.changes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(owner)
            .unwrap_or_default()
    }

    /// Stops every watch.
    pub fn shutdown(&self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

/// Which of the `changes` are drift: deletions, and objects whose generation (or, for kinds
/// without one, resourceVersion) differs from what our own last apply left.
pub fn drifted(
    changes: &HashMap<String, Seen>,
    applied: &HashMap<String, Seen>,
) -> HashSet<String> {
    changes
        .iter()
        .filter(|(id, seen)| {
            if seen.deleted {
                return true;
            }
            match applied.get(*id) {
                None => false,
                Some(ours) => match (seen.generation, ours.generation) {
                    (Some(theirs), Some(mine)) if theirs > 0 => theirs != mine,
                    _ => seen.resource_version != ours.resource_version,
                },
            }
        })
        .map(|(id, _)| id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(generation: Option<i64>, rv: &str, deleted: bool) -> Seen {
        Seen {
            generation,
            resource_version: rv.into(),
            deleted,
        }
    }

    #[test]
    fn only_foreign_changes_and_deletions_are_drift() {
        let applied: HashMap<String, Seen> = [
            ("a".to_string(), seen(Some(2), "10", false)),
            ("b".to_string(), seen(None, "11", false)),
            ("c".to_string(), seen(Some(1), "12", false)),
            ("d".to_string(), seen(None, "13", false)),
        ]
        .into();
        let changes: HashMap<String, Seen> = [
            // A status update: resourceVersion moved, generation did not.
            ("a".to_string(), seen(Some(2), "20", false)),
            // A kind without generation changed by someone else.
            ("b".to_string(), seen(None, "21", false)),
            // A spec change by someone else.
            ("c".to_string(), seen(Some(2), "22", false)),
            // Our own write echoed back.
            ("d".to_string(), seen(None, "13", false)),
            // Deleted.
            ("e".to_string(), seen(None, "30", true)),
        ]
        .into();
        let mut drift: Vec<String> = drifted(&changes, &applied).into_iter().collect();
        drift.sort();
        assert_eq!(drift, vec!["b", "c", "e"]);
    }
}
