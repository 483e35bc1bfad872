//! What the controller remembers between passes, per Kustomization: the last render (so an
//! unchanged source is not built again) and what its own writes left on each object (so a pass
//! can tell another writer's change apart). It is never trusted as a picture of the cluster:
//! every pass compares it with the live view.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::health::Health;
use crate::inventory::{ObjectId, Owner};
use crate::live::LiveObject;
use crate::steps::render::Render;

/// What our last successful write of one object left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The hash of the manifest written.
    pub hash: u64,
    /// The object's metadata right after the write, as far as a pass compares it.
    pub live: WrittenState,
    /// When the write was answered.
    pub at: Instant,
}

/// The part of an object's metadata that a pass compares with the live view to tell our own
/// write from another writer's change. The rest of a [`LiveObject`] (its owner, the hashes of
/// its labels and annotations) is asked of the view alone, and kept here for every object of
/// every Kustomization it would have been a third of the memory's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenState {
    /// `metadata.resourceVersion`.
    pub resource_version: String,
    /// `metadata.generation`, for kinds that have one.
    pub generation: Option<i64>,
    /// See [`LiveObject::writers`].
    pub writers: u64,
}

impl From<LiveObject> for WrittenState {
    fn from(live: LiveObject) -> Self {
        Self {
            resource_version: live.resource_version,
            generation: live.generation,
            writers: live.writers,
        }
    }
}

/// The health of one object at one resourceVersion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessed {
    /// The resourceVersion it was computed at.
    pub resource_version: String,
    /// The result.
    pub health: Health,
}

/// The memory of one Kustomization.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    /// The last successful render.
    pub render: Option<Arc<Render>>,
    /// Per object: what our last write left.
    pub written: IdMap<Written>,
    /// Per object: its last assessed health.
    pub health: IdMap<Assessed>,
    /// Since when the objects have not all been healthy (for `spec.timeout`).
    pub unhealthy_since: Option<Instant>,
    /// The fingerprint of the cluster that `written` and `health` describe.
    pub cluster: u64,
}

impl Memory {
    /// Forgets what was seen of another cluster than `cluster`.
    pub fn on_cluster(&mut self, cluster: u64) {
        if self.cluster != cluster {
            self.written.clear();
            self.health.clear();
            self.cluster = cluster;
        }
    }
}

/// A map from object identities, kept as a vector sorted by identity. Every Kustomization's
/// memory holds two; most hold a few objects, for which a hash table's spare buckets took more
/// bytes than the entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMap<V>(Vec<(ObjectId, V)>);

impl<V> Default for IdMap<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<V> IdMap<V> {
    fn find(&self, id: &ObjectId) -> Result<usize, usize> {
        self.0.binary_search_by(|(key, _)| key.cmp(id))
    }

    /// The value of `id`.
    pub fn get(&self, id: &ObjectId) -> Option<&V> {
        self.find(id).ok().map(|at| &self.0[at].1)
    }

    /// Whether `id` has a value.
    pub fn contains_key(&self, id: &ObjectId) -> bool {
        self.find(id).is_ok()
    }

    /// Sets the value of `id`, returning the one it replaces.
    pub fn insert(&mut self, id: ObjectId, value: V) -> Option<V> {
        match self.find(&id) {
            Ok(at) => Some(std::mem::replace(&mut self.0[at].1, value)),
            Err(at) => {
                self.0.insert(at, (id, value));
                None
            }
        }
    }

    /// Removes the value of `id`.
    pub fn remove(&mut self, id: &ObjectId) -> Option<V> {
        self.find(id).ok().map(|at| self.0.remove(at).1)
    }

    /// Removes every value.
    pub fn clear(&mut self) {
        self.0 = Vec::new();
    }
}

impl<V> Extend<(ObjectId, V)> for IdMap<V> {
    /// Sets many values at once (a later value of an identity replaces an earlier one), sorting
    /// once rather than shifting the vector for each: an apply of thousands of objects
    /// remembers them all in one call.
    fn extend<I: IntoIterator<Item = (ObjectId, V)>>(&mut self, entries: I) {
        let before = self.0.len();
        self.0.extend(entries);
        if self.0.len() == before {
            return;
        }
        // Stable: of equal identities, the later one comes after the earlier, and the dedup
        // moves it into the place it keeps.
        self.0.sort_by(|a, b| a.0.cmp(&b.0));
        self.0.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        self.0.shrink_to_fit();
    }
}

impl<V> FromIterator<(ObjectId, V)> for IdMap<V> {
    fn from_iter<I: IntoIterator<Item = (ObjectId, V)>>(entries: I) -> Self {
        let mut map = Self::default();
        map.extend(entries);
        map
    }
}

/// The memory of every Kustomization.
#[derive(Debug, Default)]
pub struct Memories(Mutex<HashMap<Owner, Memory>>);

impl Memories {
    /// A copy of the memory of `owner` (empty when unknown).
    pub fn get(&self, owner: &Owner) -> Memory {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(owner)
            .cloned()
            .unwrap_or_default()
    }

    /// Replaces the memory of `owner`.
    pub fn put(&self, owner: Owner, memory: Memory) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(owner, memory);
    }

    /// Forgets `owner` (deleted).
    pub fn forget(&self, owner: &Owner) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(owner);
    }

    /// Whether the last write of `owner` to `id` on the cluster `cluster` left it at
    /// `resource_version`.
    pub fn wrote(
        &self,
        owner: &Owner,
        cluster: u64,
        id: &ObjectId,
        resource_version: &str,
    ) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(owner)
            .filter(|memory| memory.cluster == cluster)
            .and_then(|memory| memory.written.get(id))
            .is_some_and(|written| written.live.resource_version == resource_version)
    }
}

/// A stable hash of a JSON-serializable value.
pub fn hash_json<T: serde::Serialize>(value: &T) -> u64 {
    hash_text(&serde_json::to_string(value).unwrap_or_default())
}

/// [`hash_json`] of a value already serialized as `text`.
pub fn hash_text(text: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(kind: &str, name: &str) -> ObjectId {
        ObjectId {
            namespace: "apps".into(),
            name: name.into(),
            group: String::new(),
            kind: kind.into(),
        }
    }

    #[test]
    fn an_id_map_finds_replaces_and_removes_by_identity() {
        let mut map = IdMap::default();
        assert_eq!(map.insert(id("Service", "web"), 1), None);
        assert_eq!(map.insert(id("ConfigMap", "web"), 2), None);
        assert_eq!(map.insert(id("Service", "api"), 3), None);
        assert_eq!(map.insert(id("Service", "web"), 4), Some(1));
        assert_eq!(map.get(&id("Service", "web")), Some(&4));
        assert_eq!(map.get(&id("ConfigMap", "web")), Some(&2));
        assert!(map.contains_key(&id("Service", "api")));
        assert!(!map.contains_key(&id("Secret", "web")));
        assert_eq!(map.remove(&id("Service", "api")), Some(3));
        assert_eq!(map.remove(&id("Service", "api")), None);
        assert_eq!(map.get(&id("Service", "api")), None);
        map.clear();
        assert_eq!(map.get(&id("Service", "web")), None);
    }

    #[test]
    fn extending_an_id_map_keeps_the_last_value_of_each_identity() {
        let mut map: IdMap<u32> = [(id("Service", "b"), 1), (id("Service", "a"), 2)]
            .into_iter()
            .collect();
        map.extend([
            (id("Service", "c"), 3),
            (id("Service", "a"), 4),
            (id("ConfigMap", "z"), 5),
            (id("Service", "c"), 6),
        ]);
        let entries: Vec<(String, u32)> = map
            .0
            .iter()
            .map(|(id, value)| (format!("{}/{}", id.kind, id.name), *value))
            .collect();
        assert_eq!(
            entries,
            // In the order of identities: namespace, then name, group and kind.
            [
                ("Service/a".to_string(), 4),
                ("Service/b".to_string(), 1),
                ("Service/c".to_string(), 6),
                ("ConfigMap/z".to_string(), 5),
            ]
        );
        // Lookups after an extend find what was sorted in.
        assert_eq!(map.get(&id("Service", "c")), Some(&6));
        map.insert(id("Service", "bb"), 7);
        assert_eq!(map.get(&id("Service", "bb")), Some(&7));
        assert_eq!(map.get(&id("Service", "b")), Some(&1));
    }
}
