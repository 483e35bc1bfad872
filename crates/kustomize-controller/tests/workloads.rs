//! Health of real workloads: the control plane runs kube-controller-manager with its default
//! controllers, kube-scheduler and kwok (simulated Nodes whose Pods run and become Ready), so a
//! Deployment rolls out through real ReplicaSets and Pods, a StatefulSet's claim binds to a
//! volume, a Job completes, and nothing here writes a workload's status by hand.

mod common;
mod flow;

use std::time::Duration;

use flow::*;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams};
use mooring_api::Kustomization;
use mooring_testkit::TestEnv;
use mooring_testkit::control_plane::SIMULATED_NODE_LABEL;
use mooring_testkit::git::{Auth, GitServer, Repo};
use serde_json::json;

/// Requeue of dependencies: never within a test.
const SLOW: Duration = Duration::from_secs(3600);
/// How long a rollout on the simulated nodes may take (it is seconds; the machine is shared).
const ROLLOUT_SECS: u64 = 120;

fn repo(prefix: &str) -> Repo {
    GitServer::shared()
        .expect("git server")
        .create_repo(&unique(prefix), Auth::None)
        .expect("repo")
}

fn push(repo: &Repo, files: &[(&str, String)], message: &str) -> String {
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    repo.commit(&refs, message).expect("commit")
}

/// A Deployment of `replicas` Pods; `node_selector` (a label no Node has) makes them
/// unschedulable. A short progress deadline lets a stuck rollout fail within the test.
fn deployment_yaml(name: &str, replicas: u32, node_selector: Option<&str>) -> String {
    let selector = node_selector.map_or(String::new(), |label| {
        format!("      nodeSelector:\n        {label}: \"true\"\n")
    });
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  progressDeadlineSeconds: 10
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
{selector}      containers:
      - name: main
        image: example.com/{name}:1
        ports:
        - containerPort: 8080
"
    )
}

fn service_yaml(name: &str) -> String {
    format!(
        "apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector:
    app: {name}
  ports:
  - port: 80
    targetPort: 8080
"
    )
}

fn ready_is(ks: &Kustomization, want: &str) -> bool {
    ready(ks).is_some_and(|(s, _, _)| s == want)
}

/// The Pods of `app` that run on a simulated Node and are Ready.
async fn running_pods(env: &TestEnv, app: &str) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.namespace);
    let list = pods
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .expect("list pods");
    list.items
        .into_iter()
        .filter(|pod| {
            let status = pod.status.as_ref();
            let running = status.and_then(|s| s.phase.as_deref()) == Some("Running");
            let ready = status
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            let on_simulated_node = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_some_and(|n| n.starts_with("simulated-node-"));
            running && ready && on_simulated_node
        })
        .collect()
}

#[tokio::test]
async fn a_deployment_rolls_out_through_real_pods_with_wait() {
    let env = common::workload_env("wl-wait").await;
    let repo = repo("wl-wait");
    let commit = push(
        &repo,
        &[
            ("deploy/web.yaml", deployment_yaml("web", 2, None)),
            ("deploy/web-svc.yaml", service_yaml("web")),
        ],
        "a deployment and its service",
    );
    let controllers = start(&env, SLOW).await;
    git_repository(&env, "repo", repo.http_url()).await;
    kustomization(
        &env,
        "app",
        json!({"path": "./deploy", "wait": true, "timeout": "5m"}),
    )
    .await;
    wait_ks(&env, "app", "Ready after the rollout", ROLLOUT_SECS, |k| {
        applied(k, &commit)
    })
    .await;
    // Ready=True was not given early: the Deployment had rolled out by then.
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), &env.namespace);
    let web = deployments.get("web").await.expect("web");
    let status = web
        .status
        .expect("the deployment controller wrote a status");
    assert_eq!(status.ready_replicas, Some(2), "{status:?}");
    assert_eq!(status.updated_replicas, Some(2), "{status:?}");
    assert_eq!(running_pods(&env, "web").await.len(), 2);
    controllers.stop().await;
}

#[tokio::test]
async fn health_checks_follow_a_real_rollout() {
    let env = common::workload_env("wl-checks").await;
    let repo = repo("wl-checks");
    let commit = push(
        &repo,
        &[("deploy/api.yaml", deployment_yaml("api", 1, None))],
        "a deployment",
    );
    let controllers = start(&env, SLOW).await;
    git_repository(&env, "repo", repo.http_url()).await;
    kustomization(
        &env,
        "app",
        json!({"path": "./deploy", "timeout": "5m", "healthChecks": [
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api", "namespace": env.namespace},
        ]}),
    )
    .await;
    wait_ks(
        &env,
        "app",
        "Ready after the checked rollout",
        ROLLOUT_SECS,
        |k| applied(k, &commit),
    )
    .await;
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), &env.namespace);
    let api = deployments.get("api").await.expect("api");
    assert_eq!(
        api.status.and_then(|s| s.available_replicas),
        Some(1),
        "the checked Deployment is available"
    );
    assert_eq!(running_pods(&env, "api").await.len(), 1);
    controllers.stop().await;
}

#[tokio::test]
async fn a_rollout_stuck_on_an_unschedulable_pod_fails_naming_the_deployment() {
    let env = common::workload_env("wl-stuck").await;
    let repo = repo("wl-stuck");
    let unknown_label = format!("{SIMULATED_NODE_LABEL}-that-no-node-has");
    let commit = push(
        &repo,
        &[
            ("deploy/ok.yaml", deployment_yaml("ok", 1, None)),
            (
                "deploy/stuck.yaml",
                deployment_yaml("stuck", 1, Some(&unknown_label)),
            ),
        ],
        "one deployment no node can run",
    );
    let controllers = start(&env, SLOW).await;
    git_repository(&env, "repo", repo.http_url()).await;
    // The timeout is far away: the failure must come from the Deployment's progress deadline.
    kustomization(
        &env,
        "app",
        json!({"path": "./deploy", "wait": true, "timeout": "10m"}),
    )
    .await;
    let ks = wait_ks(
        &env,
        "app",
        "failed at the progress deadline",
        ROLLOUT_SECS,
        |k| ready_is(k, "False") && attempted(k, &commit),
    )
    .await;
    let (_, reason, message) = ready(&ks).expect("ready");
    assert_eq!(reason, "HealthCheckFailed", "{message}");
    assert!(message.contains("Deployment/"), "{message}");
    assert!(message.contains("/stuck"), "{message}");
    assert!(
        !message.contains("/ok"),
        "the healthy one is not blamed: {message}"
    );
    assert!(
        message.contains("ProgressDeadlineExceeded") || message.contains("progress deadline"),
        "{message}"
    );
    // The Pod is really unschedulable, and the other Deployment really rolled out.
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.namespace);
    let stuck = pods
        .list(&ListParams::default().labels("app=stuck"))
        .await
        .expect("pods");
    assert!(
        stuck.items.iter().all(|p| {
            p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none()
                && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending")
        }),
        "{:?}",
        stuck.items
    );
    assert!(!stuck.items.is_empty());
    assert_eq!(running_pods(&env, "ok").await.len(), 1);
    controllers.stop().await;
}

#[tokio::test]
async fn a_stateful_set_with_a_claim_and_a_job_become_ready() {
    let env = common::workload_env("wl-sts").await;
    // A storage class of this test only: its claim can bind to no other test's volume.
    let class = format!("simulated-{}", env.namespace);
    let volume = format!("{}-data", env.namespace);
    let plane = env.plane;
    let (pv_name, pv_class) = (volume.clone(), class.clone());
    tokio::task::spawn_blocking(move || plane.create_persistent_volume(&pv_name, &pv_class, "1Gi"))
        .await
        .expect("join")
        .expect("a pre-made volume");
    let repo = repo("wl-sts");
    let stateful_set = format!(
        "apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  replicas: 1
  selector:
    matchLabels:
      app: db
  template:
    metadata:
      labels:
        app: db
    spec:
      containers:
      - name: main
        image: example.com/db:1
        volumeMounts:
        - name: data
          mountPath: /data
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      storageClassName: {class}
      accessModes: [ReadWriteOnce]
      resources:
        requests:
          storage: 1Gi
"
    );
    let job = "apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: example.com/migrate:1
"
    .to_string();
    let commit = push(
        &repo,
        &[
            ("deploy/db.yaml", stateful_set),
            ("deploy/db-svc.yaml", service_yaml("db")),
            ("deploy/migrate.yaml", job),
        ],
        "a stateful set with a claim, and a job",
    );
    let controllers = start(&env, SLOW).await;
    git_repository(&env, "repo", repo.http_url()).await;
    kustomization(
        &env,
        "app",
        json!({"path": "./deploy", "wait": true, "timeout": "5m"}),
    )
    .await;
    wait_ks(
        &env,
        "app",
        "Ready with the set and the job",
        ROLLOUT_SECS,
        |k| applied(k, &commit),
    )
    .await;

    let sets: Api<StatefulSet> = Api::namespaced(env.client.clone(), &env.namespace);
    let db = sets.get("db").await.expect("db");
    assert_eq!(db.status.and_then(|s| s.ready_replicas), Some(1));
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(env.client.clone(), &env.namespace);
    let claim = claims.get("data-db-0").await.expect("the set's claim");
    assert_eq!(claim.status.and_then(|s| s.phase).as_deref(), Some("Bound"));
    assert_eq!(
        claim.spec.and_then(|s| s.volume_name).as_deref(),
        Some(volume.as_str())
    );
    let jobs: Api<Job> = Api::namespaced(env.client.clone(), &env.namespace);
    let migrate = jobs.get("migrate").await.expect("migrate");
    let complete = migrate.status.and_then(|s| s.conditions).is_some_and(|cs| {
        cs.iter()
            .any(|c| c.type_ == "Complete" && c.status == "True")
    });
    assert!(complete, "the job controller saw its Pod succeed");
    controllers.stop().await;
}

/// Deleting a namespace that holds a claim used by a Pod finishes: the Pod goes (kwok plays its
/// deletion), then pvc-protection lets the claim go, then the namespace.
#[tokio::test]
async fn deleting_a_namespace_that_holds_a_claim_finishes() {
    let env = common::workload_env("wl-delete-ns").await;
    let class = format!("simulated-{}", env.namespace);
    let ns = env.namespace.clone();
    let manifest = format!(
        "apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
  namespace: {ns}
spec:
  storageClassName: {class}
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
---
apiVersion: v1
kind: Pod
metadata:
  name: user
  namespace: {ns}
spec:
  containers:
  - name: main
    image: example.com/user:1
    volumeMounts:
    - name: data
      mountPath: /data
  volumes:
  - name: data
    persistentVolumeClaim:
      claimName: data
"
    );
    let plane = env.plane;
    let volume = format!("{ns}-data");
    let namespace = ns.clone();
    tokio::task::spawn_blocking(move || {
        plane.create_persistent_volume(&volume, &class, "1Gi")?;
        plane.run_kubectl_with_input(&["apply", "-f", "-"], &manifest)?;
        plane.run_kubectl(&[
            "wait",
            "-n",
            &namespace,
            "--for=condition=Ready",
            "--timeout=120s",
            "pod/user",
        ])
    })
    .await
    .expect("join")
    .expect("a Pod running with a bound claim");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(env.client.clone(), &ns);
    let claim = claims.get("data").await.expect("claim");
    assert!(
        claim
            .metadata
            .finalizers
            .unwrap_or_default()
            .iter()
            .any(|f| f == "kubernetes.io/pvc-protection"),
        "the claim is protected while in use"
    );

    let namespace = ns.clone();
    let deleted = tokio::task::spawn_blocking(move || {
        plane.run_kubectl(&[
            "delete",
            "namespace",
            &namespace,
            "--wait",
            "--timeout=120s",
        ])
    })
    .await
    .expect("join");
    deleted.expect("kubectl delete namespace finishes");
    let gone = plane.run_kubectl(&["get", "namespace", &ns]);
    assert!(gone.is_err(), "namespace {ns} still exists: {gone:?}");
}
