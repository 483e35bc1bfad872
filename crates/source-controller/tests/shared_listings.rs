//! GitRepositories with the same URL and credentials share ref listings and fetches, counted
//! at the git server: 50 objects make at most two `ls-refs` per interval window (a listing is
//! shared for half an interval), one fetch and one archive build per new commit, and an object
//! with other credentials for the same URL never uses their listing.

#[path = "../../kustomize-controller/tests/flow/mod.rs"]
mod flow;
mod support;

use std::time::Instant;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use mooring_testkit::TestEnv;
use mooring_testkit::git::{Auth, GitServer, RequestKind};
use mooring_testkit::test_env;
use serde_json::json;

const OBJECTS: usize = 50;

async fn secret(env: &TestEnv, name: &str, data: serde_json::Value) {
    let api: Api<Secret> = Api::namespaced(env.client.clone(), &env.namespace);
    api.patch(
        name,
        &PatchParams::apply("test").force(),
        &Patch::Apply(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name}, "stringData": data})),
    )
    .await
    .expect("secret");
}

fn count(server: &GitServer, repo: &str, kind: RequestKind) -> usize {
    server
        .requests(repo)
        .iter()
        .filter(|r| r.kind == kind && r.status == 200)
        .count()
}

#[tokio::test]
async fn fifty_objects_on_one_url_list_refs_once_per_window_and_credentials_never_share() {
    let env = test_env("shared").await.expect("env");
    let server = GitServer::shared().expect("git server");
    let name = format!("shared-{}", std::process::id());
    let repo = server
        .create_repo(&name, Auth::basic("reader", "pw"))
        .expect("repo");
    let first = repo.commit(&[("a.txt", "1")], "first").expect("commit");
    let running = support::start_with(&env, None, 4, |_| {}).await;
    let ca = server.ca_pem();
    secret(
        &env,
        "team-a",
        json!({"username": "reader", "password": "pw", "ca.crt": ca}),
    )
    .await;
    // The same account, but other credential material: another tenant's Secret.
    secret(
        &env,
        "team-b",
        json!({"username": "reader", "password": "pw", "ca.crt": ca, "note": "team b"}),
    )
    .await;

    let interval_secs = 10;
    let started = Instant::now();
    for i in 0..OBJECTS {
        support::apply_repo(
            &env,
            support::repo_manifest(
                &format!("a{i}"),
                repo.https_url(),
                json!({"interval": format!("{interval_secs}s"), "secretRef": {"name": "team-a"}}),
            ),
        )
        .await;
    }
    let mut artifacts = Vec::new();
    for i in 0..OBJECTS {
        let ready = support::wait_for(&env, &format!("a{i}"), "Ready", |r| {
            support::is_ready_at(r, &first)
        })
        .await;
        artifacts.push(ready.status.and_then(|s| s.artifact).expect("artifact"));
    }
    let cold = started.elapsed();
    let listings = count(server, &name, RequestKind::LsRefs);
    let fetches = count(server, &name, RequestKind::Fetch);
    eprintln!(
        "{OBJECTS} objects Ready in {:.1}s: {listings} ls-refs, {fetches} fetches",
        cold.as_secs_f64()
    );
    // At most two listings per window: the cold start fits in one or two windows. A fetch lists the
    // one ref it fetches on its own connection (gix's protocol v2 fetch asks `ls-refs` first),
    // so those are counted apart.
    let windows = cold.as_secs() / interval_secs + 1;
    let resolving = listings - fetches;
    assert!(
        (1..=2 * windows as usize).contains(&resolving),
        "{resolving} listings for {OBJECTS} objects in {windows} window(s)"
    );
    assert_eq!(fetches, 1, "one fetch for the one commit");

    // One archive built; every other object copied it into its own file, which is served with
    // the digest its status gives.
    let stored = |how: &str| {
        running
            .context()
            .metrics
            .archives
            .with_label_values(&[how])
            .get()
    };
    assert_eq!((stored("built"), stored("copied")), (1, OBJECTS as u64 - 1));
    let digests: std::collections::BTreeSet<_> =
        artifacts.iter().map(|a| a.digest.clone()).collect();
    assert_eq!(digests.len(), 1, "{digests:?}");
    let urls: std::collections::BTreeSet<_> = artifacts.iter().map(|a| a.url.clone()).collect();
    assert_eq!(urls.len(), OBJECTS, "each object serves its own file");
    for artifact in [&artifacts[0], &artifacts[OBJECTS - 1]] {
        let (code, body) = support::download(&artifact.url).await;
        assert_eq!(code, 200, "{}", artifact.url);
        assert_eq!(
            Some(format!("sha256:{}", support::sha256_hex(&body))),
            artifact.digest
        );
    }

    // Another credential for the same URL lists for itself, though a listing is fresh.
    support::apply_repo(
        &env,
        support::repo_manifest(
            "b",
            repo.https_url(),
            json!({"interval": "1h", "secretRef": {"name": "team-b"}}),
        ),
    )
    .await;
    support::wait_for(&env, "b", "Ready", |r| support::is_ready_at(r, &first)).await;
    let with_b = count(server, &name, RequestKind::LsRefs);
    assert!(
        with_b > listings,
        "team-b's object used team-a's listing ({listings} listings before, {with_b} after)"
    );

    // Idle: two more passes of every object, still at most two listings per window.
    let passes = || running.context().metrics.reconcile.total();
    let before = passes();
    let idle_from = Instant::now();
    let listed_before = count(server, &name, RequestKind::LsRefs);
    let target = before + 2 * OBJECTS as u64;
    flow::wait_until(|| passes() >= target, 90).await;
    let idle = idle_from.elapsed();
    let idle_listings = count(server, &name, RequestKind::LsRefs) - listed_before;
    let windows = idle.as_secs() / interval_secs + 2;
    eprintln!(
        "idle: {} passes in {:.1}s, {idle_listings} ls-refs",
        passes() - before,
        idle.as_secs_f64()
    );
    assert!(
        idle_listings as u64 <= 2 * windows,
        "{idle_listings} listings in {:.1}s ({windows} windows of {interval_secs}s)",
        idle.as_secs_f64()
    );
    assert_eq!(
        count(server, &name, RequestKind::Fetch),
        1,
        "no fetch without a new commit"
    );
    // mooring_source_git_requests_total says the same as the server.
    let metrics = &running.context().metrics;
    let made = |op: &str| metrics.git_requests.with_label_values(&[op]).get() as usize;
    assert_eq!(made("fetch"), 1);
    assert_eq!(
        made("ls-refs"),
        count(server, &name, RequestKind::LsRefs) - count(server, &name, RequestKind::Fetch)
    );
    assert!(metrics.git_listings_shared.get() >= 2 * OBJECTS as u64);
    running.stop().await;
}
