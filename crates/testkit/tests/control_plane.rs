//! The test control plane is real: CRDs install, kubectl works against it, the API server enforces
//! the CRD schemas, and no process outlives the test binary.

use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use mooring_testkit::test_env;

#[tokio::test]
async fn crds_are_installed_and_established() {
    let env = test_env("crds").await.expect("test env");
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    for name in [
        "gitrepositories.source.mooring.dev",
        "kustomizations.kustomize.mooring.dev",
    ] {
        let crd = crds.get(name).await.expect(name);
        let established = crd
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        assert!(established, "{name} is not Established");
    }
}

#[tokio::test]
async fn kubectl_applies_the_examples_and_shows_the_columns() {
    let env = test_env("examples").await.expect("test env");
    let examples = mooring_testkit::tools::workspace_root().join("examples");
    let examples = examples.to_string_lossy();
    env.plane
        .run_kubectl(&["apply", "-n", &env.namespace, "-f", &examples])
        .expect("kubectl apply -f examples/");
    let table = env
        .plane
        .run_kubectl(&["get", "gitrepo,ks", "-n", &env.namespace])
        .expect("kubectl get gitrepo,ks");
    for column in ["NAME", "URL", "READY", "STATUS", "REVISION", "AGE"] {
        assert!(
            table.contains(column),
            "column {column} missing from:\n{table}"
        );
    }
    assert!(
        table.contains("gitrepository.source.mooring.dev/sample"),
        "{table}"
    );
    assert!(
        table.contains("kustomization.kustomize.mooring.dev/sample"),
        "{table}"
    );
    let explained = env
        .plane
        .run_kubectl(&["explain", "gitrepository.spec.ref"])
        .expect("kubectl explain");
    assert!(explained.contains("branch"), "{explained}");
    assert!(explained.contains("semver"), "{explained}");
}

/// Applies `yaml` and returns the API server's rejection message.
fn rejection(env: &mooring_testkit::TestEnv, yaml: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, yaml).expect("write");
    match env
        .plane
        .run_kubectl(&["apply", "-n", &env.namespace, "-f", &file.to_string_lossy()])
    {
        Ok(out) => panic!("the API server accepted an invalid object: {out}\n{yaml}"),
        Err(e) => e.to_string(),
    }
}

const GITREPO: &str = "apiVersion: source.mooring.dev/v1
kind: GitRepository
metadata:
  name: bad
spec:
";

#[tokio::test]
async fn invalid_objects_are_rejected_with_the_field_named() {
    let env = test_env("invalid").await.expect("test env");

    let msg = rejection(
        &env,
        &format!("{GITREPO}  url: ftp://example.com/repo.git\n  interval: 1m\n"),
    );
    assert!(msg.contains("spec.url"), "{msg}");

    let msg = rejection(
        &env,
        &format!("{GITREPO}  url: https://example.com/repo.git\n  interval: 5x\n"),
    );
    assert!(msg.contains("spec.interval"), "{msg}");

    let msg = rejection(
        &env,
        &format!(
            "{GITREPO}  url: https://example.com/repo.git\n  interval: 1m\n  ref:\n    tag: v1.0.0\n    semver: '>=1.0.0'\n"
        ),
    );
    assert!(msg.contains("spec.ref"), "{msg}");

    let msg = rejection(
        &env,
        "apiVersion: kustomize.mooring.dev/v1
kind: Kustomization
metadata:
  name: bad
spec:
  interval: 5m
  prune: true
  sourceRef:
    kind: HelmChart
    name: sample
",
    );
    assert!(msg.contains("spec.sourceRef.kind"), "{msg}");
}

/// Run in a child process by `no_process_outlives_the_test_binary`: starts the control plane,
/// prints its pids and exits.
#[tokio::test]
#[ignore = "run only as a child process of no_process_outlives_the_test_binary"]
async fn child_starts_a_control_plane() {
    let plane = mooring_testkit::shared_control_plane()
        .await
        .expect("control plane");
    let pids: Vec<String> = plane.pids().iter().map(u32::to_string).collect();
    println!("PIDS={}", pids.join(","));
}

/// Prints the pids of a workload plane (etcd, kube-apiserver, kube-controller-manager,
/// kube-scheduler, kwok) and exits.
#[tokio::test]
#[ignore = "run only as a child process of no_workload_process_outlives_the_test_binary"]
async fn child_starts_a_workload_plane() {
    let options = mooring_testkit::control_plane::Options {
        workloads: true,
        ..Default::default()
    };
    let env = mooring_testkit::test_env_with("child-workloads", &options)
        .await
        .expect("workload plane");
    let pids: Vec<String> = env.plane.pids().iter().map(u32::to_string).collect();
    println!("PIDS={}", pids.join(","));
}

#[test]
fn no_process_outlives_the_test_binary() {
    assert_child_leaves_nothing("child_starts_a_control_plane", 2);
}

#[test]
fn no_workload_process_outlives_the_test_binary() {
    assert_child_leaves_nothing("child_starts_a_workload_plane", 5);
}

/// Runs the ignored test `child` in a child test binary, which prints the pids of the `count`
/// components it started, and checks that none of them outlives it.
fn assert_child_leaves_nothing(child: &str, count: usize) {
    let out = std::process::Command::new(std::env::current_exe().expect("current exe"))
        .args(["--exact", child, "--ignored", "--nocapture"])
        .output()
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pids: Vec<u32> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("PIDS="))
        .expect("the child printed its pids")
        .split(',')
        .map(|p| p.parse().expect("pid"))
        .collect();
    assert_eq!(pids.len(), count, "pids of the components: {pids:?}");
    // The supervisors stop their children once the test binary is gone; give them a bounded time.
    let left = mooring_testkit::process::wait_until_gone(&pids, Duration::from_secs(15));
    assert!(
        left.is_empty(),
        "processes left behind after the test binary exited: {left:?}"
    );
}

#[test]
fn a_failed_start_reports_the_component_log() {
    let options = mooring_testkit::control_plane::Options {
        install_crds: false,
        extra_apiserver_args: vec!["--no-such-flag=1".to_string()],
        ..Default::default()
    };
    let err = mooring_testkit::control_plane::ControlPlane::start(&options)
        .expect_err("kube-apiserver must refuse an unknown flag");
    let msg = err.to_string();
    assert!(msg.contains("kube-apiserver did not start"), "{msg}");
    assert!(
        msg.contains("no-such-flag"),
        "the log tail is missing from: {msg}"
    );
}

#[test]
fn a_bare_control_plane_serves_the_api() {
    let options = mooring_testkit::control_plane::Options {
        install_crds: false,
        ..Default::default()
    };
    let started = Instant::now();
    let plane = mooring_testkit::control_plane::ControlPlane::start(&options).expect("start");
    eprintln!("control plane ready in {:?}", started.elapsed());
    let out = plane
        .run_kubectl(&["get", "namespaces", "-o", "name"])
        .expect("kubectl get ns");
    assert!(out.contains("namespace/kube-system"), "{out}");
    let pids = plane.pids();
    drop(plane);
    for pid in pids {
        assert!(
            !mooring_testkit::process::is_running(pid),
            "pid {pid} survived drop"
        );
    }
}
