//! The Kustomization reconciler's decisions as plain data: dependency readiness and the status
//! after a pass.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use mooring_api::conditions::{
    ConditionStatus, find_condition, reasons, remove_condition, set_condition, types,
};
use mooring_api::kustomization::{ResourceInventory, Snapshot};
use mooring_api::{Kustomization, KustomizationStatus};

/// How many applied renders `status.history` remembers.
pub const HISTORY_LIMIT: usize = 5;

/// Key of the source revision in a history entry's metadata.
pub const HISTORY_REVISION_KEY: &str = "revision";

/// `lastReconciledStatus` of a history entry whose render was applied and found healthy.
pub const HISTORY_READY: &str = "Ready";

/// How a reconcile pass ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Applied (or already applied) and, when asked, healthy.
    Ready {
        /// The source revision applied.
        revision: String,
        /// The objects now managed.
        inventory: ResourceInventory,
        /// The render that was applied, when this pass applied something new.
        applied: Option<AppliedRender>,
        /// Whether the pass had health to check (`wait`, `healthChecks`). Without, `Healthy`
        /// is removed: it would go on reporting checks that no longer exist.
        checked: bool,
    },
    /// Applied; waiting for the objects to become healthy (no worker waits: watches wake us).
    HealthPending {
        /// The source revision applied.
        revision: String,
        /// The objects now managed.
        inventory: ResourceInventory,
        /// Which objects are not healthy yet, and why.
        message: String,
        /// The render that was applied, when this pass applied something new.
        applied: Option<AppliedRender>,
    },
    /// Waiting for something outside this object (source artifact, dependencies); no event.
    Waiting {
        /// `ArtifactFailed` or `DependencyNotReady`.
        reason: String,
        /// What is awaited.
        message: String,
    },
    /// A step failed; retried after `retryInterval`. The last applied state stays.
    Failed {
        /// The revision attempted, when known.
        revision: Option<String>,
        /// The condition reason.
        reason: String,
        /// The cause, naming the file or object.
        message: String,
        /// When the failure is unhealthy objects, the inventory that was applied.
        inventory: Option<ResourceInventory>,
    },
    /// The spec cannot work as written; nothing happens until it changes.
    Stalled {
        /// The condition reason.
        reason: String,
        /// The field at fault.
        message: String,
    },
}

/// A render applied by this pass, for `status.history`.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedRender {
    /// Whether this pass applied it first: the newest history entry is not of this digest and
    /// revision. Otherwise the pass came to a new result for a render applied before (its
    /// health checks passed), which does not count as another reconciliation of it.
    pub first: bool,
    /// sha256 of the rendered objects.
    pub digest: String,
    /// How long the pass took, e.g. `1.2s`.
    pub duration: String,
    /// The source `revision`, and who made and signed it (the artifact's `git.author`,
    /// `verify.signer.*`, ... entries).
    pub metadata: BTreeMap<String, String>,
}

/// How many dependencies deep a `DependencyNotReady` message follows the chain.
pub const DEPENDENCY_CHAIN_HOPS: usize = 5;

/// The longest `DependencyNotReady` message, in bytes; a longer chain is cut with `...`.
pub const DEPENDENCY_CHAIN_MAX_LEN: usize = 1024;

/// What starts each hop of a `DependencyNotReady` message.
const DEPENDENCY_HOP: &str = "dependency '";

/// Whether every dependency is Ready at its current generation; else a message naming the first
/// one that is not, followed by that dependency's own Ready message. When the dependency waits
/// for a dependency in turn, its message carries the next hop, so the message is the blocking
/// chain down to the cause, read from the statuses alone; it is cut at
/// [`DEPENDENCY_CHAIN_HOPS`] hops and [`DEPENDENCY_CHAIN_MAX_LEN`] bytes. `dependencies` holds
/// `None` for a dependency that does not exist.
pub fn dependencies_ready(dependencies: &[(String, Option<&Kustomization>)]) -> Result<(), String> {
    for (name, dep) in dependencies {
        let Some(dep) = dep else {
            return Err(format!("dependency '{name}' not found"));
        };
        let status = dep.status.clone().unwrap_or_default();
        let ready = find_condition(&status.conditions, types::READY);
        let current = status.observed_generation == dep.metadata.generation;
        let why = match ready {
            Some(c) if c.status == "True" && current => continue,
            Some(c) if c.status == "True" => format!(
                "generation {} not reconciled yet",
                dep.metadata.generation.unwrap_or_default()
            ),
            Some(c) if c.message.is_empty() => c.reason.clone(),
            Some(c) => c.message.clone(),
            None => "not reconciled yet".to_string(),
        };
        return Err(bounded_chain(&format!(
            "{DEPENDENCY_HOP}{name}' is not ready: {}",
            one_line(&why)
        )));
    }
    Ok(())
}

/// `message` cut after [`DEPENDENCY_CHAIN_HOPS`] hops and at [`DEPENDENCY_CHAIN_MAX_LEN`] bytes.
fn bounded_chain(message: &str) -> String {
    let mut end = message.len();
    if let Some((cut, _)) = message
        .match_indices(DEPENDENCY_HOP)
        .nth(DEPENDENCY_CHAIN_HOPS)
    {
        end = cut;
    }
    if end > DEPENDENCY_CHAIN_MAX_LEN {
        end = DEPENDENCY_CHAIN_MAX_LEN;
    }
    if end == message.len() {
        return message.to_string();
    }
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", message[..end].trim_end())
}

/// `message` on one line: a multi-line cause (a kustomize error) would break the chain's
/// reading in `kubectl get`.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The status after a pass that ended with `outcome`; identical input gives identical output.
pub fn next_status(
    current: &KustomizationStatus,
    generation: i64,
    outcome: &Outcome,
    requested_at: Option<&str>,
    now: &Time,
) -> KustomizationStatus {
    let mut status = current.clone();
    let g = Some(generation);
    if let Some(requested_at) = requested_at {
        status.last_handled_reconcile_at = Some(requested_at.to_string());
    }
    let c = &mut status.conditions;
    match outcome {
        Outcome::Ready {
            revision,
            inventory,
            applied,
            checked,
        } => {
            let message = format!("Applied revision: {revision}");
            remove_condition(c, types::STALLED);
            remove_condition(c, types::RECONCILING);
            set_condition(
                c,
                types::READY,
                ConditionStatus::True,
                reasons::RECONCILIATION_SUCCEEDED,
                &message,
                g,
                now,
            );
            if !*checked {
                remove_condition(c, types::HEALTHY);
            } else if find_condition(c, types::HEALTHY).is_some() {
                set_condition(
                    c,
                    types::HEALTHY,
                    ConditionStatus::True,
                    reasons::SUCCEEDED,
                    "Health check passed",
                    g,
                    now,
                );
            }
            status.last_applied_revision = Some(revision.clone());
            status.last_attempted_revision = Some(revision.clone());
            status.inventory = Some(inventory.clone());
            status.observed_generation = Some(generation);
            record_history(&mut status.history, applied.as_ref(), HISTORY_READY, now);
        }
        Outcome::HealthPending {
            revision,
            inventory,
            message,
            applied,
        } => {
            let message = format!("Applied revision {revision}, waiting for health: {message}");
            remove_condition(c, types::STALLED);
            set_condition(
                c,
                types::RECONCILING,
                ConditionStatus::True,
                reasons::PROGRESSING,
                &message,
                g,
                now,
            );
            set_condition(
                c,
                types::HEALTHY,
                ConditionStatus::Unknown,
                reasons::PROGRESSING,
                &message,
                g,
                now,
            );
            set_condition(
                c,
                types::READY,
                ConditionStatus::Unknown,
                reasons::PROGRESSING,
                &message,
                g,
                now,
            );

            status.last_attempted_revision = Some(revision.clone());
            status.inventory = Some(inventory.clone());
            record_history(&mut status.history, applied.as_ref(), "HealthPending", now);
        }
        Outcome::Waiting { reason, message } => {
            remove_condition(c, types::STALLED);
            set_condition(
                c,
                types::READY,
                ConditionStatus::False,
                reason,
                message,
                g,
                now,
            );
        }
        Outcome::Failed {
            revision,
            reason,
            message,
            inventory,
        } => {
            remove_condition(c, types::STALLED);
            set_condition(
                c,
                types::RECONCILING,
                ConditionStatus::True,
                reasons::PROGRESSING_WITH_RETRY,
                message,
                g,
                now,
            );
            if reason == reasons::HEALTH_CHECK_FAILED {
                set_condition(
                    c,
                    types::HEALTHY,
                    ConditionStatus::False,
                    reason,
                    message,
                    g,
                    now,
                );
            }
            set_condition(
                c,
                types::READY,
                ConditionStatus::False,
                reason,
                message,
                g,
                now,
            );
            if let Some(revision) = revision {
                status.last_attempted_revision = Some(revision.clone());
            }
            if let Some(inventory) = inventory {
                status.inventory = Some(inventory.clone());
            }
        }
        Outcome::Stalled { reason, message } => {
            remove_condition(c, types::RECONCILING);
            set_condition(
                c,
                types::STALLED,
                ConditionStatus::True,
                reason,
                message,
                g,
                now,
            );
            set_condition(
                c,
                types::READY,
                ConditionStatus::False,
                reason,
                message,
                g,
                now,
            );
            status.observed_generation = Some(generation);
        }
    }
    status
}

/// Adds or updates the history entry of an applied render; its metadata is that of the latest
/// pass that applied it (`revision` and the commit's provenance). Passes that applied nothing
/// new leave history untouched, so the steady state writes no status.
fn record_history(
    history: &mut Vec<Snapshot>,
    applied: Option<&AppliedRender>,
    result: &str,
    now: &Time,
) {
    let Some(applied) = applied else { return };
    if let Some(pos) = history.iter().position(|s| s.digest == applied.digest) {
        if !applied.first && pos == 0 && history[0].last_reconciled_status == result {
            // Another pass over the same apply with the same result: nothing to record.
            return;
        }
        let mut entry = history.remove(pos);
        entry.last_reconciled = now.clone();
        entry.last_reconciled_status = result.to_string();
        if applied.first {
            entry.last_reconciled_duration = applied.duration.clone();
            entry.total_reconciliations += 1;
            entry.metadata = Some(applied.metadata.clone());
        }
        history.insert(0, entry);
    } else {
        history.insert(
            0,
            Snapshot {
                digest: applied.digest.clone(),
                first_reconciled: now.clone(),
                last_reconciled: now.clone(),
                last_reconciled_duration: applied.duration.clone(),
                last_reconciled_status: result.to_string(),
                total_reconciliations: 1,
                metadata: Some(applied.metadata.clone()),
            },
        );
    }
    history.truncate(HISTORY_LIMIT);
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
