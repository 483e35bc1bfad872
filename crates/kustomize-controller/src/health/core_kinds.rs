//! Rules for the other built-in kinds with a status worth waiting for: Job, Pod,
//! PersistentVolumeClaim, Service, Namespace, PodDisruptionBudget, CustomResourceDefinition.

use serde_json::Value;

use super::fields::{Condition, at, condition, int, int_or, str_at, truncate};
use super::{Health, HealthStatus, require_observed};

/// Container waiting reasons that are ordinary steps of a pod's start, not news to a reader.
const ROUTINE_WAITING: [&str; 2] = ["ContainerCreating", "PodInitializing"];

/// Longest container message quoted in a pod's health; kubelet messages can be long.
const CONTAINER_MESSAGE_MAX: usize = 160;

/// A Job is Current once complete (or suspended), Failed once failed, InProgress otherwise.
///
/// This is Flux's Job rule rather than kstatus's, which calls a running Job Current: waiting for
/// a migration Job to finish is the point of health-checking it.
pub(super) fn job(obj: &Value, conds: &[Condition<'_>]) -> Health {
    // FailureTarget comes first on newer clusters: the Job has failed and its pods are being
    // stopped; Failed follows once they are gone.
    for failure in ["Failed", "FailureTarget"] {
        if let Some(failed) = condition(conds, failure).filter(Condition::is_true) {
            return Health::failed(failed.text("job failed"));
        }
    }
    let succeeded = int_or(obj, &["status", "succeeded"], 0);
    if condition(conds, "Complete").is_some_and(|c| c.is_true()) {
        return Health::current(format!("completed: {succeeded} succeeded"));
    }
    if condition(conds, "Suspended").is_some_and(|c| c.is_true()) {
        return Health::current("suspended");
    }
    if str_at(obj, &["status", "startTime"]).is_none() {
        return Health::in_progress("not started");
    }
    let active = int_or(obj, &["status", "active"], 0);
    let failed = int_or(obj, &["status", "failed"], 0);
    let done = match int(obj, &["spec", "completions"]) {
        Some(completions) => format!("{succeeded} of {completions} succeeded"),
        None => format!("{succeeded} succeeded"),
    };
    Health::in_progress(format!("running: {active} active, {done}, {failed} failed"))
}

/// A Pod is Current when it succeeded or runs with `Ready=True`; Failed when it failed or a
/// container is crash-looping; otherwise InProgress, naming the waiting container and why.
pub(super) fn pod(obj: &Value, conds: &[Condition<'_>]) -> Health {
    match str_at(obj, &["status", "phase"]) {
        Some("Succeeded") => Health::current("completed successfully"),
        Some("Failed") => Health::failed(pod_failure(obj)),
        Some("Running") => {
            if condition(conds, "Ready").is_some_and(|c| c.is_true()) {
                return Health::current("ready");
            }
            if let Some(waiting) = waiting_container(obj) {
                return waiting;
            }
            let why = condition(conds, "Ready")
                .map(|c| c.message_or_reason("readiness not reported"))
                .unwrap_or_else(|| "readiness not reported".to_string());
            Health::in_progress(format!("running but not ready: {why}"))
        }
        Some("Pending") => {
            if let Some(waiting) = waiting_container(obj) {
                return waiting;
            }
            if let Some(unscheduled) = condition(conds, "PodScheduled").filter(Condition::is_false)
            {
                return Health::in_progress(format!(
                    "not scheduled: {}",
                    unscheduled.text("no reason given")
                ));
            }
            Health::in_progress("pending")
        }
        Some(other) => Health::new(HealthStatus::Unknown, format!("unknown pod phase {other}")),
        None => Health::in_progress("no phase reported yet"),
    }
}

/// Why a pod in phase Failed failed: the pod's own reason (eviction, deadline), else the first
/// container that exited with an error.
fn pod_failure(obj: &Value) -> String {
    let reason = str_at(obj, &["status", "reason"]);
    let message = str_at(obj, &["status", "message"]);
    match (reason, message) {
        (Some(r), Some(m)) => return format!("{r}: {}", truncate(m, CONTAINER_MESSAGE_MAX)),
        (Some(r), None) => return r.to_string(),
        (None, Some(m)) => return truncate(m, CONTAINER_MESSAGE_MAX),
        (None, None) => {}
    }
    container_statuses(obj)
        .find_map(|cs| {
            let name = cs.get("name").and_then(Value::as_str)?;
            let terminated = at(cs, &["state", "terminated"])?;
            let code = terminated.get("exitCode").and_then(Value::as_i64)?;
            (code != 0).then(|| {
                let why = terminated
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("Error");
                format!("container {name} exited with code {code} ({why})")
            })
        })
        .unwrap_or_else(|| "pod failed".to_string())
}

/// The health implied by a container that waits: Failed when any container is in
/// CrashLoopBackOff (as kstatus), otherwise InProgress naming the most telling waiting reason
/// (image pull errors, config errors) so that a timeout says why.
fn waiting_container(obj: &Value) -> Option<Health> {
    let mut waiting: Vec<(&str, &str, &Value)> = container_statuses(obj)
        .filter_map(|cs| {
            let name = cs.get("name").and_then(Value::as_str)?;
            let reason = str_at(cs, &["state", "waiting", "reason"])?;
            Some((name, reason, cs))
        })
        .collect();
    if let Some((name, _, cs)) = waiting.iter().find(|(_, r, _)| *r == "CrashLoopBackOff") {
        let last = at(cs, &["lastState", "terminated"]);
        let detail = match last.and_then(|t| t.get("exitCode")).and_then(Value::as_i64) {
            Some(code) => {
                let why = last
                    .and_then(|t| t.get("reason"))
                    .and_then(Value::as_str)
                    .unwrap_or("Error");
                format!(" (last exit: {why}, code {code})")
            }
            None => String::new(),
        };
        return Some(Health::failed(format!(
            "container {name}: CrashLoopBackOff{detail}"
        )));
    }
    // Prefer a reason worth reading over the routine "ContainerCreating".
    waiting.sort_by_key(|(_, reason, _)| ROUTINE_WAITING.contains(reason));
    let (name, reason, cs) = waiting.first()?;
    let message = match str_at(cs, &["state", "waiting", "message"]) {
        Some(m) => format!(": {}", truncate(m, CONTAINER_MESSAGE_MAX)),
        None => String::new(),
    };
    Some(Health::in_progress(format!(
        "container {name} waiting: {reason}{message}"
    )))
}

/// Init container statuses, then app container statuses.
fn container_statuses(obj: &Value) -> impl Iterator<Item = &Value> {
    ["initContainerStatuses", "containerStatuses"]
        .into_iter()
        .filter_map(|list| at(obj, &["status", list]).and_then(Value::as_array))
        .flatten()
}

/// A PersistentVolumeClaim is Current once Bound; Failed once Lost (its volume is gone).
pub(super) fn persistent_volume_claim(obj: &Value) -> Health {
    match str_at(obj, &["status", "phase"]) {
        Some("Bound") => Health::current("bound"),
        Some("Lost") => Health::failed("lost: its PersistentVolume no longer exists"),
        Some(phase) => Health::in_progress(format!("not bound (phase {phase})")),
        None => Health::in_progress("not bound yet"),
    }
}

/// A Service is Current at once, except a LoadBalancer, which waits for an ingress address.
pub(super) fn service(obj: &Value) -> Health {
    let type_ = str_at(obj, &["spec", "type"]).unwrap_or("ClusterIP");
    if type_ != "LoadBalancer" {
        return Health::current(format!("ready ({type_})"));
    }
    if str_at(obj, &["spec", "clusterIP"]).is_none() {
        return Health::in_progress("no cluster IP assigned yet");
    }
    let address = at(obj, &["status", "loadBalancer", "ingress"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|ingress| str_at(ingress, &["ip"]).or_else(|| str_at(ingress, &["hostname"])));
    match address {
        Some(address) => Health::current(format!("load balancer ready at {address}")),
        None => Health::in_progress("waiting for a load balancer ingress address"),
    }
}

/// A Namespace is Current while Active and Terminating while being emptied.
pub(super) fn namespace(obj: &Value) -> Health {
    match str_at(obj, &["status", "phase"]) {
        Some("Terminating") => Health::new(HealthStatus::Terminating, "namespace is terminating"),
        _ => Health::current("active"),
    }
}

/// A PodDisruptionBudget is Current once the disruption controller has observed it and at
/// least the required number of its pods are healthy.
pub(super) fn pod_disruption_budget(obj: &Value) -> Health {
    if let Some(unobserved) = require_observed(obj, "disruption") {
        return unobserved;
    }
    let healthy = int_or(obj, &["status", "currentHealthy"], 0);
    let desired = int_or(obj, &["status", "desiredHealthy"], 0);
    if healthy < desired {
        return Health::in_progress(format!("{healthy} of {desired} required pods healthy"));
    }
    let allowed = int_or(obj, &["status", "disruptionsAllowed"], 0);
    Health::current(format!("{allowed} disruptions allowed"))
}

/// A CustomResourceDefinition is Current once Established; Failed when its names conflict
/// with another CRD's or it cannot be established for another reason than installing.
pub(super) fn custom_resource_definition(conds: &[Condition<'_>]) -> Health {
    if let Some(rejected) = condition(conds, "NamesAccepted").filter(Condition::is_false) {
        return Health::failed(rejected.text("names not accepted"));
    }
    match condition(conds, "Established") {
        Some(c) if c.is_true() => Health::current("established"),
        Some(c) if c.is_false() && c.reason != "Installing" => {
            Health::failed(c.text("not established"))
        }
        _ => Health::in_progress("not yet established"),
    }
}
