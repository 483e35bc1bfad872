//! Convergence: every pass compares git with the cluster. Deleted namespaces come back whole,
//! metadata edits are reverted on every kind, status-only changes cost nothing, objects that
//! name no namespace are pruned and deleted, and health follows the workloads.
//!
//! The control plane runs kube-controller-manager: namespace deletion needs its namespace
//! controller.

mod common;
mod flow;

use std::fmt::Debug;
use std::time::Duration;

use flow::*;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use mooring_api::Kustomization;
use mooring_testkit::TestEnv;
use mooring_testkit::git::{Auth, GitServer, Repo};
use serde::de::DeserializeOwned;
use serde_json::json;

const SLOW: Duration = Duration::from_secs(3600);

async fn env(prefix: &str) -> TestEnv {
    common::env(prefix).await
}

fn repo(prefix: &str) -> Repo {
    GitServer::shared()
        .expect("git server")
        .create_repo(&unique(prefix), Auth::None)
        .expect("repo")
}

fn push(repo: &Repo, files: &[(String, String)], message: &str) -> String {
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    repo.commit(&refs, message).expect("commit")
}

/// Waits (watching, up to `secs`) until the object satisfies `check` (None: absent).
async fn wait_secs<K>(
    api: &Api<K>,
    name: &str,
    what: &str,
    secs: u64,
    check: impl Fn(Option<&K>) -> bool,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    wait_for(api, name, what, Duration::from_secs(secs), check).await;
}

/// Starts both controllers and the Kustomization `app` of `repo` with `spec`, and waits until it
/// has applied `commit`.
async fn start_app(
    env: &TestEnv,
    repo: &Repo,
    spec: serde_json::Value,
    commit: &str,
) -> Controllers {
    let controllers = start(env, SLOW).await;
    git_repository(env, "repo", repo.http_url()).await;
    kustomization(env, "app", spec).await;
    wait_ks(env, "app", "applied", 60, |k| applied(k, commit)).await;
    controllers
}

fn label_of<K: Resource>(obj: Option<&K>, key: &str) -> Option<String> {
    obj.and_then(|o| o.meta().labels.as_ref()?.get(key).cloned())
}

fn annotation_of<K: Resource>(obj: Option<&K>, key: &str) -> Option<String> {
    obj.and_then(|o| o.meta().annotations.as_ref()?.get(key).cloned())
}

fn deployment_yaml(name: &str, namespace: Option<&str>) -> String {
    let ns = namespace.map_or(String::new(), |n| format!("\n  namespace: {n}"));
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}{ns}\n  labels:\n    app.kubernetes.io/environment: dev\n  annotations:\n    example.com/note: from-git\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n      - name: main\n        image: example.com/app:1\n"
    )
}

fn stateful_set_yaml(name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: {name}\n  labels:\n    app.kubernetes.io/environment: dev\n  annotations:\n    example.com/note: from-git\nspec:\n  serviceName: {name}\n  replicas: 1\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n      - name: main\n        image: example.com/db:1\n"
    )
}

fn labelled_config_map_yaml(name: &str, namespace: Option<&str>) -> String {
    let ns = namespace.map_or(String::new(), |n| format!("\n  namespace: {n}"));
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}{ns}\n  labels:\n    app.kubernetes.io/environment: dev\n  annotations:\n    example.com/note: from-git\ndata:\n  value: \"1\"\n"
    )
}

fn ready_is(ks: &Kustomization, want: &str) -> bool {
    ready(ks).is_some_and(|(s, _, _)| s == want)
}

#[tokio::test]
async fn a_deleted_namespace_comes_back_whole() {
    let env = env("conv-ns").await;
    let repo = repo("conv-ns");
    let target = unique("dev");
    let t = target.as_str();
    let mut files = vec![(
        "deploy/namespace.yaml".to_string(),
        format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {t}\n"),
    )];
    for i in 0..3 {
        files.push((
            format!("deploy/cm{i}.yaml"),
            labelled_config_map_yaml(&format!("cm{i}"), Some(t)),
        ));
    }
    files.push((
        "deploy/more.yaml".to_string(),
        format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: runner\n  namespace: {t}\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: token\n  namespace: {t}\nstringData:\n  key: value\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: {t}\nspec:\n  ports:\n  - port: 80\n  selector:\n    app: web\n"
        ),
    ));
    files.push((
        "deploy/web.yaml".to_string(),
        deployment_yaml("web", Some(t)),
    ));
    let commit = push(&repo, &files, "a namespace and what is in it");
    let controllers = start_app(
        &env,
        &repo,
        json!({"path": "./deploy", "targetNamespace": null}),
        &commit,
    )
    .await;

    // An object the Kustomization does not manage holds the namespace in Terminating.
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), t);
    let holder: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "holder", "finalizers": ["test.mooring.dev/hold"]},
    }))
    .expect("holder");
    cms.create(&PostParams::default(), &holder)
        .await
        .expect("create holder");
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    namespaces
        .delete(t, &DeleteParams::default())
        .await
        .expect("delete namespace");

    // While it terminates, the managed objects are gone and cannot be created: not Ready, and
    // the message names what is missing.
    let ks = wait_ks(&env, "app", "not ready, naming missing objects", 90, |k| {
        ready_is(k, "False") && ready(k).is_some_and(|(_, _, m)| m.contains("missing:"))
    })
    .await;
    let (_, _, message) = ready(&ks).expect("ready");
    assert!(
        message.contains(&format!("/{t}/")),
        "the message names objects of {t}: {message}"
    );

    // Once the namespace is gone, everything comes back without any request from the user.
    cms.patch(
        "holder",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("release holder");
    wait_ks(&env, "app", "ready again", 90, |k| ready_is(k, "True")).await;
    for i in 0..3 {
        let name = format!("cm{i}");
        wait_secs(&cms, &name, "recreated", 30, |o| o.is_some()).await;
    }
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), t);
    wait_secs(&deployments, "web", "recreated", 30, |o| o.is_some()).await;
    let services: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(env.client.clone(), t);
    wait_secs(&services, "web", "recreated", 30, |o| o.is_some()).await;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(env.client.clone(), t);
    wait_secs(&secrets, "token", "recreated", 30, |o| o.is_some()).await;
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(env.client.clone(), t);
    wait_secs(&accounts, "runner", "recreated", 30, |o| o.is_some()).await;
    controllers.stop().await;
}

/// Changes a label and an annotation the render sets, as `kubectl label/annotate --overwrite`
/// would (an update by another field manager), and waits until both are back.
async fn edit_metadata_and_wait<K>(api: &Api<K>, name: &str)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let edit = json!({"metadata": {
        "labels": {"app.kubernetes.io/environment": "hacked"},
        "annotations": {"example.com/note": "hacked"},
    }});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .expect("edit metadata");
    wait_secs(api, name, "label and annotation restored", 30, |o| {
        label_of(o, "app.kubernetes.io/environment").as_deref() == Some("dev")
            && annotation_of(o, "example.com/note").as_deref() == Some("from-git")
    })
    .await;
}

#[tokio::test]
async fn metadata_edits_are_reverted_on_every_kind() {
    let env = env("conv-meta").await;
    let repo = repo("conv-meta");
    let files = vec![
        ("deploy/web.yaml".to_string(), deployment_yaml("web", None)),
        ("deploy/db.yaml".to_string(), stateful_set_yaml("db")),
        (
            "deploy/settings.yaml".to_string(),
            labelled_config_map_yaml("settings", None),
        ),
    ];
    let commit = push(&repo, &files, "three kinds");
    let controllers = start_app(&env, &repo, json!({"path": "./deploy"}), &commit).await;

    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), &env.namespace);
    let sets: Api<StatefulSet> = Api::namespaced(env.client.clone(), &env.namespace);
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    edit_metadata_and_wait(&deployments, "web").await;
    edit_metadata_and_wait(&sets, "db").await;
    edit_metadata_and_wait(&cms, "settings").await;

    // A lost ownership label is put back.
    cms.patch(
        "settings",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"kustomize.mooring.dev/name": null}}})),
    )
    .await
    .expect("remove ownership label");
    wait_secs(&cms, "settings", "ownership label restored", 30, |o| {
        label_of(o, "kustomize.mooring.dev/name").as_deref() == Some("app")
    })
    .await;

    // A spec edit of a kind with a generation is reverted too.
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .expect("scale");
    wait_secs(&deployments, "web", "replicas restored", 30, |o| {
        o.and_then(|d| d.spec.replicas) == Some(1)
    })
    .await;
    // The pass counts its corrections after its writes: the last one may still be counting.
    wait_until(|| controllers.drift_corrections() >= 5, 10).await;
    controllers.stop().await;
}

#[tokio::test]
async fn status_changes_cost_no_request() {
    let env = env("conv-status").await;
    let repo = repo("conv-status");
    let files = vec![("deploy/web.yaml".to_string(), deployment_yaml("web", None))];
    let commit = push(&repo, &files, "a deployment");
    let controllers = start_app(&env, &repo, json!({"path": "./deploy"}), &commit).await;
    let before = controllers.request_count();
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), &env.namespace);
    // Each change wakes the Kustomization (its watch saw the object move), and the pass sends
    // nothing. Several in a row, so that the passes counted are those of the status writes.
    for replicas in 1..=3 {
        let passes = controllers.reconciles();
        let status = json!({"status": {"observedGeneration": 1, "replicas": replicas}});
        deployments
            .patch_status("web", &PatchParams::default(), &Patch::Merge(&status))
            .await
            .expect("write status");
        wait_until(|| controllers.reconciles() > passes, 30).await;
    }
    let sent: Vec<_> = controllers
        .requests_since(before)
        .into_iter()
        .filter(|(_, p)| !p.contains("watch=true"))
        .collect();
    assert!(sent.is_empty(), "a status change sent requests: {sent:?}");
    controllers.stop().await;
}

#[tokio::test]
async fn namespaceless_objects_are_pruned_and_deleted() {
    let env = env("conv-nons").await;
    let repo = repo("conv-nons");
    let files = vec![
        (
            "deploy/kustomization.yaml".to_string(),
            "resources:\n- a.yaml\n- b.yaml\n".to_string(),
        ),
        ("deploy/a.yaml".to_string(), config_map_yaml("a", "1")),
        ("deploy/b.yaml".to_string(), config_map_yaml("b", "1")),
    ];
    let first = push(&repo, &files, "two maps, no namespace anywhere");
    let controllers = start(&env, SLOW).await;
    git_repository(&env, "repo", repo.http_url()).await;
    kustomization(
        &env,
        "app",
        json!({"path": "./deploy", "targetNamespace": null}),
    )
    .await;
    let ks = wait_ks(&env, "app", "applied", 60, |k| applied(k, &first)).await;
    let ns = &env.namespace;
    let inventory = ks.status.and_then(|s| s.inventory).expect("inventory");
    assert!(
        inventory
            .entries
            .iter()
            .all(|e| e.id.starts_with(&format!("{ns}_"))),
        "inventory ids carry the namespace: {inventory:?}"
    );

    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), ns);
    let second = push(
        &repo,
        &[(
            "deploy/kustomization.yaml".to_string(),
            "resources:\n- a.yaml\n".to_string(),
        )],
        "drop b",
    );
    poke_source(&env, "repo", "second").await;
    wait_ks(&env, "app", "applied at the second commit", 60, |k| {
        applied(k, &second)
    })
    .await;
    wait_secs(&cms, "b", "pruned", 30, |o| o.is_none()).await;
    assert!(cms.get_opt("a").await.expect("get a").is_some());

    let api: Api<Kustomization> = Api::namespaced(env.client.clone(), ns);
    api.delete("app", &DeleteParams::default())
        .await
        .expect("delete the Kustomization");
    wait_secs(&cms, "a", "deleted with its Kustomization", 30, |o| {
        o.is_none()
    })
    .await;
    wait_secs(&api, "app", "finalized", 30, |o| o.is_none()).await;
    controllers.stop().await;
}

/// Writes a Deployment's status as its controller would for a finished rollout, or one past its
/// progress deadline.
async fn deployment_status(api: &Api<Deployment>, name: &str, healthy: bool) {
    let generation = api.get(name).await.expect("get").metadata.generation;
    let progressing = if healthy {
        json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"})
    } else {
        json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
               "message": "ReplicaSet \"web-1\" has timed out progressing."})
    };
    let status = json!({"status": {
        "observedGeneration": generation,
        "replicas": 1, "updatedReplicas": 1,
        "readyReplicas": if healthy { 1 } else { 0 },
        "availableReplicas": if healthy { 1 } else { 0 },
        "conditions": [
            {"type": "Available", "status": if healthy { "True" } else { "False" },
             "reason": "MinimumReplicasAvailable"},
            progressing,
        ],
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("write deployment status");
}

fn healthy_is(ks: &Kustomization, want: &str) -> bool {
    ks.status.as_ref().is_some_and(|s| {
        mooring_api::conditions::find_condition(&s.conditions, "Healthy")
            .is_some_and(|c| c.status == want)
    })
}

fn job_yaml(name: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\nspec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: main\n        image: example.com/task:1\n"
    )
}

#[tokio::test]
async fn health_flips_with_the_workload() {
    let env = env("conv-health").await;
    let repo = repo("conv-health");
    let files = vec![("deploy/web.yaml".to_string(), deployment_yaml("web", None))];
    let commit = push(&repo, &files, "a deployment");
    let controllers = start(&env, SLOW).await;
    git_repository(&env, "repo", repo.http_url()).await;
    kustomization(
        &env,
        "app",
        json!({"path": "./deploy", "wait": true, "timeout": "5m"}),
    )
    .await;
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), &env.namespace);
    wait_secs(&deployments, "web", "applied", 60, |o| o.is_some()).await;
    wait_ks(&env, "app", "waiting for health", 60, |k| {
        ready_is(k, "Unknown")
    })
    .await;
    deployment_status(&deployments, "web", true).await;
    let ks = wait_ks(&env, "app", "healthy", 60, |k| applied(k, &commit)).await;
    let history = |k: &Kustomization| k.status.clone().unwrap_or_default().history;
    let first = history(&ks);
    assert_eq!(first.len(), 1);
    assert_eq!(
        (
            first[0].last_reconciled_status.as_str(),
            first[0].total_reconciliations
        ),
        ("Ready", 1),
        "one apply, Ready once its rollout was done"
    );

    // A spec change that changes the render and not the revision: the Deployment's new
    // template waits for its rollout, and the render's entry turns Ready when it is done.
    let patched = json!({"path": "./deploy", "wait": true, "timeout": "5m", "patches": [{
        "patch": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    metadata:\n      annotations:\n        rollout: two\n",
        "target": {"kind": "Deployment", "name": "web"}}]});
    kustomization(&env, "app", patched).await;
    let ks = wait_ks(&env, "app", "waiting for the new template", 60, |k| {
        ready_is(k, "Unknown") && history(k).len() == 2
    })
    .await;
    assert_eq!(history(&ks)[0].last_reconciled_status, "HealthPending");
    assert_ne!(history(&ks)[0].digest, first[0].digest);
    deployment_status(&deployments, "web", true).await;
    let ks = wait_ks(&env, "app", "healthy with the new template", 60, |k| {
        ready_is(k, "True")
    })
    .await;
    let second = history(&ks);
    assert_eq!(second.len(), 2);
    assert_eq!(
        (
            second[0].last_reconciled_status.as_str(),
            second[0].total_reconciliations
        ),
        ("Ready", 1),
        "the spec change's render turned Ready: {second:?}"
    );

    // The rollout fails later, without Mooring writing anything.
    deployment_status(&deployments, "web", false).await;
    let ks = wait_ks(&env, "app", "unhealthy", 60, |k| {
        ready_is(k, "False") && healthy_is(k, "False")
    })
    .await;
    let (_, reason, message) = ready(&ks).expect("ready");
    assert_eq!(reason, "HealthCheckFailed");
    assert!(
        message.contains("Deployment/") && message.contains("/web"),
        "{message}"
    );

    // And recovers.
    deployment_status(&deployments, "web", true).await;
    wait_ks(&env, "app", "healthy again", 60, |k| {
        ready_is(k, "True") && healthy_is(k, "True")
    })
    .await;

    // A Job that fails makes the Kustomization unhealthy, naming it.
    let files = vec![
        ("deploy/web.yaml".to_string(), deployment_yaml("web", None)),
        ("deploy/task.yaml".to_string(), job_yaml("task")),
    ];
    let second = push(&repo, &files, "add a job");
    poke_source(&env, "repo", "second").await;
    let jobs: Api<Job> = Api::namespaced(env.client.clone(), &env.namespace);
    wait_secs(&jobs, "task", "applied", 60, |o| o.is_some()).await;
    let now = jiff::Timestamp::now().to_string();
    let failed = json!({"status": {
        "startTime": now, "failed": 1, "active": 0,
        "conditions": [
            {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit", "lastTransitionTime": now},
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit", "lastTransitionTime": now},
        ],
    }});
    jobs.patch_status("task", &PatchParams::default(), &Patch::Merge(&failed))
        .await
        .expect("write job status");
    let ks = wait_ks(&env, "app", "the failed job is reported", 60, |k| {
        ready_is(k, "False") && attempted(k, &second)
    })
    .await;
    let (_, reason, message) = ready(&ks).expect("ready");
    assert_eq!(reason, "HealthCheckFailed");
    assert!(
        message.contains("Job/") && message.contains("/task"),
        "{message}"
    );

    // The failed Job is replaced by one that completes: healthy again once it has.
    let files = vec![
        ("deploy/web.yaml".to_string(), deployment_yaml("web", None)),
        ("deploy/task.yaml".to_string(), job_yaml("task-2")),
    ];
    let third = push(&repo, &files, "a job that completes");
    poke_source(&env, "repo", "third").await;
    wait_secs(&jobs, "task-2", "applied", 60, |o| o.is_some()).await;
    wait_ks(&env, "app", "waiting for the new job", 60, |k| {
        ready_is(k, "Unknown") && attempted(k, &third)
    })
    .await;
    let now = jiff::Timestamp::now().to_string();
    let complete = json!({"status": {
        "startTime": now, "completionTime": now, "succeeded": 1, "active": 0,
        "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
             "message": "Reached expected number of succeeded pods", "lastTransitionTime": now},
            {"type": "Complete", "status": "True", "reason": "CompletionsReached",
             "message": "Reached expected number of succeeded pods", "lastTransitionTime": now},
        ],
    }});
    jobs.patch_status("task-2", &PatchParams::default(), &Patch::Merge(&complete))
        .await
        .expect("write job status");
    wait_ks(&env, "app", "healthy with the completed job", 60, |k| {
        applied(k, &third) && healthy_is(k, "True")
    })
    .await;
    controllers.stop().await;
}

#[tokio::test]
async fn health_checks_name_objects_inside_and_outside_the_render() {
    let env = env("conv-checks").await;
    let repo = repo("conv-checks");
    let files = vec![("deploy/web.yaml".to_string(), deployment_yaml("web", None))];
    let commit = push(&repo, &files, "a deployment");
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), &env.namespace);
    let controllers = start(&env, SLOW).await;
    git_repository(&env, "repo", repo.http_url()).await;
    kustomization(
        &env,
        "app",
        json!({"path": "./deploy", "timeout": "5m", "healthChecks": [
            {"kind": "Deployment", "name": "web"},
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": "outside", "namespace": env.namespace},
        ]}),
    )
    .await;
    // The object outside the render does not exist yet.
    let ks = wait_ks(&env, "app", "waiting, naming the missing check", 60, |k| {
        ready_is(k, "Unknown") && ready(k).is_some_and(|(_, _, m)| m.contains("outside"))
    })
    .await;
    let (_, _, message) = ready(&ks).expect("ready");
    assert!(message.contains("not found"), "{message}");

    let outside: Deployment = serde_yaml_of(&deployment_yaml("outside", None));
    deployments
        .create(&PostParams::default(), &outside)
        .await
        .expect("create outside");
    deployment_status(&deployments, "web", true).await;
    deployment_status(&deployments, "outside", true).await;
    // Objects outside the render are read at each pass; ask for one.
    let api: Api<Kustomization> = Api::namespaced(env.client.clone(), &env.namespace);
    api.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"annotations": {"reconcile.mooring.dev/requestedAt": "1"}}}),
        ),
    )
    .await
    .expect("request a reconcile");
    wait_ks(&env, "app", "both healthy", 60, |k| applied(k, &commit)).await;

    // The check inside the render follows its object.
    deployment_status(&deployments, "web", false).await;
    let ks = wait_ks(&env, "app", "unhealthy", 60, |k| ready_is(k, "False")).await;
    let (_, reason, message) = ready(&ks).expect("ready");
    assert_eq!(reason, "HealthCheckFailed");
    assert!(message.contains("/web"), "{message}");
    assert!(!message.contains("outside"), "{message}");
    let outside = deployments.get("outside").await.expect("outside");
    assert!(
        !outside.labels().contains_key("kustomize.mooring.dev/name"),
        "an object named only by a health check is not taken over"
    );
    controllers.stop().await;
}

fn serde_yaml_of<T: DeserializeOwned>(yaml: &str) -> T {
    serde_saphyr::from_str(yaml).expect("yaml")
}

#[tokio::test]
async fn a_failed_stage_leaves_no_orphans() {
    let env = env("conv-partial").await;
    let repo = repo("conv-partial");
    let base = vec![("deploy/base.yaml".to_string(), config_map_yaml("base", "1"))];
    let first = push(&repo, &base, "one map");
    let controllers = start_app(
        &env,
        &repo,
        json!({"path": "./deploy", "targetNamespace": null}),
        &first,
    )
    .await;

    // The first stage (a CRD and a Namespace) is written, then the custom resource is refused.
    let group = format!("{}.example.com", unique("partial"));
    let extra = unique("partial-ns");
    let mut files = base.clone();
    files.push((
        "deploy/crd.yaml".to_string(),
        format!(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.{group}\nspec:\n  group: {group}\n  scope: Namespaced\n  names:\n    kind: Widget\n    plural: widgets\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        properties:\n          spec:\n            type: object\n            properties:\n              size:\n                type: integer\n"
        ),
    ));
    files.push((
        "deploy/namespace.yaml".to_string(),
        format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {extra}\n"),
    ));
    files.push((
        "deploy/widget.yaml".to_string(),
        format!(
            "apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: {extra}\nspec:\n  size: big\n"
        ),
    ));
    let second = push(&repo, &files, "a CRD, a namespace and an invalid widget");
    poke_source(&env, "repo", "second").await;
    wait_ks(&env, "app", "the widget is refused", 90, |k| {
        ready_is(k, "False") && attempted(k, &second)
    })
    .await;
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    assert!(
        namespaces.get_opt(&extra).await.expect("get").is_some(),
        "the first stage was written before the failure"
    );

    // Git goes back: what the failed revision created is pruned.
    let third = repo
        .remove(
            &[
                "deploy/crd.yaml",
                "deploy/namespace.yaml",
                "deploy/widget.yaml",
            ],
            "back to one map",
        )
        .expect("commit");
    poke_source(&env, "repo", "third").await;
    wait_ks(&env, "app", "applied at the third commit", 90, |k| {
        applied(k, &third)
    })
    .await;
    wait_secs(&namespaces, &extra, "pruned", 60, |n| {
        n.is_none_or(|n| n.metadata.deletion_timestamp.is_some())
    })
    .await;
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(env.client.clone());
    wait_secs(&crds, &format!("widgets.{group}"), "pruned", 60, |c| {
        c.is_none_or(|c| c.metadata.deletion_timestamp.is_some())
    })
    .await;
    controllers.stop().await;
}

#[tokio::test]
async fn a_deleted_source_turns_its_kustomization_not_ready_at_once() {
    let env = env("conv-source-gone").await;
    let repo = repo("conv-source-gone");
    let files = vec![("deploy/cm.yaml".to_string(), config_map_yaml("kept", "1"))];
    let commit = push(&repo, &files, "one map");
    let _controllers = start_app(
        &env,
        &repo,
        json!({"path": "./deploy", "interval": "1h"}),
        &commit,
    )
    .await;

    // The Kustomization reconciles every hour: only the deletion itself can tell it.
    let sources: Api<mooring_api::GitRepository> =
        Api::namespaced(env.client.clone(), &env.namespace);
    sources
        .delete("repo", &DeleteParams::default())
        .await
        .expect("delete the GitRepository");
    let ks = wait_ks(&env, "app", "not Ready, naming its source", 30, |k| {
        ready(k).is_some_and(|(status, _, message)| {
            status == "False"
                && message.contains(&format!("GitRepository '{}/repo'", env.namespace))
        })
    })
    .await;
    eprintln!("{:?}", ready(&ks));
    // What it applied stays.
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    assert!(maps.get_opt("kept").await.expect("get").is_some());
}

#[tokio::test]
async fn a_deleted_dependency_turns_its_dependent_not_ready_at_once() {
    let env = env("conv-dependency-gone").await;
    let repo = repo("conv-dependency-gone");
    let files = vec![
        ("base/cm.yaml".to_string(), config_map_yaml("base", "1")),
        ("deploy/cm.yaml".to_string(), config_map_yaml("kept", "1")),
    ];
    let commit = push(&repo, &files, "two apps");
    let controllers = start_app(
        &env,
        &repo,
        json!({"path": "./base", "interval": "1h"}),
        &commit,
    )
    .await;
    kustomization(
        &env,
        "dependent",
        json!({"path": "./deploy", "interval": "1h", "dependsOn": [{"name": "app"}]}),
    )
    .await;
    wait_ks(&env, "dependent", "applied after its dependency", 60, |k| {
        applied(k, &commit)
    })
    .await;

    // The dependency goes (pruning what it applied); nothing else changes for the dependent,
    // whose interval is an hour away.
    let kustomizations: Api<Kustomization> = Api::namespaced(env.client.clone(), &env.namespace);
    kustomizations
        .delete("app", &DeleteParams::default())
        .await
        .expect("delete the dependency");
    wait_ks(
        &env,
        "dependent",
        "not Ready, its dependency not found",
        30,
        |k| {
            ready(k).is_some_and(|(status, reason, message)| {
                status == "False"
                    && reason == "DependencyNotReady"
                    && message.contains(&format!("dependency '{}/app' not found", env.namespace))
            })
        },
    )
    .await;
    // What it applied stays.
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    assert!(maps.get_opt("kept").await.expect("get").is_some());
    controllers.stop().await;
}

#[tokio::test]
async fn a_source_deleted_without_its_finalizer_turns_its_kustomization_not_ready_at_once() {
    let env = env("conv-source-gone-bare").await;
    let repo = repo("conv-source-gone-bare");
    let files = vec![("deploy/cm.yaml".to_string(), config_map_yaml("kept", "1"))];
    let commit = push(&repo, &files, "one map");
    let controllers = start_app(
        &env,
        &repo,
        json!({"path": "./deploy", "interval": "1h"}),
        &commit,
    )
    .await;

    // With the source-controller down nothing holds the deletion: the GitRepository goes at
    // once, and no "being deleted" version of it comes first.
    controllers.source.stop().await;
    let sources: Api<mooring_api::GitRepository> =
        Api::namespaced(env.client.clone(), &env.namespace);
    sources
        .patch(
            "repo",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .expect("remove the source-controller's finalizer");
    sources
        .delete("repo", &DeleteParams::default())
        .await
        .expect("delete the GitRepository");
    wait_ks(&env, "app", "not Ready, its source not found", 30, |k| {
        ready(k).is_some_and(|(status, _, message)| {
            status == "False"
                && message.contains(&format!("GitRepository '{}/repo' not found", env.namespace))
        })
    })
    .await;
    // What it applied stays.
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    assert!(maps.get_opt("kept").await.expect("get").is_some());
    controllers.kustomize.stop().await;
}
