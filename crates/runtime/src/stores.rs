//! What a controller keeps of the objects its reflector stores hold.

use futures::{Stream, StreamExt};
use kube::Resource;
use kube::runtime::watcher;

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

/// Splits the objects of a reflected stream in two: `stream` as it was, and a copy of each
/// object it yields, for a second trigger of the same controller (another predicate, another
/// mapper).
///
/// Put it after `reflect`: the copy is made once the store holds the object, so a mapper woken
/// by it, and the reconciles it starts, read that version or a newer one from the store. A
/// second watch of the same kind would not do: it is another connection, whose events can come
/// before the reflector's store has them, and a reconcile would then read the older copy and
/// see nothing to do.
pub fn tee<K, S>(
    stream: S,
) -> (
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Clone + Send + 'static,
    S: Stream<Item = Result<K, watcher::Error>> + Send + 'static,
{
    let (copies, received) = futures::channel::mpsc::unbounded();
    let original = stream.inspect(move |item| {
        if let Ok(object) = item {
            // The receiving side ends only with the controller; a send to it that fails
            // means nobody listens any more.
            let _ = copies.unbounded_send(object.clone());
        }
    });
    (original, received.map(Ok))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
    use kube::runtime::WatchStreamExt;
    use kube::runtime::reflector;

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

    fn config_map(name: &str, data: &str) -> ConfigMap {
        let mut object = ConfigMap::default();
        object.metadata.name = Some(name.into());
        object.metadata.namespace = Some("ns".into());
        object.data = Some([("v".to_string(), data.to_string())].into());
        object
    }

    #[tokio::test]
    async fn tee_hands_out_each_copy_once_the_store_holds_it() {
        let (reader, writer) = reflector::store::<ConfigMap>();
        let events = futures::stream::iter([
            // The initial list is stored whole at its end, before any reconcile starts; what
            // matters is the events after it.
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitDone),
            Ok(watcher::Event::Apply(config_map("a", "1"))),
            Ok(watcher::Event::Apply(config_map("a", "2"))),
            Ok(watcher::Event::Apply(config_map("b", "1"))),
        ]);
        let (original, copies) = tee(events.reflect(writer).applied_objects());
        let (mut original, mut copies) = (Box::pin(original), Box::pin(copies));
        let mut seen = Vec::new();
        loop {
            // Nothing is handed out ahead of the store.
            assert!(copies.next().now_or_never().is_none());
            let Some(object) = original.next().await else {
                break;
            };
            let object = object.expect("object");
            let copy = copies
                .next()
                .now_or_never()
                .flatten()
                .expect("a copy")
                .expect("ok");
            assert_eq!(copy, object);
            let stored = reader
                .get(&reflector::ObjectRef::from_obj(&copy))
                .expect("the store holds the copied object");
            assert_eq!(stored.data, copy.data, "the store holds the copied version");
            seen.push(copy.metadata.name.clone().unwrap_or_default());
        }
        assert_eq!(seen, ["a", "a", "b"]);
    }
}
