//! The health rules on live objects from a real kube-apiserver.
//!
//! No kube-controller-manager runs next to the test API server, so workload objects never get
//! a status: that is the "controller has not acted yet" case, seen exactly as a cluster shows it.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::wait::{await_condition, conditions};
use mooring_kustomize_controller::health::{Health, HealthStatus, ObjectLabel, compute, summarize};
use serde_json::{Value, json};

/// How long the CRD may take to be established.
const ESTABLISH_DEADLINE: Duration = Duration::from_secs(60);

/// The dynamic API for a manifest's kind, namespaced when `namespace` is set.
fn api_for(client: &kube::Client, manifest: &Value, plural: &str) -> Api<DynamicObject> {
    let api_version = manifest["apiVersion"].as_str().expect("apiVersion");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let kind = manifest["kind"].as_str().expect("kind");
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    match manifest["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

/// Creates the object, then reads it back from the API server as JSON.
async fn create_and_read(client: &kube::Client, manifest: Value, plural: &str) -> Value {
    let api = api_for(client, &manifest, plural);
    let obj: DynamicObject = serde_json::from_value(manifest).expect("a valid manifest");
    let name = obj.metadata.name.clone().expect("a name");
    api.create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e}"));
    read(&api, &name).await
}

/// Reads one object as JSON, the way the health check will.
async fn read(api: &Api<DynamicObject>, name: &str) -> Value {
    let live = api
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("get {name}: {e}"));
    serde_json::to_value(live).expect("serializable object")
}

#[track_caller]
fn assert_health(obj: &Value, status: HealthStatus, message: &str) -> Health {
    let health = compute(obj);
    assert_eq!(
        health.status,
        status,
        "{}: {health:?}",
        ObjectLabel::of(obj)
    );
    assert!(
        health.message.contains(message),
        "{}: message {:?} lacks {message:?}",
        ObjectLabel::of(obj),
        health.message
    );
    health
}

#[tokio::test]
async fn health_of_live_objects_from_the_api_server() {
    let env = mooring_testkit::test_env("health-live")
        .await
        .expect("test environment");
    let client = &env.client;
    let ns = env.namespace.as_str();
    let mut checked: Vec<(ObjectLabel, Health)> = Vec::new();

    let config_map = create_and_read(
        client,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "settings", "namespace": ns},
               "data": {"LOG_LEVEL": "info"}}),
        "configmaps",
    )
    .await;
    let health = assert_health(&config_map, HealthStatus::Current, "no status");
    checked.push((ObjectLabel::of(&config_map), health));

    let service_account = create_and_read(
        client,
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": "web", "namespace": ns}}),
        "serviceaccounts",
    )
    .await;
    let health = assert_health(&service_account, HealthStatus::Current, "no status");
    checked.push((ObjectLabel::of(&service_account), health));

    let service = create_and_read(
        client,
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "web", "namespace": ns},
               "spec": {"type": "ClusterIP", "selector": {"app": "web"},
                        "ports": [{"port": 80, "targetPort": 8080}]}}),
        "services",
    )
    .await;
    assert!(
        service["spec"]["clusterIP"].as_str().is_some(),
        "the API server allocates a cluster IP: {service}"
    );
    let health = assert_health(&service, HealthStatus::Current, "ready (ClusterIP)");
    checked.push((ObjectLabel::of(&service), health));

    // Nothing provisions load balancers here: the Service must keep waiting.
    let load_balancer = create_and_read(
        client,
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "public", "namespace": ns},
               "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                        "ports": [{"port": 443, "targetPort": 8443}]}}),
        "services",
    )
    .await;
    let health = assert_health(
        &load_balancer,
        HealthStatus::InProgress,
        "waiting for a load balancer ingress address",
    );
    checked.push((ObjectLabel::of(&load_balancer), health));

    let group = format!("{ns}.health.mooring.test");
    let crd_name = format!("widgets.{group}");
    let crd_manifest = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": crd_name},
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget",
                      "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                          "subresources": {"status": {}},
                          "schema": {"openAPIV3Schema": {"type": "object",
                              "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    });
    let crd_api = api_for(client, &crd_manifest, "customresourcedefinitions");
    create_and_read(client, crd_manifest, "customresourcedefinitions").await;
    let typed_crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    tokio::time::timeout(
        ESTABLISH_DEADLINE,
        await_condition(typed_crds, &crd_name, conditions::is_crd_established()),
    )
    .await
    .expect("the CRD is established before the deadline")
    .expect("watching the CRD");
    let crd = read(&crd_api, &crd_name).await;
    let health = assert_health(&crd, HealthStatus::Current, "established");
    checked.push((ObjectLabel::of(&crd), health));

    // A custom resource whose controller writes no status follows the generic rule.
    let widget = create_and_read(
        client,
        json!({"apiVersion": format!("{group}/v1"), "kind": "Widget",
               "metadata": {"name": "blue", "namespace": ns}, "spec": {"size": 3}}),
        "widgets",
    )
    .await;
    let health = assert_health(&widget, HealthStatus::Current, "no status conditions");
    checked.push((ObjectLabel::of(&widget), health));

    let deployment = create_and_read(
        client,
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": ns},
               "spec": {"replicas": 2,
                        "selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"labels": {"app": "web"}},
                                     "spec": {"containers": [{"name": "web",
                                                              "image": "nginx:1.27"}]}}}}),
        "deployments",
    )
    .await;
    assert!(
        deployment
            .get("status")
            .is_none_or(|s| s.get("observedGeneration").is_none()),
        "no deployment controller runs here: {deployment}"
    );
    let health = assert_health(
        &deployment,
        HealthStatus::InProgress,
        "not observed by the deployment controller",
    );
    checked.push((ObjectLabel::of(&deployment), health));

    let claim = create_and_read(
        client,
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": "data", "namespace": ns},
               "spec": {"accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}}}}),
        "persistentvolumeclaims",
    )
    .await;
    let health = assert_health(&claim, HealthStatus::InProgress, "not bound");
    checked.push((ObjectLabel::of(&claim), health));

    let namespace_api = api_for(
        client,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {}}),
        "namespaces",
    );
    let namespace = read(&namespace_api, ns).await;
    assert_health(&namespace, HealthStatus::Current, "active");

    // A finalizer holds a deleted object in place, with its deletionTimestamp set.
    let held = create_and_read(
        client,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "held", "namespace": ns,
                            "finalizers": ["health.mooring.test/hold"]}}),
        "configmaps",
    )
    .await;
    let held_api = api_for(client, &held, "configmaps");
    held_api
        .delete("held", &DeleteParams::default())
        .await
        .expect("delete the held ConfigMap");
    let deleting = read(&held_api, "held").await;
    assert_health(
        &deleting,
        HealthStatus::Terminating,
        "scheduled for deletion",
    );
    held_api
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .expect("release the finalizer");

    let summary = summarize(&checked);
    assert!(!summary.all_current);
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    let pending: Vec<String> = summary
        .in_progress
        .iter()
        .map(|(label, _)| label.to_string())
        .collect();
    assert_eq!(
        pending,
        [
            format!("Service/{ns}/public"),
            format!("Deployment/{ns}/web"),
            format!("PersistentVolumeClaim/{ns}/data"),
        ]
    );
    assert!(
        summary.message.starts_with(&format!(
            "Service/{ns}/public: waiting for a load balancer ingress address; Deployment/{ns}/web: no status yet"
        )),
        "{}",
        summary.message
    );

    delete_crd(client, &crd_name).await;
}

/// Removes the cluster-scoped CRD, which the test namespace does not contain.
async fn delete_crd(client: &kube::Client, name: &str) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.delete(name, &DeleteParams::default())
        .await
        .expect("delete the test CRD");
}
