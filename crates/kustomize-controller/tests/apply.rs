//! apply_all against a real API server: stages, validation before writes, change detection,
//! drift, immutable fields, per-object modes.

mod common;

use std::sync::atomic::Ordering;
use std::time::Instant;

use common::{annotate, config_map, counting_client, env, object};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use kube::{Client, ResourceExt};
use mooring_api::constants::{FORCE_ANNOTATION, SSA_ANNOTATION};
use mooring_kustomize_controller::apply::{Action, ApplyError, ApplyOptions, apply_all};
use mooring_kustomize_controller::inventory::ObjectId;
use serde_json::json;

const ALWAYS: &(dyn Fn(&DynamicObject) -> bool + Sync) = &|_| false;

async fn cm_data(client: &Client, ns: &str, name: &str) -> Option<serde_json::Value> {
    let cm = Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .expect("get");
    cm.map(|c| serde_json::to_value(c.data).expect("data"))
}

fn widget_crd(group: &str) -> DynamicObject {
    object(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{group}")},
        "spec": {"group": group, "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}}]}
    }))
}

#[tokio::test]
async fn a_crd_and_its_custom_resource_apply_together() {
    let env = env("apply-crd").await;
    let group = format!("{}.mooring.test", env.namespace);
    let widget = object(json!({
        "apiVersion": format!("{group}/v1"), "kind": "Widget",
        "metadata": {"name": "w"}, "spec": {"size": 3}
    }));
    let opts = ApplyOptions::new(&env.namespace);
    let set = vec![widget, widget_crd(&group)];
    let changes = apply_all(&env.client, set.clone(), &opts, ALWAYS)
        .await
        .expect("apply");
    assert_eq!(
        changes.to_string(),
        format!(
            "CustomResourceDefinition/widgets.{group} created\nWidget/{}/w created",
            env.namespace
        )
    );
    let resource = ApiResource {
        group: group.clone(),
        version: "v1".into(),
        api_version: format!("{group}/v1"),
        kind: "Widget".into(),
        plural: "widgets".into(),
    };
    let api: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), &env.namespace, &resource);
    let live = api.get("w").await.expect("widget exists");
    assert_eq!(live.data["spec"]["size"], 3);

    // Applying the same set again writes nothing.
    let again = apply_all(&env.client, set, &opts, ALWAYS)
        .await
        .expect("re-apply");
    assert!(
        again.entries.iter().all(|e| e.action == Action::Unchanged),
        "{again}"
    );
    assert_eq!(
        api.get("w").await.expect("widget").resource_version(),
        live.resource_version()
    );

    // The CRD goes away while discovery still has it cached: the kind is reported missing.
    let crd_name = format!("widgets.{group}");
    env.plane
        .run_kubectl(&[
            "delete",
            "customresourcedefinition",
            &crd_name,
            "--wait=true",
        ])
        .expect("delete crd");
    let widget = object(json!({
        "apiVersion": format!("{group}/v1"), "kind": "Widget", "metadata": {"name": "w2"}
    }));
    let err = apply_all(&env.client, vec![widget], &opts, ALWAYS)
        .await
        .expect_err("the CRD is gone");
    assert_eq!(err.label(), "UnknownKind", "{err}");
}

#[tokio::test]
async fn an_invalid_custom_resource_fails_after_its_crd_was_applied() {
    let env = env("apply-crd-invalid").await;
    let group = format!("{}.mooring.test", env.namespace);
    let widget = object(json!({
        "apiVersion": format!("{group}/v1"), "kind": "Widget",
        "metadata": {"name": "w"}, "spec": {"size": "not a number"}
    }));
    let opts = ApplyOptions::new(&env.namespace);
    let err = apply_all(&env.client, vec![widget_crd(&group), widget], &opts, ALWAYS)
        .await
        .expect_err("invalid widget");
    // The limit of validation before writing: the CRD had to exist to validate the widget.
    let ApplyError::Partial { source, applied } = &err else {
        panic!("not partial: {err:?}");
    };
    assert_eq!(source.label(), "DryRunFailed");
    assert!(
        source
            .to_string()
            .starts_with(&format!("Widget/{}/w dry-run failed", env.namespace)),
        "{source}"
    );
    assert_eq!(
        applied.to_string(),
        format!("CustomResourceDefinition/widgets.{group} created")
    );
}

#[tokio::test]
async fn a_namespace_and_objects_in_it_apply_together() {
    let env = env("apply-ns").await;
    let extra = format!("{}-extra", env.namespace);
    let set = vec![
        config_map("inside", Some(&extra), json!({"a": "1"})),
        object(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": extra}})),
    ];
    let changes = apply_all(&env.client, set, &ApplyOptions::new(&env.namespace), ALWAYS)
        .await
        .expect("apply");
    assert_eq!(
        changes.to_string(),
        format!("Namespace/{extra} created\nConfigMap/{extra}/inside created")
    );
    assert_eq!(
        cm_data(&env.client, &extra, "inside").await,
        Some(json!({"a": "1"}))
    );
}

#[tokio::test]
async fn an_invalid_object_stops_the_apply_before_any_write() {
    let env = env("apply-invalid").await;
    let extra = format!("{}-never", env.namespace);
    let bad_service = object(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "bad"},
        "spec": {"ports": [{"port": 70000}]}
    }));
    let set = vec![
        object(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": extra}})),
        config_map("good-a", None, json!({"a": "1"})),
        bad_service,
        config_map("good-b", None, json!({"b": "2"})),
    ];
    let err = apply_all(&env.client, set, &ApplyOptions::new(&env.namespace), ALWAYS)
        .await
        .expect_err("the Service is invalid");
    let message = err.to_string();
    assert!(matches!(err, ApplyError::DryRun { .. }), "{err:?}");
    assert!(
        message.starts_with(&format!("Service/{}/bad dry-run failed", env.namespace)),
        "{message}"
    );
    assert!(message.contains("spec.ports[0].port"), "{message}");
    for name in ["good-a", "good-b"] {
        assert_eq!(
            cm_data(&env.client, &env.namespace, name).await,
            None,
            "{name}"
        );
    }
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    assert!(namespaces.get_opt(&extra).await.expect("get").is_none());
}

#[tokio::test]
async fn an_unknown_kind_names_the_object_and_its_missing_crd() {
    let env = env("apply-unknown").await;
    let gizmo = object(json!({
        "apiVersion": "nowhere.mooring.test/v1", "kind": "Gizmo", "metadata": {"name": "g"}
    }));
    let err = apply_all(
        &env.client,
        vec![gizmo],
        &ApplyOptions::new(&env.namespace),
        ALWAYS,
    )
    .await
    .expect_err("no such kind");
    assert_eq!(err.label(), "UnknownKind");
    let message = err.to_string();
    assert!(message.starts_with("Gizmo/g:"), "{message}");
    assert!(
        message.contains("CustomResourceDefinition does not exist"),
        "{message}"
    );
}

#[tokio::test]
async fn unchanged_objects_are_not_written_and_100_config_maps_are_measured() {
    let env = env("apply-many").await;
    let (client, requests) = common::counting_client(env.plane).await;
    let set: Vec<_> = (0..100)
        .map(|i| config_map(&format!("cm-{i}"), None, json!({"i": i.to_string()})))
        .collect();
    let opts = ApplyOptions::new(&env.namespace);

    let started = Instant::now();
    let first = apply_all(&client, set.clone(), &opts, ALWAYS)
        .await
        .expect("apply");
    let first_time = started.elapsed();
    let first_requests = requests.swap(0, Ordering::SeqCst);
    assert!(
        first.entries.iter().all(|e| e.action == Action::Created),
        "{first}"
    );
    let api = Api::<ConfigMap>::namespaced(env.client.clone(), &env.namespace);
    let before: Vec<_> = api.list(&Default::default()).await.expect("list").items;

    // Not told anything: dry-run + apply each, and the API server writes nothing.
    let started = Instant::now();
    let second = apply_all(&client, set.clone(), &opts, ALWAYS)
        .await
        .expect("re-apply");
    let second_time = started.elapsed();
    let second_requests = requests.swap(0, Ordering::SeqCst);
    assert!(
        second.entries.iter().all(|e| e.action == Action::Unchanged),
        "{second}"
    );
    let after: Vec<_> = api.list(&Default::default()).await.expect("list").items;
    let versions = |items: &[ConfigMap]| {
        let mut v: Vec<_> = items
            .iter()
            .map(|c| (c.name_any(), c.resource_version()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(versions(&before), versions(&after));

    // Told that everything is unchanged: no request at all.
    let started = Instant::now();
    let third = apply_all(&client, set, &opts, &|_| true)
        .await
        .expect("skip");
    let third_time = started.elapsed();
    let third_requests = requests.swap(0, Ordering::SeqCst);
    assert!(third.entries.iter().all(|e| e.action == Action::Unchanged));
    assert_eq!(third_requests, 0);
    assert_eq!(second_requests, 200);
    eprintln!(
        "100 ConfigMaps, concurrency {}: first apply {first_time:?} / {first_requests} requests; \
         re-apply (dry-run + no-op apply) {second_time:?} / {second_requests} requests; \
         re-apply marked unchanged {third_time:?} / {third_requests} requests",
        opts.concurrency
    );
}

#[tokio::test]
async fn drift_by_other_managers_is_reverted_unless_merge() {
    let env = env("apply-drift").await;
    let ns = env.namespace.as_str();
    let opts = ApplyOptions::new(ns);
    let desired = config_map("drift", None, json!({"a": "1"}));
    apply_all(&env.client, vec![desired.clone()], &opts, ALWAYS)
        .await
        .expect("apply");

    // Another server-side apply manager takes the field; kubectl adds a label.
    let api = Api::<ConfigMap>::namespaced(env.client.clone(), ns);
    let theirs = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "drift"},
                        "data": {"a": "2"}});
    api.patch(
        "drift",
        &PatchParams::apply("intruder").force(),
        &Patch::Apply(&theirs),
    )
    .await
    .expect("intruder apply");
    env.plane
        .run_kubectl(&["label", "configmap", "drift", "-n", ns, "added=by-kubectl"])
        .expect("kubectl label");

    let changes = apply_all(&env.client, vec![desired.clone()], &opts, ALWAYS)
        .await
        .expect("re-apply");
    assert_eq!(changes.entries[0].action, Action::Configured);
    let live = api.get("drift").await.expect("get");
    assert_eq!(live.data.as_ref().expect("data")["a"], "1");
    assert!(!live.labels().contains_key("added"), "{:?}", live.labels());

    // With ssa: Merge the kubectl label stays.
    env.plane
        .run_kubectl(&["label", "configmap", "drift", "-n", ns, "added=again"])
        .expect("kubectl label");
    let merge = annotate(desired, SSA_ANNOTATION, "Merge");
    apply_all(&env.client, vec![merge], &opts, ALWAYS)
        .await
        .expect("merge apply");
    let live = api.get("drift").await.expect("get");
    assert_eq!(
        live.labels().get("added").map(String::as_str),
        Some("again")
    );
}

#[tokio::test]
async fn immutable_changes_fail_without_force_and_recreate_with_it() {
    let env = env("apply-immutable").await;
    let ns = env.namespace.as_str();
    let mut opts = ApplyOptions::new(ns);
    let version = |v: &str| {
        let mut cm = config_map("frozen", None, json!({"v": v}));
        cm.data["immutable"] = json!(true);
        cm
    };
    apply_all(&env.client, vec![version("1")], &opts, ALWAYS)
        .await
        .expect("apply");
    let api = Api::<ConfigMap>::namespaced(env.client.clone(), ns);
    let first_uid = api.get("frozen").await.expect("get").uid();

    let err = apply_all(&env.client, vec![version("2")], &opts, ALWAYS)
        .await
        .expect_err("immutable");
    assert_eq!(err.label(), "ImmutableField");
    assert!(
        err.to_string()
            .starts_with(&format!("ConfigMap/{ns}/frozen cannot be updated")),
        "{err}"
    );
    assert_eq!(
        cm_data(&env.client, ns, "frozen").await,
        Some(json!({"v": "1"}))
    );

    let forced = annotate(version("2"), FORCE_ANNOTATION, "enabled");
    let changes = apply_all(&env.client, vec![forced], &opts, ALWAYS)
        .await
        .expect("recreate");
    assert_eq!(
        changes.to_string(),
        format!("ConfigMap/{ns}/frozen recreated")
    );
    let second = api.get("frozen").await.expect("get");
    assert_ne!(second.uid(), first_uid);
    assert_eq!(
        cm_data(&env.client, ns, "frozen").await,
        Some(json!({"v": "2"}))
    );

    opts.force = true;
    let changes = apply_all(&env.client, vec![version("3")], &opts, ALWAYS)
        .await
        .expect("spec.force");
    assert_eq!(changes.entries[0].action, Action::Recreated);
    assert_eq!(
        cm_data(&env.client, ns, "frozen").await,
        Some(json!({"v": "3"}))
    );
}

#[tokio::test]
async fn if_not_present_and_ignore_are_honoured() {
    let env = env("apply-modes").await;
    let ns = env.namespace.as_str();
    let opts = ApplyOptions::new(ns);
    let seed = |v: &str| {
        annotate(
            config_map("seed", None, json!({"v": v})),
            SSA_ANNOTATION,
            "IfNotPresent",
        )
    };
    let ignored = annotate(
        config_map("ignored", None, json!({})),
        SSA_ANNOTATION,
        "Ignore",
    );

    let changes = apply_all(&env.client, vec![seed("1"), ignored.clone()], &opts, ALWAYS)
        .await
        .expect("apply");
    assert_eq!(
        changes.to_string(),
        format!("ConfigMap/{ns}/seed created\nConfigMap/{ns}/ignored skipped")
    );
    assert_eq!(cm_data(&env.client, ns, "ignored").await, None);

    let changes = apply_all(&env.client, vec![seed("2")], &opts, ALWAYS)
        .await
        .expect("apply");
    assert_eq!(changes.entries[0].action, Action::Skipped);
    assert_eq!(
        cm_data(&env.client, ns, "seed").await,
        Some(json!({"v": "1"}))
    );
}

/// Options marking every object of `set` as known not to exist.
fn all_absent(namespace: &str, set: &[DynamicObject]) -> ApplyOptions {
    let mut opts = ApplyOptions::new(namespace);
    opts.absent = std::sync::Arc::new(set.iter().map(|o| ObjectId::of(o).expect("id")).collect());
    opts
}

#[tokio::test]
async fn a_set_that_only_creates_costs_one_request_per_object_and_a_failure_undoes_it() {
    let env = env("apply-create-only").await;
    let (client, count) = counting_client(env.plane).await;
    let ns = env.namespace.clone();
    let role = object(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "reader", "namespace": ns},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]
    }));
    // Discovery is paid once per kind, not per object: warm it up.
    let warm = vec![
        config_map("warm", Some(&ns), json!({"a": "1"})),
        role.clone(),
    ];
    let mut opts = all_absent(&ns, &warm);
    apply_all(&client, warm, &opts, ALWAYS)
        .await
        .expect("warm-up");

    let good = vec![
        config_map("one", Some(&ns), json!({"a": "1"})),
        config_map("two", Some(&ns), json!({"b": "2"})),
    ];
    opts.absent = all_absent(&ns, &good).absent;
    let before = count.load(Ordering::SeqCst);
    let changes = apply_all(&client, good, &opts, ALWAYS)
        .await
        .expect("apply");
    assert_eq!(
        changes.to_string(),
        format!("ConfigMap/{ns}/one created\nConfigMap/{ns}/two created")
    );
    assert_eq!(count.load(Ordering::SeqCst) - before, 2, "no dry run");

    // One invalid object among creates: what was created (the Role in an earlier stage, the
    // ConfigMaps beside the Service) is deleted again before the error is returned.
    let bad_service = object(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "bad", "namespace": ns},
        "spec": {"ports": [{"port": 70000}]}
    }));
    let mut second_role = role.clone();
    second_role.metadata.name = Some("writer".into());
    let set = vec![
        config_map("good-a", Some(&ns), json!({"a": "1"})),
        bad_service,
        second_role,
        config_map("good-b", Some(&ns), json!({"b": "2"})),
    ];
    opts.absent = all_absent(&ns, &set).absent;
    let err = apply_all(&client, set, &opts, ALWAYS)
        .await
        .expect_err("the Service is invalid");
    assert!(
        matches!(err, ApplyError::Apply { .. }),
        "nothing is left applied: {err:?}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("Service/{ns}/bad apply failed")),
        "{message}"
    );
    assert!(message.contains("spec.ports[0].port"), "{message}");
    for name in ["good-a", "good-b"] {
        assert_eq!(cm_data(&env.client, &ns, name).await, None, "{name}");
    }
    let roles: Api<k8s_openapi::api::rbac::v1::Role> = Api::namespaced(env.client.clone(), &ns);
    assert!(roles.get_opt("writer").await.expect("get").is_none());
    // What existed before stays.
    assert!(roles.get_opt("reader").await.expect("get").is_some());
    assert!(cm_data(&env.client, &ns, "one").await.is_some());
}
