//! Job, Pod, PersistentVolumeClaim, Service, Namespace, PodDisruptionBudget and CRD rules.

use serde_json::{Value, json};

use super::fixtures::{running_job, running_pod};
use super::{expect, expect_exact, with, without};
use crate::health::HealthStatus::{Current, Failed, InProgress, Terminating, Unknown};

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

fn pvc(status: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": "apps"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
                 "resources": {"requests": {"storage": "1Gi"}}},
        "status": status
    })
}

#[test]
fn pvc_is_current_once_bound() {
    let bound = pvc(json!({"phase": "Bound", "accessModes": ["ReadWriteOnce"],
                           "capacity": {"storage": "1Gi"}}));
    expect_exact(&bound, Current, "bound");
    expect_exact(
        &pvc(json!({"phase": "Pending"})),
        InProgress,
        "not bound (phase Pending)",
    );
    expect_exact(&pvc(json!({})), InProgress, "not bound yet");
    expect(&pvc(json!({"phase": "Lost"})), Failed, "lost");
}

fn service(spec: Value, status: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": spec, "status": status
    })
}

#[test]
fn cluster_ip_services_are_current() {
    let cluster_ip = service(
        json!({"type": "ClusterIP", "clusterIP": "10.96.12.7",
               "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}],
               "selector": {"app": "web"}}),
        json!({"loadBalancer": {}}),
    );
    expect_exact(&cluster_ip, Current, "ready (ClusterIP)");
    let untyped = service(json!({"ports": [{"port": 80}]}), json!({}));
    expect_exact(&untyped, Current, "ready (ClusterIP)");
    let external = service(
        json!({"type": "ExternalName", "externalName": "db.example.com"}),
        json!({}),
    );
    expect_exact(&external, Current, "ready (ExternalName)");
}

#[test]
fn load_balancer_service_waits_for_an_ingress_address() {
    let spec = json!({"type": "LoadBalancer", "clusterIP": "10.96.12.8",
                      "ports": [{"port": 443, "nodePort": 31443}]});
    let waiting = service(spec.clone(), json!({"loadBalancer": {}}));
    expect_exact(
        &waiting,
        InProgress,
        "waiting for a load balancer ingress address",
    );
    let with_ip = service(
        spec.clone(),
        json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.10", "ipMode": "VIP"}]}}),
    );
    expect_exact(&with_ip, Current, "load balancer ready at 203.0.113.10");
    let with_host = service(
        spec,
        json!({"loadBalancer": {"ingress": [{"hostname": "a1b2.elb.example.com"}]}}),
    );
    expect_exact(
        &with_host,
        Current,
        "load balancer ready at a1b2.elb.example.com",
    );
    let no_ip = service(json!({"type": "LoadBalancer"}), json!({}));
    expect_exact(&no_ip, InProgress, "no cluster IP assigned yet");
}

fn pdb(status: Value) -> Value {
    json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "apps", "generation": 1},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
        "status": status
    })
}

#[test]
fn pdb_is_current_when_the_budget_is_met() {
    let met = pdb(
        json!({"observedGeneration": 1, "currentHealthy": 3, "desiredHealthy": 2,
                         "disruptionsAllowed": 1, "expectedPods": 3,
                         "conditions": [{"type": "DisruptionAllowed", "status": "True",
                                         "reason": "SufficientPods"}]}),
    );
    expect_exact(&met, Current, "1 disruptions allowed");
    let unmet = pdb(
        json!({"observedGeneration": 1, "currentHealthy": 1, "desiredHealthy": 2,
                           "disruptionsAllowed": 0, "expectedPods": 3}),
    );
    expect_exact(&unmet, InProgress, "1 of 2 required pods healthy");
    expect(
        &pdb(json!({})),
        InProgress,
        "not observed by the disruption controller",
    );
}

fn crd(conditions: Value) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com", "generation": 1},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"kind": "Widget", "plural": "widgets", "singular": "widget",
                           "listKind": "WidgetList"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object"}}}]},
        "status": {"conditions": conditions,
                   "acceptedNames": {"kind": "Widget", "plural": "widgets"},
                   "storedVersions": ["v1"]}
    })
}

#[test]
fn crd_is_current_once_established() {
    let established = crd(json!([
        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
         "message": "no conflicts found"},
        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
         "message": "the initial names have been accepted"}
    ]));
    expect_exact(&established, Current, "established");
}

#[test]
fn crd_with_conflicting_names_is_failed() {
    let conflict = crd(json!([
        {"type": "NamesAccepted", "status": "False", "reason": "ListKindConflict",
         "message": "\"WidgetList\" is already in use"},
        {"type": "Established", "status": "False", "reason": "NotAccepted",
         "message": "not all names are accepted"}
    ]));
    expect_exact(
        &conflict,
        Failed,
        "ListKindConflict: \"WidgetList\" is already in use",
    );
}

#[test]
fn crd_being_installed_is_in_progress() {
    let installing = crd(json!([
        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
        {"type": "Established", "status": "False", "reason": "Installing",
         "message": "the initial names have been accepted"}
    ]));
    expect_exact(&installing, InProgress, "not yet established");
    expect_exact(
        &without(&crd(json!([])), "/status"),
        InProgress,
        "not yet established",
    );
}

#[test]
fn namespace_active_is_current_and_terminating_is_terminating() {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": "apps"},
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"}});
    expect_exact(&ns, Current, "active");
    let terminating = with(&ns, "/status/phase", json!("Terminating"));
    expect_exact(&terminating, Terminating, "namespace is terminating");
    let deleted = with(
        &terminating,
        "/metadata/deletionTimestamp",
        json!("2025-01-10T10:00:00Z"),
    );
    expect_exact(&deleted, Terminating, "scheduled for deletion");
}
