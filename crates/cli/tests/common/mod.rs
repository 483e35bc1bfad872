//! Running the built `mooring` binary against the test control plane, and objects with the
//! statuses the controllers would write.

#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use mooring_api::{GitRepository, Kustomization};
use mooring_testkit::TestEnv;

/// What a run of the binary gave.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// A fresh namespace on the shared control plane.
pub async fn env(prefix: &str) -> TestEnv {
    mooring_testkit::test_env(prefix).await.expect("test env")
}

/// The command line of the binary, connected to `env`'s control plane and namespace.
pub fn command(env: &TestEnv, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_mooring"));
    command
        .arg("--kubeconfig")
        .arg(env.plane.kubeconfig())
        .args(["-n", &env.namespace])
        .args(args)
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Runs `mooring <args>` for `env` (bounded by two minutes) and returns what it gave.
pub async fn mooring(env: &TestEnv, args: &[&str]) -> Run {
    let output = tokio::time::timeout(Duration::from_secs(120), command(env, args).output())
        .await
        .unwrap_or_else(|_| panic!("mooring {args:?} ran for 2 minutes"))
        .expect("run mooring");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `mooring <args>` and parses its stdout as JSON.
pub async fn mooring_json(env: &TestEnv, args: &[&str]) -> (Run, serde_json::Value) {
    let run = mooring(env, args).await;
    let value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout of {args:?} is not JSON ({e}): {run:#?}"));
    (run, value)
}

/// The whitespace-separated fields of the line of `table` whose first field is `first`.
pub fn row<'a>(table: &'a str, first: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&first))
        .unwrap_or_else(|| panic!("no line starting with {first:?} in:\n{table}"))
}

/// A 40-hex commit id made of `c`.
pub fn commit(c: char) -> String {
    std::iter::repeat_n(c, 40).collect()
}

/// Server-side applies `manifest` (a namespaced object of `env`'s namespace).
pub async fn apply<K>(env: &TestEnv, manifest: serde_json::Value) -> K
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
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
    .unwrap_or_else(|e| panic!("apply {name}: {e}"))
}

/// Writes `status` into the object's status subresource, as a controller would.
pub async fn set_status<K>(env: &TestEnv, name: &str, status: serde_json::Value)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(env.client.clone(), &env.namespace);
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()), "kind": K::kind(&()), "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply("test-status").force(),
        &Patch::Apply(&patch),
    )
    .await
    .unwrap_or_else(|e| panic!("status of {name}: {e}"));
}

/// A condition as the controllers write it.
pub fn condition(type_: &str, status: &str, reason: &str, message: &str) -> serde_json::Value {
    serde_json::json!({
        "type": type_, "status": status, "reason": reason, "message": message,
        "lastTransitionTime": "2026-01-02T03:04:05Z", "observedGeneration": 1,
    })
}

/// A GitRepository `name` for `url`, with a stored artifact at `revision` and Ready=True.
pub async fn ready_source(env: &TestEnv, name: &str, url: &str, revision: &str) {
    apply::<GitRepository>(
        env,
        serde_json::json!({
            "apiVersion": "source.mooring.dev/v1", "kind": "GitRepository",
            "metadata": {"name": name},
            "spec": {"url": url, "interval": "10m", "ref": {"branch": "main"}},
        }),
    )
    .await;
    set_status::<GitRepository>(
        env,
        name,
        serde_json::json!({
            "observedGeneration": 1,
            "conditions": [condition("Ready", "True", "Succeeded",
                &format!("stored artifact for revision '{revision}'"))],
            "artifact": {
                "path": format!("gitrepository/{}/{name}/a.tar.gz", env.namespace),
                "url": format!("http://artifacts.test/gitrepository/{}/{name}/a.tar.gz", env.namespace),
                "revision": revision,
                "digest": format!("sha256:{}", "d".repeat(64)),
                "lastUpdateTime": "2026-01-02T03:04:05Z",
                "metadata": {"git.author": "Ada Lovelace <ada@example.com>",
                             "git.commitTime": "2026-01-02T03:00:00Z",
                             "git.subject": "Add the app"},
            },
        }),
    )
    .await;
}

/// A Kustomization `name` of `source`, with `spec` merged in.
pub async fn kustomization(env: &TestEnv, name: &str, source: &str, spec: serde_json::Value) {
    let mut full = serde_json::json!({
        "interval": "10m", "prune": true, "path": "./deploy",
        "sourceRef": {"kind": "GitRepository", "name": source},
    });
    if let (Some(full), Some(extra)) = (full.as_object_mut(), spec.as_object()) {
        full.extend(extra.clone());
    }
    apply::<Kustomization>(
        env,
        serde_json::json!({
            "apiVersion": "kustomize.mooring.dev/v1", "kind": "Kustomization",
            "metadata": {"name": name}, "spec": full,
        }),
    )
    .await;
}

/// Both controller binaries (built by `cargo build --workspace --bins`) watching only `env`'s
/// namespace; they stop when the value is dropped.
pub async fn controllers(env: &TestEnv) -> mooring_testkit::controllers::Controllers {
    use mooring_testkit::controllers::{Controllers, Options};
    let options = Options::local(env.plane.kubeconfig()).watching(&env.namespace);
    tokio::task::spawn_blocking(move || Controllers::start(&options))
        .await
        .expect("start task")
        .expect("controllers")
}

/// A repository on the shared test git server with `files` committed on `main`; returns the
/// repo and the commit.
pub fn git_repo(prefix: &str, files: &[(&str, &str)]) -> (mooring_testkit::git::Repo, String) {
    use mooring_testkit::git::{Auth, GitServer};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = format!("{prefix}-{}-{nanos}", std::process::id());
    let repo = GitServer::shared()
        .expect("git server")
        .create_repo(&name, Auth::None)
        .expect("repo");
    let commit = repo.commit(files, "first").expect("commit");
    (repo, commit)
}

/// A ConfigMap manifest.
pub fn config_map(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: \"{value}\"\n"
    )
}

/// A real GitRepository `name` (polling every 10 minutes, so only requests make it fetch).
pub async fn git_repository(env: &TestEnv, name: &str, url: &str) {
    apply::<GitRepository>(
        env,
        serde_json::json!({
            "apiVersion": "source.mooring.dev/v1", "kind": "GitRepository",
            "metadata": {"name": name},
            "spec": {"url": url, "interval": "10m", "ref": {"branch": "main"}},
        }),
    )
    .await;
}

/// Waits (watching, up to 90 s) until the Kustomization is Ready at a revision ending in `commit`.
pub async fn wait_applied(env: &TestEnv, name: &str, commit: &str) -> Kustomization {
    let api: Api<Kustomization> = Api::namespaced(env.client.clone(), &env.namespace);
    let what = format!("applied {commit}");
    mooring_testkit::wait::wait_for(&api, name, &what, Duration::from_secs(90), |k| {
        k.and_then(|k| k.status.as_ref()).is_some_and(|s| {
            s.last_applied_revision
                .as_deref()
                .is_some_and(|r| r.ends_with(commit))
                && mooring_testkit::wait::ready(&s.conditions).is_some_and(|r| r.0 == "True")
        })
    })
    .await
    .expect("exists")
}
