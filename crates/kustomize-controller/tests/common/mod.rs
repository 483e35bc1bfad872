//! Helpers shared by the apply and prune tests.
//!
//! The control plane here runs kube-controller-manager as well: foreground deletion (used to
//! recreate objects) and namespace termination only finish when its garbage collector and
//! namespace controller run.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use kube::api::DynamicObject;
use kube::client::ClientBuilder;
use kube::{Client, Config};
use mooring_kustomize_controller::apply::ObjectKey;
use mooring_testkit::TestEnv;
use mooring_testkit::control_plane::{ControlPlane, Options};

/// One test's slice of the control plane.
pub type Env = TestEnv;

/// The control plane of this test binary with kube-controller-manager (started on first use)
/// and a fresh namespace.
pub async fn env(prefix: &str) -> Env {
    let options = Options {
        controller_manager: true,
        ..Options::default()
    };
    mooring_testkit::test_env_with(prefix, &options)
        .await
        .expect("control plane and namespace")
}

/// The control plane of this test binary where workloads run (kube-controller-manager with its
/// default controllers, kube-scheduler, kwok's simulated Nodes; started on first use) and a fresh
/// namespace.
pub async fn workload_env(prefix: &str) -> Env {
    let options = Options {
        workloads: true,
        ..Options::default()
    };
    mooring_testkit::test_env_with(prefix, &options)
        .await
        .expect("workload control plane and namespace")
}

/// The admin configuration of the control plane.
pub async fn admin_config(plane: &ControlPlane) -> Config {
    let kubeconfig =
        kube::config::Kubeconfig::read_from(plane.kubeconfig()).expect("read kubeconfig");
    Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config")
}

/// An admin client that counts the HTTP requests it sends.
pub async fn counting_client(plane: &ControlPlane) -> (Client, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let layer = tower::util::MapRequestLayer::new(move |req: http::Request<kube::client::Body>| {
        seen.fetch_add(1, Ordering::SeqCst);
        req
    });
    let client = ClientBuilder::try_from(admin_config(plane).await)
        .expect("client builder")
        .with_layer(&layer)
        .build();
    (client, count)
}

/// A DynamicObject from JSON.
pub fn object(value: serde_json::Value) -> DynamicObject {
    serde_json::from_value(value).expect("object")
}

/// A ConfigMap named `name` in `namespace` (None: left for defaulting) with `data`.
pub fn config_map(name: &str, namespace: Option<&str>, data: serde_json::Value) -> DynamicObject {
    let mut cm = object(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name}, "data": data,
    }));
    cm.metadata.namespace = namespace.map(str::to_string);
    cm
}

/// The key of a ConfigMap.
pub fn config_map_key(name: &str, namespace: &str) -> ObjectKey {
    ObjectKey {
        group: String::new(),
        version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some(namespace.into()),
        name: name.into(),
    }
}

/// Sets an annotation.
pub fn annotate(mut obj: DynamicObject, key: &str, value: &str) -> DynamicObject {
    obj.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(key.into(), value.into());
    obj
}

/// Sets a label.
pub fn label(mut obj: DynamicObject, key: &str, value: &str) -> DynamicObject {
    obj.metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(key.into(), value.into());
    obj
}
