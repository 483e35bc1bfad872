//! Rules for the apps/v1 workload controllers: Deployment, StatefulSet, DaemonSet, ReplicaSet.
//!
//! Each rule first requires `status.observedGeneration` (these controllers always write it),
//! then compares the status counters with the desired count, reporting the first shortfall.

use serde_json::Value;

use super::fields::{Condition, condition, int, int_or, str_at};
use super::{Health, require_observed};

/// `spec.progressDeadlineSeconds` of MaxInt32 means "no deadline": the controller then never
/// sets the `Progressing` condition, so it cannot be waited for.
const NO_PROGRESS_DEADLINE: i64 = i32::MAX as i64;

/// A Deployment is Current when every replica runs the latest template and is ready and
/// available, and the controller reports the new ReplicaSet available; Failed when its
/// progress deadline has passed.
pub(super) fn deployment(obj: &Value, conds: &[Condition<'_>]) -> Health {
    if let Some(unobserved) = require_observed(obj, "deployment") {
        return unobserved;
    }
    let progressing_cond = condition(conds, "Progressing");
    if let Some(exceeded) = progressing_cond.filter(|c| c.reason == "ProgressDeadlineExceeded") {
        return Health::failed(format!(
            "progress deadline exceeded: {}",
            exceeded.message_or_reason("rollout stopped progressing")
        ));
    }
    let deadline = int(obj, &["spec", "progressDeadlineSeconds"]).unwrap_or(NO_PROGRESS_DEADLINE);
    let rolled_out = deadline == NO_PROGRESS_DEADLINE
        || progressing_cond.is_some_and(|c| c.is_true() && c.reason == "NewReplicaSetAvailable");
    let available_cond = condition(conds, "Available").is_some_and(|c| c.is_true());

    // A Deployment without spec.replicas runs one replica.
    let spec = int_or(obj, &["spec", "replicas"], 1);
    let replicas = int_or(obj, &["status", "replicas"], 0);
    let updated = int_or(obj, &["status", "updatedReplicas"], 0);
    let ready = int_or(obj, &["status", "readyReplicas"], 0);
    let available = int_or(obj, &["status", "availableReplicas"], 0);

    if spec > replicas {
        return Health::in_progress(format!("{replicas} of {spec} replicas created"));
    }
    if spec > updated {
        return Health::in_progress(format!(
            "rollout in progress: {updated} of {spec} replicas updated"
        ));
    }
    if replicas > spec {
        return Health::in_progress(format!(
            "rollout in progress: {} old replicas pending termination",
            replicas - spec
        ));
    }
    if updated > available {
        return Health::in_progress(format!(
            "{available} of {updated} updated replicas available"
        ));
    }
    if spec > ready {
        return Health::in_progress(format!("{ready} of {spec} replicas ready"));
    }
    if !rolled_out {
        let why = progressing_cond
            .map(|c| c.message_or_reason("new ReplicaSet not yet available"))
            .unwrap_or_else(|| "new ReplicaSet not yet available".to_string());
        return Health::in_progress(format!("rollout in progress: {why}"));
    }
    if !available_cond {
        return Health::in_progress("does not have minimum availability");
    }
    if spec == 0 {
        return Health::current("scaled to zero");
    }
    Health::current(format!("{spec} of {spec} replicas available"))
}

/// A StatefulSet is Current when all replicas exist, are ready, and run the update revision
/// (or, with a partition, when the pods at or above the partition do).
pub(super) fn stateful_set(obj: &Value) -> Health {
    if let Some(unobserved) = require_observed(obj, "statefulset") {
        return unobserved;
    }
    // With OnDelete the user decides when pods move to a new revision: nothing to wait for.
    if str_at(obj, &["spec", "updateStrategy", "type"]) == Some("OnDelete") {
        return Health::current("OnDelete update strategy: pods update when deleted");
    }
    let spec = int_or(obj, &["spec", "replicas"], 1);
    let replicas = int_or(obj, &["status", "replicas"], 0);
    let ready = int_or(obj, &["status", "readyReplicas"], 0);
    let current = int_or(obj, &["status", "currentReplicas"], 0);
    let updated = int_or(obj, &["status", "updatedReplicas"], 0);
    let partition = int_or(
        obj,
        &["spec", "updateStrategy", "rollingUpdate", "partition"],
        0,
    );

    if spec > replicas {
        return Health::in_progress(format!("{replicas} of {spec} replicas created"));
    }
    if spec > ready {
        return Health::in_progress(format!("{ready} of {spec} replicas ready"));
    }
    // Older API servers do not report availability (minReadySeconds); skip the check there.
    if let Some(available) = int(obj, &["status", "availableReplicas"])
        && spec > available
    {
        return Health::in_progress(format!("{available} of {spec} replicas available"));
    }
    if replicas > spec {
        return Health::in_progress(format!(
            "{} extra replicas pending termination",
            replicas - spec
        ));
    }
    if partition > 0 {
        let target = (spec - partition).max(0);
        if updated < target {
            return Health::in_progress(format!(
                "partitioned rollout in progress: {updated} of {target} replicas updated"
            ));
        }
        return Health::current(format!(
            "partitioned rollout complete: {updated} of {spec} replicas updated (partition {partition})"
        ));
    }
    let current_revision = str_at(obj, &["status", "currentRevision"]);
    let update_revision = str_at(obj, &["status", "updateRevision"]);
    if current_revision != update_revision {
        return Health::in_progress(format!(
            "rollout in progress: {updated} of {spec} replicas updated to revision {}",
            update_revision.unwrap_or("(unknown)")
        ));
    }
    if spec > current {
        return Health::in_progress(format!(
            "{current} of {spec} replicas at the current revision"
        ));
    }
    Health::current(format!("{spec} of {spec} replicas ready"))
}

/// A DaemonSet is Current when a pod is scheduled, updated, available and ready on every node
/// that should run one.
pub(super) fn daemon_set(obj: &Value) -> Health {
    if let Some(unobserved) = require_observed(obj, "daemonset") {
        return unobserved;
    }
    let Some(desired) = int(obj, &["status", "desiredNumberScheduled"]) else {
        return Health::in_progress("no desired number of scheduled pods yet");
    };
    let scheduled = int_or(obj, &["status", "currentNumberScheduled"], 0);
    let updated = int_or(obj, &["status", "updatedNumberScheduled"], 0);
    let available = int_or(obj, &["status", "numberAvailable"], 0);
    let ready = int_or(obj, &["status", "numberReady"], 0);
    // With OnDelete, old pods stay until the user deletes them: not something to wait for.
    let on_delete = str_at(obj, &["spec", "updateStrategy", "type"]) == Some("OnDelete");

    if desired > scheduled {
        return Health::in_progress(format!("{scheduled} of {desired} pods scheduled"));
    }
    if !on_delete && desired > updated {
        return Health::in_progress(format!(
            "rollout in progress: {updated} of {desired} pods updated"
        ));
    }
    if desired > available {
        return Health::in_progress(format!("{available} of {desired} pods available"));
    }
    if desired > ready {
        return Health::in_progress(format!("{ready} of {desired} pods ready"));
    }
    Health::current(format!("{desired} of {desired} pods ready"))
}

/// A ReplicaSet is Current when all its replicas are available and ready; Failed when the
/// controller cannot create pods (`ReplicaFailure`: quota, admission, missing service account).
pub(super) fn replica_set(obj: &Value, conds: &[Condition<'_>]) -> Health {
    if let Some(unobserved) = require_observed(obj, "replicaset") {
        return unobserved;
    }
    if let Some(failure) = condition(conds, "ReplicaFailure").filter(Condition::is_true) {
        return Health::failed(failure.text("cannot create pods"));
    }
    let spec = int_or(obj, &["spec", "replicas"], 1);
    let replicas = int_or(obj, &["status", "replicas"], 0);
    let ready = int_or(obj, &["status", "readyReplicas"], 0);
    let available = int_or(obj, &["status", "availableReplicas"], 0);

    if spec > available {
        return Health::in_progress(format!("{available} of {spec} replicas available"));
    }
    if spec > ready {
        return Health::in_progress(format!("{ready} of {spec} replicas ready"));
    }
    if replicas > spec {
        return Health::in_progress(format!(
            "{} extra replicas pending termination",
            replicas - spec
        ));
    }
    Health::current(format!("{spec} of {spec} replicas available"))
}
