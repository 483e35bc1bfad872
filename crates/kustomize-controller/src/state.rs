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
    /// The object's metadata right after the write.
    pub live: LiveObject,
    /// When the write was answered.
    pub at: Instant,
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
    pub written: HashMap<ObjectId, Written>,
    /// Per object: its last assessed health.
    pub health: HashMap<ObjectId, Assessed>,
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
