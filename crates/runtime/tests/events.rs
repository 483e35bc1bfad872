//! The event recorder against a real API server: repeats fold into one Event's series, other
//! Events stay apart, and an Event the server no longer has is published anew.

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::Resource;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use mooring_runtime::events::{Event, EventType, Recorder, Reporter};
use mooring_testkit::test_env;
use serde_json::json;

fn event(reason: &str, note: &str) -> Event {
    Event {
        type_: EventType::Normal,
        reason: reason.to_owned(),
        action: mooring_runtime::events::action_for("Reconcile", note),
        note: Some(note.to_owned()),
        secondary: None,
    }
}

/// The Events in the namespace as (reason, note, series count), sorted.
async fn events(api: &Api<K8sEvent>) -> Vec<(String, String, i32)> {
    let mut seen: Vec<_> = api
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .map(|e| {
            (
                e.reason.unwrap_or_default(),
                e.note.unwrap_or_default(),
                e.series.map_or(1, |s| s.count),
            )
        })
        .collect();
    seen.sort();
    seen
}

#[tokio::test]
async fn repeats_fold_into_one_series_and_a_deleted_event_is_published_anew() {
    let env = test_env("events").await.expect("env");
    let configmaps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let object: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "subject"}, "data": {"a": "1"}
    }))
    .expect("configmap");
    let object = configmaps
        .create(&PostParams::default(), &object)
        .await
        .expect("create configmap");
    let regarding = object.object_ref(&());
    let api: Api<K8sEvent> = Api::namespaced(env.client.clone(), &env.namespace);
    let recorder = Recorder::new(env.client.clone(), Reporter::from("mooring-test"));

    let built = event("Built", "built revision 1");
    for _ in 0..3 {
        recorder.publish(&built, &regarding).await.expect("publish");
    }
    recorder
        .publish(&event("Built", "built revision 2"), &regarding)
        .await
        .expect("publish");
    recorder
        .publish(&event("Failed", "built revision 1"), &regarding)
        .await
        .expect("publish");
    assert_eq!(
        events(&api).await,
        [
            ("Built".to_owned(), "built revision 1".to_owned(), 3),
            ("Built".to_owned(), "built revision 2".to_owned(), 1),
            ("Failed".to_owned(), "built revision 1".to_owned(), 1),
        ]
    );
    assert_eq!(recorder.remembered(), 3);
    let first = api.list(&ListParams::default()).await.expect("list").items;
    let folded = first
        .iter()
        .find(|e| e.series.is_some())
        .expect("the folded Event");
    assert_eq!(
        folded.regarding.as_ref().and_then(|r| r.uid.clone()),
        object.metadata.uid
    );
    assert_eq!(folded.reporting_controller.as_deref(), Some("mooring-test"));

    // The server dropped the Event (they expire): the next repeat is a new Event, not an error.
    for e in &first {
        let name = e.metadata.name.clone().expect("name");
        api.delete(&name, &DeleteParams::default())
            .await
            .expect("delete event");
    }
    recorder.publish(&built, &regarding).await.expect("publish");
    recorder.publish(&built, &regarding).await.expect("publish");
    assert_eq!(
        events(&api).await,
        [("Built".to_owned(), "built revision 1".to_owned(), 2)]
    );
}
