//! Dependencies down (issue 11, item 2), with both controller binaries running: kube-apiserver
//! restarted mid-apply, the git server down, the artifact server down. Each leaves the last
//! good state applied, names the missing dependency, and recovers at the first retry once it is
//! back, without a restart of either controller (same pids).
//!
//! The Kustomizations reconcile every hour and retry every 5 s (`retryInterval`), so the
//! interval can never be what brings them back: only a retry can.

mod flow;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use flow::{applied, apply_json, config_map_yaml, kustomization, poke_source, ready, unique};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use kube::runtime::{WatchStreamExt, watcher};
use mooring_api::constants::KUSTOMIZE_NAME_LABEL;
use mooring_api::{GitRepository, Kustomization};
use mooring_runtime::backoff::{JITTER_FRACTION, backoff_delay};
use mooring_source_controller::context::{BACKOFF_BASE, BACKOFF_MAX};
use mooring_testkit::TestEnv;
use mooring_testkit::control_plane::{ControlPlane, Options as PlaneOptions};
use mooring_testkit::controllers::{Controllers, KUSTOMIZE_CONTROLLER, Options, SOURCE_CONTROLLER};
use mooring_testkit::faults::{self, Row};
use mooring_testkit::git::{Auth, GitServer, Repo};

/// `spec.retryInterval` of every Kustomization here: the longest a failing one waits.
const RETRY_INTERVAL: Duration = Duration::from_secs(5);
/// What recovery may take beyond the pending retry's delay: noticing the artifact, download,
/// kustomize build, apply and the status write, on a busy 2-core machine.
const SLACK: Duration = Duration::from_secs(10);
/// The Kustomization of every scenario.
const APP: &str = "app";

/// The longest a failing Kustomization waits before its next retry: its retryInterval, with
/// the jitter every requeue gets.
fn kustomization_retry_bound() -> Duration {
    RETRY_INTERVAL.mul_f64(1.0 + JITTER_FRACTION)
}

/// The delay the source-controller chose after a GitRepository's `failures`-th consecutive
/// failure, with jitter.
fn source_retry_bound(failures: u32) -> Duration {
    backoff_delay(failures, BACKOFF_BASE, BACKOFF_MAX).mul_f64(1.0 + JITTER_FRACTION)
}

/// Both controller binaries on `env`'s control plane, watching only its namespace, at debug
/// level (the logs are where a down API server is reported).
async fn start_controllers(env: &TestEnv) -> Controllers {
    let mut options = Options::local(env.plane.kubeconfig()).watching(&env.namespace);
    options.log_level = "info,mooring=debug".to_string();
    tokio::task::spawn_blocking(move || Controllers::start(&options))
        .await
        .expect("start task")
        .expect("controllers")
}

/// Runs a blocking call on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

/// The pids of both controllers.
fn pids(controllers: &Controllers) -> (Option<u32>, Option<u32>) {
    (
        controllers.pid(SOURCE_CONTROLLER),
        controllers.pid(KUSTOMIZE_CONTROLLER),
    )
}

/// The value of the series `series` (name and labels, as /metrics prints them) in `text`.
fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// Failed passes the named controller has counted so far.
fn failures(controllers: &Controllers, name: &str) -> u64 {
    let prefix = if name == SOURCE_CONTROLLER {
        "mooring_source"
    } else {
        "mooring_kustomize"
    };
    let text = controllers.metrics(name).expect("metrics");
    metric(
        &text,
        &format!("{prefix}_reconcile_total{{result=\"failure\"}}"),
    )
}

/// Polls the named controller's /metrics (every 200 ms, up to `secs`) until it has counted
/// `at_least` failed passes.
async fn wait_failures(controllers: &Controllers, name: &str, at_least: u64, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let seen = failures(controllers, name);
        if seen >= at_least {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} counted {seen} failed passes in {secs}s, not {at_least}"
        );
        // A counter offers no notification; poll it with a deadline.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A GitRepository `repo` for `url` that polls git only every hour.
async fn git_repository(env: &TestEnv, url: &str) {
    let api: Api<GitRepository> = Api::namespaced(env.client.clone(), &env.namespace);
    apply_json(
        &api,
        serde_json::json!({
            "apiVersion": "source.mooring.dev/v1", "kind": "GitRepository",
            "metadata": {"name": "repo"},
            "spec": {"url": url, "interval": "1h", "ref": {"branch": "main"}}
        }),
    )
    .await;
}

/// The Kustomization `app` of `./deploy`: every hour, retried every 5 s.
async fn app(env: &TestEnv) {
    kustomization(
        env,
        APP,
        serde_json::json!({"path": "./deploy", "interval": "1h",
            "retryInterval": format!("{}s", RETRY_INTERVAL.as_secs())}),
    )
    .await;
}

/// Commits ConfigMaps `name -> value` under deploy/ (and nothing else there), returns the SHA.
fn commit_maps(repo: &Repo, maps: &[(String, String)], message: &str) -> String {
    let files: Vec<(String, String)> = maps
        .iter()
        .map(|(name, value)| (format!("deploy/{name}.yaml"), config_map_yaml(name, value)))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    repo.commit(&refs, message).expect("commit")
}

fn maps(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

async fn get_ks(env: &TestEnv) -> Kustomization {
    let api: Api<Kustomization> = Api::namespaced(env.client.clone(), &env.namespace);
    api.get(APP).await.expect("get the Kustomization")
}

fn last_applied(ks: &Kustomization) -> String {
    ks.status
        .as_ref()
        .and_then(|s| s.last_applied_revision.clone())
        .unwrap_or_default()
}

/// Compares the ConfigMaps the Kustomization owns with `want` (name -> value): (orphans, lost,
/// wrong values), each as a list of names.
async fn compare(
    env: &TestEnv,
    want: &[(String, String)],
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let owned = ListParams::default().labels(&format!("{KUSTOMIZE_NAME_LABEL}={APP}"));
    let live = api.list(&owned).await.expect("list ConfigMaps").items;
    let value = |c: &ConfigMap| {
        c.data
            .as_ref()
            .and_then(|d| d.get("value").cloned())
            .unwrap_or_default()
    };
    let live_names: BTreeSet<String> = live
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    let want_names: BTreeSet<String> = want.iter().map(|(n, _)| n.clone()).collect();
    let orphans = live_names.difference(&want_names).cloned().collect();
    let lost = want_names.difference(&live_names).cloned().collect();
    let wrong = live
        .iter()
        .filter(|c| {
            want.iter()
                .any(|(n, v)| c.metadata.name.as_deref() == Some(n) && &value(c) != v)
        })
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    (orphans, lost, wrong)
}

/// Checks that nothing of `want` changed for `period` while a dependency is down: the
/// Kustomization keeps `revision` as its last applied one and the objects stay. Returns the
/// problems seen.
async fn holds_for(
    env: &TestEnv,
    period: Duration,
    revision: &str,
    want: &[(String, String)],
) -> Vec<String> {
    let api: Api<Kustomization> = Api::namespaced(env.client.clone(), &env.namespace);
    let moved = await_condition(api, APP, |k: Option<&Kustomization>| {
        k.is_none_or(|k| !last_applied(k).ends_with(revision))
    });
    let mut problems = Vec::new();
    // The fault lasts `period`; a change of the applied revision during it ends the wait early.
    if let Ok(result) = tokio::time::timeout(period, moved).await {
        problems.push(format!(
            "the applied revision moved while a dependency was down: {:?}",
            result.ok().flatten().map(|k| k.status)
        ));
    }
    let (orphans, lost, wrong) = compare(env, want).await;
    if !(orphans.is_empty() && lost.is_empty() && wrong.is_empty()) {
        problems.push(format!(
            "the last good state changed while a dependency was down: orphans {orphans:?}, lost {lost:?}, changed {wrong:?}"
        ));
    }
    problems
}

/// Waits until the Kustomization is Ready at `commit`, returning how long that took from `back`.
async fn recovered(env: &TestEnv, commit: &str, back: Instant) -> Duration {
    flow::wait_ks(env, APP, "Ready at the new revision", 180, |k| {
        applied(k, commit)
    })
    .await;
    back.elapsed()
}

/// Records the scenario's row, then fails the test with `problems` if there are any.
fn report(scenario: &str, orphans: usize, lost: usize, problems: &[String]) {
    faults::record(&Row {
        runs: 1,
        passed: u64::from(problems.is_empty()),
        orphans: orphans as u64,
        lost: lost as u64,
        ..Row::new(scenario)
    });
    assert!(problems.is_empty(), "{scenario}:\n{}", problems.join("\n"));
}

/// A control plane of its own (restarting the shared one would fail every other test of the
/// binary), a namespace on it and a repository named after `prefix`.
async fn own_plane(prefix: &str) -> (&'static ControlPlane, TestEnv, Repo) {
    let plane: &'static ControlPlane = blocking(|| {
        ControlPlane::start(&PlaneOptions::default())
            .and_then(ControlPlane::remove_dir_at_exit)
            .map(|p| &*Box::leak(Box::new(p)))
    })
    .await
    .expect("a dedicated control plane");
    let env = mooring_testkit::test_env_on(plane, prefix)
        .await
        .expect("namespace");
    let repo = GitServer::shared()
        .expect("git server")
        .create_repo(&unique(prefix), Auth::None)
        .expect("repo");
    (plane, env, repo)
}

#[tokio::test]
async fn kube_apiserver_restarted_mid_apply() {
    let (plane, env, repo) = own_plane("faults-apiserver").await;
    let first_maps = maps(&[("base", "1")]);
    let first = commit_maps(&repo, &first_maps, "one map");
    let controllers = start_controllers(&env).await;
    let started_pids = pids(&controllers);
    git_repository(&env, repo.http_url()).await;
    app(&env).await;
    flow::wait_ks(&env, APP, "applied at the first commit", 90, |k| {
        applied(k, &first)
    })
    .await;

    // The second revision adds 200 objects; the API server goes down once the first is written.
    let mut second_maps = first_maps.clone();
    second_maps.extend((0..200).map(|i| (format!("bulk-{i}"), "2".to_string())));
    let second = commit_maps(&repo, &second_maps, "200 more maps");
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let owned = watcher::Config::default().labels(&format!("{KUSTOMIZE_NAME_LABEL}={APP}"));
    let mut first_bulk = watcher(cms.clone(), owned)
        .applied_objects()
        .try_filter(|c| {
            let bulk = c
                .metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("bulk-"));
            futures::future::ready(bulk)
        })
        .boxed();
    poke_source(&env, "repo", "second").await;
    tokio::time::timeout(Duration::from_secs(90), first_bulk.try_next())
        .await
        .expect("the second revision's first object appears")
        .expect("watch ConfigMaps");
    drop(first_bulk);
    let owned = ListParams::default().labels(&format!("{KUSTOMIZE_NAME_LABEL}={APP}"));
    let failures_before = failures(&controllers, KUSTOMIZE_CONTROLLER);
    let written_at_stop = cms.list(&owned).await.expect("list").items.len();
    let at_stop = get_ks(&env).await;
    blocking(move || plane.stop_apiserver()).await;
    eprintln!(
        "objects of the app when kube-apiserver was stopped: {written_at_stop} of {}",
        second_maps.len()
    );
    // Down until the Kustomization has failed this often: with an unbounded backoff its next
    // retry would by then be far beyond its retryInterval.
    let down_for = faults::scaled(6, 12) as u64;
    let stopped = Instant::now();
    wait_failures(
        &controllers,
        KUSTOMIZE_CONTROLLER,
        failures_before + down_for,
        180,
    )
    .await;
    eprintln!(
        "kube-apiserver down for {:?} ({down_for} failed passes)",
        stopped.elapsed()
    );
    blocking(move || plane.start_apiserver())
        .await
        .expect("kube-apiserver starts again");
    // Ready as kubectl sees it: the controllers may have been served a moment before.
    let back = Instant::now();

    let mut problems = Vec::new();
    if written_at_stop >= second_maps.len() {
        problems.push("the whole second revision was written before the stop".to_string());
    }
    // Nothing can be written while the API server is down: what it held when it stopped is
    // what it holds when it is back, and that must be the last good revision.
    if !last_applied(&at_stop).ends_with(&first) {
        problems.push(format!(
            "lastAppliedRevision moved before the second revision was written: {:?}",
            at_stop.status
        ));
    }
    let took = recovered(&env, &second, back).await;
    let failed_during =
        failures(&controllers, KUSTOMIZE_CONTROLLER).saturating_sub(failures_before);
    eprintln!(
        "kube-apiserver back -> Ready at the new revision: {took:?} (retry bound {:?} + slack {SLACK:?}); failed passes: {failed_during}",
        kustomization_retry_bound()
    );
    if took > kustomization_retry_bound() + SLACK {
        problems.push(format!("recovery took {took:?}"));
    }
    if failed_during == 0 {
        problems.push("no pass failed while kube-apiserver was down".to_string());
    }
    // The outage can only be told in the controller's log: a down API server takes no status.
    let log =
        std::fs::read_to_string(controllers.log_file(KUSTOMIZE_CONTROLLER)).unwrap_or_default();
    let key = format!("{}/{APP}", env.namespace);
    let named = log.lines().find(|l| {
        l.contains("reconcile failed") && l.contains(&key) && l.contains("Connection refused")
    });
    if let Some(line) = named {
        eprintln!("the kustomize-controller's log while kube-apiserver was down: {line}");
    } else {
        let failures: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("reconcile failed"))
            .collect();
        problems.push(format!(
            "the kustomize-controller's log never says that the API server refused the connection; its failures:\n{}",
            failures[failures.len().saturating_sub(10)..].join("\n")
        ));
    }
    if pids(&controllers) != started_pids {
        problems.push("a controller was restarted".to_string());
    }
    let (orphans, lost, wrong) = compare(&env, &second_maps).await;
    if !wrong.is_empty() {
        problems.push(format!("objects with the wrong value: {wrong:?}"));
    }
    blocking(move || drop(controllers)).await;
    report(
        "kube-apiserver restarted mid-apply",
        orphans.len(),
        lost.len(),
        &problems,
    );
}

#[tokio::test]
async fn git_server_down() {
    let outage = Duration::from_secs(faults::scaled(15, 60) as u64);
    let env = mooring_testkit::test_env("faults-git-down")
        .await
        .expect("env");
    // A server of its own, since it goes down.
    let mut server = blocking(GitServer::start).await.expect("git server");
    let repo = server
        .create_repo(&unique("faults-git-down"), Auth::None)
        .expect("repo");
    let first_maps = maps(&[("a", "1"), ("b", "1")]);
    let first = commit_maps(&repo, &first_maps, "two maps");
    let controllers = start_controllers(&env).await;
    let started_pids = pids(&controllers);
    git_repository(&env, repo.http_url()).await;
    app(&env).await;
    flow::wait_ks(&env, APP, "applied at the first commit", 90, |k| {
        applied(k, &first)
    })
    .await;

    // Down, with a new revision waiting in it.
    let server = blocking(move || {
        server.stop_serving();
        server
    })
    .await;
    let second_maps = maps(&[("a", "1"), ("b", "2"), ("c", "2")]);
    let second = commit_maps(&repo, &second_maps, "b changes, c is new");
    let went_down = Instant::now();
    poke_source(&env, "repo", "while-down").await;
    let sources: Api<GitRepository> = Api::namespaced(env.client.clone(), &env.namespace);
    let host = format!("127.0.0.1:{}", server.http_port());
    let failed = flow::wait_for(
        &sources,
        "repo",
        "Ready=False naming the git server",
        Duration::from_secs(60),
        |r| {
            r.and_then(|r| mooring_testkit::wait::ready(&r.status.as_ref()?.conditions))
                .is_some_and(|(s, _, m)| s == "False" && m.contains(&host))
        },
    )
    .await
    .expect("the GitRepository");
    let (_, reason, message) =
        mooring_testkit::wait::ready(&failed.status.expect("status").conditions).expect("Ready");
    eprintln!("GitRepository while git is down: {reason}: {message}");
    let mut problems = Vec::new();
    if reason != "GitOperationFailed" {
        problems.push(format!("Ready reason {reason:?}: {message}"));
    }
    let lasting = outage.saturating_sub(went_down.elapsed());
    problems.extend(holds_for(&env, lasting, &first, &first_maps).await);
    let ks = get_ks(&env).await;
    if ready(&ks).is_none_or(|(s, _, _)| s != "True") {
        problems.push(format!(
            "the Kustomization is not Ready on its last good revision: {:?}",
            ks.status
        ));
    }

    // Back on the same port.
    let failed_before = failures(&controllers, SOURCE_CONTROLLER);
    let server = blocking(move || {
        let mut server = server;
        server.serve_again().map(|()| server)
    })
    .await
    .expect("the git server serves again");
    let back = Instant::now();
    let took = recovered(&env, &second, back).await;
    let failed_after = failures(&controllers, SOURCE_CONTROLLER);
    let bound = source_retry_bound(failed_after as u32) + SLACK;
    eprintln!(
        "git down {:?}; back -> Ready at the new revision: {took:?} (the GitRepository's pending retry after {failed_after} failures: at most {:?}, + slack {SLACK:?})",
        went_down.elapsed().saturating_sub(took),
        source_retry_bound(failed_after as u32),
    );
    if took > bound {
        problems.push(format!("recovery took {took:?}, more than {bound:?}"));
    }
    if failed_after != failed_before {
        problems.push(format!(
            "{} more failed fetches after git was back: not the first retry",
            failed_after - failed_before
        ));
    }
    if pids(&controllers) != started_pids {
        problems.push("a controller was restarted".to_string());
    }
    let (orphans, lost, wrong) = compare(&env, &second_maps).await;
    if !wrong.is_empty() {
        problems.push(format!("objects with the wrong value: {wrong:?}"));
    }
    blocking(move || {
        drop(controllers);
        drop(server);
    })
    .await;
    report(
        &format!("git server down {}s", outage.as_secs()),
        orphans.len(),
        lost.len(),
        &problems,
    );
}

/// Sets `spec.suspend` of the Kustomization.
async fn suspend(env: &TestEnv, suspended: bool) {
    let api: Api<Kustomization> = Api::namespaced(env.client.clone(), &env.namespace);
    let patch = serde_json::json!({"spec": {"suspend": suspended}});
    api.patch(APP, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("suspend");
}

#[tokio::test]
async fn artifact_server_down() {
    let env = mooring_testkit::test_env("faults-artifact-down")
        .await
        .expect("env");
    let repo = GitServer::shared()
        .expect("git server")
        .create_repo(&unique("faults-artifact-down"), Auth::None)
        .expect("repo");
    let first_maps = maps(&[("a", "1"), ("b", "1")]);
    let first = commit_maps(&repo, &first_maps, "two maps");
    let mut controllers = start_controllers(&env).await;
    let kustomize_pid = controllers.pid(KUSTOMIZE_CONTROLLER);
    git_repository(&env, repo.http_url()).await;
    app(&env).await;
    flow::wait_ks(&env, APP, "applied at the first commit", 90, |k| {
        applied(k, &first)
    })
    .await;

    // A new revision is published while the Kustomization is suspended, so that it is still
    // pending when the artifact server goes away.
    suspend(&env, true).await;
    let second_maps = maps(&[("a", "1"), ("b", "2"), ("c", "2")]);
    let second = commit_maps(&repo, &second_maps, "b changes, c is new");
    poke_source(&env, "repo", "second").await;
    let sources: Api<GitRepository> = Api::namespaced(env.client.clone(), &env.namespace);
    flow::wait_for(
        &sources,
        "repo",
        "the second revision's artifact",
        Duration::from_secs(60),
        |r| {
            r.and_then(|r| r.status.as_ref()?.artifact.as_ref())
                .is_some_and(|a| a.revision.ends_with(&second))
        },
    )
    .await;
    let mut controllers = blocking(move || {
        controllers.kill_source();
        controllers
    })
    .await;
    suspend(&env, false).await;
    let artifact_host = controllers
        .artifact_base_url()
        .trim_start_matches("http://")
        .to_string();
    let failed = flow::wait_ks(&env, APP, "Ready=False on the artifact", 60, |k| {
        ready(k).is_some_and(|(s, _, _)| s == "False")
    })
    .await;
    let (_, reason, message) = ready(&failed).expect("Ready");
    eprintln!("Kustomization while the artifact server is down: {reason}: {message}");
    let mut problems = Vec::new();
    if reason != "ArtifactFailed"
        || !message.contains(&artifact_host)
        || !message.contains("Connection refused")
    {
        problems.push(format!(
            "Ready=False does not name the artifact server {artifact_host}: {reason}: {message}"
        ));
    }
    // Down for a few retries of the Kustomization.
    let failed_before = failures(&controllers, KUSTOMIZE_CONTROLLER);
    problems.extend(holds_for(&env, RETRY_INTERVAL * 2, &first, &first_maps).await);
    let retried = failures(&controllers, KUSTOMIZE_CONTROLLER) - failed_before;
    if retried == 0 {
        problems.push("no retry while the artifact server was down".to_string());
    }

    controllers = blocking(move || {
        controllers
            .restart_source()
            .expect("the source-controller starts again");
        controllers
    })
    .await;
    let back = Instant::now();
    let took = recovered(&env, &second, back).await;
    eprintln!(
        "artifact server back -> Ready at the new revision: {took:?} (retry bound {:?} + slack {SLACK:?}); {retried} failed retries while down",
        kustomization_retry_bound()
    );
    if took > kustomization_retry_bound() + SLACK {
        problems.push(format!("recovery took {took:?}"));
    }
    if controllers.pid(KUSTOMIZE_CONTROLLER) != kustomize_pid {
        problems.push("the kustomize-controller was restarted".to_string());
    }
    let (orphans, lost, wrong) = compare(&env, &second_maps).await;
    if !wrong.is_empty() {
        problems.push(format!("objects with the wrong value: {wrong:?}"));
    }
    blocking(move || drop(controllers)).await;
    report("artifact server down", orphans.len(), lost.len(), &problems);
}

/// Sends `signal` (`STOP`, `CONT`) to both controllers.
fn signal_both(controllers: &Controllers, signal: &str) {
    for name in [SOURCE_CONTROLLER, KUSTOMIZE_CONTROLLER] {
        let pid = controllers.pid(name).expect("running");
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -{signal} {name}");
    }
}

/// Waits up to `secs` for the Kustomization `name` to satisfy `check`; false if it did not.
async fn within(
    env: &TestEnv,
    name: &str,
    secs: u64,
    check: impl Fn(&Kustomization) -> bool,
) -> bool {
    let api: Api<Kustomization> = Api::namespaced(env.client.clone(), &env.namespace);
    let met = await_condition(api, name, move |k: Option<&Kustomization>| {
        k.is_some_and(&check)
    });
    matches!(
        tokio::time::timeout(Duration::from_secs(secs), met).await,
        Ok(Ok(_))
    )
}

/// A watch that breaks resumes where it was; when kube-apiserver no longer has that point (it
/// restarted), the controllers list again. What that list brings must start passes exactly as
/// watch events would: an object created while the watches were cut, and a change made then,
/// each reconciled from the version listed.
#[tokio::test]
async fn objects_created_or_changed_while_the_watches_were_cut() {
    let (plane, env, repo) = own_plane("faults-relist").await;
    let base = config_map_yaml("base", "1");
    let late = config_map_yaml("late", "1");
    let commit = repo
        .commit(
            &[
                ("deploy/base.yaml", base.as_str()),
                ("late/late.yaml", late.as_str()),
            ],
            "two directories",
        )
        .expect("commit");
    let controllers = start_controllers(&env).await;
    let started_pids = pids(&controllers);
    git_repository(&env, repo.http_url()).await;
    app(&env).await;
    flow::wait_ks(&env, APP, "applied at the commit", 90, |k| {
        applied(k, &commit)
    })
    .await;

    // Frozen while kube-apiserver restarts and the objects change: no watch of theirs can see
    // the changes as events, and each resumes from a point the new kube-apiserver's cache
    // does not have, so both controllers list again.
    signal_both(&controllers, "STOP");
    let restarted = blocking(move || plane.restart_apiserver()).await;
    let ks_api: Api<Kustomization> = Api::namespaced(env.client.clone(), &env.namespace);
    let changed = if restarted.is_ok() {
        flow::git_repository(&env, "late", repo.http_url()).await;
        kustomization(
            &env,
            "late",
            serde_json::json!({"path": "./late", "interval": "1h",
                "sourceRef": {"kind": "GitRepository", "name": "late"}}),
        )
        .await;
        let patch = serde_json::json!({"spec": {"interval": "2h"}});
        ks_api
            .patch(APP, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .ok()
    } else {
        None
    };
    signal_both(&controllers, "CONT");
    restarted.expect("kube-apiserver starts again");
    let generation = changed
        .and_then(|k| k.metadata.generation)
        .expect("the change of the Kustomization");

    let mut problems = Vec::new();
    if !within(&env, "late", 60, |k| applied(k, &commit)).await {
        let status = ks_api.get("late").await.ok().and_then(|k| k.status);
        problems.push(format!(
            "the Kustomization (and GitRepository) created while the watches were cut were not reconciled: {status:?}"
        ));
    }
    let observed = move |k: &Kustomization| {
        k.status.as_ref().and_then(|s| s.observed_generation) == Some(generation)
            && applied(k, &commit)
    };
    if !within(&env, APP, 60, observed).await {
        let status = get_ks(&env).await.status;
        problems.push(format!(
            "the change made while the watches were cut (generation {generation}) was not reconciled: {status:?}"
        ));
    }
    if pids(&controllers) != started_pids {
        problems.push("a controller was restarted".to_string());
    }
    blocking(move || drop(controllers)).await;
    report(
        "objects created or changed while the watches were cut",
        0,
        0,
        &problems,
    );
}
