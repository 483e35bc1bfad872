//! Deployment, StatefulSet, DaemonSet and ReplicaSet rules.

use serde_json::{Value, json};

use super::fixtures::{daemon_set, deployment, replica_set, stateful_set};
use super::{expect, expect_exact, with, without};
use crate::health::HealthStatus::{Current, Failed, InProgress};

fn status(obj: &Value, fields: &[(&str, Value)]) -> Value {
    fields.iter().fold(obj.clone(), |acc, (path, value)| {
        with(&acc, &format!("/status/{path}"), value.clone())
    })
}

#[test]
fn deployment_rolled_out_is_current() {
    expect_exact(&deployment(), Current, "3 of 3 replicas available");
}

#[test]
fn deployment_without_status_waits_for_its_controller() {
    let obj = without(&deployment(), "/status");
    expect_exact(
        &obj,
        InProgress,
        "no status yet: not observed by the deployment controller",
    );
}

#[test]
fn deployment_with_too_few_replicas_names_the_counts() {
    let obj = status(
        &deployment(),
        &[("replicas", json!(1)), ("updatedReplicas", json!(1))],
    );
    expect_exact(&obj, InProgress, "1 of 3 replicas created");
}

#[test]
fn deployment_rolling_update_reports_updated_replicas() {
    let obj = status(
        &deployment(),
        &[("replicas", json!(4)), ("updatedReplicas", json!(1))],
    );
    expect_exact(
        &obj,
        InProgress,
        "rollout in progress: 1 of 3 replicas updated",
    );
}

#[test]
fn deployment_with_old_replicas_left_waits_for_their_termination() {
    let obj = status(&deployment(), &[("replicas", json!(4))]);
    expect_exact(
        &obj,
        InProgress,
        "rollout in progress: 1 old replicas pending termination",
    );
}

#[test]
fn deployment_with_unavailable_updated_replicas_is_in_progress() {
    let obj = status(
        &deployment(),
        &[("availableReplicas", json!(2)), ("readyReplicas", json!(2))],
    );
    expect_exact(&obj, InProgress, "2 of 3 updated replicas available");
}

#[test]
fn deployment_with_unready_replicas_is_in_progress() {
    let obj = status(&deployment(), &[("readyReplicas", json!(1))]);
    expect_exact(&obj, InProgress, "1 of 3 replicas ready");
}

#[test]
fn deployment_past_its_progress_deadline_is_failed() {
    let obj = status(
        &deployment(),
        &[
            ("readyReplicas", json!(1)),
            ("availableReplicas", json!(1)),
            (
                "conditions",
                json!([
                    {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
                     "message": "Deployment does not have minimum availability."},
                    {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                     "message": "ReplicaSet \"web-5f6d8c7b9\" has timed out progressing."}
                ]),
            ),
        ],
    );
    expect_exact(
        &obj,
        Failed,
        "progress deadline exceeded: ReplicaSet \"web-5f6d8c7b9\" has timed out progressing.",
    );
}

#[test]
fn deployment_waits_for_the_new_replicaset_to_be_reported_available() {
    let obj = status(
        &deployment(),
        &[(
            "conditions",
            json!([
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                 "message": "ReplicaSet \"web-5f6d8c7b9\" is progressing."}
            ]),
        )],
    );
    expect_exact(
        &obj,
        InProgress,
        "rollout in progress: ReplicaSet \"web-5f6d8c7b9\" is progressing.",
    );
}

#[test]
fn deployment_without_available_condition_lacks_minimum_availability() {
    let obj = status(
        &deployment(),
        &[(
            "conditions",
            json!([
                {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
            ]),
        )],
    );
    expect_exact(&obj, InProgress, "does not have minimum availability");
}

#[test]
fn deployment_without_progress_deadline_needs_no_progressing_condition() {
    let obj = status(
        &without(&deployment(), "/spec/progressDeadlineSeconds"),
        &[(
            "conditions",
            json!([{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]),
        )],
    );
    expect_exact(&obj, Current, "3 of 3 replicas available");
}

#[test]
fn deployment_scaled_to_zero_is_current() {
    let obj = with(&deployment(), "/spec/replicas", json!(0));
    let obj = status(
        &obj,
        &[
            ("replicas", json!(0)),
            ("updatedReplicas", json!(0)),
            ("readyReplicas", json!(0)),
            ("availableReplicas", json!(0)),
        ],
    );
    expect_exact(&obj, Current, "scaled to zero");
}

#[test]
fn deployment_without_spec_replicas_wants_one() {
    let obj = without(&deployment(), "/spec/replicas");
    expect_exact(
        &obj,
        InProgress,
        "rollout in progress: 2 old replicas pending termination",
    );
}

#[test]
fn statefulset_at_one_revision_is_current() {
    expect_exact(&stateful_set(), Current, "3 of 3 replicas ready");
}

#[test]
fn statefulset_without_status_waits_for_its_controller() {
    expect(
        &without(&stateful_set(), "/status"),
        InProgress,
        "not observed by the statefulset controller",
    );
}

#[test]
fn statefulset_with_unready_replicas_is_in_progress() {
    let created = status(&stateful_set(), &[("replicas", json!(2))]);
    expect_exact(&created, InProgress, "2 of 3 replicas created");
    let ready = status(&stateful_set(), &[("readyReplicas", json!(2))]);
    expect_exact(&ready, InProgress, "2 of 3 replicas ready");
    let available = status(&stateful_set(), &[("availableReplicas", json!(1))]);
    expect_exact(&available, InProgress, "1 of 3 replicas available");
    let extra = status(&stateful_set(), &[("replicas", json!(4))]);
    expect_exact(&extra, InProgress, "1 extra replicas pending termination");
}

#[test]
fn statefulset_rolling_to_a_new_revision_is_in_progress() {
    let obj = status(
        &stateful_set(),
        &[
            ("updateRevision", json!("db-7c6b5a4d3")),
            ("updatedReplicas", json!(1)),
            ("currentReplicas", json!(2)),
        ],
    );
    expect_exact(
        &obj,
        InProgress,
        "rollout in progress: 1 of 3 replicas updated to revision db-7c6b5a4d3",
    );
    let lagging = status(&stateful_set(), &[("currentReplicas", json!(2))]);
    expect_exact(
        &lagging,
        InProgress,
        "2 of 3 replicas at the current revision",
    );
}

#[test]
fn statefulset_partition_waits_only_for_pods_above_it() {
    let partitioned = with(
        &stateful_set(),
        "/spec/updateStrategy/rollingUpdate/partition",
        json!(2),
    );
    let rolling = status(
        &partitioned,
        &[
            ("updateRevision", json!("db-7c6b5a4d3")),
            ("updatedReplicas", json!(0)),
        ],
    );
    expect_exact(
        &rolling,
        InProgress,
        "partitioned rollout in progress: 0 of 1 replicas updated",
    );
    // Revisions still differ, but every pod at or above the partition is updated.
    let done = status(&rolling, &[("updatedReplicas", json!(1))]);
    expect(&done, Current, "partitioned rollout complete");
}

#[test]
fn statefulset_with_on_delete_strategy_is_current() {
    let obj = with(
        &stateful_set(),
        "/spec/updateStrategy",
        json!({"type": "OnDelete"}),
    );
    let obj = status(&obj, &[("updateRevision", json!("db-7c6b5a4d3"))]);
    expect(&obj, Current, "OnDelete");
}

#[test]
fn daemonset_on_every_node_is_current() {
    expect_exact(&daemon_set(), Current, "2 of 2 pods ready");
}

#[test]
fn daemonset_needs_observed_generation_and_desired_number() {
    let unobserved = without(&daemon_set(), "/status/observedGeneration");
    expect(
        &unobserved,
        InProgress,
        "not observed by the daemonset controller",
    );
    let no_desired = without(&daemon_set(), "/status/desiredNumberScheduled");
    expect_exact(
        &no_desired,
        InProgress,
        "no desired number of scheduled pods yet",
    );
}

#[test]
fn daemonset_shortfalls_are_reported_in_order() {
    let scheduled = status(&daemon_set(), &[("currentNumberScheduled", json!(1))]);
    expect_exact(&scheduled, InProgress, "1 of 2 pods scheduled");
    let updated = status(&daemon_set(), &[("updatedNumberScheduled", json!(1))]);
    expect_exact(
        &updated,
        InProgress,
        "rollout in progress: 1 of 2 pods updated",
    );
    let available = status(&daemon_set(), &[("numberAvailable", json!(0))]);
    expect_exact(&available, InProgress, "0 of 2 pods available");
    let ready = status(&daemon_set(), &[("numberReady", json!(1))]);
    expect_exact(&ready, InProgress, "1 of 2 pods ready");
}

#[test]
fn daemonset_with_on_delete_strategy_does_not_wait_for_updates() {
    let obj = with(
        &daemon_set(),
        "/spec/updateStrategy",
        json!({"type": "OnDelete"}),
    );
    let obj = status(&obj, &[("updatedNumberScheduled", json!(0))]);
    expect_exact(&obj, Current, "2 of 2 pods ready");
}

#[test]
fn replicaset_available_is_current() {
    expect_exact(&replica_set(), Current, "2 of 2 replicas available");
}

#[test]
fn replicaset_that_cannot_create_pods_is_failed() {
    let obj = status(
        &replica_set(),
        &[
            ("replicas", json!(0)),
            ("availableReplicas", json!(0)),
            (
                "conditions",
                json!([{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                        "message": "pods \"web-7d9c8b6f5-abcde\" is forbidden: exceeded quota: compute"}]),
            ),
        ],
    );
    expect_exact(
        &obj,
        Failed,
        "FailedCreate: pods \"web-7d9c8b6f5-abcde\" is forbidden: exceeded quota: compute",
    );
}

#[test]
fn replicaset_shortfalls_are_in_progress() {
    let available = status(&replica_set(), &[("availableReplicas", json!(1))]);
    expect_exact(&available, InProgress, "1 of 2 replicas available");
    let ready = status(&replica_set(), &[("readyReplicas", json!(0))]);
    expect_exact(&ready, InProgress, "0 of 2 replicas ready");
    let extra = status(&replica_set(), &[("replicas", json!(3))]);
    expect_exact(&extra, InProgress, "1 extra replicas pending termination");
    expect(
        &without(&replica_set(), "/status"),
        InProgress,
        "not observed by the replicaset controller",
    );
}
