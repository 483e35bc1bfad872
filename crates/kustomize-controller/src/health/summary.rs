//! The summary of many objects' health that a Kustomization's `Healthy` condition reports.

use std::fmt;

use serde_json::Value;

use super::fields::{str_at, truncate};
use super::{Health, HealthStatus};

/// At most this many objects are named in a summary message; the rest are counted.
const MAX_NAMED: usize = 5;

/// One object's explanation is cut to this many characters in a summary message.
const MAX_ENTRY_CHARS: usize = 200;

/// A summary message never exceeds this many characters, so a condition stays readable.
const MAX_MESSAGE_CHARS: usize = 1024;

/// Room kept for "; and N more" at the end of a summary message.
const MORE_TAIL_CHARS: usize = 24;

/// Names an object as "Kind/namespace/name", or "Kind/name" when it is cluster-scoped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectLabel {
    /// The object's kind.
    pub kind: String,
    /// The object's namespace; `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// The object's name.
    pub name: String,
}

impl ObjectLabel {
    /// A label from its parts; an empty namespace means cluster-scoped.
    pub fn new(kind: &str, namespace: Option<&str>, name: &str) -> Self {
        Self {
            kind: kind.to_string(),
            namespace: namespace.filter(|ns| !ns.is_empty()).map(str::to_string),
            name: name.to_string(),
        }
    }

    /// The label of an object read as JSON (`kind`, `metadata.namespace`, `metadata.name`).
    pub fn of(obj: &Value) -> Self {
        Self::new(
            str_at(obj, &["kind"]).unwrap_or_default(),
            str_at(obj, &["metadata", "namespace"]),
            str_at(obj, &["metadata", "name"]).unwrap_or_default(),
        )
    }
}

impl fmt::Display for ObjectLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{ns}/{}", self.kind, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// The health of a set of objects, as one verdict and one bounded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// True when every object is Current (and when there is none).
    pub all_current: bool,
    /// The Failed objects, in input order.
    pub failed: Vec<(ObjectLabel, Health)>,
    /// The objects neither Current nor Failed (InProgress, Terminating, NotFound, Unknown), in
    /// input order.
    pub in_progress: Vec<(ObjectLabel, Health)>,
    /// Names the failed objects first, then the pending ones, with why; at most
    /// 1024 characters.
    pub message: String,
}

/// Sorts objects by health and explains what is not Current. Pure.
pub fn summarize(objects: &[(ObjectLabel, Health)]) -> Summary {
    let (failed, in_progress): (Vec<_>, Vec<_>) = objects
        .iter()
        .filter(|(_, health)| !health.is_current())
        .cloned()
        .partition(|(_, health)| health.status == HealthStatus::Failed);
    let all_current = failed.is_empty() && in_progress.is_empty();
    let message = if all_current {
        match objects.len() {
            0 => "no objects to check".to_string(),
            1 => "1 object is current".to_string(),
            n => format!("all {n} objects are current"),
        }
    } else {
        unhealthy_message(&failed, &in_progress)
    };
    Summary {
        all_current,
        failed,
        in_progress,
        message,
    }
}

/// "Job/apps/migrate failed: BackoffLimitExceeded; Deployment/apps/web: 1 of 3 replicas
/// ready; and 2 more".
fn unhealthy_message(
    failed: &[(ObjectLabel, Health)],
    pending: &[(ObjectLabel, Health)],
) -> String {
    let failed_entries = failed
        .iter()
        .map(|(label, health)| format!("{label} failed: {}", explanation(health)));
    let pending_entries = pending
        .iter()
        .map(|(label, health)| format!("{label}: {}", explanation(health)));
    let entries: Vec<String> = failed_entries.chain(pending_entries).collect();
    // Leave room for the "; and N more" tail so that it survives the length bound.
    let budget = MAX_MESSAGE_CHARS - MORE_TAIL_CHARS;
    let mut message = String::new();
    let mut named = 0;
    for entry in entries.iter().take(MAX_NAMED) {
        let grown = message.chars().count() + 2 + entry.chars().count();
        if named > 0 && grown > budget {
            break;
        }
        if named > 0 {
            message.push_str("; ");
        }
        message.push_str(entry);
        named += 1;
    }
    let hidden = entries.len() - named;
    if hidden > 0 {
        message.push_str(&format!("; and {hidden} more"));
    }
    truncate(&message, MAX_MESSAGE_CHARS)
}

/// An object's message cut to size; its status when it has no message.
fn explanation(health: &Health) -> String {
    let message = health.message.trim();
    if message.is_empty() {
        return health.status.as_str().to_string();
    }
    truncate(message, MAX_ENTRY_CHARS)
}
