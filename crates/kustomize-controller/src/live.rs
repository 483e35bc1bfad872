//! The live view of managed objects: one metadata-only watch per kind that a render contains,
//! selected by the ownership label and shared by every Kustomization, kept as a store of what
//! exists now (a reflector), never as a queue of changes.
//!
//! A pass compares its render with this view, so a failed pass, a missed wake-up or a restart of
//! a watch loses nothing: the next pass sees the same difference. Any change to a managed object
//! wakes its Kustomization, except the echo of its own write (see [`crate::wakes`]); deciding
//! whether the change matters is the pass's job.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube::api::{Api, DynamicObject, ObjectMeta, PartialObjectMeta};
use kube::discovery::ApiResource;
use kube::runtime::{WatchStreamExt, watcher};
use mooring_api::constants::{KUSTOMIZE_NAME_LABEL, KUSTOMIZE_NAMESPACE_LABEL};
use mooring_runtime::runner::WatchErrors;

use crate::inventory::{ObjectId, Owner};
use crate::wakes::{Change, Wakes};

/// The annotation `kubectl apply` writes (a copy of the whole object): often large.
pub use mooring_runtime::stores::LAST_APPLIED;

/// What the live view knows of one managed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveObject {
    /// `metadata.resourceVersion`.
    pub resource_version: String,
    /// `metadata.generation`, for kinds that have one.
    pub generation: Option<i64>,
    /// The Kustomization its ownership labels name.
    pub owner: Option<Owner>,
    /// A hash of who wrote what outside the `status` subresource (its managedFields without
    /// the status entries): it moves when any field manager writes spec, data or metadata, and
    /// stays when only status changes.
    pub writers: u64,
    /// The labels and annotations, each `(key, value)` pair as a hash (tagged by which of the
    /// two it is), sorted: all a pass asks of them is whether a rendered pair is carried, and
    /// as maps of strings they were most of what the view held per object.
    pub metadata: Box<[u64]>,
}

/// Whether a metadata pair is a label or an annotation.
#[derive(Hash)]
enum Field {
    Label,
    Annotation,
}

impl LiveObject {
    /// The view of an object's metadata (a watch event, or the answer to a write).
    pub fn of(meta: &ObjectMeta) -> Self {
        let labels = meta.labels.as_ref();
        let owner = match (
            labels.and_then(|l| l.get(KUSTOMIZE_NAMESPACE_LABEL)),
            labels.and_then(|l| l.get(KUSTOMIZE_NAME_LABEL)),
        ) {
            (Some(namespace), Some(name)) => Some(Owner::new(namespace, name)),
            _ => None,
        };
        let pairs = |field: Field, map: &Option<BTreeMap<String, String>>| {
            map.iter()
                .flatten()
                .map(move |(k, v)| hash_of((&field, k, v)))
                .collect::<Vec<_>>()
        };
        let mut metadata = pairs(Field::Label, &meta.labels);
        metadata.extend(pairs(Field::Annotation, &meta.annotations));
        metadata.sort_unstable();
        Self {
            resource_version: meta.resource_version.clone().unwrap_or_default(),
            generation: meta.generation,
            owner,
            writers: writers_of(meta.managed_fields.as_deref().unwrap_or_default()),
            metadata: metadata.into_boxed_slice(),
        }
    }

    /// Whether every label and annotation of `meta` (a rendered object) is present here with
    /// the same value (kubectl's last-applied copy apart).
    pub fn carries(&self, meta: &ObjectMeta) -> bool {
        let contains = |field: Field, want: &Option<BTreeMap<String, String>>| {
            want.iter().flatten().all(|(k, v)| {
                k == LAST_APPLIED
                    || self
                        .metadata
                        .binary_search(&hash_of((&field, k, v)))
                        .is_ok()
            })
        };
        contains(Field::Label, &meta.labels) && contains(Field::Annotation, &meta.annotations)
    }
}

/// The hash of every managedFields entry except those of the `status` subresource.
pub fn writers_of(entries: &[ManagedFieldsEntry]) -> u64 {
    let mut kept: Vec<String> = entries
        .iter()
        .filter(|e| e.subresource.as_deref() != Some("status"))
        .map(|e| serde_json::to_string(e).unwrap_or_default())
        .collect();
    kept.sort();
    hash_of(&kept)
}

fn hash_of(value: impl Hash) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// A resourceVersion as a number. They are opaque strings by contract, but etcd's are
/// increasing revisions; where one is not a number, nothing is inferred from it.
pub fn numeric(resource_version: &str) -> Option<u64> {
    resource_version.parse().ok()
}

/// What the view says about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Its kind is not watched yet, or the watch has not listed once: nothing is known.
    Unknown,
    /// The watch has listed, and the object is not there (or lost its ownership label).
    Absent {
        /// The highest resourceVersion the watch of this kind has seen (0 when they are not
        /// numbers): a write of ours above it may simply not have arrived yet.
        seen_up_to: u64,
    },
    /// The object as last seen.
    Present(LiveObject),
}

/// The objects of one kind, as the watch last listed and followed them.
#[derive(Debug, Default)]
struct KindView {
    synced: AtomicBool,
    seen_up_to: AtomicU64,
    objects: RwLock<HashMap<ObjectId, LiveObject>>,
}

/// The live view of every managed kind, shared by every Kustomization.
pub struct LiveView {
    client: kube::Client,
    kinds: RwLock<HashMap<(String, String), Arc<KindView>>>,
    wakes: Arc<Wakes>,
    cluster: u64,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl LiveView {
    /// A view whose watches wake the owning Kustomization of every object that changes
    /// (unless the change is its own write, see [`Wakes`]); `cluster` is the fingerprint of
    /// the cluster `client` talks to.
    pub fn new(client: kube::Client, wakes: Arc<Wakes>, cluster: u64) -> Self {
        Self {
            client,
            kinds: RwLock::new(HashMap::new()),
            wakes,
            cluster,
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// What the view holds for `id`.
    pub fn lookup(&self, id: &ObjectId) -> Lookup {
        let kinds = self.kinds.read().unwrap_or_else(|p| p.into_inner());
        let Some(view) = kinds.get(&(id.group.clone(), id.kind.clone())) else {
            return Lookup::Unknown;
        };
        if !view.synced.load(Ordering::SeqCst) {
            return Lookup::Unknown;
        }
        let objects = view.objects.read().unwrap_or_else(|p| p.into_inner());
        match objects.get(id) {
            Some(live) => Lookup::Present(live.clone()),
            None => Lookup::Absent {
                seen_up_to: view.seen_up_to.load(Ordering::SeqCst),
            },
        }
    }

    /// Starts the watch of `resource`'s kind unless one runs already. Talks to the API server
    /// (one list, then one watch per kind).
    pub fn ensure_watch(&self, resource: &ApiResource) {
        let key = (resource.group.clone(), resource.kind.clone());
        let view = {
            let mut kinds = self.kinds.write().unwrap_or_else(|p| p.into_inner());
            if kinds.contains_key(&key) {
                return;
            }
            let view = Arc::new(KindView::default());
            kinds.insert(key, view.clone());
            view
        };
        tracing::debug!(kind = %resource.kind, group = %resource.group, "watching managed objects");
        let api: Api<PartialObjectMeta<DynamicObject>> =
            Api::all_with(self.client.clone(), resource);
        let config = watcher::Config::default().labels(KUSTOMIZE_NAME_LABEL);
        let task = tokio::spawn(follow(
            api,
            config,
            resource.group.clone(),
            resource.kind.clone(),
            view,
            self.wakes.clone(),
            self.cluster,
        ));
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
    }

    /// Stops every watch.
    pub fn shutdown(&self) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        for task in tasks.drain(..) {
            task.abort();
        }
    }
}

/// Keeps `view` equal to what the API server has, and wakes the owners of what changed.
async fn follow(
    api: Api<PartialObjectMeta<DynamicObject>>,
    config: watcher::Config,
    group: String,
    kind: String,
    view: Arc<KindView>,
    wakes: Arc<Wakes>,
    cluster: u64,
) {
    let id_of = |meta: &ObjectMeta| ObjectId {
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        group: group.clone(),
        kind: kind.clone(),
    };
    let mut events = watcher(api, config).default_backoff().boxed();
    // A (re-)list is collected apart and swapped in whole when it is done, so that objects
    // deleted while the watch was down disappear too.
    let mut listing: Option<HashMap<ObjectId, LiveObject>> = None;
    let mut listed_up_to = 0;
    // A watch that keeps failing (the kind's CRD deleted, list rights withdrawn) is said at
    // warn: while it fails, drift of this kind is not seen.
    let mut errors = WatchErrors::default();
    let watched = if group.is_empty() {
        kind.clone()
    } else {
        format!("{kind}.{group}")
    };
    while let Some(event) = events.next().await {
        let Some(event) = errors.see(&watched, event) else {
            continue;
        };
        // What changed, by owning Kustomization.
        let mut changes: HashMap<Owner, Vec<Change>> = HashMap::new();
        // How far the view has seen, raised only once the event is in `objects` (a listing's
        // at its end): a lookup between the two would take an object the view is about to
        // show for one that is absent.
        let rv = match &event {
            watcher::Event::Apply(o) | watcher::Event::Delete(o) => {
                o.metadata.resource_version.as_deref().and_then(numeric)
            }
            _ => None,
        };
        match event {
            watcher::Event::Init => {
                listing = Some(HashMap::new());
                listed_up_to = 0;
            }
            watcher::Event::InitApply(o) => {
                let live = LiveObject::of(&o.metadata);
                let rv = o.metadata.resource_version.as_deref().and_then(numeric);
                listed_up_to = listed_up_to.max(rv.unwrap_or_default());
                listing
                    .get_or_insert_with(HashMap::new)
                    .insert(id_of(&o.metadata), live);
            }
            watcher::Event::InitDone => {
                let fresh = listing.take().unwrap_or_default();
                let mut objects = view.objects.write().unwrap_or_else(|p| p.into_inner());
                changes = relisted(&objects, &fresh, cluster);
                *objects = fresh;
                view.seen_up_to.fetch_max(listed_up_to, Ordering::SeqCst);
                view.synced.store(true, Ordering::SeqCst);
            }
            watcher::Event::Apply(o) => {
                let live = LiveObject::of(&o.metadata);
                let id = id_of(&o.metadata);
                let mut objects = view.objects.write().unwrap_or_else(|p| p.into_inner());
                let previous = objects.insert(id.clone(), live.clone());
                if previous.as_ref() != Some(&live) {
                    if let Some(former) = previous
                        .and_then(|p| p.owner)
                        .filter(|p| live.owner.as_ref() != Some(p))
                    {
                        changes.entry(former).or_default().push(Change::Other);
                    }
                    if let Some(owner) = live.owner {
                        let change = Change::Object {
                            cluster,
                            id,
                            resource_version: live.resource_version,
                        };
                        changes.entry(owner).or_default().push(change);
                    }
                }
            }
            watcher::Event::Delete(o) => {
                let mut objects = view.objects.write().unwrap_or_else(|p| p.into_inner());
                let previous = objects.remove(&id_of(&o.metadata));
                let owners = previous.and_then(|p| p.owner);
                for owner in owners.into_iter().chain(LiveObject::of(&o.metadata).owner) {
                    changes.entry(owner).or_default().push(Change::Other);
                }
            }
        }
        if let Some(rv) = rv {
            view.seen_up_to.fetch_max(rv, Ordering::SeqCst);
        }
        for (owner, changes) in changes {
            wakes.changes(&owner, changes);
        }
    }
}

/// What a listing that replaces `old` with `fresh` changed, by owner. An object listed in
/// another state than the view held (or not held at all) is a change of that object: its
/// owner drops it when it is what its own pass wrote, as when the first listing of a kind ends
/// after the pass that started the watch applied its objects. An object that is no longer
/// listed, or is now owned by another Kustomization, is a change its former owner did not write.
pub(crate) fn relisted(
    old: &HashMap<ObjectId, LiveObject>,
    fresh: &HashMap<ObjectId, LiveObject>,
    cluster: u64,
) -> HashMap<Owner, Vec<Change>> {
    let mut changes: HashMap<Owner, Vec<Change>> = HashMap::new();
    for (id, before) in old {
        let Some(former) = &before.owner else {
            continue;
        };
        if fresh
            .get(id)
            .is_none_or(|now| now.owner.as_ref() != Some(former))
        {
            changes
                .entry(former.clone())
                .or_default()
                .push(Change::Other);
        }
    }
    for (id, now) in fresh {
        if let Some(owner) = &now.owner
            && old.get(id) != Some(now)
        {
            let change = Change::Object {
                cluster,
                id: id.clone(),
                resource_version: now.resource_version.clone(),
            };
            changes.entry(owner.clone()).or_default().push(change);
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1;

    fn entry(
        manager: &str,
        subresource: Option<&str>,
        fields: serde_json::Value,
    ) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.into()),
            operation: Some("Update".into()),
            subresource: subresource.map(str::to_string),
            fields_v1: Some(FieldsV1(fields)),
            ..Default::default()
        }
    }

    #[test]
    fn status_writes_leave_the_writers_hash_alone() {
        let ours = entry(
            "mooring-kustomize-controller",
            None,
            serde_json::json!({"f:spec": {}}),
        );
        let status = entry(
            "kube-controller-manager",
            Some("status"),
            serde_json::json!({"f:status": {}}),
        );
        let later_status = entry(
            "kube-controller-manager",
            Some("status"),
            serde_json::json!({"f:status": {"f:replicas": {}}}),
        );
        let label_edit = entry("kubectl-label", None, serde_json::json!({"f:metadata": {}}));
        let scale = entry(
            "kubectl",
            Some("scale"),
            serde_json::json!({"f:spec": {"f:replicas": {}}}),
        );
        let base = writers_of(&[ours.clone(), status]);
        assert_eq!(base, writers_of(&[ours.clone(), later_status.clone()]));
        assert_eq!(base, writers_of(std::slice::from_ref(&ours)));
        assert_ne!(
            base,
            writers_of(&[ours.clone(), later_status.clone(), label_edit])
        );
        assert_ne!(base, writers_of(&[ours, later_status, scale]));
    }

    #[test]
    fn rendered_metadata_must_be_carried_with_equal_values() {
        let live = LiveObject::of(&ObjectMeta {
            labels: Some(
                [
                    ("app".to_string(), "web".to_string()),
                    ("extra".into(), "x".into()),
                ]
                .into(),
            ),
            annotations: Some([("note".to_string(), "a".to_string())].into()),
            ..Default::default()
        });
        let rendered = |labels: &[(&str, &str)], annotations: &[(&str, &str)]| ObjectMeta {
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        };
        assert!(live.carries(&rendered(&[("app", "web")], &[("note", "a")])));
        assert!(!live.carries(&rendered(&[("app", "hacked")], &[])));
        assert!(!live.carries(&rendered(&[], &[("note", "b")])));
        assert!(!live.carries(&rendered(&[("missing", "1")], &[])));
    }

    #[test]
    fn ownership_labels_name_the_owner() {
        let live = LiveObject::of(&ObjectMeta {
            labels: Some(
                [
                    (KUSTOMIZE_NAME_LABEL.to_string(), "apps".to_string()),
                    (KUSTOMIZE_NAMESPACE_LABEL.to_string(), "flux".to_string()),
                ]
                .into(),
            ),
            ..Default::default()
        });
        assert_eq!(live.owner, Some(Owner::new("flux", "apps")));
        assert_eq!(LiveObject::of(&ObjectMeta::default()).owner, None);
    }
}
