//! Webhook receivers over real HTTP: each type accepts a correctly signed call and refuses a
//! wrongly signed one, unknown paths and oversized bodies change nothing, and a push announced
//! through a Receiver is applied end to end with every interval at 1h (so only the webhook can
//! have caused it).
//!
//! The signatures are GitHub's documented example ("Validating webhook deliveries"): secret
//! `It's a Secret to Everybody`, payload `Hello, World!`, HMAC-SHA256
//! `757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17`.

#[path = "../../kustomize-controller/tests/flow/mod.rs"]
mod flow;
mod support;

use support::apply;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use mooring_api::{GitRepository, Receiver};
use mooring_source_controller::receiver::webhook_path;
use mooring_testkit::TestEnv;
use mooring_testkit::git::{Auth, GitServer};
use mooring_testkit::test_env;
use serde_json::json;

const TOKEN: &str = "It's a Secret to Everybody";
const PAYLOAD: &[u8] = b"Hello, World!";
const HEX: &str = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
/// The same signature with its last digit changed.
const WRONG_HEX: &str = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e18";

async fn token_secret(env: &TestEnv) {
    apply::<Secret>(
        env,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hook-token"},
               "stringData": {"token": TOKEN}}),
    )
    .await;
}

/// Applies a Receiver of `type_` for the GitRepository `target` and returns its path once
/// Ready.
async fn receiver(env: &TestEnv, name: &str, type_: &str, target: &str, events: &[&str]) -> String {
    apply::<Receiver>(
        env,
        json!({"apiVersion": "notification.mooring.dev/v1", "kind": "Receiver",
               "metadata": {"name": name},
               "spec": {"type": type_, "events": events, "secretRef": {"name": "hook-token"},
                        "resources": [{"kind": "GitRepository", "name": target}]}}),
    )
    .await;
    let api: Api<Receiver> = Api::namespaced(env.client.clone(), &env.namespace);
    let ready = mooring_testkit::wait::wait_for(
        &api,
        name,
        "Receiver Ready",
        std::time::Duration::from_secs(60),
        |r| {
            r.and_then(|r| r.status.as_ref())
                .is_some_and(|s| mooring_api::conditions::is_ready(&s.conditions))
        },
    )
    .await
    .expect("Receiver");
    let path = ready
        .status
        .and_then(|s| s.webhook_path)
        .expect("webhookPath");
    assert_eq!(
        path,
        webhook_path(TOKEN.as_bytes(), name, &env.namespace),
        "status.webhookPath is /hook/<sha256 of token+name+namespace>"
    );
    path
}

/// Header (name, value) pairs.
type Headers = Vec<(&'static str, String)>;

/// (type, correct headers, wrong headers) for a call with [`PAYLOAD`].
fn calls() -> Vec<(&'static str, Headers, Headers)> {
    let prefixed = format!("sha256={HEX}");
    let wrong_prefixed = format!("sha256={WRONG_HEX}");
    vec![
        (
            "github",
            vec![
                ("X-Hub-Signature-256", prefixed.clone()),
                ("X-GitHub-Event", "push".into()),
            ],
            vec![
                ("X-Hub-Signature-256", wrong_prefixed.clone()),
                ("X-GitHub-Event", "push".into()),
            ],
        ),
        (
            "generic-hmac",
            vec![("X-Signature", prefixed.clone())],
            vec![("X-Signature", wrong_prefixed.clone())],
        ),
        (
            "gitlab",
            vec![
                ("X-Gitlab-Token", TOKEN.into()),
                ("X-Gitlab-Event", "Push Hook".into()),
            ],
            vec![
                ("X-Gitlab-Token", "It's a Secret to Everybodx".into()),
                ("X-Gitlab-Event", "Push Hook".into()),
            ],
        ),
        (
            "gitea",
            vec![
                ("X-Gitea-Signature", HEX.into()),
                ("X-Gitea-Event", "push".into()),
            ],
            vec![
                ("X-Gitea-Signature", WRONG_HEX.into()),
                ("X-Gitea-Event", "push".into()),
            ],
        ),
        (
            "forgejo",
            vec![
                ("X-Forgejo-Signature", HEX.into()),
                ("X-Forgejo-Event", "push".into()),
            ],
            vec![("X-Forgejo-Signature", WRONG_HEX.into())],
        ),
        (
            "bitbucket",
            vec![
                ("X-Hub-Signature", prefixed.clone()),
                ("X-Event-Key", "repo:refs_changed".into()),
            ],
            vec![
                ("X-Hub-Signature", wrong_prefixed),
                ("X-Event-Key", "repo:refs_changed".into()),
            ],
        ),
        ("generic", vec![], vec![]),
    ]
}

fn borrowed<'a>(headers: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    headers.iter().map(|(n, v)| (*n, v.as_str())).collect()
}

fn served(repo: &GitRepository) -> String {
    repo.status
        .as_ref()
        .and_then(|s| s.artifact.as_ref())
        .map(|a| a.revision.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn every_type_fetches_on_a_signed_call_and_nothing_else_changes_anything() {
    let env = test_env("hooks").await.expect("env");
    let server = GitServer::shared().expect("git server");
    let repo = server
        .create_repo(&flow::unique("hooks"), Auth::None)
        .expect("repo");
    let first = repo.commit(&[("a.txt", "1")], "first").expect("commit");
    let running = support::start(&env, None).await;
    let hourly = json!({"interval": "1h"});
    for name in ["app", "canary"] {
        support::apply_repo(
            &env,
            support::repo_manifest(name, repo.http_url(), hourly.clone()),
        )
        .await;
        support::wait_for(&env, name, "Ready at the first commit", |r| {
            support::is_ready_at(r, &first)
        })
        .await;
    }
    token_secret(&env).await;
    let mut paths = Vec::new();
    for (type_, _, _) in calls() {
        let path = receiver(&env, &format!("r-{type_}"), type_, "app", &[]).await;
        paths.push(path);
    }
    let canary = receiver(&env, "r-canary", "generic", "canary", &[]).await;
    let url = |path: &str| format!("{}{path}", running.receiver_url);

    // Refused calls: nothing is queued.
    let second = repo.commit(&[("a.txt", "2")], "second").expect("commit");
    for ((type_, _, wrong), path) in calls().iter().zip(&paths) {
        if *type_ == "generic" {
            continue; // the path is its only secret
        }
        let (code, _) = support::post(&url(path), &borrowed(wrong), PAYLOAD).await;
        assert_eq!(code, 401, "{type_} with a wrong signature");
    }
    let unknown = format!("/hook/{}", "0".repeat(64));
    let (code, body) = support::post(&url(&unknown), &[], PAYLOAD).await;
    assert_eq!((code, body.as_str()), (404, "not found"));
    let (github, good_github, _) = &calls()[0];
    assert_eq!(*github, "github");
    let huge = vec![b'x'; mooring_source_controller::receiver::server::DEFAULT_MAX_BODY + 1];
    let (code, _) = support::post(&url(&paths[0]), &borrowed(good_github), &huge).await;
    assert_eq!(code, 413, "oversized body");
    let ping = [
        ("X-Hub-Signature-256", format!("sha256={HEX}")),
        ("X-GitHub-Event", "ping".to_string()),
    ];
    let (code, body) = support::post(&url(&paths[0]), &borrowed(&ping), PAYLOAD).await;
    assert_eq!((code, body.as_str()), (200, "pong"));
    // The canary's call goes through the same queue, after the refused ones: once the canary
    // serves the second commit, a queued fetch of `app` would have run too.
    let (code, _) = support::post(&url(&canary), &[], PAYLOAD).await;
    assert_eq!(code, 202);
    support::wait_for(&env, "canary", "the canary at the second commit", |r| {
        support::is_ready_at(r, &second)
    })
    .await;
    let api: Api<GitRepository> = Api::namespaced(env.client.clone(), &env.namespace);
    let app = api.get("app").await.expect("app");
    assert!(
        served(&app).ends_with(&first),
        "refused calls fetched nothing: app still serves {}",
        served(&app)
    );

    // Each type's correctly signed call fetches a new commit at once.
    for (i, ((type_, good, _), path)) in calls().iter().zip(&paths).enumerate() {
        let commit = repo
            .commit(&[("a.txt", &format!("{type_} {i}"))], type_)
            .expect("commit");
        let (code, body) = support::post(&url(path), &borrowed(good), PAYLOAD).await;
        assert_eq!(code, 202, "{type_}: {body}");
        support::wait_for(
            &env,
            "app",
            &format!("app fetched after the {type_} call"),
            |r| support::is_ready_at(r, &commit),
        )
        .await;
    }
    running.stop().await;
}

/// Applies Receiver `name` with `spec` and waits until it is Stalled, Ready=False with a
/// message that starts with `message`, and serves no path.
async fn refused(
    env: &TestEnv,
    api: &Api<Receiver>,
    name: &str,
    spec: serde_json::Value,
    message: &str,
) {
    apply::<Receiver>(
        env,
        json!({"apiVersion": "notification.mooring.dev/v1", "kind": "Receiver",
               "metadata": {"name": name}, "spec": spec}),
    )
    .await;
    let stalled = mooring_testkit::wait::wait_for(
        api,
        name,
        "Receiver Stalled",
        std::time::Duration::from_secs(60),
        |r| {
            r.and_then(|r| r.status.as_ref())
                .is_some_and(|s| mooring_api::conditions::is_stalled(&s.conditions))
        },
    )
    .await
    .expect("Receiver");
    let status = stalled.status.expect("status");
    let ready =
        mooring_api::conditions::find_condition(&status.conditions, "Ready").expect("Ready");
    assert_eq!(ready.status, "False");
    assert!(ready.message.starts_with(message), "{}", ready.message);
    assert_eq!(status.webhook_path, None);
}

#[tokio::test]
async fn events_filter_suspend_and_unsupported_types() {
    let env = test_env("hooks-filter").await.expect("env");
    let server = GitServer::shared().expect("git server");
    let repo = server
        .create_repo(&flow::unique("hooks-filter"), Auth::None)
        .expect("repo");
    let first = repo.commit(&[("a.txt", "1")], "first").expect("commit");
    let running = support::start(&env, None).await;
    support::apply_repo(
        &env,
        support::repo_manifest("app", repo.http_url(), json!({"interval": "1h"})),
    )
    .await;
    support::wait_for(&env, "app", "Ready", |r| support::is_ready_at(r, &first)).await;
    token_secret(&env).await;
    let path = receiver(&env, "pushes", "github", "app", &["push"]).await;
    let url = format!("{}{path}", running.receiver_url);
    let issues = [
        ("X-Hub-Signature-256", format!("sha256={HEX}")),
        ("X-GitHub-Event", "issues".to_string()),
    ];
    let (code, body) = support::post(&url, &borrowed(&issues), PAYLOAD).await;
    assert_eq!(code, 200);
    assert!(body.contains("not in spec.events"), "{body}");

    // Suspended: an authenticated call is answered 503; an unauthenticated one still 401.
    apply::<Receiver>(
        &env,
        json!({"apiVersion": "notification.mooring.dev/v1", "kind": "Receiver",
               "metadata": {"name": "pushes"},
               "spec": {"type": "github", "events": ["push"], "suspend": true,
                        "secretRef": {"name": "hook-token"},
                        "resources": [{"kind": "GitRepository", "name": "app"}]}}),
    )
    .await;
    let api: Api<Receiver> = Api::namespaced(env.client.clone(), &env.namespace);
    let ctx = running.context();
    let watched = ctx.receivers.clone();
    flow::wait_until(
        || {
            watched
                .state()
                .iter()
                .any(|r| r.metadata.name.as_deref() == Some("pushes") && r.spec.suspend)
        },
        30,
    )
    .await;
    let push = [
        ("X-Hub-Signature-256", format!("sha256={HEX}")),
        ("X-GitHub-Event", "push".to_string()),
    ];
    let (code, _) = support::post(&url, &borrowed(&push), PAYLOAD).await;
    assert_eq!(code, 503);
    let (code, _) = support::post(&url, &[("X-GitHub-Event", "push")], PAYLOAD).await;
    assert_eq!(code, 401);

    // A type Flux accepts for registries is refused, naming it.
    refused(
        &env,
        &api,
        "harbor",
        json!({"type": "harbor", "secretRef": {"name": "hook-token"},
               "resources": [{"kind": "GitRepository", "name": "app"}]}),
        "spec.type 'harbor' is not supported",
    )
    .await;

    // `events` with a type whose calls name no event would let no call through: refused,
    // naming the field, instead of a Receiver that is Ready and never fetches.
    refused(
        &env,
        &api,
        "generic-events",
        json!({"type": "generic", "events": ["push"],
               "secretRef": {"name": "hook-token"},
               "resources": [{"kind": "GitRepository", "name": "app"}]}),
        "spec.events is not supported with spec.type 'generic'",
    )
    .await;

    // The schema refuses an interval that would make a loop, as for the other kinds.
    let fast = json!({"apiVersion": "notification.mooring.dev/v1", "kind": "Receiver",
        "metadata": {"name": "fast"},
        "spec": {"type": "github", "interval": "0s", "secretRef": {"name": "hook-token"},
                 "resources": [{"kind": "GitRepository", "name": "app"}]}});
    let err = api
        .patch("fast", &PatchParams::apply("test"), &Patch::Apply(&fast))
        .await
        .expect_err("interval 0s refused");
    assert!(err.to_string().contains("at least 1s"), "{err}");
    running.stop().await;
}

#[tokio::test]
async fn a_push_announced_by_a_github_webhook_is_applied_with_hourly_intervals() {
    let env = test_env("hooks-e2e").await.expect("env");
    let server = GitServer::shared().expect("git server");
    let repo = server
        .create_repo(&flow::unique("hooks-e2e"), Auth::None)
        .expect("repo");
    let first = repo
        .commit(
            &[("deploy/cm.yaml", &flow::config_map_yaml("pushed", "one"))],
            "first",
        )
        .expect("commit");
    let controllers = flow::start(&env, std::time::Duration::from_secs(3600)).await;
    apply::<GitRepository>(
        &env,
        json!({"apiVersion": "source.mooring.dev/v1", "kind": "GitRepository",
               "metadata": {"name": "repo"},
               "spec": {"url": repo.http_url(), "interval": "1h", "ref": {"branch": "main"}}}),
    )
    .await;
    flow::kustomization(&env, "app", json!({"interval": "1h", "path": "./deploy"})).await;
    flow::wait_ks(&env, "app", "applied at the first commit", 90, |k| {
        flow::applied(k, &first)
    })
    .await;
    token_secret(&env).await;
    let path = receiver(&env, "github", "github", "repo", &["push"]).await;

    let second = repo
        .commit(
            &[("deploy/cm.yaml", &flow::config_map_yaml("pushed", "two"))],
            "second",
        )
        .expect("commit");
    let started = std::time::Instant::now();
    let push = [
        ("X-Hub-Signature-256", format!("sha256={HEX}")),
        ("X-GitHub-Event", "push".to_string()),
    ];
    let (code, body) = support::post(
        &format!("{}{path}", controllers.source.receiver_url),
        &borrowed(&push),
        PAYLOAD,
    )
    .await;
    assert_eq!(code, 202, "{body}");
    flow::wait_config_map(&env, "pushed", "the pushed value applied", 90, |cm| {
        flow::data_of(cm, "value").as_deref() == Some("two")
    })
    .await;
    flow::wait_ks(&env, "app", "Ready at the second commit", 90, |k| {
        flow::applied(k, &second)
    })
    .await;
    eprintln!(
        "webhook call to applied: {:.2}s",
        started.elapsed().as_secs_f64()
    );

    // The latency on record: commit ≤ seen by the source ≤ artifact ready ≤ applied.
    let api: Api<mooring_api::Kustomization> = Api::namespaced(env.client.clone(), &env.namespace);
    let ks = api.get("app").await.expect("Kustomization");
    let entry = ks
        .status
        .as_ref()
        .and_then(|s| s.history.first())
        .expect("a history entry")
        .clone();
    let metadata = entry.metadata.clone().unwrap_or_default();
    let at = |key: &str| -> jiff::Timestamp {
        metadata
            .get(key)
            .unwrap_or_else(|| panic!("history metadata has {key}: {metadata:?}"))
            .parse()
            .unwrap_or_else(|e| panic!("{key}: {e}"))
    };
    let secs = |t: jiff::Timestamp| t.as_second();
    let (commit, seen, ready) = (
        at("git.commitTime"),
        at("source.seenTime"),
        at("source.readyTime"),
    );
    let applied = entry.first_reconciled.0;
    assert!(secs(commit) <= secs(seen), "{commit} ≤ {seen}");
    assert!(seen <= ready, "{seen} ≤ {ready}");
    // firstReconciled is written with whole seconds.
    assert!(secs(ready) <= secs(applied), "{ready} ≤ {applied}");
    assert!(
        metadata
            .get("revision")
            .is_some_and(|r| r.ends_with(&second)),
        "the entry is the pushed revision's: {metadata:?}"
    );
    // Both applied revisions were observed in mooring_kustomize_commit_to_applied_seconds.
    let histogram = &controllers.kustomize.context.metrics.commit_to_applied;
    assert!(
        histogram.get_sample_count() >= 2,
        "{}",
        histogram.get_sample_count()
    );
    controllers.stop().await;
}
