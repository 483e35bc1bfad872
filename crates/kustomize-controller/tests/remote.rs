//! Remote clusters: a Kustomization of the first control plane whose `spec.kubeConfig.secretRef`
//! names a kubeconfig of a second one applies, checks health, corrects drift and prunes there,
//! never here; an unreachable remote gives a clear condition and keeps what is applied.

mod common;
mod flow;

use std::time::Duration;

use flow::*;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use mooring_api::{GitRepository, Kustomization};
use mooring_testkit::control_plane::{ControlPlane, Options};
use mooring_testkit::git::{Auth, GitServer};
use serde_json::json;

const SLOW: Duration = Duration::from_secs(3600);

async fn put_kubeconfig(env: &mooring_testkit::TestEnv, kubeconfig: &str) {
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.namespace);
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "remote"},
                        "stringData": {"value": kubeconfig}});
    secrets
        .patch(
            "remote",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&secret),
        )
        .await
        .expect("kubeconfig Secret");
}

/// A second control plane with the test's namespace, its client, and its kubeconfig put in
/// the Secret `remote` of the first.
async fn remote_cluster(env: &mooring_testkit::TestEnv) -> (ControlPlane, kube::Client, String) {
    let remote = tokio::task::spawn_blocking(|| ControlPlane::start(&Options::default()))
        .await
        .expect("join")
        .expect("second control plane");
    let remote_client = remote.client().await.expect("remote client");
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": env.namespace}})).expect("namespace");
    Api::<Namespace>::all(remote_client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("the namespace on the remote");
    let kubeconfig = std::fs::read_to_string(remote.kubeconfig()).expect("kubeconfig");
    put_kubeconfig(env, &kubeconfig).await;
    (remote, remote_client, kubeconfig)
}

#[tokio::test]
async fn a_kustomization_applies_prunes_and_corrects_drift_on_the_remote_cluster() {
    let env = common::env("remote").await;
    let (remote, remote_client, kubeconfig) = remote_cluster(&env).await;
    // Only the remote has it: a health check of it passes only if health is read there.
    let marker: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "marker"}})).expect("ConfigMap");
    Api::<ConfigMap>::namespaced(remote_client.clone(), &env.namespace)
        .create(&PostParams::default(), &marker)
        .await
        .expect("marker on the remote");

    let repo = GitServer::shared()
        .expect("git server")
        .create_repo(&unique("remote"), Auth::None)
        .expect("repo");
    let first = repo
        .commit(
            &[
                ("a.yaml", &config_map_yaml("a", "1")),
                ("b.yaml", &config_map_yaml("b", "1")),
            ],
            "a and b",
        )
        .expect("commit");
    let controllers = start(&env, SLOW).await;
    git_repository(&env, "repo", repo.http_url()).await;
    kustomization(
        &env,
        "app",
        json!({"kubeConfig": {"secretRef": {"name": "remote"}},
               "healthChecks": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "marker"}]}),
    )
    .await;
    wait_ks(&env, "app", "applied", 90, |k| applied(k, &first)).await;

    let there: Api<ConfigMap> = Api::namespaced(remote_client.clone(), &env.namespace);
    let here: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    for name in ["a", "b"] {
        assert!(
            there.get_opt(name).await.expect("get").is_some(),
            "{name} on the remote"
        );
        assert!(
            here.get_opt(name).await.expect("get").is_none(),
            "{name} not here"
        );
    }

    // Drift on the remote: deleted, then restored by the remote's live view.
    there
        .delete("a", &DeleteParams::default())
        .await
        .expect("delete on the remote");
    wait_for(
        &there,
        "a",
        "restored on the remote",
        Duration::from_secs(60),
        |cm| cm.is_some(),
    )
    .await;

    // Prune on the remote.
    let second = repo.remove(&["b.yaml"], "b removed").expect("commit");
    poke_source(&env, "repo", "1").await;
    wait_ks(&env, "app", "second applied", 60, |k| applied(k, &second)).await;
    wait_for(
        &there,
        "b",
        "pruned on the remote",
        Duration::from_secs(60),
        |cm| cm.is_none(),
    )
    .await;

    // An unreachable remote: a clear condition, and what is applied stays.
    let unreachable = kubeconfig.replace(remote.server(), "https://127.0.0.1:1");
    put_kubeconfig(&env, &unreachable).await;
    let third = repo
        .commit(&[("c.yaml", &config_map_yaml("c", "1"))], "c")
        .expect("commit");
    poke_source(&env, "repo", "2").await;
    let ks = wait_ks(&env, "app", "unreachable reported", 90, |k| {
        attempted(k, &third)
            && ready(k).is_some_and(|(s, _, m)| s == "False" && m.contains("127.0.0.1:1"))
    })
    .await;
    let status = ks.status.expect("status");
    assert!(
        status
            .last_applied_revision
            .as_deref()
            .is_some_and(|r| r.ends_with(&second)),
        "the last applied revision stays"
    );
    assert!(
        there.get_opt("a").await.expect("get").is_some(),
        "a stays on the remote"
    );

    // The Secret fixed: the client is rebuilt and the new revision lands.
    put_kubeconfig(&env, &kubeconfig).await;
    poke_kustomization(&env, "app", "3").await;
    wait_ks(&env, "app", "applied after the fix", 90, |k| {
        applied(k, &third)
    })
    .await;
    assert!(there.get_opt("c").await.expect("get").is_some());
    assert!(here.get_opt("c").await.expect("get").is_none());
    controllers.stop().await;
}

/// `spec.kubeConfig.configMapRef` is refused, and a Kustomization deleted with it must not read
/// it as "this cluster": the objects it applied (here, to this cluster before the edit) stay,
/// a `PruneFailed` Event names the field, and the finalizer stays until the spec says what to do.
#[tokio::test]
async fn a_deletion_with_a_refused_kubeconfig_deletes_nothing_here() {
    let env = common::env("remote-refused").await;
    let repo = GitServer::shared()
        .expect("git server")
        .create_repo(&unique("remote-refused"), Auth::None)
        .expect("repo");
    let first = repo
        .commit(&[("a.yaml", &config_map_yaml("a", "1"))], "a")
        .expect("commit");
    let controllers = start(&env, SLOW).await;
    git_repository(&env, "repo", repo.http_url()).await;
    kustomization(&env, "app", json!({})).await;
    wait_ks(&env, "app", "applied", 90, |k| applied(k, &first)).await;

    let kss: Api<Kustomization> = Api::namespaced(env.client.clone(), &env.namespace);
    let to_config_map =
        json!({"spec": {"kubeConfig": {"configMapRef": {"name": "workload-identity"}}}});
    kss.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(&to_config_map),
    )
    .await
    .expect("kubeConfig.configMapRef");
    wait_ks(&env, "app", "configMapRef refused", 60, |k| {
        ready(k).is_some_and(|(s, _, m)| {
            s == "False" && m.contains("spec.kubeConfig.configMapRef is not supported")
        })
    })
    .await;

    delete_held(&env, &kss, "spec.kubeConfig.configMapRef is not supported").await;
    let here: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    assert!(
        here.get_opt("a").await.expect("get").is_some(),
        "what was applied is not deleted from a cluster the spec no longer names"
    );

    // The spec says to leave the objects: the deletion ends, and they stay.
    orphan(&kss).await;
    assert!(here.get_opt("a").await.expect("get").is_some(), "a stays");
    controllers.stop().await;
}

/// The inventory records its cluster. When `spec.kubeConfig` names another cluster, the ids of
/// the old inventory are other objects there: a pass neither prunes them there nor deletes
/// them, and a deletion waits until the spec says what to do.
#[tokio::test]
async fn an_inventory_of_another_cluster_is_never_pruned_or_deleted_on_this_one() {
    use mooring_api::constants::{KUSTOMIZE_NAME_LABEL, KUSTOMIZE_NAMESPACE_LABEL};
    let env = common::env("remote-moved").await;
    let (remote, remote_client, _) = remote_cluster(&env).await;
    let repo = GitServer::shared()
        .expect("git server")
        .create_repo(&unique("remote-moved"), Auth::None)
        .expect("repo");
    let first = repo
        .commit(
            &[
                ("a.yaml", &config_map_yaml("a", "1")),
                ("b.yaml", &config_map_yaml("b", "1")),
            ],
            "a and b",
        )
        .expect("commit");
    let controllers = start(&env, SLOW).await;
    git_repository(&env, "repo", repo.http_url()).await;
    kustomization(
        &env,
        "app",
        json!({"kubeConfig": {"secretRef": {"name": "remote"}}}),
    )
    .await;
    let cluster_of = |k: &Kustomization| {
        k.status
            .as_ref()
            .and_then(|s| s.inventory.as_ref())
            .and_then(|i| i.cluster.clone())
    };
    let ks = wait_ks(&env, "app", "applied there", 90, |k| applied(k, &first)).await;
    let there_name = cluster_of(&ks).expect("the inventory names its cluster");
    assert!(
        there_name.starts_with(remote.server()),
        "{there_name} against {}",
        remote.server()
    );

    // Here, an object with b's id and this Kustomization's labels (another controller's, or
    // left from earlier): not the b of the inventory.
    let here: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let there: Api<ConfigMap> = Api::namespaced(remote_client.clone(), &env.namespace);
    let look_alike: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "b",
        "labels": {KUSTOMIZE_NAME_LABEL: "app", KUSTOMIZE_NAMESPACE_LABEL: env.namespace}}}))
    .expect("ConfigMap");
    here.create(&PostParams::default(), &look_alike)
        .await
        .expect("b here");

    // b leaves git (the Kustomization suspended meanwhile, so that the remote keeps it), and
    // then the spec moves the Kustomization to this cluster: a is applied here, and neither b
    // is pruned.
    let kss: Api<Kustomization> = Api::namespaced(env.client.clone(), &env.namespace);
    let suspend = json!({"spec": {"suspend": true}});
    kss.patch("app", &PatchParams::default(), &Patch::Merge(&suspend))
        .await
        .expect("suspend");
    let second = repo.remove(&["b.yaml"], "b removed").expect("commit");
    poke_source(&env, "repo", "1").await;
    let sources: Api<GitRepository> = Api::namespaced(env.client.clone(), &env.namespace);
    wait_for(
        &sources,
        "repo",
        "the second commit's artifact",
        Duration::from_secs(60),
        |r| {
            r.and_then(|r| r.status.as_ref())
                .and_then(|s| s.artifact.as_ref())
                .is_some_and(|a| a.revision.ends_with(&second))
        },
    )
    .await;
    let to_here = json!({"spec": {"kubeConfig": null, "suspend": false}});
    kss.patch("app", &PatchParams::default(), &Patch::Merge(&to_here))
        .await
        .expect("kubeConfig removed");
    wait_event(&env, "PruneFailed", "they are left there").await;
    let ks = wait_ks(&env, "app", "applied here", 90, |k| {
        applied(k, &second) && cluster_of(k).as_deref() == Some("local")
    })
    .await;
    assert_eq!(
        ks.status.and_then(|s| s.inventory).map(|i| i.entries.len()),
        Some(1),
        "the inventory is this cluster's a"
    );
    assert!(here.get_opt("a").await.expect("get").is_some(), "a here");
    assert!(
        here.get_opt("b").await.expect("get").is_some(),
        "b here is not pruned"
    );
    assert!(
        there.get_opt("b").await.expect("get").is_some(),
        "b there is left"
    );

    // The spec names the remote again, and the gate stops every pass (its source is gone), so
    // the inventory stays this cluster's; the deletion deletes nothing there.
    let back = json!({"spec": {"kubeConfig": {"secretRef": {"name": "remote"}},
                               "sourceRef": {"kind": "GitRepository", "name": "nowhere"}}});
    kss.patch("app", &PatchParams::default(), &Patch::Merge(&back))
        .await
        .expect("back to the remote");
    wait_ks(&env, "app", "stopped by the gate", 60, |k| {
        ready(k).is_some_and(|(s, _, m)| s == "False" && m.contains("nowhere"))
    })
    .await;
    delete_held(&env, &kss, "status.inventory is on this cluster").await;
    assert!(
        there.get_opt("a").await.expect("get").is_some(),
        "a there stays"
    );

    orphan(&kss).await;
    assert!(
        here.get_opt("a").await.expect("get").is_some(),
        "a here stays"
    );
    controllers.stop().await;
}

/// Deletes Kustomization `app` and waits for the `PruneFailed` Warning containing `text`; the
/// finalizer keeps it.
async fn delete_held(env: &mooring_testkit::TestEnv, kss: &Api<Kustomization>, text: &str) {
    kss.delete("app", &DeleteParams::default())
        .await
        .expect("delete");
    wait_event(env, "PruneFailed", text).await;
    assert!(
        kss.get_opt("app").await.expect("get").is_some(),
        "the finalizer stays"
    );
}

/// Sets `deletionPolicy: Orphan` on Kustomization `app` and waits until it is gone.
async fn orphan(kss: &Api<Kustomization>) {
    let orphan = json!({"spec": {"deletionPolicy": "Orphan"}});
    kss.patch("app", &PatchParams::default(), &Patch::Merge(&orphan))
        .await
        .expect("deletionPolicy: Orphan");
    wait_for(
        kss,
        "app",
        "the Kustomization gone",
        Duration::from_secs(60),
        |k| k.is_none(),
    )
    .await;
}
