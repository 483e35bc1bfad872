//! Job and Pod rules.

use serde_json::{Value, json};

use super::fixtures::{running_job, running_pod};
use super::{expect, expect_exact, with, without};
use crate::health::HealthStatus::{Current, Failed, InProgress, Unknown};

fn job_with_conditions(status: Value) -> Value {
    let mut obj = running_job();
    for (key, value) in status.as_object().expect("an object").clone() {
        obj = with(&obj, &format!("/status/{key}"), value);
    }
    obj
}

#[test]
fn job_complete_is_current() {
    let obj = job_with_conditions(json!({
        "active": 0, "succeeded": 1, "completionTime": "2025-01-10T09:01:00Z",
        "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached"},
            {"type": "Complete", "status": "True", "reason": "CompletionsReached",
             "message": "Reached expected number of succeeded pods"}
        ]
    }));
    expect_exact(&obj, Current, "completed: 1 succeeded");
}

#[test]
fn job_failed_is_failed_with_its_reason() {
    let obj = job_with_conditions(json!({
        "active": 0, "failed": 3,
        "conditions": [
            {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit"},
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit"}
        ]
    }));
    expect_exact(
        &obj,
        Failed,
        "BackoffLimitExceeded: Job has reached the specified backoff limit",
    );
}

#[test]
fn job_with_failure_target_is_failed_before_its_pods_are_gone() {
    let obj = job_with_conditions(json!({
        "active": 1, "terminating": 1,
        "conditions": [{"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded",
                        "message": "Job was active longer than specified deadline"}]
    }));
    expect(&obj, Failed, "DeadlineExceeded");
}

#[test]
fn running_job_is_in_progress_with_counts() {
    expect_exact(
        &running_job(),
        InProgress,
        "running: 1 active, 0 of 1 succeeded, 0 failed",
    );
    let work_queue = without(&running_job(), "/spec/completions");
    let work_queue = with(&work_queue, "/status/failed", json!(1));
    expect_exact(
        &work_queue,
        InProgress,
        "running: 1 active, 0 succeeded, 1 failed",
    );
}

#[test]
fn job_not_started_and_suspended() {
    let pending = with(&running_job(), "/status", json!({}));
    expect_exact(&pending, InProgress, "not started");
    let suspended = job_with_conditions(json!({
        "active": 0,
        "conditions": [{"type": "Suspended", "status": "True", "reason": "JobSuspended"}]
    }));
    expect_exact(&suspended, Current, "suspended");
}

fn pod_status(patch: Value) -> Value {
    with(&running_pod(), "/status", patch)
}

#[test]
fn pod_running_and_ready_is_current() {
    expect_exact(&running_pod(), Current, "ready");
}

#[test]
fn pod_succeeded_is_current() {
    let obj = pod_status(json!({"phase": "Succeeded", "conditions": [
        {"type": "Ready", "status": "False", "reason": "PodCompleted"}]}));
    expect_exact(&obj, Current, "completed successfully");
}

#[test]
fn pod_failed_is_failed_with_the_pod_or_container_reason() {
    let evicted = pod_status(json!({
        "phase": "Failed", "reason": "Evicted",
        "message": "The node was low on resource: memory."
    }));
    expect_exact(
        &evicted,
        Failed,
        "Evicted: The node was low on resource: memory.",
    );
    let exited = pod_status(json!({
        "phase": "Failed",
        "containerStatuses": [{"name": "web", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 2, "reason": "Error",
                                     "finishedAt": "2025-01-10T09:00:09Z"}}}]
    }));
    expect_exact(&exited, Failed, "container web exited with code 2 (Error)");
    expect_exact(
        &pod_status(json!({"phase": "Failed"})),
        Failed,
        "pod failed",
    );
}

#[test]
fn pod_crash_looping_is_failed_with_the_last_exit() {
    let obj = pod_status(json!({
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                        "message": "containers with unready status: [web]"}],
        "containerStatuses": [{
            "name": "web", "ready": false, "restartCount": 5,
            "state": {"waiting": {"reason": "CrashLoopBackOff",
                "message": "back-off 2m40s restarting failed container=web pod=web-x2kq9_apps(0b6c)"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}
        }]
    }));
    expect_exact(
        &obj,
        Failed,
        "container web: CrashLoopBackOff (last exit: Error, code 1)",
    );
}

#[test]
fn pod_with_crash_looping_init_container_is_failed() {
    let obj = pod_status(json!({
        "phase": "Pending",
        "initContainerStatuses": [{
            "name": "migrate", "ready": false, "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}}
        }],
        "containerStatuses": [{"name": "web", "ready": false,
            "state": {"waiting": {"reason": "PodInitializing"}}}]
    }));
    expect_exact(&obj, Failed, "container migrate: CrashLoopBackOff");
}

#[test]
fn pod_pulling_a_missing_image_is_in_progress_naming_the_reason() {
    let obj = pod_status(json!({
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "True"}],
        "containerStatuses": [
            {"name": "sidecar", "ready": false,
             "state": {"waiting": {"reason": "ContainerCreating"}}},
            {"name": "web", "ready": false, "image": "nginx:does-not-exist",
             "state": {"waiting": {"reason": "ImagePullBackOff",
                                   "message": "Back-off pulling image \"nginx:does-not-exist\""}}}
        ]
    }));
    expect_exact(
        &obj,
        InProgress,
        "container web waiting: ImagePullBackOff: Back-off pulling image \"nginx:does-not-exist\"",
    );
    let err_pull = pod_status(json!({
        "phase": "Pending",
        "containerStatuses": [{"name": "web",
            "state": {"waiting": {"reason": "ErrImagePull"}}}]
    }));
    expect_exact(&err_pull, InProgress, "container web waiting: ErrImagePull");
}

#[test]
fn pod_unschedulable_is_in_progress_with_the_scheduler_message() {
    let obj = pod_status(json!({
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient memory."}]
    }));
    expect_exact(
        &obj,
        InProgress,
        "not scheduled: Unschedulable: 0/3 nodes are available: 3 Insufficient memory.",
    );
    expect_exact(
        &pod_status(json!({"phase": "Pending"})),
        InProgress,
        "pending",
    );
}

#[test]
fn pod_running_but_not_ready_names_the_readiness_message() {
    let obj = pod_status(json!({
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                        "message": "containers with unready status: [web]"}],
        "containerStatuses": [{"name": "web", "ready": false,
            "state": {"running": {"startedAt": "2025-01-10T09:00:05Z"}}}]
    }));
    expect_exact(
        &obj,
        InProgress,
        "running but not ready: containers with unready status: [web]",
    );
}

#[test]
fn pod_without_phase_or_with_an_unknown_phase() {
    expect_exact(
        &without(&running_pod(), "/status"),
        InProgress,
        "no phase reported yet",
    );
    expect_exact(
        &pod_status(json!({"phase": "Unknown"})),
        Unknown,
        "unknown pod phase Unknown",
    );
}
