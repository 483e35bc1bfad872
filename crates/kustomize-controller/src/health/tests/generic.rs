//! The rules every kind goes through: deletion, generation, Stalled/Reconciling/Ready.

use serde_json::{Value, json};

use super::fixtures::{deployment, flux_kustomization};
use super::{expect, expect_exact, with, without};
use crate::health::HealthStatus::{Current, Failed, InProgress, Terminating, Unknown};
use crate::health::{HealthStatus, compute};

fn with_conditions(obj: &Value, conditions: Value) -> Value {
    with(obj, "/status/conditions", conditions)
}

#[test]
fn deletion_timestamp_means_terminating_even_when_ready() {
    let obj = with(
        &deployment(),
        "/metadata/deletionTimestamp",
        json!("2025-01-10T10:00:00Z"),
    );
    expect_exact(&obj, Terminating, "scheduled for deletion");
    let cr = with(
        &flux_kustomization(),
        "/metadata/deletionTimestamp",
        json!("2025-01-10T10:00:00Z"),
    );
    expect_exact(&cr, Terminating, "scheduled for deletion");
}

#[test]
fn generation_not_observed_is_in_progress_before_any_condition() {
    let obj = with(&flux_kustomization(), "/metadata/generation", json!(4));
    expect_exact(
        &obj,
        InProgress,
        "generation 4 not yet observed (observed 3)",
    );
    // Also on a built-in kind whose counters look fine.
    let deploy = with(&deployment(), "/metadata/generation", json!(3));
    expect_exact(
        &deploy,
        InProgress,
        "generation 3 not yet observed (observed 2)",
    );
}

#[test]
fn missing_observed_generation_does_not_block_a_custom_resource() {
    let obj = without(&flux_kustomization(), "/status/observedGeneration");
    expect_exact(&obj, Current, "ready");
}

#[test]
fn stalled_true_is_failed_with_reason_and_message() {
    let obj = with_conditions(
        &flux_kustomization(),
        json!([
            {"type": "Ready", "status": "False", "reason": "BuildFailed",
             "message": "kustomize build failed: accumulating resources"},
            {"type": "Stalled", "status": "True", "reason": "BuildFailed",
             "message": "kustomize build failed: accumulating resources"}
        ]),
    );
    expect_exact(
        &obj,
        Failed,
        "BuildFailed: kustomize build failed: accumulating resources",
    );
}

#[test]
fn stalled_wins_over_reconciling_whatever_the_order() {
    let stalled = json!({"type": "Stalled", "status": "True", "reason": "InvalidSpec"});
    let reconciling = json!({"type": "Reconciling", "status": "True", "reason": "Progressing"});
    for list in [
        json!([stalled.clone(), reconciling.clone()]),
        json!([reconciling, stalled]),
    ] {
        expect_exact(
            &with_conditions(&flux_kustomization(), list),
            Failed,
            "InvalidSpec",
        );
    }
}

#[test]
fn stalled_false_and_reconciling_false_are_ignored() {
    let obj = with_conditions(
        &flux_kustomization(),
        json!([
            {"type": "Stalled", "status": "False", "reason": "Fine"},
            {"type": "Reconciling", "status": "False", "reason": "Done"},
            {"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded"}
        ]),
    );
    expect_exact(&obj, Current, "ready");
}

#[test]
fn reconciling_true_is_in_progress_with_its_message() {
    let obj = with_conditions(
        &flux_kustomization(),
        json!([
            {"type": "Reconciling", "status": "True", "reason": "Progressing",
             "message": "Running health checks for revision main@sha1:1f2e3d4c"},
            {"type": "Ready", "status": "Unknown", "reason": "Progressing"}
        ]),
    );
    expect_exact(
        &obj,
        InProgress,
        "reconciling: Running health checks for revision main@sha1:1f2e3d4c",
    );
    let reason_only = with_conditions(
        &flux_kustomization(),
        json!([{"type": "Reconciling", "status": "True", "reason": "Progressing"}]),
    );
    expect_exact(&reason_only, InProgress, "reconciling: Progressing");
}

#[test]
fn ready_false_is_in_progress_with_its_reason_and_message() {
    let obj = with_conditions(
        &flux_kustomization(),
        json!([{"type": "Ready", "status": "False", "reason": "DependencyNotReady",
                "message": "dependency 'flux-system/crds' is not ready"}]),
    );
    expect_exact(
        &obj,
        InProgress,
        "not ready: DependencyNotReady: dependency 'flux-system/crds' is not ready",
    );
}

#[test]
fn ready_unknown_is_in_progress() {
    let obj = with_conditions(
        &flux_kustomization(),
        json!([{"type": "Ready", "status": "Unknown", "reason": "Progressing",
                "message": "Reconciliation in progress"}]),
    );
    expect(&obj, InProgress, "Reconciliation in progress");
}

#[test]
fn ready_true_is_current() {
    expect_exact(&flux_kustomization(), Current, "ready");
}

#[test]
fn custom_resource_without_status_is_current() {
    let obj = without(&flux_kustomization(), "/status");
    expect_exact(&obj, Current, "no status conditions to wait for");
    let empty = with(&flux_kustomization(), "/status", json!({}));
    expect_exact(&empty, Current, "no status conditions to wait for");
}

#[test]
fn kinds_without_status_are_current() {
    let objects = [
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "settings", "namespace": "apps"},
               "data": {"LOG_LEVEL": "info"}}),
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "token", "namespace": "apps"},
               "type": "Opaque", "data": {"token": "c2VjcmV0"}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": "web", "namespace": "apps"}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
               "metadata": {"name": "reader", "namespace": "apps"},
               "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "reader", "namespace": "apps"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                           "name": "reader"},
               "subjects": [{"kind": "ServiceAccount", "name": "web"}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "reader"}, "rules": []}),
        json!({"apiVersion": "batch/v1", "kind": "CronJob",
               "metadata": {"name": "nightly", "namespace": "apps", "generation": 1},
               "spec": {"schedule": "0 3 * * *"},
               "status": {"lastScheduleTime": "2025-01-10T03:00:00Z"}}),
    ];
    for obj in &objects {
        assert_eq!(compute(obj).status, Current, "{obj}");
    }
}

#[test]
fn builtin_rules_apply_only_to_their_api_group() {
    // A custom kind that happens to be called Deployment follows the generic rules.
    let obj = json!({"apiVersion": "example.com/v1", "kind": "Deployment",
                     "metadata": {"name": "x", "namespace": "apps", "generation": 1}});
    expect_exact(&obj, Current, "no status conditions to wait for");
    // The legacy extensions group keeps the Deployment rule.
    let legacy = without(
        &with(&deployment(), "/apiVersion", json!("extensions/v1beta1")),
        "/status",
    );
    assert_eq!(compute(&legacy).status, InProgress);
}

#[test]
fn malformed_input_is_unknown_and_malformed_status_is_lenient() {
    expect_exact(&json!("Deployment"), Unknown, "not a Kubernetes object");
    expect_exact(
        &json!({"metadata": {"name": "x"}}),
        Unknown,
        "object has no kind",
    );
    // Conditions of the wrong shape are ignored rather than failing the check.
    let odd = with(&flux_kustomization(), "/status/conditions", json!("Ready"));
    expect_exact(&odd, Current, "no status conditions to wait for");
    let partial = with_conditions(
        &flux_kustomization(),
        json!([42, {"status": "True"}, {"type": "Ready", "status": "True"}]),
    );
    expect_exact(&partial, Current, "ready");
}

#[test]
fn status_values_have_kstatus_spelling() {
    let all = [
        (HealthStatus::Current, "Current"),
        (HealthStatus::InProgress, "InProgress"),
        (HealthStatus::Failed, "Failed"),
        (HealthStatus::Terminating, "Terminating"),
        (HealthStatus::NotFound, "NotFound"),
        (HealthStatus::Unknown, "Unknown"),
    ];
    for (status, text) in all {
        assert_eq!(status.to_string(), text);
    }
}

#[test]
fn truncate_cuts_on_character_boundaries() {
    use crate::health::fields::truncate;
    assert_eq!(truncate("short", 10), "short");
    assert_eq!(truncate("ééééééé", 4), "ééé…");
    assert_eq!(truncate("abc def", 5), "abc…");
}
