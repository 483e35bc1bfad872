//! P4 (commit to applied) and P5 (drift correction) on one app of `--app-objects` objects.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use mooring_testkit::git::{Auth, Repo};
use serde::Serialize;
use serde_json::json;

use crate::env::Bench;
use crate::error::Error;
use crate::objects::{self, applied, config_map_name, config_map_value, has_artifact};
use crate::procs::{Meter, Usage};
use crate::stats::{Summary, summarize};
use crate::watch::{DynWatch, Watch};

/// The namespace of the P4/P5 app.
pub const NAMESPACE: &str = "bench-commit";
/// Name of the app's repository, GitRepository and Kustomization.
const APP: &str = "commit-app";
/// The field manager that plays "someone else" in P5.
const INTRUDER: &str = "bench-intruder";

/// The Secret holding the P4 webhook token.
const HOOK_SECRET: &str = "bench-webhook";

/// The app P4 commits to and P5 drifts.
pub struct App {
    repo: Repo,
    /// With `--push-via webhook`: the Receiver's URL and its token.
    hook: Option<(String, String)>,
    values: Vec<String>,
    /// How long its first apply took, seconds (GitRepository creation to Ready).
    pub first_apply_seconds: f64,
}

/// What P4 measured (seconds).
#[derive(Debug, Clone, Serialize)]
pub struct CommitResult {
    /// Objects in the app.
    pub objects: usize,
    /// How each push was announced: `reconcile request` or `GitHub webhook`.
    pub announced_by: String,
    /// Seconds from creating the GitRepository to the first apply Ready.
    pub first_apply_seconds: f64,
    /// Push to artifact at the new revision (the reconcile request follows the push at once).
    pub detection: Option<Summary>,
    /// Artifact at the new revision to the Kustomization Ready at it.
    pub applied_after_detection: Option<Summary>,
    /// Push to the Kustomization Ready at the new revision.
    pub push_to_applied: Option<Summary>,
    /// Commits that were not applied in time.
    pub timed_out: usize,
    /// Usage of each process during the commits.
    pub usage: BTreeMap<String, Usage>,
}

/// What P5 measured (seconds).
#[derive(Debug, Clone, Serialize)]
pub struct DriftResult {
    /// From the other field manager's change to the restored value being seen.
    pub restore: Option<Summary>,
    /// Trials where the value was not restored in time.
    pub timed_out: usize,
}

/// Creates the app's repository, GitRepository and Kustomization and waits for the first apply.
pub async fn set_up(bench: &Bench) -> Result<App, Error> {
    let count = bench.args.app_objects;
    bench.namespace(NAMESPACE).await?;
    let git = bench.git.clone();
    let values: Vec<String> = vec!["0".to_string(); count.div_ceil(4).max(1)];
    let files = objects::app_files(APP, count, &values);
    let (repo, sha) = tokio::task::spawn_blocking(move || {
        let repo = git
            .empty_repo(APP, Auth::None)
            .map_err(Error::git("creating the app repository"))?;
        let sha = commit(&repo, &files)?;
        Ok::<_, Error>((repo, sha))
    })
    .await
    .map_err(|e| Error::Setting(format!("repository thread: {e}")))??;

    let (mut ks_watch, _) = DynWatch::one(
        "the app Kustomization",
        bench.kustomizations(NAMESPACE),
        APP,
    )
    .await?;
    let started = Instant::now();
    let source = objects::git_repository(&bench.gitrepo, APP, &bench.git_url(APP), "10m", "60s")
        .map_err(Error::Encode)?;
    bench
        .gitrepos(NAMESPACE)
        .create(&PostParams::default(), &source)
        .await
        .map_err(Error::kube("creating the app GitRepository"))?;
    let ks = objects::kustomization(&bench.kustomization, APP, APP, "./deploy", NAMESPACE, "10m")
        .map_err(Error::Encode)?;
    bench
        .kustomizations(NAMESPACE)
        .create(&PostParams::default(), &ks)
        .await
        .map_err(Error::kube("creating the app Kustomization"))?;
    let within = Duration::from_secs(bench.args.timeout);
    let at = ks_watch.until(within, |k| applied(k, &sha)).await?;
    let first_apply_seconds = at.duration_since(started).as_secs_f64();
    eprintln!("[p4] first apply of {count} objects: {first_apply_seconds:.2}s");
    let hook = if bench.args.push_via == "webhook" {
        Some(receiver(bench).await?)
    } else {
        None
    };
    Ok(App {
        repo,
        hook,
        values,
        first_apply_seconds,
    })
}

/// Creates a GitHub Receiver for the app's GitRepository and its token's Secret; returns the
/// Receiver's URL (the server at {extra_port}, its `status.webhookPath`) and the token.
async fn receiver(bench: &Bench) -> Result<(String, String), Error> {
    let token = format!("bench-token-{}", std::process::id());
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(bench.client.clone(), NAMESPACE);
    let secret = serde_json::from_value(json!({
        "metadata": {"name": HOOK_SECRET}, "stringData": {"token": token}
    }))
    .map_err(Error::Encode)?;
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .map_err(Error::kube("creating the webhook token's Secret"))?;
    let group = format!("notification.{}", bench.args.label_prefix);
    let resource = kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk(&group, &bench.args.api_version, "Receiver"),
        "receivers",
    );
    let receivers: Api<kube::api::DynamicObject> =
        Api::namespaced_with(bench.client.clone(), NAMESPACE, &resource);
    let (mut watch, _) = DynWatch::one("the app Receiver", receivers.clone(), APP).await?;
    let object = serde_json::from_value(json!({
        "apiVersion": resource.api_version, "kind": "Receiver", "metadata": {"name": APP},
        "spec": {
            "type": "github", "events": ["push"], "secretRef": {"name": HOOK_SECRET},
            "resources": [{"apiVersion": bench.gitrepo.api_version, "kind": "GitRepository", "name": APP}]
        }
    }))
    .map_err(Error::Encode)?;
    receivers
        .create(&PostParams::default(), &object)
        .await
        .map_err(Error::kube("creating the app Receiver"))?;
    let path = |r: &kube::api::DynamicObject| {
        r.data["status"]["webhookPath"]
            .as_str()
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
    };
    let within = Duration::from_secs(bench.args.timeout);
    watch.until(within, |r| path(r).is_some()).await?;
    let published = receivers
        .get(APP)
        .await
        .map_err(Error::kube("reading the app Receiver"))?;
    let path = path(&published)
        .ok_or_else(|| Error::Setting("the Receiver has no status.webhookPath".into()))?;
    let url = format!("127.0.0.1:{}{path}", bench.receiver_port);
    eprintln!("[p4] pushes announced by a GitHub webhook to http://{url}");
    Ok((url, token))
}

/// Posts a GitHub `push` event for commit `sha`, signed with `token` (X-Hub-Signature-256), to
/// `url` (`host:port/path`), and fails unless it is answered with a 2xx status.
async fn post_push(url: &str, token: &str, sha: &str) -> Result<(), Error> {
    use hmac::{KeyInit, Mac};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (addr, path) = url
        .split_once('/')
        .map(|(a, p)| (a, format!("/{p}")))
        .ok_or_else(|| Error::Setting(format!("no path in {url}")))?;
    let body = json!({"ref": "refs/heads/main", "after": sha,
        "repository": {"full_name": "bench/commit-app"}})
    .to_string();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(token.as_bytes())
        .map_err(|e| Error::Setting(format!("webhook key: {e}")))?;
    mac.update(body.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         X-GitHub-Event: push\r\nX-Hub-Signature-256: sha256={signature}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let failed = |e: std::io::Error| Error::Setting(format!("posting the webhook to {addr}: {e}"));
    let mut stream = tokio::net::TcpStream::connect(addr).await.map_err(failed)?;
    stream.write_all(request.as_bytes()).await.map_err(failed)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.map_err(failed)?;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.split_whitespace().nth(1).unwrap_or_default();
    if status.starts_with('2') {
        Ok(())
    } else {
        Err(Error::Setting(format!(
            "the Receiver answered {:?}",
            answer.lines().next().unwrap_or_default()
        )))
    }
}

/// Runs P4: `--commits` commits, each changing one ConfigMap, each followed by a reconcile
/// request on the GitRepository.
pub async fn commits(bench: &Bench, app: &mut App) -> Result<CommitResult, Error> {
    let within = Duration::from_secs(bench.args.timeout);
    let annotation = bench.args.requested_at_annotation();
    let (mut detection, mut after, mut total) = (Vec::new(), Vec::new(), Vec::new());
    let mut timed_out = 0;
    let meter = Meter::start(bench.metered());
    for k in 0..bench.args.commits {
        let (mut repo_watch, _) =
            DynWatch::one("the app GitRepository", bench.gitrepos(NAMESPACE), APP).await?;
        let (mut ks_watch, _) = DynWatch::one(
            "the app Kustomization",
            bench.kustomizations(NAMESPACE),
            APP,
        )
        .await?;
        let slot = k % app.values.len();
        app.values[slot] = format!("commit-{k}");
        let files = objects::app_files(APP, bench.args.app_objects, &app.values);
        let repo = app.repo.clone();
        let sha = tokio::task::spawn_blocking(move || commit(&repo, &files))
            .await
            .map_err(|e| Error::Setting(format!("commit thread: {e}")))??;
        let pushed = Instant::now();
        if let Some((url, token)) = &app.hook {
            post_push(url, token, &sha).await?;
        } else {
            let patch = json!({"metadata": {"annotations": {annotation.clone(): format!("bench-{k}-{sha}")}}});
            bench
                .gitrepos(NAMESPACE)
                .patch(APP, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(Error::kube(
                    "requesting a reconcile of the app GitRepository",
                ))?;
        }
        let detected = repo_watch.until(within, |r| has_artifact(r, &sha));
        let done = ks_watch.until(within, |k| applied(k, &sha));
        match tokio::try_join!(detected, done) {
            Ok((detected, done)) => {
                let detected = detected.min(done);
                detection.push(detected.duration_since(pushed).as_secs_f64());
                after.push(done.duration_since(detected).as_secs_f64());
                total.push(done.duration_since(pushed).as_secs_f64());
                eprintln!(
                    "[p4] commit {k}: detected {:.3}s, applied {:.3}s after",
                    detection.last().copied().unwrap_or_default(),
                    after.last().copied().unwrap_or_default()
                );
            }
            Err(Error::Timeout { .. }) => {
                eprintln!("[p4] commit {k}: not applied within {within:?}");
                timed_out += 1;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(CommitResult {
        objects: bench.args.app_objects,
        announced_by: if app.hook.is_some() {
            "GitHub webhook".into()
        } else {
            "reconcile request".into()
        },
        first_apply_seconds: app.first_apply_seconds,
        detection: summarize(&detection),
        applied_after_detection: summarize(&after),
        push_to_applied: summarize(&total),
        timed_out,
        usage: meter.finish().await,
    })
}

/// Runs P5: another field manager changes a ConfigMap's managed `data.value`; the time until the
/// value is back is measured on a watch of that ConfigMap.
pub async fn drift(bench: &Bench, app: &App) -> Result<DriftResult, Error> {
    let within = Duration::from_secs(bench.args.timeout);
    let api: Api<ConfigMap> = Api::namespaced(bench.client.clone(), NAMESPACE);
    let mut times = Vec::new();
    let mut timed_out = 0;
    for trial in 0..bench.args.drift_trials {
        let slot = trial % app.values.len();
        let name = config_map_name(APP, slot);
        let expected = app.values[slot].clone();
        let (mut watch, current) =
            Watch::one(format!("ConfigMap {name}"), api.clone(), &name).await?;
        let now = current
            .as_ref()
            .and_then(|c| c.data.as_ref()?.get("value").cloned());
        if now.as_deref() != Some(expected.as_str()) {
            return Err(Error::Setting(format!(
                "ConfigMap {name} holds {now:?} before the drift trial, not {expected:?}"
            )));
        }
        let intrusion = json!({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
            "data": {"value": format!("drifted-{trial}")}
        });
        let changed = Instant::now();
        api.patch(
            &name,
            &PatchParams::apply(INTRUDER).force(),
            &Patch::Apply(&intrusion),
        )
        .await
        .map_err(Error::kube(format!(
            "changing ConfigMap {name} as {INTRUDER}"
        )))?;
        let restored = watch
            .until(within, |cm| {
                let value = serde_json::to_value(cm).unwrap_or_default();
                config_map_value(&value) == Some(expected.as_str())
            })
            .await;
        match restored {
            Ok(at) => {
                let secs = at.duration_since(changed).as_secs_f64();
                eprintln!("[p5] trial {trial}: restored in {secs:.3}s");
                times.push(secs);
            }
            Err(Error::Timeout { .. }) => {
                eprintln!("[p5] trial {trial}: not restored within {within:?}");
                timed_out += 1;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(DriftResult {
        restore: summarize(&times),
        timed_out,
    })
}

fn commit(repo: &Repo, files: &[(String, String)]) -> Result<String, Error> {
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    repo.commit(&refs, "bench change")
        .map_err(Error::git("committing to the app repository"))
}
