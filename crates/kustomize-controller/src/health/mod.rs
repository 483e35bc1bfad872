//! Health of applied objects: the rules of kstatus (the library Flux uses to decide whether an
//! object is ready), ported to objects read as JSON, and the summary a Kustomization reports.
//!
//! [`compute`] looks at one object, in this order:
//! 1. `metadata.deletionTimestamp` set: Terminating.
//! 2. `status.observedGeneration` present and different from `metadata.generation`: InProgress.
//! 3. `Stalled=True`: Failed; `Reconciling=True`: InProgress (the kstatus conventions).
//! 4. The built-in rules of the kind, when it has some (see `workloads` and `core_kinds`).
//! 5. `Ready=True`: Current; `Ready=False` or `Unknown`: InProgress.
//! 6. Otherwise Current: an object without status (ConfigMap, Secret, RBAC...) has nothing to
//!    wait for.
//!
//! Messages are short phrases without the object's kind or name, written to follow an
//! [`ObjectLabel`]: "Deployment/apps/web: 1 of 3 replicas ready".

mod core_kinds;
mod fields;
mod summary;
mod workloads;

#[cfg(test)]
mod tests;

use std::fmt;

use serde_json::Value;

use fields::{Condition, api_group, condition, conditions, int, str_at};
pub use summary::{ObjectLabel, Summary, summarize};

/// The status of one object, with kstatus's six values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HealthStatus {
    /// The object is fully reconciled and ready.
    Current,
    /// The object is being reconciled; waiting may make it Current.
    InProgress,
    /// The object failed in a way that waiting will not fix.
    Failed,
    /// The object is being deleted.
    Terminating,
    /// The object does not exist (set by callers that looked it up; never by [`compute`]).
    NotFound,
    /// The object's status could not be read.
    Unknown,
}

impl HealthStatus {
    /// The kstatus spelling: "Current", "InProgress", ...
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Current => "Current",
            Self::InProgress => "InProgress",
            Self::Failed => "Failed",
            Self::Terminating => "Terminating",
            Self::NotFound => "NotFound",
            Self::Unknown => "Unknown",
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The health of one object and a short human explanation of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// The status value.
    pub status: HealthStatus,
    /// What is missing or wrong, without the object's kind and name.
    pub message: String,
}

impl Health {
    /// A health with the given status and message.
    pub fn new(status: HealthStatus, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// Current, with a message.
    pub fn current(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::Current, message)
    }

    /// InProgress, with a message.
    pub fn in_progress(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::InProgress, message)
    }

    /// Failed, with a message.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::Failed, message)
    }

    /// True when the status is Current.
    pub fn is_current(&self) -> bool {
        self.status == HealthStatus::Current
    }
}

/// The health of one object, read from its full JSON (metadata, spec and status). Pure.
pub fn compute(obj: &Value) -> Health {
    if !obj.is_object() {
        return Health::new(HealthStatus::Unknown, "not a Kubernetes object");
    }
    let Some(kind) = str_at(obj, &["kind"]) else {
        return Health::new(HealthStatus::Unknown, "object has no kind");
    };
    if str_at(obj, &["metadata", "deletionTimestamp"]).is_some() {
        return Health::new(HealthStatus::Terminating, "scheduled for deletion");
    }
    if let Some(lag) = generation_lag(obj) {
        return lag;
    }
    let conds = conditions(obj);
    if let Some(generic) = abnormal_conditions(&conds) {
        return generic;
    }
    if let Some(builtin) = builtin_rules(api_group(obj), kind, obj, &conds) {
        return builtin;
    }
    ready_condition(&conds).unwrap_or_else(|| Health::current("no status conditions to wait for"))
}

/// The kind-specific rules of kstatus, for the built-in kinds that have some.
fn builtin_rules(group: &str, kind: &str, obj: &Value, conds: &[Condition<'_>]) -> Option<Health> {
    let health = match (group, kind) {
        ("apps" | "extensions", "Deployment") => workloads::deployment(obj, conds),
        ("apps" | "extensions", "StatefulSet") => workloads::stateful_set(obj),
        ("apps" | "extensions", "DaemonSet") => workloads::daemon_set(obj),
        ("apps" | "extensions", "ReplicaSet") => workloads::replica_set(obj, conds),
        ("batch", "Job") => core_kinds::job(obj, conds),
        ("", "Pod") => core_kinds::pod(obj, conds),
        ("", "PersistentVolumeClaim") => core_kinds::persistent_volume_claim(obj),
        ("", "Service") => core_kinds::service(obj),
        ("", "Namespace") => core_kinds::namespace(obj),
        ("policy", "PodDisruptionBudget") => core_kinds::pod_disruption_budget(obj),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            core_kinds::custom_resource_definition(conds)
        }
        _ => return None,
    };
    Some(health)
}

/// InProgress when the controller has not yet seen the latest spec.
///
/// Like kstatus, an object without `status.observedGeneration` passes: many kinds never set it.
/// The kinds whose controller always sets it check that with [`require_observed`].
fn generation_lag(obj: &Value) -> Option<Health> {
    let generation = int(obj, &["metadata", "generation"])?;
    let observed = int(obj, &["status", "observedGeneration"])?;
    (observed != generation).then(|| {
        Health::in_progress(format!(
            "generation {generation} not yet observed (observed {observed})"
        ))
    })
}

/// InProgress when a built-in controller that always writes `status.observedGeneration` has
/// not written it yet: without it, every counter in the status is meaningless.
fn require_observed(obj: &Value, controller: &str) -> Option<Health> {
    int(obj, &["status", "observedGeneration"])
        .is_none()
        .then(|| {
            Health::in_progress(format!(
                "no status yet: not observed by the {controller} controller"
            ))
        })
}

/// The `Stalled` and `Reconciling` conditions of the kstatus conventions.
///
/// kstatus takes whichever comes first in the list; Stalled wins here whatever the order, so
/// that the answer does not depend on how a controller sorts its conditions.
fn abnormal_conditions(conds: &[Condition<'_>]) -> Option<Health> {
    if let Some(stalled) = condition(conds, "Stalled").filter(Condition::is_true) {
        return Some(Health::failed(stalled.text("stalled")));
    }
    let reconciling = condition(conds, "Reconciling").filter(Condition::is_true)?;
    Some(Health::in_progress(format!(
        "reconciling: {}",
        reconciling.message_or_reason("no reason given")
    )))
}

/// The `Ready` condition that many controllers (Flux's, cert-manager...) set.
fn ready_condition(conds: &[Condition<'_>]) -> Option<Health> {
    let ready = condition(conds, "Ready")?;
    if ready.is_true() {
        return Some(Health::current("ready"));
    }
    Some(Health::in_progress(format!(
        "not ready: {}",
        ready.text("no reason given")
    )))
}
