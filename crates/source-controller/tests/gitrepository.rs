//! The GitRepository controller end to end: a real API server, a real git server, the artifact
//! server on 127.0.0.1, and the controller running in-process.

mod support;

use std::time::Instant;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use mooring_testkit::git::{Auth, GitServer, RequestKind};
use mooring_testkit::test_env;
use serde_json::json;
use support::*;

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), rand_suffix())
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0)
}

async fn create_secret(env: &mooring_testkit::TestEnv, name: &str, data: serde_json::Value) {
    let api: Api<Secret> = Api::namespaced(env.client.clone(), &env.namespace);
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": name}, "stringData": data}))
            .expect("secret");
    api.create(&PostParams::default(), &secret)
        .await
        .expect("create secret");
}

#[tokio::test]
async fn a_repository_becomes_ready_with_a_downloadable_artifact_and_follows_new_commits() {
    let env = test_env("src-http").await.expect("env");
    let server = GitServer::shared().expect("git server");
    let repo = server
        .create_repo(&unique("app"), Auth::None)
        .expect("repo");
    let first = repo
        .commit(&[("deploy/cm.yaml", "kind: ConfigMap\n")], "first")
        .expect("commit");
    let running = start(&env, None).await;

    server.clear_requests(repo.name());
    let started = Instant::now();
    apply_repo(&env, repo_manifest("app", repo.http_url(), json!({}))).await;
    let ready = wait_for(&env, "app", "Ready at the first commit", |r| {
        is_ready_at(r, &first)
    })
    .await;
    eprintln!("first artifact in {}", since(started));
    let artifact = ready
        .status
        .as_ref()
        .and_then(|s| s.artifact.clone())
        .expect("artifact");
    assert_eq!(artifact.revision, format!("main@sha1:{first}"));
    let (code, body) = download(&artifact.url).await;
    assert_eq!(code, 200, "{}", artifact.url);
    assert_eq!(
        artifact.digest.as_deref(),
        Some(format!("sha256:{}", sha256_hex(&body)).as_str())
    );
    assert_eq!(artifact.size, Some(body.len() as i64));
    let meta = artifact.metadata.clone().unwrap_or_default();
    assert_eq!(meta.get("git.subject").map(String::as_str), Some("first"));
    // A URL never fetched is fetched at once, without a listing of its own first: the server
    // sees only the fetch's capability request, `ls-refs` and `fetch`.
    let kinds: Vec<RequestKind> = server
        .requests(repo.name())
        .iter()
        .map(|r| r.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            RequestKind::RefAdvertisement,
            RequestKind::LsRefs,
            RequestKind::Fetch
        ],
        "the requests of a new GitRepository"
    );

    // Nothing is fetched when nothing changed: ask for a reconcile and watch it being handled.
    server.clear_requests(repo.name());
    let api: Api<mooring_api::GitRepository> = Api::namespaced(env.client.clone(), &env.namespace);
    let patch =
        json!({"metadata": {"annotations": {"reconcile.mooring.dev/requestedAt": "now-1"}}});
    api.patch("app", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("annotate");
    wait_for(&env, "app", "the reconcile request handled", |r| {
        r.status
            .as_ref()
            .and_then(|s| s.last_handled_reconcile_at.as_deref())
            == Some("now-1")
    })
    .await;
    // One `ls-refs`: the capabilities the fetch's handshake showed are not asked for again.
    let kinds: Vec<RequestKind> = server
        .requests(repo.name())
        .iter()
        .map(|r| r.kind)
        .collect();
    assert_eq!(
        kinds,
        [RequestKind::LsRefs],
        "the remote refs were listed, and no pack was fetched for an unchanged commit"
    );

    // A new commit produces a new artifact and revision.
    let second = repo
        .commit(&[("deploy/cm2.yaml", "kind: ConfigMap\n")], "second")
        .expect("commit");
    let patch =
        json!({"metadata": {"annotations": {"reconcile.mooring.dev/requestedAt": "now-2"}}});
    api.patch("app", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("annotate");
    let updated = wait_for(&env, "app", "Ready at the second commit", |r| {
        is_ready_at(r, &second)
    })
    .await;
    let new_artifact = updated.status.and_then(|s| s.artifact).expect("artifact");
    assert_ne!(new_artifact.digest, artifact.digest);
    assert_eq!(
        server.fetch_count(repo.name()),
        1,
        "one fetch for one new commit"
    );
    running.stop().await;
}

#[tokio::test]
async fn the_same_commit_gives_a_byte_identical_artifact_and_a_wiped_storage_is_rebuilt() {
    let env = test_env("src-determinism").await.expect("env");
    let server = GitServer::shared().expect("git server");
    let repo = server
        .create_repo(&unique("det"), Auth::None)
        .expect("repo");
    let commit = repo
        .commit(&[("a.yaml", "a: 1\n"), ("dir/b.yaml", "b: 2\n")], "files")
        .expect("commit");
    let storage = tempfile::tempdir().expect("tempdir");
    let running = start(&env, Some(storage.path().to_path_buf())).await;
    apply_repo(&env, repo_manifest("det", repo.http_url(), json!({}))).await;
    let first = wait_for(&env, "det", "Ready", |r| is_ready_at(r, &commit)).await;
    let artifact = first.status.and_then(|s| s.artifact).expect("artifact");
    running.stop().await;

    // Wipe the storage and restart: the artifact is rebuilt, byte for byte.
    std::fs::remove_dir_all(storage.path()).expect("wipe");
    let running = start(&env, Some(storage.path().to_path_buf())).await;
    let api: Api<mooring_api::GitRepository> = Api::namespaced(env.client.clone(), &env.namespace);
    let patch =
        json!({"metadata": {"annotations": {"reconcile.mooring.dev/requestedAt": "after-wipe"}}});
    api.patch("det", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("annotate");
    let rebuilt = wait_for(&env, "det", "rebuilt after the wipe", |r| {
        r.status
            .as_ref()
            .and_then(|s| s.last_handled_reconcile_at.as_deref())
            == Some("after-wipe")
            && is_ready_at(r, &commit)
    })
    .await;
    let again = rebuilt.status.and_then(|s| s.artifact).expect("artifact");
    assert_eq!(
        again.digest, artifact.digest,
        "same commit, same settings: same digest"
    );
    let (code, body) = download(&again.url).await;
    assert_eq!(code, 200);
    assert_eq!(
        format!("sha256:{}", sha256_hex(&body)),
        again.digest.clone().unwrap_or_default()
    );
    running.stop().await;
}

#[tokio::test]
async fn authentication_over_https_and_ssh() {
    let env = test_env("src-auth").await.expect("env");
    let server = GitServer::shared().expect("git server");
    let running = start(&env, None).await;

    let basic = server
        .create_repo(&unique("basic"), Auth::basic("git", "s3cret"))
        .expect("repo");
    let basic_commit = basic.head("main").expect("head");
    create_secret(
        &env,
        "basic",
        json!({"username": "git", "password": "s3cret", "ca.crt": server.ca_pem()}),
    )
    .await;
    apply_repo(
        &env,
        repo_manifest(
            "basic",
            basic.https_url(),
            json!({"secretRef": {"name": "basic"}}),
        ),
    )
    .await;

    let bearer = server
        .create_repo(&unique("bearer"), Auth::bearer("t0ken"))
        .expect("repo");
    let bearer_commit = bearer.head("main").expect("head");
    create_secret(
        &env,
        "bearer",
        json!({"bearerToken": "t0ken", "ca.crt": server.ca_pem()}),
    )
    .await;
    apply_repo(
        &env,
        repo_manifest(
            "bearer",
            bearer.https_url(),
            json!({"secretRef": {"name": "bearer"}}),
        ),
    )
    .await;

    let ssh = server
        .create_repo(&unique("ssh"), Auth::None)
        .expect("repo");
    let ssh_commit = ssh.head("main").expect("head");
    create_secret(
        &env,
        "ssh",
        json!({"identity": server.user_key_pem(), "known_hosts": server.known_hosts()}),
    )
    .await;
    apply_repo(
        &env,
        repo_manifest("ssh", ssh.ssh_url(), json!({"secretRef": {"name": "ssh"}})),
    )
    .await;

    wait_for(&env, "basic", "Ready over HTTPS with basic auth", |r| {
        is_ready_at(r, &basic_commit)
    })
    .await;
    wait_for(
        &env,
        "bearer",
        "Ready over HTTPS with a bearer token",
        |r| is_ready_at(r, &bearer_commit),
    )
    .await;
    wait_for(&env, "ssh", "Ready over SSH", |r| {
        is_ready_at(r, &ssh_commit)
    })
    .await;
    running.stop().await;
}

#[tokio::test]
async fn a_missing_branch_of_a_url_never_fetched_names_the_default_branch() {
    let env = test_env("src-newref").await.expect("env");
    let server = GitServer::shared().expect("git server");
    let repo = server
        .create_repo(&unique("newref"), Auth::None)
        .expect("repo");
    let running = start(&env, None).await;
    // The first pass fetches the branch without listing it; the fetch finds no such ref, and
    // the pass reports it as a listing would.
    apply_repo(
        &env,
        repo_manifest(
            "newref",
            repo.http_url(),
            json!({"ref": {"branch": "nope"}}),
        ),
    )
    .await;
    let failed = wait_for(&env, "newref", "Ready=False for a missing branch", |r| {
        ready(r).is_some_and(|(s, _, _)| s == "False")
    })
    .await;
    let (_, reason, message) = ready(&failed).expect("Ready");
    assert!(
        message.contains("branch 'nope' not found") && message.contains("'main'"),
        "{reason}: {message}"
    );
    assert!(
        failed
            .status
            .as_ref()
            .and_then(|s| s.artifact.as_ref())
            .is_none(),
        "no artifact"
    );
    running.stop().await;
}

#[tokio::test]
async fn bad_input_is_reported_and_the_last_artifact_stays() {
    let env = test_env("src-bad").await.expect("env");
    let server = GitServer::shared().expect("git server");
    let running = start(&env, None).await;
    let repo = server
        .create_repo(&unique("guarded"), Auth::basic("git", "right"))
        .expect("repo");
    let commit = repo.head("main").expect("head");
    create_secret(
        &env,
        "creds",
        json!({"username": "git", "password": "right", "ca.crt": server.ca_pem()}),
    )
    .await;
    apply_repo(
        &env,
        repo_manifest(
            "guarded",
            repo.https_url(),
            json!({"secretRef": {"name": "creds"}}),
        ),
    )
    .await;
    let good = wait_for(&env, "guarded", "Ready", |r| is_ready_at(r, &commit)).await;
    let good_artifact = good.status.and_then(|s| s.artifact).expect("artifact");

    // A missing branch: Ready=False naming the branch, the artifact unchanged and still served.
    apply_repo(
        &env,
        repo_manifest(
            "guarded",
            repo.https_url(),
            json!({"secretRef": {"name": "creds"}, "ref": {"branch": "nope"}}),
        ),
    )
    .await;
    let failed = wait_for(&env, "guarded", "Ready=False for a missing branch", |r| {
        ready(r).is_some_and(|(s, _, m)| s == "False" && m.contains("nope"))
    })
    .await;
    assert_eq!(
        failed.status.as_ref().and_then(|s| s.artifact.clone()),
        Some(good_artifact.clone())
    );
    assert_eq!(
        download(&good_artifact.url).await.0,
        200,
        "the last artifact is still served"
    );

    // A missing Secret names the Secret.
    apply_repo(
        &env,
        repo_manifest(
            "guarded",
            repo.https_url(),
            json!({"secretRef": {"name": "absent"}}),
        ),
    )
    .await;
    wait_for(&env, "guarded", "Ready=False for a missing Secret", |r| {
        ready(r).is_some_and(|(s, reason, m)| {
            s == "False" && reason == "AuthenticationFailed" && m.contains("absent")
        })
    })
    .await;

    // A wrong password is an authentication failure, and the password never shows.
    create_secret(
        &env,
        "wrong",
        json!({"username": "git", "password": "wrong-pass", "ca.crt": server.ca_pem()}),
    )
    .await;
    apply_repo(
        &env,
        repo_manifest(
            "guarded",
            repo.https_url(),
            json!({"secretRef": {"name": "wrong"}}),
        ),
    )
    .await;
    let denied = wait_for(&env, "guarded", "Ready=False for a wrong password", |r| {
        ready(r).is_some_and(|(s, reason, _)| s == "False" && reason == "AuthenticationFailed")
    })
    .await;
    let text = serde_json::to_string(&denied.status).expect("json");
    assert!(
        !text.contains("wrong-pass"),
        "a secret leaked into status: {text}"
    );

    // An unreachable host.
    apply_repo(
        &env,
        repo_manifest("guarded", "http://127.0.0.1:9/none.git", json!({})),
    )
    .await;
    wait_for(
        &env,
        "guarded",
        "Ready=False for an unreachable host",
        |r| {
            ready(r).is_some_and(|(s, _, _)| s == "False")
                && r.status
                    .as_ref()
                    .is_some_and(|s| s.artifact.as_ref() == Some(&good_artifact))
        },
    )
    .await;
    running.stop().await;
}

#[tokio::test]
async fn an_included_repository_is_copied_in_and_its_change_triggers_the_includer() {
    let env = test_env("src-include").await.expect("env");
    let server = GitServer::shared().expect("git server");
    let running = start(&env, None).await;
    let lib = server
        .create_repo(&unique("lib"), Auth::None)
        .expect("repo");
    let lib_commit = lib
        .commit(&[("base/cm.yaml", "kind: ConfigMap\n")], "lib")
        .expect("commit");
    let app = server
        .create_repo(&unique("app"), Auth::None)
        .expect("repo");
    let app_commit = app
        .commit(&[("app.yaml", "app: 1\n")], "app")
        .expect("commit");
    apply_repo(&env, repo_manifest("lib", lib.http_url(), json!({}))).await;
    apply_repo(&env, repo_manifest("app", app.http_url(), json!({"include": [{"repository": {"name": "lib"}, "fromPath": "base", "toPath": "vendor/lib"}]}))).await;
    wait_for(&env, "lib", "Ready", |r| is_ready_at(r, &lib_commit)).await;
    let first = wait_for(&env, "app", "Ready with the include", |r| {
        is_ready_at(r, &app_commit)
            && r.status
                .as_ref()
                .is_some_and(|s| s.included_artifacts.len() == 1)
    })
    .await;
    let first_digest = first.status.and_then(|s| s.artifact).and_then(|a| a.digest);

    // A new commit in the included repository rebuilds the includer without touching it.
    let lib_second = lib
        .commit(&[("base/cm2.yaml", "kind: ConfigMap\n")], "lib 2")
        .expect("commit");
    let api: Api<mooring_api::GitRepository> = Api::namespaced(env.client.clone(), &env.namespace);
    let patch =
        json!({"metadata": {"annotations": {"reconcile.mooring.dev/requestedAt": "lib-2"}}});
    api.patch("lib", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("annotate");
    wait_for(&env, "lib", "Ready at the new commit", |r| {
        is_ready_at(r, &lib_second)
    })
    .await;
    wait_for(&env, "app", "rebuilt after the include changed", |r| {
        r.status
            .as_ref()
            .and_then(|s| s.artifact.as_ref())
            .and_then(|a| a.digest.clone())
            != first_digest
    })
    .await;
    running.stop().await;
}

#[tokio::test]
async fn deleting_a_repository_removes_its_artifacts() {
    let env = test_env("src-delete").await.expect("env");
    let server = GitServer::shared().expect("git server");
    let running = start(&env, None).await;
    let repo = server
        .create_repo(&unique("gone"), Auth::None)
        .expect("repo");
    let commit = repo.head("main").expect("head");
    apply_repo(&env, repo_manifest("gone", repo.http_url(), json!({}))).await;
    let ready = wait_for(&env, "gone", "Ready", |r| is_ready_at(r, &commit)).await;
    let path = running.storage.join(
        ready
            .status
            .and_then(|s| s.artifact)
            .expect("artifact")
            .path,
    );
    assert!(path.is_file());
    let api: Api<mooring_api::GitRepository> = Api::namespaced(env.client.clone(), &env.namespace);
    api.delete("gone", &Default::default())
        .await
        .expect("delete");
    let deleted = kube::runtime::wait::await_condition(
        api,
        "gone",
        |r: Option<&mooring_api::GitRepository>| r.is_none(),
    );
    tokio::time::timeout(std::time::Duration::from_secs(60), deleted)
        .await
        .expect("deleted in time")
        .expect("watch");
    assert!(
        !path.exists(),
        "the artifact was removed with its GitRepository"
    );
    running.stop().await;
}

#[tokio::test]
async fn unsupported_settings_stall_and_a_suspended_repository_is_left_alone() {
    let env = test_env("src-stall").await.expect("env");
    let server = GitServer::shared().expect("git server");
    let running = start(&env, None).await;
    let repo = server
        .create_repo(&unique("stall"), Auth::None)
        .expect("repo");
    apply_repo(
        &env,
        repo_manifest(
            "verify",
            repo.http_url(),
            json!({"verify": {"mode": "Tag", "secretRef": {"name": "keys"}}}),
        ),
    )
    .await;
    let stalled = wait_for(&env, "verify", "Stalled on spec.verify.mode", |r| {
        r.status
            .as_ref()
            .is_some_and(|s| mooring_api::conditions::is_stalled(&s.conditions))
    })
    .await;
    let (_, _, message) = ready(&stalled).expect("Ready");
    assert!(message.contains("spec.verify.mode"), "{message}");
    assert!(
        stalled.status.and_then(|s| s.artifact).is_none(),
        "nothing unverified is published"
    );

    // Suspended from the start: never fetched. Resuming reconciles it.
    server.clear_requests(repo.name());
    apply_repo(
        &env,
        repo_manifest("paused", repo.http_url(), json!({"suspend": true})),
    )
    .await;
    apply_repo(&env, repo_manifest("marker", repo.http_url(), json!({}))).await;
    let commit = repo.head("main").expect("head");
    wait_for(&env, "marker", "Ready (the controller is running)", |r| {
        is_ready_at(r, &commit)
    })
    .await;
    let api: Api<mooring_api::GitRepository> = Api::namespaced(env.client.clone(), &env.namespace);
    assert!(
        api.get("paused")
            .await
            .expect("get")
            .status
            .and_then(|s| s.artifact)
            .is_none()
    );
    apply_repo(
        &env,
        repo_manifest("paused", repo.http_url(), json!({"suspend": false})),
    )
    .await;
    wait_for(&env, "paused", "Ready after resuming", |r| {
        is_ready_at(r, &commit)
    })
    .await;
    running.stop().await;
}

/// Everything the API server holds about the namespace's GitRepositories and Events, as text.
async fn visible_text(env: &mooring_testkit::TestEnv) -> String {
    use k8s_openapi::api::events::v1::Event;
    let repos: Api<mooring_api::GitRepository> =
        Api::namespaced(env.client.clone(), &env.namespace);
    let events: Api<Event> = Api::namespaced(env.client.clone(), &env.namespace);
    let repos = repos.list(&Default::default()).await.expect("list");
    let events = events.list(&Default::default()).await.expect("list");
    let statuses: Vec<_> = repos.items.iter().map(|r| &r.status).collect();
    let notes: Vec<_> = events.items.iter().map(|e| &e.note).collect();
    format!(
        "{}\n{}",
        serde_json::to_string(&statuses).expect("json"),
        serde_json::to_string(&notes).expect("json")
    )
}

#[tokio::test]
async fn a_token_written_as_the_url_user_never_shows() {
    let env = test_env("src-url-token").await.expect("env");
    let server = GitServer::shared().expect("git server");
    let running = start(&env, None).await;
    let repo = server
        .create_repo(&unique("token"), Auth::basic("git", "s3cret"))
        .expect("repo");
    let token = "ghp_Marker7Q2w9TokenValue";
    let with_token = |url: &str| url.replacen("://", &format!("://{token}@"), 1);

    // Over plain http: refused before anything is sent.
    apply_repo(
        &env,
        repo_manifest("plain", &with_token(repo.http_url()), json!({})),
    )
    .await;
    // Over https: the server refuses the token, and says so.
    create_secret(&env, "ca", json!({"ca.crt": server.ca_pem()})).await;
    apply_repo(
        &env,
        repo_manifest(
            "tls",
            &with_token(repo.https_url()),
            json!({"secretRef": {"name": "ca"}}),
        ),
    )
    .await;
    let refused = |r: &mooring_api::GitRepository, text: &str| {
        ready(r).is_some_and(|(s, _, m)| s == "False" && m.contains(text))
    };
    wait_for(&env, "plain", "refused over plain http", |r| {
        refused(r, "plain http")
    })
    .await;
    let tls = wait_for(&env, "tls", "refused by the server", |r| {
        ready(r).is_some_and(|(s, _, _)| s == "False")
    })
    .await;
    let (_, reason, message) = ready(&tls).expect("Ready");
    assert_eq!(reason, "AuthenticationFailed", "{message}");
    assert!(message.contains("https://***@127.0.0.1"), "{message}");
    let seen = visible_text(&env).await;
    assert!(!seen.contains(token), "the token shows:\n{seen}");
    assert!(
        !seen.contains("Marker7Q2w9"),
        "part of the token shows:\n{seen}"
    );
    running.stop().await;
}
