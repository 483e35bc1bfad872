//! What a Kustomization costs the API server and the machine: the requests of a cold start,
//! and the kustomize processes of shared and unchanged renders. Counted on the kube client of
//! the in-process kustomize-controller and on its metrics, against the real API server.

mod flow;

use std::collections::BTreeMap;
use std::time::Duration;

use flow::*;
use mooring_testkit::git::{Auth, GitServer, Repo};
use mooring_testkit::test_env;

const SLOW: Duration = Duration::from_secs(3600);

/// The four objects of the bench's app (ConfigMap, Service, ServiceAccount, Role), named with
/// `prefix`, under `dir`.
fn app_files(dir: &str, prefix: &str) -> Vec<(String, String)> {
    let cm = config_map_yaml(&format!("{prefix}-config"), "1");
    let svc = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {prefix}-svc\nspec:\n  ports:\n  - port: 80\n    targetPort: 8080\n  selector:\n    app: {prefix}\n"
    );
    let sa = format!("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {prefix}-sa\n");
    let role = format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: {prefix}-role\nrules:\n- apiGroups: [\"\"]\n  resources: [\"configmaps\"]\n  verbs: [\"get\"]\n"
    );
    vec![
        (format!("{dir}/cm.yaml"), cm),
        (format!("{dir}/svc.yaml"), svc),
        (format!("{dir}/sa.yaml"), sa),
        (format!("{dir}/role.yaml"), role),
    ]
}

fn push(repo: &Repo, files: &[(String, String)]) -> String {
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    repo.commit(&refs, "apps").expect("commit")
}

/// Requests as "METHOD resource[/subresource][ dry-run]" with their counts.
fn by_kind(requests: &[(String, String)]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (method, path) in requests {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        // /api/v1/namespaces/ns/<resource>/<name>[/<sub>] or /apis/g/v/namespaces/ns/...
        let after_ns = parts
            .iter()
            .position(|p| *p == "namespaces")
            .map_or(&parts[..0], |i| &parts[(i + 2).min(parts.len())..]);
        let mut what = format!("{method} {}", after_ns.first().unwrap_or(&path));
        if let Some(sub) = after_ns.get(2) {
            what.push('/');
            what.push_str(sub);
        }
        if query.contains("dryRun") {
            what.push_str(" dry-run");
        }
        if query.contains("watch=true") {
            what.push_str(" watch");
        }
        *counts.entry(what).or_insert(0) += 1;
    }
    counts
}

/// A repository with two four-object apps (`./warm` and `./app`), both controllers, and the
/// app `warm` applied and Ready (with `wait`): discovery and the live view's watches are per
/// controller, not per app, and are paid by it. Returns the commit.
async fn warmed_up(env: &mooring_testkit::TestEnv, prefix: &str) -> (Controllers, String) {
    let repo = GitServer::shared()
        .expect("git server")
        .create_repo(&unique(prefix), Auth::None)
        .expect("repo");
    let mut files = app_files("warm", "warm");
    files.extend(app_files("app", "app"));
    let commit = push(&repo, &files);
    let controllers = start(env, SLOW).await;
    git_repository(env, "repo", repo.http_url()).await;
    kustomization(
        env,
        "warm",
        serde_json::json!({"path": "./warm", "wait": true}),
    )
    .await;
    wait_ks(env, "warm", "the first app Ready", 60, |k| {
        applied(k, &commit)
    })
    .await;
    (controllers, commit)
}

#[tokio::test]
async fn a_cold_start_of_a_four_object_app_costs_at_most_ten_requests() {
    let env = test_env("cost-cold").await.expect("env");
    let (controllers, commit) = warmed_up(&env, "cost-cold").await;

    let before = controllers.request_count();
    kustomization(
        &env,
        "app",
        serde_json::json!({"path": "./app", "wait": true}),
    )
    .await;
    wait_ks(&env, "app", "the measured app Ready", 60, |k| {
        applied(k, &commit)
    })
    .await;
    // Events are published before the status write that the wait saw.
    let sent: Vec<(String, String)> = controllers
        .requests_since(before)
        .into_iter()
        .filter(|(_, p)| !p.contains("/warm"))
        .collect();
    let counts = by_kind(&sent);
    eprintln!("requests of one cold start: {} {counts:#?}", sent.len());
    let dry_runs = sent.iter().filter(|(_, p)| p.contains("dryRun")).count();
    let gets = sent
        .iter()
        .filter(|(m, p)| m == "GET" && !p.contains("watch=true"))
        .count();
    assert_eq!(
        dry_runs, 0,
        "objects that do not exist need no dry run: {counts:#?}"
    );
    assert_eq!(gets, 0, "health comes from the apply answers: {counts:#?}");
    assert!(
        sent.len() <= 10,
        "a cold start sent {} requests: {counts:#?}",
        sent.len()
    );
    // The view listed these kinds before the measured app: its objects were seen absent, and
    // creating what was never applied restores no drift.
    assert_eq!(
        controllers.drift_corrections(),
        0,
        "first applies counted as drift corrections"
    );
    controllers.stop().await;
}

#[tokio::test]
async fn a_new_app_takes_one_pass_and_the_echoes_of_its_writes_start_none() {
    let env = test_env("cost-passes").await.expect("env");
    let (controllers, commit) = warmed_up(&env, "cost-passes").await;

    let before = controllers.reconciles();
    kustomization(&env, "app", serde_json::json!({"path": "./app"})).await;
    wait_ks(&env, "app", "Ready", 60, |k| applied(k, &commit)).await;
    // The watch events of the finalizer and of the four applies come back while the pass runs
    // or right after it; a requested pass, served after any pass they would have started,
    // marks the end of what they could cost.
    poke_kustomization(&env, "app", "count").await;
    wait_ks(&env, "app", "the request handled", 30, |k| {
        k.status
            .as_ref()
            .and_then(|s| s.last_handled_reconcile_at.as_deref())
            == Some("count")
    })
    .await;
    assert_eq!(
        controllers.reconciles() - before,
        2,
        "one pass adds the finalizer and applies, one serves the request; none for the events \
         of its own writes"
    );
    controllers.stop().await;
}

#[tokio::test]
async fn a_pass_reports_each_step_it_took_and_the_queue_how_long_the_object_waited() {
    let env = test_env("cost-steps").await.expect("env");
    // `warm` took one pass past the gate: finalizer, render, apply, prune (none stale),
    // health and status.
    let (controllers, _) = warmed_up(&env, "cost-steps").await;
    let metrics = &controllers.kustomize.context.metrics;
    let count = |step: &str| metrics.steps.with_label_values(&[step]).get_sample_count();
    // The status step is recorded when the write's answer comes back, which can be after the
    // watch showed the written status.
    wait_until(|| count("status") >= 1, 30).await;
    for step in [
        "finalizer",
        "target",
        "render",
        "plan",
        "apply",
        "prune",
        "events",
        "health",
        "status",
    ] {
        assert!(count(step) >= 1, "no sample of step {step}");
    }
    assert!(metrics.queue.wait.get_sample_count() >= 1);
    let scraped = prometheus::TextEncoder::new()
        .encode_to_string(&metrics.registry.gather())
        .expect("encode");
    for series in [
        "mooring_kustomize_pass_step_seconds_count{step=\"apply\"}",
        "mooring_kustomize_queue_depth",
        "mooring_kustomize_queue_wait_seconds_count",
    ] {
        assert!(scraped.contains(series), "{series} not on /metrics");
    }
    controllers.stop().await;
}

/// Kustomization `name` rendering `./shared` with `${app}` set to `name`.
async fn shared_app(env: &mooring_testkit::TestEnv, name: &str, interval: &str) {
    kustomization(
        env,
        name,
        serde_json::json!({"path": "./shared", "interval": interval,
            "postBuild": {"substitute": {"app": name}}}),
    )
    .await;
}

#[tokio::test]
async fn kustomizations_sharing_a_build_input_run_kustomize_once_and_unchanged_passes_never() {
    let env = test_env("cost-builds").await.expect("env");
    let repo = GitServer::shared()
        .expect("git server")
        .create_repo(&unique("cost-builds"), Auth::None)
        .expect("repo");
    let cm =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${app}\ndata:\n  app: ${app}\n";
    let commit = repo
        .commit(&[("shared/cm.yaml", cm)], "one template")
        .expect("commit");
    let controllers = start(&env, SLOW).await;
    git_repository(&env, "repo", repo.http_url()).await;
    let builds = || controllers.kustomize.context.metrics.builds.get();
    let names = ["a", "b", "c"];
    for name in names {
        shared_app(&env, name, "10m").await;
    }
    for name in names {
        wait_ks(&env, name, "Ready", 60, |k| applied(k, &commit)).await;
        wait_config_map(&env, &format!("cm-{name}"), "substituted", 10, |cm| {
            data_of(cm, "app").as_deref() == Some(name)
        })
        .await;
    }
    assert_eq!(
        builds(),
        1,
        "three Kustomizations of one path and overrides, one build"
    );

    // A spec change that does not touch the build (a new generation: the Kustomization's own
    // remembered render no longer matches), and requested passes of all three: no build.
    shared_app(&env, "a", "9m").await;
    wait_ks(&env, "a", "the new generation observed", 60, |k| {
        k.status.as_ref().and_then(|s| s.observed_generation) == k.metadata.generation
            && applied(k, &commit)
    })
    .await;
    for name in names {
        let passes = controllers.reconciles();
        poke_kustomization(&env, name, "again").await;
        wait_until(|| controllers.reconciles() > passes, 30).await;
    }
    assert_eq!(builds(), 1, "unchanged input, no kustomize run");

    // Another path is another build.
    let other = repo
        .commit(
            &[("other/cm.yaml", &config_map_yaml("other", "1"))],
            "another path",
        )
        .expect("commit");
    poke_source(&env, "repo", "other").await;
    for name in names {
        wait_ks(&env, name, "Ready at the new commit", 60, |k| {
            applied(k, &other)
        })
        .await;
    }
    assert_eq!(builds(), 2, "a new artifact is built once for the three");
    kustomization(&env, "d", serde_json::json!({"path": "./other"})).await;
    wait_ks(&env, "d", "Ready", 60, |k| applied(k, &other)).await;
    assert_eq!(builds(), 3);
    controllers.stop().await;
}

#[tokio::test]
async fn a_build_that_would_fail_the_same_way_is_not_run_again_for_its_retries() {
    let env = test_env("cost-failed-build").await.expect("env");
    let repo = GitServer::shared()
        .expect("git server")
        .create_repo(&unique("cost-failed-build"), Auth::None)
        .expect("repo");
    // kustomize refuses it: the resource it lists is not there.
    let broken = repo
        .commit(
            &[("app/kustomization.yaml", "resources:\n- missing.yaml\n")],
            "a broken kustomization",
        )
        .expect("commit");
    let controllers = start(&env, SLOW).await;
    git_repository(&env, "repo", repo.http_url()).await;
    let builds = || controllers.kustomize.context.metrics.builds.get();
    kustomization(
        &env,
        "app",
        serde_json::json!({"path": "./app", "retryInterval": "1s"}),
    )
    .await;
    let failed = |k: &mooring_api::Kustomization| {
        ready(k).is_some_and(|(s, reason, m)| {
            s == "False" && reason == "BuildFailed" && m.contains("missing.yaml")
        })
    };
    wait_ks(&env, "app", "BuildFailed naming the file", 60, failed).await;
    let first = builds();
    assert!(first >= 1, "the failure came from a build");
    // Retries every second: several passes, and none runs kustomize for the same input.
    let passes = controllers.reconciles();
    wait_until(|| controllers.reconciles() >= passes + 3, 30).await;
    assert_eq!(builds(), first, "the retries reuse the failure");
    wait_ks(&env, "app", "still BuildFailed", 10, failed).await;

    // A reconcile request builds again.
    poke_kustomization(&env, "app", "again").await;
    wait_ks(&env, "app", "the request handled", 30, |k| {
        k.status
            .as_ref()
            .and_then(|s| s.last_handled_reconcile_at.as_deref())
            == Some("again")
    })
    .await;
    assert_eq!(builds(), first + 1, "a requested pass runs the build");

    // The fix is built at once.
    let fixed = repo
        .commit(
            &[
                ("app/kustomization.yaml", "resources:\n- cm.yaml\n"),
                ("app/cm.yaml", &config_map_yaml("fixed", "1")),
            ],
            "fixed",
        )
        .expect("commit");
    assert_ne!(fixed, broken);
    poke_source(&env, "repo", "fixed").await;
    wait_ks(&env, "app", "Ready at the fix", 60, |k| applied(k, &fixed)).await;
    assert_eq!(builds(), first + 2);
    controllers.stop().await;
}

#[tokio::test]
async fn a_kustomization_created_with_its_source_writes_no_waiting_status_at_first() {
    let env = test_env("cost-new-source").await.expect("env");
    let requeue = Duration::from_secs(3);
    let controllers = start(&env, requeue).await;
    // A source that exists but gets no artifact and does not fail while the test runs: its
    // server accepts connections and never answers (the fetch's timeout is 10 minutes).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let api: kube::Api<mooring_api::GitRepository> =
        kube::Api::namespaced(env.client.clone(), &env.namespace);
    apply_json(&api, serde_json::json!({
        "apiVersion": "source.mooring.dev/v1", "kind": "GitRepository", "metadata": {"name": "repo"},
        "spec": {"url": format!("http://127.0.0.1:{port}/silent.git"), "interval": "10m",
                 "timeout": "10m"}
    }))
    .await;
    // The kustomize-controller knows the source before the Kustomization comes (else its
    // first pass reports the source not found).
    let source = kube::runtime::reflector::ObjectRef::new("repo").within(&env.namespace);
    let sources = controllers.kustomize.context.sources.clone();
    wait_until(|| sources.get(&source).is_some(), 30).await;
    let kustomizations: kube::Api<mooring_api::Kustomization> =
        kube::Api::namespaced(env.client.clone(), &env.namespace);
    let passes = controllers.reconciles();
    let created = std::time::Instant::now();
    kustomization(&env, "fresh", serde_json::json!({"path": "./app"})).await;
    wait_until(|| controllers.reconciles() > passes, 30).await;
    // The first pass wrote nothing, neither status nor finalizer: the source's artifact or
    // failure would have woken it, and nothing applied needs the finalizer yet.
    let after_first = kustomizations.get("fresh").await.expect("get");
    assert!(
        after_first.metadata.finalizers.is_none()
            && after_first
                .status
                .as_ref()
                .is_none_or(|s| s.conditions.is_empty()),
        "the first pass wrote: finalizers {:?}, status {:?}",
        after_first.metadata.finalizers,
        after_first.status
    );
    let waiting = wait_ks(&env, "fresh", "the wait reported", 60, |k| {
        ready(k).is_some_and(|(_, _, m)| m.contains("has no artifact yet"))
    })
    .await;
    // The pass `--requeue-dependency` later found the Kustomization no longer new and
    // reported; the finalizer waits for a pass that gets past the gate (it applies nothing
    // before).
    let after = created.elapsed();
    assert!(
        after >= requeue - Duration::from_millis(500),
        "the wait was reported {after:?} after creation: {:?}",
        ready(&waiting)
    );
    assert_eq!(
        waiting.metadata.finalizers, None,
        "no finalizer while it waits"
    );
    // Having applied nothing, it goes at once when deleted.
    kustomizations
        .delete("fresh", &Default::default())
        .await
        .expect("delete");
    assert!(
        kustomizations
            .get_opt("fresh")
            .await
            .expect("get")
            .is_none(),
        "deleted at once"
    );
    drop(silent);
    controllers.stop().await;
}

#[tokio::test]
async fn a_kustomization_of_a_suspended_source_reports_the_wait_at_once() {
    let env = test_env("cost-suspended-source").await.expect("env");
    // `--requeue-dependency` of an hour: only the first pass can report in this test.
    let controllers = start(&env, SLOW).await;
    let api: kube::Api<mooring_api::GitRepository> =
        kube::Api::namespaced(env.client.clone(), &env.namespace);
    apply_json(&api, serde_json::json!({
        "apiVersion": "source.mooring.dev/v1", "kind": "GitRepository", "metadata": {"name": "repo"},
        "spec": {"url": "http://127.0.0.1:9/none.git", "interval": "10m", "suspend": true}
    }))
    .await;
    kustomization(&env, "fresh", serde_json::json!({"path": "./app"})).await;
    let waiting = wait_ks(&env, "fresh", "the wait reported", 60, |k| {
        ready(k).is_some()
    })
    .await;
    let (status, reason, message) = ready(&waiting).expect("Ready");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "ArtifactFailed")
    );
    let suspended = |source: &str| {
        format!(
            "GitRepository '{}/{source}' has no artifact yet: it is suspended (spec.suspend)",
            env.namespace
        )
    };
    assert_eq!(message, suspended("repo"));

    // A Kustomization already waiting, silently, for a source that then is suspended: the
    // suspension wakes it (the source-controller writes nothing for a suspended object).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    apply_json(
        &api,
        serde_json::json!({
            "apiVersion": "source.mooring.dev/v1", "kind": "GitRepository",
            "metadata": {"name": "later"},
            "spec": {"url": format!("http://127.0.0.1:{port}/silent.git"), "interval": "10m",
                     "timeout": "10m"}
        }),
    )
    .await;
    let passes = controllers.reconciles();
    let spec = serde_json::json!({"path": "./app",
        "sourceRef": {"kind": "GitRepository", "name": "later"}});
    kustomization(&env, "waits", spec).await;
    wait_until(|| controllers.reconciles() > passes, 30).await;
    let kustomizations: kube::Api<mooring_api::Kustomization> =
        kube::Api::namespaced(env.client.clone(), &env.namespace);
    let now = kustomizations.get("waits").await.expect("get");
    assert!(
        ready(&now).is_none(),
        "its first pass wrote nothing: {:?}",
        now.status
    );
    api.patch(
        "later",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(serde_json::json!({"spec": {"suspend": true}})),
    )
    .await
    .expect("suspend");
    let woken = wait_ks(&env, "waits", "the suspension reported", 60, |k| {
        ready(k).is_some()
    })
    .await;
    assert_eq!(ready(&woken).map(|(_, _, m)| m), Some(suspended("later")));
    drop(silent);
    controllers.stop().await;
}

#[tokio::test]
async fn the_builds_of_a_new_artifact_run_ahead_of_their_passes_several_to_a_kustomize_process() {
    let env = test_env("cost-ahead").await.expect("env");
    let repo = GitServer::shared()
        .expect("git server")
        .create_repo(&unique("cost-ahead"), Auth::None)
        .expect("repo");
    let apps = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let files: Vec<(String, String)> = apps
        .iter()
        .flat_map(|app| app_files(&format!("apps/{app}"), app))
        .collect();
    let commit = push(&repo, &files);
    let controllers = start(&env, SLOW).await;
    // The Kustomizations first: the source's first artifact starts all their builds at once.
    for app in apps {
        kustomization(
            &env,
            app,
            serde_json::json!({"path": format!("./apps/{app}")}),
        )
        .await;
    }
    git_repository(&env, "repo", repo.http_url()).await;
    for app in apps {
        wait_ks(&env, app, "Ready", 60, |k| applied(k, &commit)).await;
    }
    let metrics = &controllers.kustomize.context.metrics;
    assert_eq!(
        metrics.builds.get(),
        apps.len() as u64,
        "one build per Kustomization: the passes used the builds ahead of them"
    );
    let processes = metrics.kustomize_processes.get();
    assert!(
        processes < apps.len() as u64,
        "{} builds took {processes} kustomize processes: none ran together",
        apps.len()
    );
    controllers.stop().await;
}
