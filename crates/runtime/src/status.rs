//! Status writes: server-side apply of `{apiVersion, kind, status}` on the status subresource.

use kube::api::{Patch, PatchParams};
use kube::core::object::HasStatus;
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Applies `status` to the object's status subresource with field manager `manager`.
///
/// Talks to the API server. Callers compare with the current status first (the status types
/// are `PartialEq`) so that an unchanged object is not written, which would trigger its own
/// watch forever.
pub async fn apply_status<K, S>(
    api: &Api<K>,
    name: &str,
    manager: &str,
    status: &S,
) -> Result<K, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(manager).force(),
        &Patch::Apply(&patch),
    )
    .await
}

/// How long a cached copy may disagree with our last status write before it is believed after
/// all (someone else changed the status since, or the write's event was lost to a re-list).
pub const OWN_WRITE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// The status writes a controller made, remembered so that a pass never starts from a cached
/// copy older than its own last write.
///
/// The watch cache learns of a write only when its event arrives. A pass queued while the
/// previous one ran starts at once when that one ends, and may find the object as it was before
/// the previous pass wrote its status, or as someone else's change (a spec edit during the
/// pass) left it before our write: it would then decide from an old inventory or history
/// (re-record a revision, miss an object the last pass created when pruning). Per object, this
/// keeps the status the server answered our last write with; a cached copy whose status differs
/// is older than that write (this controller is the status's only writer). After
/// [`OWN_WRITE_PATIENCE`] the copy is believed anyway. resourceVersions are not compared: they
/// are opaque.
#[derive(Debug, Default)]
pub struct OwnWrites {
    /// Per object, a hash of the status written (not the status itself: kept as parsed JSON,
    /// a status with its conditions and inventory took kilobytes per object until its next
    /// pass) and when.
    written: std::sync::Mutex<std::collections::HashMap<String, (u64, std::time::Instant)>>,
}

impl OwnWrites {
    /// Records the object as the server answered our status write (`written`).
    pub fn wrote<K>(&self, written: &K)
    where
        K: Resource + HasStatus,
        K::Status: Serialize,
    {
        let status = status_hash(&written.status());
        self.lock()
            .insert(key_of(written), (status, std::time::Instant::now()));
    }

    /// Whether `copy` (as the cache holds it) is older than this controller's last status
    /// write to it. A copy that shows the write, or a record older than
    /// [`OWN_WRITE_PATIENCE`], ends the record.
    pub fn is_stale<K>(&self, copy: &K) -> bool
    where
        K: Resource + HasStatus,
        K::Status: Serialize,
    {
        let key = key_of(copy);
        let mut written = self.lock();
        let Some((status, at)) = written.get(&key) else {
            return false;
        };
        let shows_it = status_hash(&copy.status()) == *status;
        if shows_it || at.elapsed() >= OWN_WRITE_PATIENCE {
            written.remove(&key);
            return false;
        }
        true
    }

    /// Forgets `object` (deleted).
    pub fn forget<K: Resource>(&self, object: &K) {
        self.lock().remove(&key_of(object));
    }

    /// How many objects have a write the cache may not show yet.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no object has such a write.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, (u64, std::time::Instant)>>
    {
        // The map holds plain values: a panic elsewhere cannot leave it inconsistent.
        self.written.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A hash of `status` as JSON with its keys sorted (through `serde_json::Value`, whose maps are
/// ordered), so that equal statuses hash alike whatever order a map of theirs iterates in.
fn status_hash<S: Serialize>(status: &S) -> u64 {
    use std::hash::{Hash, Hasher};
    let text = serde_json::to_value(status)
        .map(|value| value.to_string())
        .unwrap_or_default();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

fn key_of<K: Resource>(object: &K) -> String {
    let meta = object.meta();
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Namespace, NamespaceSpec, NamespaceStatus};
    use kube::core::{ApiResource, Object};

    fn with_phase(name: &str, phase: &str) -> Object<NamespaceSpec, NamespaceStatus> {
        let resource = ApiResource::erase::<Namespace>(&());
        let mut object = Object::new(name, &resource, NamespaceSpec::default());
        object.status = Some(NamespaceStatus {
            phase: Some(phase.into()),
            ..Default::default()
        });
        object
    }

    #[test]
    fn a_copy_without_our_last_write_is_stale_until_one_shows_it() {
        let writes = OwnWrites::default();
        assert!(
            !writes.is_stale(&with_phase("a", "Active")),
            "nothing written yet"
        );
        writes.wrote(&with_phase("a", "Terminating"));
        assert!(
            writes.is_stale(&with_phase("a", "Active")),
            "the cache still shows the status from before the write"
        );
        assert!(
            writes.is_stale(&with_phase("a", "Active")),
            "and says so until it moves on"
        );
        assert!(
            !writes.is_stale(&with_phase("a", "Terminating")),
            "the write's event arrived"
        );
        assert!(
            writes.is_empty(),
            "a copy that shows the write ends the record"
        );
        assert!(
            !writes.is_stale(&with_phase("a", "Active")),
            "nothing is held against later changes"
        );
    }

    #[test]
    fn objects_are_told_apart_and_forgotten() {
        let writes = OwnWrites::default();
        writes.wrote(&with_phase("a", "Terminating"));
        assert!(!writes.is_stale(&with_phase("b", "Active")));
        writes.forget(&with_phase("a", "Active"));
        assert!(writes.is_empty());
    }

    #[test]
    fn a_copy_is_believed_after_the_patience_runs_out() {
        let writes = OwnWrites::default();
        writes.wrote(&with_phase("a", "Terminating"));
        let mut held = writes.lock();
        if let Some((_, at)) = held.get_mut("/a") {
            *at -= OWN_WRITE_PATIENCE;
        }
        drop(held);
        assert!(
            !writes.is_stale(&with_phase("a", "Active")),
            "someone else's status wins"
        );
        assert!(writes.is_empty());
    }
}
