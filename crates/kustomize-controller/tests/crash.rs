//! No orphans after a crash: the kustomize-controller binary is SIGKILLed while it applies a
//! revision that creates objects, git then drops them, and after a restart nothing of that
//! revision is left in the cluster.

mod common;
mod flow;

use std::time::Duration;

use flow::{applied, config_map_yaml, git_repository, kustomization, poke_source, unique, wait_ks};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams};
use kube::runtime::wait::await_condition;
use mooring_api::GitRepository;
use mooring_testkit::controllers::{Controllers, Options};
use mooring_testkit::git::{Auth, GitServer};

#[tokio::test]
async fn a_crash_between_stages_leaves_no_orphans() {
    let env = common::env("crash").await;
    let ns = env.namespace.clone();
    let repo = GitServer::shared()
        .expect("git server")
        .create_repo(&unique("crash"), Auth::None)
        .expect("repo");
    let base = [("deploy/base.yaml", config_map_yaml("base", "1"))];
    let first = repo
        .commit(&[(base[0].0, base[0].1.as_str())], "one map")
        .expect("commit");
    let mut controllers = tokio::task::spawn_blocking({
        let kubeconfig = env.plane.kubeconfig().to_path_buf();
        move || Controllers::start(&Options::local(&kubeconfig))
    })
    .await
    .expect("start task")
    .expect("controllers");
    git_repository(&env, "repo", repo.http_url()).await;
    kustomization(
        &env,
        "app",
        serde_json::json!({"path": "./deploy", "targetNamespace": null}),
    )
    .await;
    wait_ks(&env, "app", "applied at the first commit", 60, |k| {
        applied(k, &first)
    })
    .await;

    // The second revision creates a namespace (first stage) and 80 objects (last stage).
    let extra = unique("crash-extra");
    let mut files: Vec<(String, String)> = vec![(
        "deploy/namespace.yaml".into(),
        format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {extra}\n"),
    )];
    for i in 0..40 {
        files.push((
            format!("deploy/extra-{i}.yaml"),
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra-{i}\n  namespace: {extra}\ndata:\n  value: \"1\"\n"
            ),
        ));
        files.push((
            format!("deploy/local-{i}.yaml"),
            config_map_yaml(&format!("local-{i}"), "1"),
        ));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    repo.commit(&refs, "a namespace and 80 maps")
        .expect("commit");
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    let appeared = await_condition(namespaces.clone(), &extra, |n: Option<&Namespace>| {
        n.is_some()
    });
    poke_source(&env, "repo", "second").await;
    tokio::time::timeout(Duration::from_secs(60), appeared)
        .await
        .expect("the second revision's namespace appears")
        .expect("watch");
    // Killed right after its first write of the revision.
    controllers.kill_kustomize();
    let cms: Api<ConfigMap> = Api::all(env.client.clone());
    let owned = ListParams::default().labels("kustomize.mooring.dev/name=app");
    let at_kill = cms.list(&owned).await.expect("list").items.len();
    eprintln!("owned ConfigMaps when the controller was killed: {at_kill} of 81");

    // Git drops the new objects before the controller comes back.
    let third = repo
        .remove(
            &files.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            "back to one map",
        )
        .expect("commit");
    let sources: Api<GitRepository> = Api::namespaced(env.client.clone(), &ns);
    poke_source(&env, "repo", "third").await;
    let has_third = await_condition(sources, "repo", |r: Option<&GitRepository>| {
        r.and_then(|r| r.status.as_ref()?.artifact.as_ref())
            .is_some_and(|a| a.revision.ends_with(&third))
    });
    tokio::time::timeout(Duration::from_secs(60), has_third)
        .await
        .expect("the source has the third revision")
        .expect("watch");
    let controllers = tokio::task::spawn_blocking(move || {
        controllers
            .restart_kustomize()
            .expect("restart the kustomize-controller");
        controllers
    })
    .await
    .expect("restart task");
    wait_ks(&env, "app", "applied at the third commit", 90, |k| {
        applied(k, &third)
    })
    .await;

    let left: Vec<String> = cms
        .list(&owned)
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|c| {
            format!(
                "{}/{}",
                c.metadata.namespace.unwrap_or_default(),
                c.metadata.name.unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        left,
        vec![format!("{ns}/base")],
        "only git's objects are left"
    );
    let extra_ns = namespaces.get_opt(&extra).await.expect("get namespace");
    assert!(
        extra_ns.is_none_or(|n| n.metadata.deletion_timestamp.is_some()),
        "the second revision's namespace is pruned"
    );
    tokio::task::spawn_blocking(move || drop(controllers))
        .await
        .expect("stop the controllers");
}
