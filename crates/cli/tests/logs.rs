//! `mooring logs` through the API against real Pods: on a workload plane, kwok plays the Nodes
//! and, as a kubelet would, serves the containers' logs on the Node's kubelet port, where the API
//! server reads `pods/log`. Two Pods are labelled as the chart labels the controllers, and their
//! logs name several objects.

mod common;

use common::mooring;
use mooring_testkit::TestEnv;
use mooring_testkit::control_plane::Options;

/// A log in the CRI format a kubelet keeps (kwok serves it the same way): each JSON line's own
/// timestamp is also the line's time.
fn cri(lines: &[(&str, String)]) -> String {
    lines
        .iter()
        .map(|(time, line)| format!("{time} stdout F {line}\n"))
        .collect()
}

/// A line logged inside kube-runtime's reconcile span of `kind` `namespace/name`.
fn in_span(time: &str, message: &str, kind: &str, group: &str, ns: &str, name: &str) -> String {
    format!(
        r#"{{"timestamp":"{time}","level":"INFO","message":"{message}","span":{{"name":"reconciling object","object.ref":"{kind}.v1.{group}/{name}.{ns}"}}}}"#
    )
}

/// Creates a Pod labelled as the chart labels `component`, waits until it runs on a simulated
/// Node, and has kwok serve `log` as its container's log.
fn controller_pod(env: &TestEnv, component: &str, log: &str) -> String {
    let ns = &env.namespace;
    let name = format!("{component}-0");
    let pod = format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {ns}
  labels:
    app.kubernetes.io/part-of: mooring
    app.kubernetes.io/instance: mooring
    app.kubernetes.io/component: {component}
spec:
  containers:
  - name: manager
    image: ghcr.io/example/mooring:simulated
"
    );
    env.plane
        .run_kubectl_with_input(&["apply", "-f", "-"], &pod)
        .expect("create the pod");
    env.plane
        .run_kubectl(&[
            "wait",
            "-n",
            ns,
            "--for=condition=Ready",
            "--timeout=60s",
            &format!("pod/{name}"),
        ])
        .expect("the pod runs on a simulated node");
    env.plane
        .serve_pod_log(ns, &name, log)
        .expect("kwok serves the pod's log");
    name
}

/// The output of `mooring logs <extra> --controller-namespace <env's namespace>`, which must
/// succeed.
async fn logs(env: &TestEnv, extra: &[&str]) -> String {
    let mut args = vec!["logs"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--controller-namespace", &env.namespace]);
    let run = mooring(env, &args).await;
    assert_eq!(run.code, 0, "{run:#?}");
    run.stdout
}

#[tokio::test]
async fn logs_reads_the_controller_pods_through_the_api_and_keeps_one_objects_lines() {
    let options = Options {
        workloads: true,
        ..Default::default()
    };
    let env = mooring_testkit::test_env_with("cli-logs", &options)
        .await
        .expect("workload plane");
    let ns = env.namespace.clone();
    let source = "source.toolkit.fluxcd.io";
    let kustomize = "kustomize.toolkit.fluxcd.io";
    controller_pod(
        &env,
        "source-controller",
        &cri(&[
            (
                "2026-12-03T10:00:01.000000000Z",
                in_span(
                    "2026-12-03T10:00:01Z",
                    "fetched",
                    "GitRepository",
                    source,
                    &ns,
                    "app",
                ),
            ),
            (
                "2026-12-03T10:00:02.000000000Z",
                in_span(
                    "2026-12-03T10:00:02Z",
                    "fetched",
                    "GitRepository",
                    source,
                    &ns,
                    "other",
                ),
            ),
            (
                "2026-12-03T10:00:04.000000000Z",
                format!(
                    r#"{{"timestamp":"2026-12-03T10:00:04Z","level":"WARN","message":"artifact kept","kind":"GitRepository","object":"{ns}/app"}}"#
                ),
            ),
            (
                "2026-12-03T10:00:06.000000000Z",
                "not a JSON line".to_string(),
            ),
        ]),
    );
    controller_pod(
        &env,
        "kustomize-controller",
        &cri(&[
            (
                "2026-12-03T10:00:03.000000000Z",
                in_span(
                    "2026-12-03T10:00:03Z",
                    "applied",
                    "Kustomization",
                    kustomize,
                    &ns,
                    "app",
                ),
            ),
            (
                "2026-12-03T10:00:05.000000000Z",
                in_span(
                    "2026-12-03T10:00:05Z",
                    "applied",
                    "Kustomization",
                    kustomize,
                    &ns,
                    "other",
                ),
            ),
        ]),
    );
    // One GitRepository's lines: in its reconcile span, or naming it outside one; not those of
    // another GitRepository, nor those of the Kustomization of the same name.
    assert_eq!(
        logs(&env, &["source", "app"]).await,
        format!(
            "2026-12-03T10:00:01Z INFO fetched pod=source-controller-0\n\
             2026-12-03T10:00:04Z WARN artifact kept kind=GitRepository object={ns}/app pod=source-controller-0\n"
        )
    );
    assert_eq!(
        logs(&env, &["kustomization", "app"]).await,
        "2026-12-03T10:00:03Z INFO applied pod=kustomize-controller-0\n"
    );
    // Without an object: every JSON line of both pods, merged in time order.
    assert_eq!(
        logs(&env, &[]).await,
        format!(
            "2026-12-03T10:00:01Z INFO fetched pod=source-controller-0\n\
             2026-12-03T10:00:02Z INFO fetched pod=source-controller-0\n\
             2026-12-03T10:00:03Z INFO applied pod=kustomize-controller-0\n\
             2026-12-03T10:00:04Z WARN artifact kept kind=GitRepository object={ns}/app pod=source-controller-0\n\
             2026-12-03T10:00:05Z INFO applied pod=kustomize-controller-0\n"
        )
    );
    // --tail reads only the last lines of each pod's log, through the same endpoint.
    assert_eq!(
        logs(&env, &["--tail", "1"]).await,
        "2026-12-03T10:00:05Z INFO applied pod=kustomize-controller-0\n"
    );
}
