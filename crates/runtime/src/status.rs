//! Status writes: server-side apply of `{apiVersion, kind, status}` on the status subresource.

use kube::api::{Patch, PatchParams};
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

/// The status writes a controller made, remembered so that a pass never starts from a cached
/// copy older than its own last write.
///
/// The watch cache learns of a write only when its event arrives. A pass queued while the
/// previous one ran starts at once when that one ends, and may find the object as it was before
/// the previous pass wrote its status: it would then decide from an old inventory or history
/// (re-record a revision, miss an object the last pass created). Per object, this keeps the
/// resourceVersion the object had when a pass that wrote its status began; a cached copy with
/// that version is known to be old. Only equality is compared: resourceVersions are opaque.
#[derive(Debug, Default)]
pub struct OwnWrites {
    before: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl OwnWrites {
    /// Records that a pass which began with `object` (as the cache held it) wrote its status,
    /// and the server answered with `written`. A write that changed nothing (same version) is
    /// not recorded: no event would ever bring a newer copy.
    pub fn wrote<K: Resource>(&self, object: &K, written: &K) {
        let (Some(before), Some(after)) = (
            object.meta().resource_version.as_ref(),
            written.meta().resource_version.as_ref(),
        ) else {
            return;
        };
        if before != after {
            self.lock().insert(key_of(object), before.clone());
        }
    }

    /// Whether `object` (as the cache holds it) is older than this controller's last status
    /// write to it. A newer copy ends the record.
    pub fn is_stale<K: Resource>(&self, object: &K) -> bool {
        let key = key_of(object);
        let mut before = self.lock();
        match (before.get(&key), object.meta().resource_version.as_deref()) {
            (Some(old), Some(seen)) if old == seen => true,
            (Some(_), _) => {
                before.remove(&key);
                false
            }
            (None, _) => false,
        }
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

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, String>> {
        // The map holds plain strings: a panic elsewhere cannot leave it inconsistent.
        self.before.lock().unwrap_or_else(|p| p.into_inner())
    }
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
    use k8s_openapi::api::core::v1::ConfigMap;

    fn at(version: &str) -> ConfigMap {
        let mut object = ConfigMap::default();
        object.metadata.name = Some("a".into());
        object.metadata.namespace = Some("ns".into());
        object.metadata.resource_version = Some(version.into());
        object
    }

    #[test]
    fn the_copy_a_write_was_made_from_is_stale_until_a_newer_one_is_seen() {
        let writes = OwnWrites::default();
        assert!(!writes.is_stale(&at("5")), "nothing written yet");
        writes.wrote(&at("5"), &at("5"));
        assert!(
            !writes.is_stale(&at("5")),
            "a write that changed nothing leaves no record"
        );
        writes.wrote(&at("5"), &at("6"));
        assert!(
            writes.is_stale(&at("5")),
            "the cache still shows the pre-write copy"
        );
        assert!(writes.is_stale(&at("5")), "and says so until it moves on");
        assert!(!writes.is_stale(&at("7")), "the write's own event arrived");
        assert!(writes.is_empty(), "a newer copy ends the record");
        assert!(
            !writes.is_stale(&at("5")),
            "and nothing old is held against later passes"
        );
    }

    #[test]
    fn objects_are_told_apart_and_forgotten() {
        let writes = OwnWrites::default();
        writes.wrote(&at("5"), &at("6"));
        let mut other = at("5");
        other.metadata.name = Some("b".into());
        assert!(!writes.is_stale(&other));
        writes.forget(&at("9"));
        assert!(writes.is_empty());
    }
}
