//! `mooring logs` through the API against real Pods: a workload plane (kwok plays the Nodes and
//! serves the containers' logs on the kubelet port, as `kubectl logs` reads them) runs a Pod
//! labelled as the chart labels the source-controller, whose log names several objects.

mod common;

use common::mooring;
use mooring_testkit::control_plane::Options;

/// One line of the container log in the CRI format a kubelet keeps (kwok serves it the same way).
fn cri(time: &str, line: &str) -> String {
    format!("{time} stdout F {line}\n")
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
    let in_span = |kind: &str, name: &str, time: &str, message: &str| {
        format!(
            r#"{{"timestamp":"{time}","level":"INFO","message":"{message}","span":{{"name":"reconciling object","object.ref":"{kind}.v1.source.toolkit.fluxcd.io/{name}.{ns}"}}}}"#
        )
    };
    let log = [
        cri(
            "2026-12-03T10:00:01.000000000Z",
            &in_span("GitRepository", "app", "2026-12-03T10:00:01Z", "fetched"),
        ),
        cri(
            "2026-12-03T10:00:02.000000000Z",
            &in_span("GitRepository", "other", "2026-12-03T10:00:02Z", "fetched"),
        ),
        cri(
            "2026-12-03T10:00:03.000000000Z",
            &in_span("Kustomization", "app", "2026-12-03T10:00:03Z", "applied"),
        ),
        cri(
            "2026-12-03T10:00:04.000000000Z",
            &format!(
                r#"{{"timestamp":"2026-12-03T10:00:04Z","level":"WARN","message":"artifact kept","kind":"GitRepository","object":"{ns}/app"}}"#
            ),
        ),
        cri("2026-12-03T10:00:05.000000000Z", "not a JSON line"),
    ]
    .concat();
    std::fs::write(env.plane.simulated_pod_log(), log).expect("write the simulated log");

    let pod = format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: source-controller-0
  namespace: {ns}
  labels:
    app.kubernetes.io/part-of: mooring
    app.kubernetes.io/instance: mooring
    app.kubernetes.io/component: source-controller
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
            &ns,
            "--for=condition=Ready",
            "--timeout=60s",
            "pod/source-controller-0",
        ])
        .expect("the pod runs on a simulated node");

    let run = mooring(
        &env,
        &[
            "logs",
            "gitrepository",
            "app",
            "--controller-namespace",
            &ns,
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(
        run.stdout,
        format!(
            "2026-12-03T10:00:01Z INFO fetched pod=source-controller-0\n\
             2026-12-03T10:00:04Z WARN artifact kept kind=GitRepository object={ns}/app pod=source-controller-0\n"
        ),
        "{run:#?}"
    );

    // --tail reads only the last lines of the pod's log, through the same endpoint.
    let run = mooring(
        &env,
        &[
            "logs",
            "gitrepository",
            "app",
            "--controller-namespace",
            &ns,
            "--tail",
            "2",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(
        run.stdout,
        format!(
            "2026-12-03T10:00:04Z WARN artifact kept kind=GitRepository object={ns}/app pod=source-controller-0\n"
        ),
        "{run:#?}"
    );
}
