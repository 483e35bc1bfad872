//! What a controller keeps of the objects its reflector stores hold.

use kube::Resource;

/// The annotation `kubectl apply` writes (a copy of the whole object): often large.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops from an object kept in a store what the controllers never read: `managedFields`
/// (often the largest part of a small object: as parsed JSON, about 8 KiB of a GitRepository
/// whose status the controller writes) and kubectl's last-applied copy of the object.
///
/// For `WatchStreamExt::modify` before `reflect`; the status writes are server-side applies of
/// the status alone, which never send the metadata back.
pub fn slim<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

    #[test]
    fn slim_keeps_everything_but_managed_fields_and_the_last_applied_copy() {
        let mut object = ConfigMap::default();
        object.metadata.name = Some("a".into());
        object.metadata.managed_fields = Some(vec![ManagedFieldsEntry::default()]);
        object.metadata.annotations = Some(
            [
                (LAST_APPLIED.to_string(), "{}".to_string()),
                ("kept".to_string(), "yes".to_string()),
            ]
            .into(),
        );
        slim(&mut object);
        assert_eq!(object.metadata.managed_fields, None);
        assert_eq!(
            object.metadata.annotations,
            Some([("kept".to_string(), "yes".to_string())].into())
        );
        assert_eq!(object.metadata.name.as_deref(), Some("a"));
    }
}
