//! What a controller keeps of the objects its reflector stores hold.

use std::collections::HashSet;
use std::hash::Hash;

use futures::future::Either;
use futures::{Stream, StreamExt, stream};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::runtime::reflector::Store;
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

/// The objects of a reflected watch, each handed out once the store holds it: an object the
/// watch applies as it comes, and at the end of each list (the first one and every re-list
/// after a watch expired or the connection broke) every object the store then holds.
///
/// Put it right after `reflect(writer)`, with `store` the writer's reader, where kube's
/// `applied_objects` would go. That one hands out a list's objects as they arrive, but the
/// reflector keeps them aside until the list ends: a pass started by one of them would find
/// the store without the object (one created while the watch was down: skipped for good) or
/// with its version from before the gap (a change made meanwhile: reconciled from the old
/// spec, and never again). The objects of a list are handed out lazily, one copy at a time.
pub fn stored_objects<K, S>(
    events: S,
    store: Store<K>,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    events.flat_map(move |event| match event {
        Ok(watcher::Event::Apply(object)) => Either::Left(stream::iter(Some(Ok(object)))),
        Ok(watcher::Event::InitDone) => {
            Either::Right(stream::iter(store.state()).map(|object| Ok(K::clone(&object))))
        }
        // Deletions start no pass (an object with a finalizer is first updated with its
        // deletion timestamp); a list's objects come from the store at its end.
        Ok(watcher::Event::Delete(_) | watcher::Event::Init | watcher::Event::InitApply(_)) => {
            Either::Left(stream::iter(None))
        }
        Err(error) => Either::Left(stream::iter(Some(Err(error)))),
    })
}

/// Splits the objects of a reflected stream in two: `stream` as it was, and a copy of each
/// object it yields, for a second trigger of the same controller (another predicate, another
/// mapper).
///
/// Put it after [`stored_objects`]: the copy is made once the store holds the object, so a
/// mapper woken by it, and the reconciles it starts, read that version or a newer one from the
/// store. A second watch of the same kind would not do: it is another connection, whose events
/// can come before the reflector's store has them, and a reconcile would then read the older
/// copy and see nothing to do.
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

/// The objects that leave a watch, for a trigger that must act when an object goes: each one
/// the watch reports deleted, and at the end of each list (every re-list after the watch
/// expired or broke) each one the list no longer holds, which was deleted while the watch was
/// down and got no event of its own. A departure carries the object's name and namespace only.
///
/// Put it right after `reflect(writer)`: the store has dropped an object when its departure is
/// handed out. Returns `events` as they were, and the departures.
pub fn departures<K, S>(
    events: S,
) -> (
    impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource + Default + Send + 'static,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    departures_as(events, |metadata| {
        let mut object = K::default();
        *object.meta_mut() = metadata;
        object
    })
}

/// [`departures`] for a kind without a default value: each departure is what `make` builds
/// from the departed object's name and namespace (for instance its `PartialObjectMeta`).
pub fn departures_as<K, D, S>(
    events: S,
    make: impl Fn(ObjectMeta) -> D + Send + 'static,
) -> (
    impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    impl Stream<Item = Result<D, watcher::Error>> + Send + 'static,
)
where
    K: Resource + Send + 'static,
    D: Send + 'static,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    type Key = (Option<String>, String);
    fn key<K: Resource>(object: &K) -> Key {
        let meta = object.meta();
        (
            meta.namespace.clone(),
            meta.name.clone().unwrap_or_default(),
        )
    }
    let (gone, departed) = futures::channel::mpsc::unbounded();
    let leave = move |(namespace, name): Key| {
        let metadata = ObjectMeta {
            namespace,
            name: Some(name),
            ..ObjectMeta::default()
        };
        // The receiving side ends only with the controller.
        let _ = gone.unbounded_send(make(metadata));
    };
    // The objects the watch holds, and those of a list under way.
    let mut known: HashSet<Key> = HashSet::new();
    let mut listed: Option<HashSet<Key>> = None;
    let events = events.inspect(move |event| match event {
        Ok(watcher::Event::Apply(object)) => {
            known.insert(key(object));
        }
        Ok(watcher::Event::Delete(object)) => {
            let key = key(object);
            known.remove(&key);
            leave(key);
        }
        Ok(watcher::Event::Init) => listed = Some(HashSet::new()),
        Ok(watcher::Event::InitApply(object)) => {
            listed.get_or_insert_default().insert(key(object));
        }
        Ok(watcher::Event::InitDone) => {
            let before = std::mem::replace(&mut known, listed.take().unwrap_or_default());
            for key in before {
                if !known.contains(&key) {
                    leave(key);
                }
            }
        }
        Err(_) => {}
    });
    (events, departed.map(Ok))
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
        let (original, copies) = tee(stored_objects(events.reflect(writer), reader.clone()));
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

    fn entry(object: &ConfigMap) -> String {
        let name = object.metadata.name.clone().unwrap_or_default();
        let data = object.data.as_ref().and_then(|d| d.get("v")).cloned();
        format!("{name}={}", data.unwrap_or_default())
    }

    #[tokio::test]
    async fn a_relist_hands_out_its_objects_once_the_store_holds_them() {
        let (reader, writer) = reflector::store::<ConfigMap>();
        let events = futures::stream::iter([
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(config_map("a", "1"))),
            Ok(watcher::Event::InitApply(config_map("b", "1"))),
            Ok(watcher::Event::InitDone),
            Ok(watcher::Event::Apply(config_map("a", "2"))),
            // The watch expired or broke: a re-list. Meanwhile `a` changed, `c` was created
            // and `b` deleted.
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(config_map("a", "3"))),
            Ok(watcher::Event::InitApply(config_map("c", "1"))),
            Ok(watcher::Event::InitDone),
        ]);
        let mut objects = Box::pin(stored_objects(events.reflect(writer), reader.clone()));
        let mut seen = Vec::new();
        while let Some(object) = objects.next().await {
            let object = object.expect("object");
            let stored = reader
                .get(&reflector::ObjectRef::from_obj(&object))
                .expect("the store holds the object handed out");
            assert_eq!(entry(&stored), entry(&object), "the store's version");
            seen.push(entry(&object));
        }
        // A list's objects come in the store's order.
        seen[0..2].sort();
        seen[3..5].sort();
        assert_eq!(seen, ["a=1", "b=1", "a=2", "a=3", "c=1"]);
    }

    #[tokio::test]
    async fn a_runner_reconciles_what_a_relist_brings() {
        let (reader, writer) = reflector::store::<ConfigMap>();
        let (events, received) = futures::channel::mpsc::unbounded();
        let passes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = passes.clone();
        let reconcile = move |object: std::sync::Arc<ConfigMap>, _: std::sync::Arc<()>| {
            log.lock().expect("log").push(entry(&object));
            futures::future::ready(Ok::<_, String>(crate::runner::Action::await_change()))
        };
        let triggers = vec![crate::runner::changed(stored_objects(
            received.reflect(writer),
            reader.clone(),
        ))];
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runner = tokio::spawn(crate::runner::run(
            reader,
            triggers,
            reconcile,
            |_, _: &String, _| crate::runner::Action::await_change(),
            std::sync::Arc::new(()),
            4_u16,
            async move {
                let _ = stopped.await;
            },
        ));
        let send = |event| events.unbounded_send(Ok(event)).expect("send");
        let until = |expected: Vec<&'static str>| {
            let passes = passes.clone();
            async move {
                let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
                loop {
                    let mut seen = passes.lock().expect("log").clone();
                    seen.sort();
                    if seen == expected {
                        return;
                    }
                    assert!(tokio::time::Instant::now() < deadline, "passes: {seen:?}");
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            }
        };
        send(watcher::Event::Init);
        send(watcher::Event::InitApply(config_map("a", "1")));
        send(watcher::Event::InitDone);
        until(vec!["a=1"]).await;
        // A re-list after a gap in the watch: `a` changed and `b` was created meanwhile. Each
        // gets a pass, and the pass sees the version the list brought.
        send(watcher::Event::Init);
        send(watcher::Event::InitApply(config_map("a", "2")));
        send(watcher::Event::InitApply(config_map("b", "1")));
        send(watcher::Event::InitDone);
        until(vec!["a=1", "a=2", "b=1"]).await;
        stop.send(()).expect("stop");
        runner.await.expect("runner");
    }

    #[tokio::test]
    async fn departures_are_deletions_and_what_a_relist_no_longer_holds() {
        let (reader, writer) = reflector::store::<ConfigMap>();
        let events = futures::stream::iter([
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(config_map("a", "1"))),
            Ok(watcher::Event::InitApply(config_map("b", "1"))),
            Ok(watcher::Event::InitDone),
            Ok(watcher::Event::Apply(config_map("c", "1"))),
            Ok(watcher::Event::Delete(config_map("a", "1"))),
            // The watch broke: a re-list. Meanwhile `b` was deleted and `d` created.
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(config_map("c", "1"))),
            Ok(watcher::Event::InitApply(config_map("d", "1"))),
            Ok(watcher::Event::InitDone),
            Ok(watcher::Event::Apply(config_map("b", "2"))),
        ]);
        let (events, departed) = departures(events.reflect(writer));
        let (mut events, mut departed) = (Box::pin(events), Box::pin(departed));
        let mut seen = Vec::new();
        while let Some(event) = events.next().await {
            event.expect("event");
            while let Some(Some(gone)) = departed.next().now_or_never() {
                let gone = gone.expect("departure");
                assert_eq!(gone.metadata.namespace.as_deref(), Some("ns"));
                assert!(
                    reader.get(&reflector::ObjectRef::from_obj(&gone)).is_none(),
                    "the store no longer holds {:?}",
                    gone.metadata.name
                );
                seen.push(gone.metadata.name.unwrap_or_default());
            }
        }
        assert_eq!(seen, ["a", "b"]);
    }
}
