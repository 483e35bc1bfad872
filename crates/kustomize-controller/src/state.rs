//! What the controller remembers between passes, per Kustomization, so that a pass over an
//! unchanged artifact, render and cluster makes no API requests.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::Instant;

use kube::api::DynamicObject;

use crate::drift::{Owner, Seen};

/// The last render and apply of one Kustomization.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// Hash of what the render depends on (artifact digest, spec generation, variables).
    pub render_key: u64,
    /// The source revision of the render.
    pub revision: String,
    /// sha256 of the rendered objects.
    pub render_digest: String,
    /// The rendered objects, ready to apply.
    pub objects: Vec<DynamicObject>,
    /// Per rendered object, in order: its inventory id and the hash of its manifest.
    pub desired: Vec<(String, u64)>,
    /// Per object id: the hash of the manifest last applied successfully.
    pub applied_hashes: HashMap<String, u64>,
    /// Per object id: what our own last write left (generation, resourceVersion).
    pub markers: HashMap<String, Seen>,
    /// When waiting for health started, for `spec.timeout`.
    pub health_since: Option<Instant>,
    /// The drift watcher's epoch when this state was last checked against the cluster.
    pub drift_epoch: u64,
}

/// The remembered state of every Kustomization.
#[derive(Debug, Default)]
pub struct AppliedStates(Mutex<HashMap<Owner, Applied>>);

impl AppliedStates {
    /// A copy of the state of `owner` (empty when unknown).
    pub fn get(&self, owner: &Owner) -> Applied {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(owner)
            .cloned()
            .unwrap_or_default()
    }

    /// Replaces the state of `owner`.
    pub fn put(&self, owner: Owner, applied: Applied) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(owner, applied);
    }

    /// Forgets `owner` (deleted).
    pub fn forget(&self, owner: &Owner) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(owner);
    }
}

/// A stable hash of a JSON-serializable value.
pub fn hash_json<T: serde::Serialize>(value: &T) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(value)
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}
