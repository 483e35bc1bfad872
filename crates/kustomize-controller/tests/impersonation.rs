//! apply_all through clients impersonating a ServiceAccount, from the ClientCache.

mod common;

use common::{admin_config, config_map, env, object};
use kube::api::DynamicObject;
use mooring_kustomize_controller::apply::{Action, ApplyOptions, apply_all};
use mooring_kustomize_controller::client_cache::ClientCache;
use serde_json::json;

const ALWAYS: &(dyn Fn(&DynamicObject) -> bool + Sync) = &|_| false;

#[tokio::test]
async fn a_service_account_needs_rbac_and_gets_it_from_a_role_binding() {
    let env = env("impersonate").await;
    let ns = env.namespace.as_str();
    let opts = ApplyOptions::new(ns);
    let sa = object(json!({"apiVersion": "v1", "kind": "ServiceAccount",
                           "metadata": {"name": "deployer", "namespace": ns}}));
    apply_all(&env.client, vec![sa], &opts, ALWAYS)
        .await
        .expect("service account");

    let cache = ClientCache::new(admin_config(env.plane).await);
    let deployer = cache.get(ns, Some("deployer")).expect("client");
    let err = apply_all(
        &deployer,
        vec![config_map("cm", None, json!({}))],
        &opts,
        ALWAYS,
    )
    .await
    .expect_err("no RBAC yet");
    assert_eq!(err.label(), "Forbidden");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "system:serviceaccount:{ns}:deployer is not allowed to patch ConfigMap/{ns}/cm"
        )),
        "{message}"
    );

    let grant = vec![
        object(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "deployer", "namespace": ns},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]},
                      // No `bind`/`escalate`: RBAC checks every binding against the Role.
                      {"apiGroups": ["rbac.authorization.k8s.io"],
                       "resources": ["roles", "rolebindings"],
                       "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}]}),
        ),
        object(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "deployer", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"},
            "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": ns}]}),
        ),
    ];
    apply_all(&env.client, grant, &opts, ALWAYS)
        .await
        .expect("grant");

    // The cached client is reused: same identity, now allowed.
    let deployer = cache.get(ns, Some("deployer")).expect("client");
    let changes = apply_all(
        &deployer,
        vec![config_map("cm", None, json!({}))],
        &opts,
        ALWAYS,
    )
    .await
    .expect("allowed now");
    assert_eq!(changes.entries[0].action, Action::Created);

    // A Role and a RoleBinding to it in one apply: the binding's dry-run is refused by the
    // escalation check until the Role exists, so it is validated again after the Role stage.
    let pair = vec![
        object(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": ns}]}),
        ),
        object(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}),
        ),
    ];
    let changes = apply_all(&deployer, pair, &opts, ALWAYS)
        .await
        .expect("role and binding");
    assert_eq!(
        changes.to_string(),
        format!("Role/{ns}/reader created\nRoleBinding/{ns}/reader created")
    );
    assert_eq!(cache.len(), 1);
}
