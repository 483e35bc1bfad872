//! prune and delete_all against a real API server.

mod common;

use std::time::Duration;

use common::{annotate, config_map, config_map_key, env, label, object};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use mooring_api::constants::{KUSTOMIZE_NAME_LABEL, KUSTOMIZE_NAMESPACE_LABEL, PRUNE_ANNOTATION};
use mooring_kustomize_controller::apply::{
    Action, ApplyOptions, ObjectKey, apply_all, delete_all, prune,
};
use mooring_kustomize_controller::inventory::Owner;
use serde_json::json;

const ALWAYS: &(dyn Fn(&DynamicObject) -> bool + Sync) = &|_| false;

fn owned(obj: DynamicObject, owner: (&str, &str)) -> DynamicObject {
    label(
        label(obj, KUSTOMIZE_NAME_LABEL, owner.0),
        KUSTOMIZE_NAMESPACE_LABEL,
        owner.1,
    )
}

fn cluster_key(group: &str, kind: &str, name: &str) -> ObjectKey {
    ObjectKey {
        group: group.into(),
        version: "v1".into(),
        kind: kind.into(),
        namespace: None,
        name: name.into(),
    }
}

#[tokio::test]
async fn prune_deletes_only_owned_unprotected_objects_last_stage_first() {
    let env = env("prune").await;
    let ns = env.namespace.as_str();
    let owner = ("app", ns);
    let extra = format!("{ns}-gc");
    let role = format!("{ns}-gc-reader");
    let opts = ApplyOptions::new(ns);
    let set = vec![
        owned(
            object(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": extra}})),
            owner,
        ),
        owned(
            object(
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                          "metadata": {"name": role}, "rules": []}),
            ),
            owner,
        ),
        owned(config_map("owned", None, json!({})), owner),
        owned(
            annotate(
                config_map("kept", None, json!({})),
                PRUNE_ANNOTATION,
                "disabled",
            ),
            owner,
        ),
        owned(config_map("foreign", None, json!({})), ("other", ns)),
        config_map("unlabelled", None, json!({})),
    ];
    apply_all(&env.client, set, &opts, ALWAYS)
        .await
        .expect("apply");

    let ids = vec![
        cluster_key("", "Namespace", &extra),
        cluster_key("rbac.authorization.k8s.io", "ClusterRole", &role),
        config_map_key("owned", ns),
        config_map_key("kept", ns),
        config_map_key("foreign", ns),
        config_map_key("unlabelled", ns),
        config_map_key("already-gone", ns),
    ];
    let owner = Owner::new(owner.1, owner.0);
    let changes = prune(&env.client, ids, &owner, &opts).await.expect("prune");
    assert_eq!(
        changes.to_string(),
        [
            format!("ConfigMap/{ns}/owned deleted"),
            format!("ConfigMap/{ns}/kept skipped"),
            format!("ConfigMap/{ns}/foreign skipped"),
            format!("ConfigMap/{ns}/unlabelled skipped"),
            format!("Namespace/{extra} deleted"),
            format!("ClusterRole/{role} deleted"),
        ]
        .join("\n")
    );
    let cms = Api::<ConfigMap>::namespaced(env.client.clone(), ns);
    assert!(cms.get_opt("owned").await.expect("get").is_none());
    for name in ["kept", "foreign", "unlabelled"] {
        assert!(cms.get_opt(name).await.expect("get").is_some(), "{name}");
    }
    // The namespace is gone or terminating (its controller empties it first).
    let namespace = Api::<Namespace>::all(env.client.clone())
        .get_opt(&extra)
        .await
        .expect("get");
    assert!(namespace.is_none_or(|n| n.metadata.deletion_timestamp.is_some()));
}

#[tokio::test]
async fn delete_all_waits_until_objects_are_gone() {
    let env = env("delete-all").await;
    let ns = env.namespace.as_str();
    let owner = ("app", ns);
    let mut opts = ApplyOptions::new(ns);
    let held = |name: &str| {
        let mut cm = owned(config_map(name, None, json!({})), owner);
        cm.metadata.finalizers = Some(vec!["test.mooring.dev/hold".into()]);
        cm
    };
    apply_all(
        &env.client,
        vec![held("held"), held("stuck")],
        &opts,
        ALWAYS,
    )
    .await
    .expect("apply");
    let cms = Api::<ConfigMap>::namespaced(env.client.clone(), ns);
    let release = |name: &'static str| {
        let cms = cms.clone();
        async move {
            let patch = json!({"metadata": {"finalizers": null}});
            cms.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .expect("remove finalizer");
        }
    };

    // Bounded: the finalizer is never removed, so the wait ends in an error naming the object.
    opts.wait_timeout = Duration::from_secs(1);
    let err = delete_all(
        &env.client,
        vec![config_map_key("stuck", ns)],
        &Owner::new(owner.1, owner.0),
        &opts,
        true,
    )
    .await
    .expect_err("still terminating");
    assert_eq!(err.label(), "TerminationTimeout");
    assert!(
        err.to_string().contains(&format!("ConfigMap/{ns}/stuck")),
        "{err}"
    );
    release("stuck").await;

    opts.wait_timeout = Duration::from_secs(30);
    let client = env.client.clone();
    let owner_ns = ns.to_string();
    let mut task = tokio::spawn(async move {
        let ids = vec![config_map_key("held", &owner_ns)];
        delete_all(&client, ids, &Owner::new(&owner_ns, "app"), &opts, true).await
    });
    let terminating = await_condition(cms.clone(), "held", |cm: Option<&ConfigMap>| {
        cm.is_some_and(|c| c.metadata.deletion_timestamp.is_some())
    });
    tokio::time::timeout(Duration::from_secs(30), terminating)
        .await
        .expect("deletion requested")
        .expect("watch");
    // While the finalizer holds the object, delete_all keeps waiting.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut task)
            .await
            .is_err(),
        "delete_all returned while the object still exists"
    );
    release("held").await;
    let changes = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("delete_all finishes once the object is gone")
        .expect("task")
        .expect("delete_all");
    assert_eq!(changes.entries[0].action, Action::Deleted);
    assert!(cms.get_opt("held").await.expect("get").is_none());
}
