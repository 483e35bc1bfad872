//! Both controllers in-process against the test control plane and the test git server, with a
//! client that records every request the kustomize-controller sends.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams};
use kube::client::ClientBuilder;
use mooring_api::{GitRepository, Kustomization};
use mooring_kustomize_controller::local::{LocalController, LocalOptions};
use mooring_source_controller::local::{
    LocalController as SourceController, LocalOptions as SourceOptions,
};
use mooring_testkit::TestEnv;
pub use mooring_testkit::wait::wait_for;

/// Requests sent by the kustomize-controller: (method, path).
pub type Requests = Arc<Mutex<Vec<(String, String)>>>;

/// Both controllers, watching one namespace.
pub struct Controllers {
    pub source: SourceController,
    pub kustomize: LocalController,
    pub requests: Requests,
    _dirs: Vec<tempfile::TempDir>,
}

impl Controllers {
    pub async fn stop(self) {
        self.kustomize.stop().await;
        self.source.stop().await;
    }

    /// Requests recorded since `from`, as (method, path).
    pub fn requests_since(&self, from: usize) -> Vec<(String, String)> {
        self.requests.lock().expect("lock")[from..].to_vec()
    }

    pub fn request_count(&self) -> usize {
        self.requests.lock().expect("lock").len()
    }

    /// Objects the kustomize-controller applied again after someone else changed or deleted them.
    pub fn drift_corrections(&self) -> u64 {
        self.kustomize.context.metrics.drift_corrections.get()
    }

    /// How many reconciles have finished (any result).
    pub fn reconciles(&self) -> u64 {
        self.kustomize.context.metrics.reconcile.total()
    }
}

/// Starts both controllers for `env`'s namespace.
pub async fn start(env: &TestEnv, requeue_dependency: Duration) -> Controllers {
    start_as(env, requeue_dependency, None).await
}

/// Starts both controllers; Kustomizations naming no ServiceAccount are impersonated as
/// `default_service_account` when given.
pub async fn start_as(
    env: &TestEnv,
    requeue_dependency: Duration,
    default_service_account: Option<&str>,
) -> Controllers {
    start_with(env, requeue_dependency, default_service_account, |_| {}).await
}

/// Like [`start_as`], with `source_settings` changing the source-controller's defaults as its
/// flags would (e.g. a small `max_artifact_size`).
pub async fn start_with(
    env: &TestEnv,
    requeue_dependency: Duration,
    default_service_account: Option<&str>,
    source_settings: impl FnOnce(&mut mooring_source_controller::context::Settings),
) -> Controllers {
    let dirs: Vec<tempfile::TempDir> = (0..3)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let source = mooring_source_controller::local::start_with(
        env.client.clone(),
        SourceOptions {
            storage: dirs[0].path().to_path_buf(),
            git_cache: dirs[1].path().to_path_buf(),
            listener,
            namespace: Some(env.namespace.clone()),
            concurrency: 4,
        },
        source_settings,
    )
    .expect("source-controller");
    let config = env.plane.config().await.expect("config");
    let requests: Requests = Arc::default();
    let seen = requests.clone();
    let layer = tower::util::MapRequestLayer::new(move |req: http::Request<kube::client::Body>| {
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default();
        seen.lock()
            .expect("lock")
            .push((req.method().to_string(), path));
        req
    });
    let client = ClientBuilder::try_from(config.clone())
        .expect("client")
        .with_layer(&layer)
        .build();
    let kustomize = mooring_kustomize_controller::local::start(
        config,
        client,
        LocalOptions {
            artifact_cache: dirs[2].path().to_path_buf(),
            kustomize: mooring_testkit::tools::tool("kustomize").expect("kustomize"),
            namespace: Some(env.namespace.clone()),
            concurrency: 4,
            requeue_dependency,
            strict_substitution: true,
            allow_cross_namespace_refs: false,
            default_service_account: default_service_account.map(str::to_owned),
        },
    )
    .expect("kustomize-controller");
    Controllers {
        source,
        kustomize,
        requests,
        _dirs: dirs,
    }
}

pub async fn apply_json<K>(api: &Api<K>, manifest: serde_json::Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = manifest["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    api.patch(
        &name,
        &PatchParams::apply("test").force(),
        &Patch::Apply(&manifest),
    )
    .await
    .expect("apply");
}

pub async fn git_repository(env: &TestEnv, name: &str, url: &str) {
    let api: Api<GitRepository> = Api::namespaced(env.client.clone(), &env.namespace);
    apply_json(&api, serde_json::json!({
        "apiVersion": "source.mooring.dev/v1", "kind": "GitRepository", "metadata": {"name": name},
        "spec": {"url": url, "interval": "10m", "ref": {"branch": "main"}}
    }))
    .await;
}

pub async fn kustomization(env: &TestEnv, name: &str, spec: serde_json::Value) {
    let api: Api<Kustomization> = Api::namespaced(env.client.clone(), &env.namespace);
    let mut full = serde_json::json!({"interval": "10m", "prune": true, "targetNamespace": env.namespace,
        "sourceRef": {"kind": "GitRepository", "name": "repo"}});
    if let (Some(full), Some(extra)) = (full.as_object_mut(), spec.as_object()) {
        for (k, v) in extra {
            full.insert(k.clone(), v.clone());
        }
    }
    apply_json(&api, serde_json::json!({
        "apiVersion": "kustomize.mooring.dev/v1", "kind": "Kustomization", "metadata": {"name": name}, "spec": full
    }))
    .await;
}

/// Asks for a reconcile of a GitRepository now.
pub async fn poke_source(env: &TestEnv, name: &str, token: &str) {
    let api: Api<GitRepository> = Api::namespaced(env.client.clone(), &env.namespace);
    let patch = serde_json::json!({"metadata": {"annotations": {"reconcile.mooring.dev/requestedAt": token}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("annotate");
}

/// Asks for a reconcile of a Kustomization now.
pub async fn poke_kustomization(env: &TestEnv, name: &str, token: &str) {
    let api: Api<Kustomization> = Api::namespaced(env.client.clone(), &env.namespace);
    let patch = serde_json::json!({"metadata": {"annotations": {"reconcile.mooring.dev/requestedAt": token}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("annotate");
}

/// Waits (watching, up to `secs`) until `check` holds for the Kustomization.
pub async fn wait_ks(
    env: &TestEnv,
    name: &str,
    what: &str,
    secs: u64,
    check: impl Fn(&Kustomization) -> bool,
) -> Kustomization {
    let api: Api<Kustomization> = Api::namespaced(env.client.clone(), &env.namespace);
    wait_for(&api, name, what, Duration::from_secs(secs), |o| {
        o.is_some_and(&check)
    })
    .await
    .expect("the Kustomization exists")
}

/// The Ready condition of a Kustomization: (status, reason, message).
pub fn ready(ks: &Kustomization) -> Option<(String, String, String)> {
    mooring_testkit::wait::ready(&ks.status.as_ref()?.conditions)
}

/// The last attempted revision is the given commit (whatever came of it).
pub fn attempted(ks: &Kustomization, commit: &str) -> bool {
    ks.status
        .as_ref()
        .and_then(|s| s.last_attempted_revision.as_deref())
        .is_some_and(|r| r.ends_with(commit))
}

/// Ready=True at the given commit.
pub fn applied(ks: &Kustomization, commit: &str) -> bool {
    ready(ks).is_some_and(|(s, _, _)| s == "True")
        && ks
            .status
            .as_ref()
            .and_then(|s| s.last_applied_revision.as_deref())
            .is_some_and(|r| r.ends_with(commit))
}

/// Waits (watching, up to `secs`) until the ConfigMap satisfies `check` (None: absent).
pub async fn wait_config_map(
    env: &TestEnv,
    name: &str,
    what: &str,
    secs: u64,
    check: impl Fn(Option<&k8s_openapi::api::core::v1::ConfigMap>) -> bool,
) {
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(env.client.clone(), &env.namespace);
    wait_for(&api, name, what, Duration::from_secs(secs), check).await;
}

pub fn data_of(cm: Option<&k8s_openapi::api::core::v1::ConfigMap>, key: &str) -> Option<String> {
    cm.and_then(|c| c.data.as_ref())
        .and_then(|d| d.get(key).cloned())
}

pub fn config_map_yaml(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: \"{value}\"\n"
    )
}

pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Polls an in-process counter (not the cluster) until `check` holds, within `secs`.
pub async fn wait_until(check: impl Fn() -> bool, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "condition not reached in {secs}s"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (watching, up to 60 s) for an Event with `reason` whose note contains `text`.
pub async fn wait_event(env: &TestEnv, reason: &str, text: &str) {
    use futures::{StreamExt, TryStreamExt};
    use k8s_openapi::api::events::v1::Event;
    use kube::runtime::{WatchStreamExt, watcher};
    let api: Api<Event> = Api::namespaced(env.client.clone(), &env.namespace);
    let mut events = watcher(api, watcher::Config::default())
        .applied_objects()
        .try_filter(|e| {
            let hit = e.reason.as_deref() == Some(reason)
                && e.note.as_deref().is_some_and(|n| n.contains(text));
            std::future::ready(hit)
        })
        .boxed();
    tokio::time::timeout(Duration::from_secs(60), events.next())
        .await
        .unwrap_or_else(|_| panic!("no {reason} Event with {text:?} in 60s"))
        .expect("watch ended")
        .expect("watch error");
}
