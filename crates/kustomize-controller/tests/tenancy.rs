//! Tenancy: with a default ServiceAccount, every request made for a Kustomization (dry-run and
//! apply, drift re-applies, prune, health reads, `substituteFrom` reads, deletion with the
//! finalizer) is made as that ServiceAccount, so RBAC decides what a tenant may change; and
//! references to other namespaces are refused. Real API server, real RBAC.

mod common;
mod flow;

use std::time::Duration;

use flow::*;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use mooring_api::Kustomization;
use mooring_testkit::TestEnv;
use mooring_testkit::git::{Auth, GitServer, Repo};
use serde_json::json;

const SLOW: Duration = Duration::from_secs(3600);
/// The ServiceAccount the controller impersonates for Kustomizations that name none.
const TENANT: &str = "tenant";

fn repo(prefix: &str) -> Repo {
    GitServer::shared()
        .expect("git server")
        .create_repo(&unique(prefix), Auth::None)
        .expect("repo")
}

fn kubectl_apply(env: &TestEnv, yaml: &str) {
    env.plane
        .run_kubectl_with_input(&["apply", "-n", &env.namespace, "-f", "-"], yaml)
        .expect("kubectl apply");
}

/// The tenant ServiceAccount, with a Role in its namespace granting `verbs` on `resources`.
fn grant(env: &TestEnv, resources: &[&str], verbs: &[&str]) {
    let ns = &env.namespace;
    let rules = json!([{"apiGroups": [""], "resources": resources, "verbs": verbs}]);
    kubectl_apply(
        env,
        &format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {TENANT}\n---\n\
             apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: {TENANT}\nrules: {rules}\n---\n\
             apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: {TENANT}\n\
             roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: {TENANT}}}\n\
             subjects: [{{kind: ServiceAccount, name: {TENANT}, namespace: {ns}}}]\n"
        ),
    );
}

fn config_maps(env: &TestEnv) -> Api<ConfigMap> {
    Api::namespaced(env.client.clone(), &env.namespace)
}

async fn exists(api: &Api<ConfigMap>, name: &str) -> bool {
    api.get_opt(name).await.expect("get").is_some()
}

/// Ready=False with a message that contains every one of `parts`.
fn failing_with(ks: &Kustomization, parts: &[&str]) -> bool {
    ready(ks).is_some_and(|(s, _, m)| s == "False" && parts.iter().all(|p| m.contains(p)))
}

fn message(ks: &Kustomization) -> String {
    ready(ks).map(|(_, _, m)| m).unwrap_or_default()
}

/// Starts the controllers with the tenant as default ServiceAccount, the GitRepository `repo`,
/// and the Kustomization `app` (no serviceAccountName) with `spec`.
async fn start_tenant(env: &TestEnv, repo: &Repo, spec: serde_json::Value) -> Controllers {
    let controllers = start_as(env, SLOW, Some(TENANT)).await;
    git_repository(env, "repo", repo.http_url()).await;
    kustomization(env, "app", spec).await;
    controllers
}

/// A second namespace, another tenant's; deleted when the test ends (best effort).
struct OtherNamespace {
    api: Api<Namespace>,
    name: String,
}

impl OtherNamespace {
    async fn create(env: &TestEnv) -> Self {
        let api: Api<Namespace> = Api::all(env.client.clone());
        let name = format!("{}-b", env.namespace);
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
        api.create(&PostParams::default(), &ns)
            .await
            .expect("create namespace");
        Self { api, name }
    }

    async fn delete(self) {
        let _ = self.api.delete(&self.name, &DeleteParams::default()).await;
    }
}

#[tokio::test]
async fn a_tenant_cannot_write_outside_its_rights_and_nothing_of_the_stage_is_applied() {
    let env = common::env("tenant-escape").await;
    let other = OtherNamespace::create(&env).await;
    grant(&env, &["configmaps"], &["*"]);
    let repo = repo("tenant-escape");
    let b = &other.name;
    // What tenant A's repository tries: to bind itself cluster-admin, and to write into B.
    let escalation = format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: {b}-escalate\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}}\n\
         subjects: [{{kind: ServiceAccount, name: {TENANT}, namespace: {ns}}}]\n",
        ns = env.namespace
    );
    let planted = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: planted\n  namespace: {b}\ndata:\n  from: a\n"
    );
    let commit = repo
        .commit(
            &[
                ("escalate.yaml", escalation.as_str()),
                ("planted.yaml", planted.as_str()),
                ("own.yaml", &config_map_yaml("own", "1")),
            ],
            "reach out",
        )
        .expect("commit");
    let controllers = start_tenant(&env, &repo, json!({"targetNamespace": null})).await;
    let ks = wait_ks(&env, "app", "refused", 60, |k| {
        attempted(k, &commit)
            && failing_with(
                k,
                &[
                    &format!("ClusterRoleBinding/{b}-escalate"),
                    &format!("ConfigMap/{b}/planted"),
                ],
            )
    })
    .await;
    let text = message(&ks);
    assert!(
        text.contains(&format!("system:serviceaccount:{}:{TENANT}", env.namespace)),
        "the message names the identity: {text}"
    );
    let bindings: Api<k8s_openapi::api::rbac::v1::ClusterRoleBinding> =
        Api::all(env.client.clone());
    assert!(
        bindings
            .get_opt(&format!("{b}-escalate"))
            .await
            .expect("get")
            .is_none()
    );
    let in_b: Api<ConfigMap> = Api::namespaced(env.client.clone(), b);
    assert!(!exists(&in_b, "planted").await, "nothing written in B");
    assert!(
        !exists(&config_maps(&env), "own").await,
        "nothing of the refused render is applied"
    );
    // Its inventory lists what it meant to create; deleting it still completes, although the
    // tenant may not even read those objects.
    let kss: Api<Kustomization> = Api::namespaced(env.client.clone(), &env.namespace);
    kss.delete("app", &DeleteParams::default())
        .await
        .expect("delete");
    wait_ks_gone(&kss).await;

    controllers.stop().await;
    other.delete().await;
}

#[tokio::test]
async fn substitute_from_is_read_as_the_tenant() {
    let env = common::env("tenant-subst").await;
    grant(&env, &["configmaps"], &["*"]);
    env.plane
        .run_kubectl(&[
            "create",
            "secret",
            "generic",
            "vars",
            "-n",
            &env.namespace,
            "--from-literal=greeting=hello",
        ])
        .expect("Secret");
    let repo = repo("tenant-subst");
    let commit = repo
        .commit(
            &[("cm.yaml", &config_map_yaml("greeting", "${greeting}"))],
            "vars",
        )
        .expect("commit");
    let controllers = start_tenant(
        &env,
        &repo,
        json!({"postBuild": {"substituteFrom": [{"kind": "Secret", "name": "vars"}]}}),
    )
    .await;
    wait_ks(&env, "app", "denied reading the Secret", 60, |k| {
        attempted(k, &commit) && failing_with(k, &["vars", "forbidden"])
    })
    .await;
    assert!(!exists(&config_maps(&env), "greeting").await);

    grant(&env, &["configmaps", "secrets"], &["*"]);
    poke_kustomization(&env, "app", "1").await;
    wait_ks(&env, "app", "applied", 60, |k| applied(k, &commit)).await;
    let cm = config_maps(&env).get("greeting").await.expect("applied");
    assert_eq!(data_of(Some(&cm), "value").as_deref(), Some("hello"));
    controllers.stop().await;
}

#[tokio::test]
async fn decryption_keys_are_read_as_the_tenant() {
    let env = common::env("tenant-sops").await;
    grant(&env, &["configmaps"], &["*"]);
    let key = mooring_testkit::sops::age_key().expect("age key");
    env.plane
        .run_kubectl_with_input(
            &[
                "create",
                "secret",
                "generic",
                "sops-keys",
                "-n",
                &env.namespace,
                "--from-file=key.agekey=/dev/stdin",
            ],
            &key.identity,
        )
        .expect("key Secret");
    let plain =
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: p4ss\n";
    let encrypted = mooring_testkit::sops::Encrypt {
        age: vec![&key],
        ..Default::default()
    }
    .file("secret.yaml", plain.as_bytes())
    .expect("sops encrypt");
    let repo = repo("tenant-sops");
    let commit = repo
        .commit(
            &[("secret.yaml", &String::from_utf8(encrypted).expect("text"))],
            "encrypted",
        )
        .expect("commit");
    let controllers = start_tenant(
        &env,
        &repo,
        json!({"decryption": {"provider": "sops", "secretRef": {"name": "sops-keys"}}}),
    )
    .await;
    wait_ks(&env, "app", "denied reading the key Secret", 60, |k| {
        attempted(k, &commit) && failing_with(k, &["sops-keys", "forbidden"])
    })
    .await;

    grant(&env, &["configmaps", "secrets"], &["*"]);
    poke_kustomization(&env, "app", "1").await;
    wait_ks(&env, "app", "applied", 60, |k| applied(k, &commit)).await;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(env.client.clone(), &env.namespace);
    let db = secrets.get("db").await.expect("applied");
    let password = db.data.unwrap_or_default().remove("password").map(|v| v.0);
    assert_eq!(password.as_deref(), Some(&b"p4ss"[..]));
    controllers.stop().await;
}

#[tokio::test]
async fn prune_drift_and_deletion_are_done_as_the_tenant() {
    let env = common::env("tenant-verbs").await;
    let cms = config_maps(&env);
    // Everything but delete.
    grant(
        &env,
        &["configmaps"],
        &["get", "list", "watch", "create", "patch"],
    );
    let repo = repo("tenant-verbs");
    let first = repo
        .commit(
            &[
                ("a.yaml", &config_map_yaml("a", "1")),
                ("b.yaml", &config_map_yaml("b", "1")),
            ],
            "a and b",
        )
        .expect("commit");
    let controllers = start_tenant(&env, &repo, json!({})).await;
    wait_ks(&env, "app", "applied", 60, |k| applied(k, &first)).await;

    // Prune: b leaves git; the tenant may not delete it.
    let second = repo.remove(&["b.yaml"], "b removed").expect("commit");
    poke_source(&env, "repo", "1").await;
    wait_ks(&env, "app", "prune denied", 60, |k| {
        attempted(k, &second) && failing_with(k, &["b", "forbidden"])
    })
    .await;
    assert!(
        exists(&cms, "b").await,
        "b is kept: the tenant may not delete it"
    );

    // Drift: without patch, a change made with kubectl is not reverted.
    grant(
        &env,
        &["configmaps"],
        &["get", "list", "watch", "create", "delete"],
    );
    wait_ks(&env, "app", "pruned once delete is granted", 60, |k| {
        k.status
            .as_ref()
            .and_then(|s| s.inventory.as_ref())
            .is_some_and(|i| i.entries.len() == 1)
    })
    .await;
    let edit = json!({"data": {"value": "edited"}});
    cms.patch(
        "a",
        &PatchParams::apply("someone").force(),
        &Patch::Apply(&json!({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": edit["data"]
        })),
    )
    .await
    .expect("edit");
    wait_ks(&env, "app", "drift re-apply denied", 60, |k| {
        failing_with(k, &["ConfigMap/", "/a", "forbidden"])
    })
    .await;
    let a = cms.get("a").await.expect("a");
    assert_eq!(data_of(Some(&a), "value").as_deref(), Some("edited"));

    // Deletion: without delete the finalizer cannot delete a; the Kustomization stays.
    grant(
        &env,
        &["configmaps"],
        &["get", "list", "watch", "create", "patch"],
    );
    wait_config_map(
        &env,
        "a",
        "drift restored once patch is granted",
        60,
        |cm| data_of(cm, "value").as_deref() == Some("1"),
    )
    .await;
    let kss: Api<Kustomization> = Api::namespaced(env.client.clone(), &env.namespace);
    kss.delete("app", &DeleteParams::default())
        .await
        .expect("delete");
    wait_event(&env, "PruneFailed", "deleting the applied objects failed").await;
    assert!(
        kss.get_opt("app").await.expect("get").is_some(),
        "the finalizer waits for the objects to be deleted"
    );
    assert!(exists(&cms, "a").await);
    grant(&env, &["configmaps"], &["*"]);
    wait_config_map(&env, "a", "deleted with the Kustomization", 90, |cm| {
        cm.is_none()
    })
    .await;
    wait_ks_gone(&kss).await;
    controllers.stop().await;
}

async fn wait_ks_gone(api: &Api<Kustomization>) {
    wait_for(
        api,
        "app",
        "the Kustomization gone",
        Duration::from_secs(60),
        |k| k.is_none(),
    )
    .await;
}

#[tokio::test]
async fn health_reads_are_done_as_the_tenant() {
    let env = common::env("tenant-health").await;
    grant(&env, &["configmaps"], &["*"]);
    env.plane
        .run_kubectl(&[
            "create",
            "secret",
            "generic",
            "watched",
            "-n",
            &env.namespace,
            "--from-literal=k=v",
        ])
        .expect("Secret");
    let repo = repo("tenant-health");
    let commit = repo
        .commit(&[("cm.yaml", &config_map_yaml("cm", "1"))], "cm")
        .expect("commit");
    let controllers = start_tenant(
        &env,
        &repo,
        json!({"healthChecks": [{"apiVersion": "v1", "kind": "Secret", "name": "watched"}],
               "timeout": "30s"}),
    )
    .await;
    wait_ks(&env, "app", "health read denied", 60, |k| {
        attempted(k, &commit) && failing_with(k, &["watched"])
    })
    .await;
    grant(&env, &["configmaps", "secrets"], &["*"]);
    poke_kustomization(&env, "app", "1").await;
    wait_ks(&env, "app", "healthy once get is granted", 60, |k| {
        applied(k, &commit)
    })
    .await;
    controllers.stop().await;
}

#[tokio::test]
async fn references_to_other_namespaces_and_unimplemented_fields_are_refused() {
    let env = common::env("tenant-refs").await;
    let repo = repo("tenant-refs");
    repo.commit(&[("cm.yaml", &config_map_yaml("cm", "1"))], "cm")
        .expect("commit");
    let controllers = start_as(&env, SLOW, Some(TENANT)).await;
    git_repository(&env, "repo", repo.http_url()).await;
    let stalled = |k: &Kustomization, parts: &[&str]| {
        k.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Stalled" && c.status == "True")
        }) && failing_with(k, parts)
    };
    let cases = [
        (
            "source",
            json!({"sourceRef": {"kind": "GitRepository", "name": "repo", "namespace": "elsewhere"}}),
            vec![
                "spec.sourceRef",
                "GitRepository elsewhere/repo",
                "cross-namespace",
            ],
        ),
        (
            "dependency",
            json!({"dependsOn": [{"name": "x", "namespace": "elsewhere"}]}),
            vec![
                "spec.dependsOn",
                "Kustomization elsewhere/x",
                "cross-namespace",
            ],
        ),
        (
            "decryption",
            json!({"decryption": {"provider": "sops", "serviceAccountName": "kms"}}),
            vec!["spec.decryption.serviceAccountName is not supported"],
        ),
        (
            "cel",
            json!({"healthCheckExprs": [{"apiVersion": "example.com/v1", "current": "true"}]}),
            vec!["spec.healthCheckExprs is not supported"],
        ),
        (
            "ready-expr",
            json!({"dependsOn": [{"name": "x", "readyExpr": "true"}]}),
            vec!["spec.dependsOn[].readyExpr is not supported"],
        ),
    ];
    for (name, spec, _) in &cases {
        kustomization(&env, name, spec.clone()).await;
    }
    let long = "l".repeat(70);
    kustomization(&env, &long, json!({})).await;
    for (name, _, parts) in &cases {
        wait_ks(&env, name, "refused", 60, |k| stalled(k, parts)).await;
    }
    wait_ks(&env, &long, "refused", 60, |k| {
        stalled(k, &["metadata.name", "63"])
    })
    .await;
    assert!(!exists(&config_maps(&env), "cm").await, "nothing applied");

    // The schema refuses an interval that would loop.
    let api: Api<Kustomization> = Api::namespaced(env.client.clone(), &env.namespace);
    let fast = json!({
        "apiVersion": "kustomize.mooring.dev/v1", "kind": "Kustomization",
        "metadata": {"name": "fast"},
        "spec": {"interval": "0s", "prune": true, "sourceRef": {"kind": "GitRepository", "name": "repo"}}
    });
    let err = api
        .patch("fast", &PatchParams::apply("test"), &Patch::Apply(&fast))
        .await
        .expect_err("interval 0s refused");
    assert!(err.to_string().contains("at least 1s"), "{err}");
    controllers.stop().await;
}

/// Deleting a tenant's namespace takes its RoleBindings with it, so the finalizer could never
/// delete what the Kustomization applied as the tenant: the controller stops trying, logs a
/// warning naming what is left outside the namespace (an Event cannot be written in a
/// terminating namespace), and lets the namespace go.
#[tokio::test]
async fn a_deleted_namespace_is_not_held_by_objects_the_tenant_cannot_delete() {
    use mooring_testkit::controllers::{self, KUSTOMIZE_CONTROLLER};

    let env = common::env("ks-ns-gone").await;
    let ns = env.namespace.clone();
    let other = OtherNamespace::create(&env).await;
    let repo = repo("ns-gone");
    let map = |name: &str, namespace: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}\ndata:\n  value: \"1\"\n"
        )
    };
    let commit = repo
        .commit(
            &[
                ("deploy/here.yaml", &map("here", &ns)),
                ("deploy/there.yaml", &map("there", &other.name)),
            ],
            "one map here, one in another namespace",
        )
        .expect("commit");
    grant(&env, &["configmaps"], &["*"]);
    // In the other namespace the tenant may write but not delete.
    let rules = json!([{"apiGroups": [""], "resources": ["configmaps"],
                        "verbs": ["get", "list", "watch", "create", "patch"]}]);
    env.plane
        .run_kubectl_with_input(
            &["apply", "-n", &other.name, "-f", "-"],
            &format!(
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: {TENANT}\nrules: {rules}\n---\n\
                 apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: {TENANT}\n\
                 roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: {TENANT}}}\n\
                 subjects: [{{kind: ServiceAccount, name: {TENANT}, namespace: {ns}}}]\n"
            ),
        )
        .expect("the tenant's rights in the other namespace");
    // The controller binaries, so that their log can be read.
    let mut options = controllers::Options::local(env.plane.kubeconfig()).watching(&ns);
    options
        .kustomize_flags
        .push(format!("--default-service-account={TENANT}"));
    let running = tokio::task::spawn_blocking(move || controllers::Controllers::start(&options))
        .await
        .expect("start task")
        .expect("controllers");
    git_repository(&env, "repo", repo.http_url()).await;
    kustomization(
        &env,
        "app",
        json!({"path": "./deploy", "targetNamespace": null}),
    )
    .await;
    wait_ks(&env, "app", "applied in both namespaces", 60, |k| {
        applied(k, &commit)
    })
    .await;

    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .expect("delete the tenant's namespace");
    wait_for(
        &namespaces,
        &ns,
        "the tenant's namespace gone, not held by the Kustomization's finalizer",
        Duration::from_secs(90),
        |n| n.is_none(),
    )
    .await;
    let there: Api<ConfigMap> = Api::namespaced(env.client.clone(), &other.name);
    assert!(
        there.get_opt("there").await.expect("get").is_some(),
        "the object outside the namespace is left in place"
    );
    let log = std::fs::read_to_string(running.log_file(KUSTOMIZE_CONTROLLER)).expect("log");
    let warning = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains("the namespace is being deleted"))
        .unwrap_or_else(|| panic!("no warning about the namespace in the log:\n{log}"));
    assert!(
        warning.contains("there") && warning.contains(&other.name),
        "the warning names what is left outside the namespace: {warning}"
    );
    other.delete().await;
}
