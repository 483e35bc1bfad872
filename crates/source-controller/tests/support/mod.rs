//! Runs the source-controller in-process against the test control plane, with a real artifact
//! server on 127.0.0.1, and waits on conditions.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams};
use mooring_api::GitRepository;
use mooring_source_controller::context::Settings;
use mooring_source_controller::local::{LocalController, LocalOptions};
use mooring_testkit::TestEnv;

/// A running source-controller watching one namespace.
pub struct Running {
    pub storage: PathBuf,
    pub cache: PathBuf,
    pub base_url: String,
    /// The receiver server's base URL.
    pub receiver_url: String,
    inner: LocalController,
    _dirs: Vec<tempfile::TempDir>,
}

impl Running {
    /// The controller's shared context (metrics, stores).
    pub fn context(&self) -> &mooring_source_controller::context::Context {
        &self.inner.context
    }

    /// Stops the controller and the artifact server and waits for both.
    pub async fn stop(self) {
        self.inner.stop().await;
    }
}

/// Starts the controller for `env`'s namespace, storing under `storage` (a fresh dir if None).
pub async fn start(env: &TestEnv, storage: Option<PathBuf>) -> Running {
    start_with(env, storage, 4, |_| {}).await
}

/// [`start`] with `concurrency` workers and `settings` changing the defaults first, as the
/// binary's flags would.
pub async fn start_with(
    env: &TestEnv,
    storage: Option<PathBuf>,
    concurrency: u16,
    settings: impl FnOnce(&mut Settings),
) -> Running {
    let dirs: Vec<tempfile::TempDir> = (0..2)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let storage = storage.unwrap_or_else(|| dirs[0].path().to_path_buf());
    let cache = dirs[1].path().to_path_buf();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let options = LocalOptions {
        storage: storage.clone(),
        git_cache: cache.clone(),
        listener,
        namespace: Some(env.namespace.clone()),
        concurrency,
    };
    let inner = mooring_source_controller::local::start_with(env.client.clone(), options, settings)
        .expect("start");
    Running {
        storage,
        cache,
        base_url: inner.base_url.clone(),
        receiver_url: inner.receiver_url.clone(),
        inner,
        _dirs: dirs,
    }
}

/// Applies a manifest of kind `K` in the test namespace (server-side, forced) and returns it.
pub async fn apply<K>(env: &TestEnv, manifest: serde_json::Value) -> K
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(env.client.clone(), &env.namespace);
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
    .unwrap_or_else(|e| panic!("apply {} {name}: {e}", K::kind(&())))
}

/// Applies a GitRepository manifest in the test namespace.
pub async fn apply_repo(env: &TestEnv, manifest: serde_json::Value) -> GitRepository {
    apply(env, manifest).await
}

/// A GitRepository manifest.
pub fn repo_manifest(name: &str, url: &str, spec_extra: serde_json::Value) -> serde_json::Value {
    let mut spec = serde_json::json!({"url": url, "interval": "10m", "ref": {"branch": "main"}});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), spec_extra.as_object()) {
        for (k, v) in extra {
            spec.insert(k.clone(), v.clone());
        }
    }
    serde_json::json!({
        "apiVersion": "source.mooring.dev/v1", "kind": "GitRepository",
        "metadata": {"name": name}, "spec": spec
    })
}

/// Waits (watching, up to 60 s) until `check` holds for the GitRepository.
pub async fn wait_for(
    env: &TestEnv,
    name: &str,
    what: &str,
    check: impl Fn(&GitRepository) -> bool,
) -> GitRepository {
    let api: Api<GitRepository> = Api::namespaced(env.client.clone(), &env.namespace);
    mooring_testkit::wait::wait_for(&api, name, what, Duration::from_secs(60), |o| {
        o.is_some_and(&check)
    })
    .await
    .expect("the GitRepository exists")
}

/// The Ready condition's (status, reason, message).
pub fn ready(repo: &GitRepository) -> Option<(String, String, String)> {
    mooring_testkit::wait::ready(&repo.status.as_ref()?.conditions)
}

pub fn is_ready_at(repo: &GitRepository, commit: &str) -> bool {
    ready(repo).is_some_and(|(s, _, _)| s == "True")
        && repo
            .status
            .as_ref()
            .and_then(|s| s.artifact.as_ref())
            .is_some_and(|a| a.revision.ends_with(commit))
}

/// Downloads `url` and returns the body (plain HTTP client over a TCP stream).
pub async fn download(url: &str) -> (u16, Vec<u8>) {
    let out = tokio::process::Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", url])
        .output()
        .await
        .expect("curl");
    let mut body = out.stdout;
    let pos = body.iter().rposition(|b| *b == b'\n').expect("status line");
    let code: u16 = String::from_utf8_lossy(&body[pos + 1..])
        .trim()
        .parse()
        .expect("code");
    body.truncate(pos);
    (code, body)
}

/// Downloads `url` when the transfer completes: None when the connection fails or breaks off
/// before the `Content-Length` the server announced (curl exits non-zero).
pub async fn download_whole(url: &str) -> Option<(u16, Vec<u8>)> {
    let out = tokio::process::Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", url])
        .output()
        .await
        .expect("curl");
    if !out.status.success() {
        return None;
    }
    let mut body = out.stdout;
    let pos = body.iter().rposition(|b| *b == b'\n')?;
    let code: u16 = String::from_utf8_lossy(&body[pos + 1..])
        .trim()
        .parse()
        .ok()?;
    body.truncate(pos);
    Some((code, body))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    mooring_source_controller::storage::sha256_hex(bytes).expect("hash")
}

pub fn since(start: Instant) -> String {
    format!("{:.2}s", start.elapsed().as_secs_f64())
}

/// POSTs `body` to `url` with `headers` (name, value) and returns the status code and body.
pub async fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let mut file = tempfile::NamedTempFile::new().expect("body file");
    std::io::Write::write_all(&mut file, body).expect("write body");
    let mut command = tokio::process::Command::new("curl");
    command.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", "POST"]);
    for (name, value) in headers {
        command.args(["-H", &format!("{name}: {value}")]);
    }
    command
        .arg("--data-binary")
        .arg(format!("@{}", file.path().display()))
        .arg(url);
    let out = command.output().await.expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').expect("status line");
    (code.trim().parse().expect("code"), body.trim().to_string())
}
