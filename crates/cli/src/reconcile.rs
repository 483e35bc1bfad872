//! `mooring reconcile source|kustomization NAME [--with-source] [--timeout]`: asks the controller
//! for a reconcile now through the `reconcile.mooring.dev/requestedAt` annotation, waits until
//! the object's `status.lastHandledReconcileAt` echoes the request and `Ready` is decided, and
//! prints the outcome.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use mooring_api::conditions::{find_condition, reasons, types};
use mooring_api::constants::RECONCILE_REQUESTED_AT_ANNOTATION;
use mooring_api::{GitRepository, Kustomization};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::args::{Format, Global, ReconcileArgs, TargetKind, WaitArgs};
use crate::client::{Cluster, connect};
use crate::error::Error;
use crate::events::event_time;
use crate::kinds::{fetch, one_line};
use crate::output::{print_structured, write_stdout};

/// The field manager of the CLI's writes (annotations, `spec.suspend`).
pub const FIELD_MANAGER: &str = "mooring-cli";

/// What the reconcile commands need to know about a kind.
pub trait Reconcilable:
    Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
    + Clone
    + DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// `spec.suspend`.
    fn suspended(&self) -> bool;
    /// `status.lastHandledReconcileAt`.
    fn handled(&self) -> Option<String>;
    /// `status.conditions`.
    fn conditions(&self) -> Vec<Condition>;
    /// The revision the object reports: the artifact's, or the last applied one.
    fn revision(&self) -> Option<String>;
}

impl Reconcilable for GitRepository {
    fn suspended(&self) -> bool {
        self.spec.suspend
    }
    fn handled(&self) -> Option<String> {
        self.status.as_ref()?.last_handled_reconcile_at.clone()
    }
    fn conditions(&self) -> Vec<Condition> {
        self.status.clone().unwrap_or_default().conditions
    }
    fn revision(&self) -> Option<String> {
        Some(self.status.as_ref()?.artifact.as_ref()?.revision.clone())
    }
}

impl Reconcilable for Kustomization {
    fn suspended(&self) -> bool {
        self.spec.suspend
    }
    fn handled(&self) -> Option<String> {
        self.status.as_ref()?.last_handled_reconcile_at.clone()
    }
    fn conditions(&self) -> Vec<Condition> {
        self.status.clone().unwrap_or_default().conditions
    }
    fn revision(&self) -> Option<String> {
        self.status.as_ref()?.last_applied_revision.clone()
    }
}

/// How a requested reconcile ended.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// `GitRepository` or `Kustomization`.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The annotation value that was handled.
    pub requested_at: String,
    /// Whether the object ended Ready.
    pub succeeded: bool,
    /// Reason of the `Ready` condition.
    pub reason: String,
    /// Message of the `Ready` condition.
    pub message: String,
    /// The revision now stored (GitRepository) or applied (Kustomization).
    pub revision: Option<String>,
    /// The objects the pass wrote (`ConfigMap/ns/name created`), from the change-set Events
    /// the kustomize-controller published for it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    /// When the request was written, by the API server's clock where it can be read.
    #[serde(skip)]
    pub requested: Timestamp,
}

/// Runs `reconcile`.
pub async fn run(global: &Global, args: ReconcileArgs) -> Result<(), Error> {
    let cluster = connect(global).await?;
    let target = &args.wait.target;
    let mut outcomes = Vec::new();
    if args.with_source {
        if target.kind != TargetKind::Kustomization {
            return Err(Error::Usage(
                "--with-source applies to a Kustomization only".to_string(),
            ));
        }
        let ks: Kustomization = fetch(&cluster, &cluster.namespace, &target.name).await?;
        let source = &ks.spec.source_ref;
        let namespace = source
            .namespace
            .clone()
            .unwrap_or(cluster.namespace.clone());
        let outcome =
            request::<GitRepository>(&cluster, &namespace, &source.name, &args.wait, "", None)
                .await?;
        let failed = !outcome.succeeded;
        outcomes.push(outcome);
        if failed {
            return report(global.output, &outcomes);
        }
    }
    let namespace = cluster.namespace.clone();
    // The source's new artifact may have the Kustomization apply it before its own request
    // arrives: its change set then counts from the source's request.
    let since = outcomes.first().map(|source| source.requested);
    let outcome = match target.kind {
        TargetKind::Source => {
            request::<GitRepository>(&cluster, &namespace, &target.name, &args.wait, "", None)
                .await?
        }
        TargetKind::Kustomization => {
            request::<Kustomization>(&cluster, &namespace, &target.name, &args.wait, "", since)
                .await?
        }
    };
    outcomes.push(outcome);
    report(global.output, &outcomes)
}

/// Prints the outcomes (a list for `-o json|yaml`); a failed one makes the command fail.
pub fn report(format: Option<Format>, outcomes: &[Outcome]) -> Result<(), Error> {
    match format {
        Some(format) => print_structured(format, &serde_json::json!({ "items": outcomes }))?,
        None => write_stdout(&outcomes.iter().map(text).collect::<String>())?,
    }
    match outcomes.iter().find(|o| !o.succeeded) {
        Some(o) => Err(Error::Failed(format!(
            "reconciliation of {} {}/{} failed",
            o.kind, o.namespace, o.name
        ))),
        None => Ok(()),
    }
}

/// The human form of an outcome.
fn text(o: &Outcome) -> String {
    let mut text = if o.succeeded {
        match (&o.revision, o.kind.as_str()) {
            (Some(r), "Kustomization") => format!(
                "✔ {} {}/{}: applied revision {r}\n",
                o.kind, o.namespace, o.name
            ),
            (Some(r), _) => format!(
                "✔ {} {}/{}: fetched revision {r}\n",
                o.kind, o.namespace, o.name
            ),
            (None, _) => format!("✔ {} {}/{}: {}\n", o.kind, o.namespace, o.name, o.message),
        }
    } else {
        format!(
            "✗ {} {}/{}: {}: {}\n",
            o.kind,
            o.namespace,
            o.name,
            o.reason,
            one_line(&o.message)
        )
    };
    for change in &o.changes {
        text.push_str(&format!("  {change}\n"));
    }
    text
}

/// Requests a reconcile of `namespace/name` (`resume`, when not empty, also resumes it in the
/// same write and is said in the progress line) and waits for its outcome. A Kustomization's change set
/// counts the Events since the request, or since `changes_since` if that is earlier.
pub async fn request<K: Reconcilable>(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    wait: &WaitArgs,
    resume: &str,
    changes_since: Option<Timestamp>,
) -> Result<Outcome, Error> {
    let kind = K::kind(&()).to_string();
    let subject = format!("{kind} {namespace}/{name}");
    let object: K = fetch(cluster, namespace, name).await?;
    if object.suspended() && resume.is_empty() {
        return Err(Error::Failed(format!(
            "{subject} is suspended; resume it with `mooring resume {} {name}`",
            kind.to_lowercase().replace("gitrepository", "source")
        )));
    }
    let token = Timestamp::now().to_string();
    let mut patch = serde_json::json!({
        "metadata": {"annotations": {RECONCILE_REQUESTED_AT_ANNOTATION: token}},
    });
    if !resume.is_empty() {
        patch["spec"] = serde_json::json!({"suspend": false});
    }
    let api: Api<K> = Api::namespaced(cluster.client.clone(), namespace);
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..Default::default()
    };
    let written = api
        .patch(name, &params, &Patch::Merge(&patch))
        .await
        .map_err(Error::api(format!("annotating {subject}")))?;
    progress(
        &format!("► {resume}requested a reconcile of {subject}"),
        true,
    );
    let generation = written.meta().generation;
    let done = wait_handled(&api, name, &subject, &token, generation, wait.timeout).await?;
    let conditions = done.conditions();
    let ready = find_condition(&conditions, types::READY).cloned();
    let (succeeded, reason, message) = ready.map_or((false, String::new(), String::new()), |c| {
        (c.status == "True", c.reason, c.message)
    });
    let requested = requested_since(&written, &token);
    let changes = if kind == "Kustomization" {
        let since = changes_since.map_or(requested, |earlier| earlier.min(requested));
        change_set(cluster, &done, since).await?
    } else {
        Vec::new()
    };
    Ok(Outcome {
        kind,
        namespace: namespace.to_string(),
        name: name.to_string(),
        requested_at: token,
        succeeded,
        reason,
        message,
        revision: done.revision(),
        changes,
        requested,
    })
}

/// Whether the object has handled the request `token` and decided `Ready` for its current
/// generation (True or False; Unknown means the pass goes on, e.g. health checks pending).
fn decided<K: Reconcilable>(object: &K, token: &str, generation: Option<i64>) -> bool {
    if object.handled().as_deref() != Some(token) {
        return false;
    }
    let conditions = object.conditions();
    let Some(ready) = find_condition(&conditions, types::READY) else {
        return false;
    };
    let current = match (ready.observed_generation, generation) {
        (Some(seen), Some(generation)) => seen >= generation,
        _ => true,
    };
    current && ready.status != "Unknown"
}

/// Watches the object until [`decided`], printing each new state on stderr; fails after
/// `timeout` naming the last state seen.
async fn wait_handled<K: Reconcilable>(
    api: &Api<K>,
    name: &str,
    subject: &str,
    token: &str,
    generation: Option<i64>,
    timeout: Duration,
) -> Result<K, Error> {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut objects = watcher(api.clone(), config)
        .default_backoff()
        .applied_objects()
        .boxed();
    let mut last = String::new();
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    loop {
        let next = tokio::select! {
            _ = &mut deadline => {
                progress("", false);
                return Err(Error::Failed(format!(
                    "timed out after {} waiting for {subject} to handle the reconcile request{}",
                    humanize(timeout),
                    if last.is_empty() { String::new() } else { format!(" (last state: {last})") }
                )));
            }
            next = objects.next() => next,
        };
        let object = match next {
            Some(Ok(object)) => object,
            Some(Err(e)) => return Err(Error::Failed(format!("watching {subject}: {e}"))),
            None => {
                return Err(Error::Failed(format!(
                    "watching {subject}: the watch ended"
                )));
            }
        };
        if decided(&object, token, generation) {
            progress("", false);
            return Ok(object);
        }
        let state = state_of(&object.conditions());
        if state != last {
            progress(&format!("◎ waiting for {subject}: {state}"), false);
            last = state;
        }
    }
}

/// The state to show while waiting: the `Reconciling` message, else `Ready`'s.
fn state_of(conditions: &[Condition]) -> String {
    let pick = find_condition(conditions, types::RECONCILING)
        .filter(|c| c.status == "True")
        .or_else(|| find_condition(conditions, types::READY));
    pick.map_or_else(
        || "no status yet".to_string(),
        |c| format!("{}={}: {}", c.type_, c.status, one_line(&c.message)),
    )
}

/// A progress line on stderr. On a terminal each replaces the last (`done`: keep it); elsewhere
/// each is its own line, and the empty one is not printed.
fn progress(line: &str, keep: bool) {
    let mut err = std::io::stderr().lock();
    if err.is_terminal() {
        let end = if keep { "\n" } else { "" };
        let _ = write!(err, "\r\x1b[K{line}{end}");
    } else if !line.is_empty() {
        let _ = writeln!(err, "{line}");
    }
    let _ = err.flush();
}

/// `90s` → `1m30s`, for messages.
fn humanize(d: Duration) -> String {
    let secs = d.as_secs();
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

/// When the request was written: the local time in `token`, precise; but when the API server's
/// time of the write (its managed-fields entry, to the second) is more than a second away, the
/// local clock is off and the server's time is used, so that a skewed clock cannot hide the
/// Events that follow the request.
fn requested_since<K: Resource>(written: &K, token: &str) -> Timestamp {
    let local: Option<Timestamp> = token.parse().ok();
    let server = written
        .meta()
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.manager.as_deref() == Some(FIELD_MANAGER))
        .filter_map(|m| m.time.as_ref().map(|t| t.0))
        .max();
    match (local, server) {
        (Some(local), Some(server))
            if server.duration_since(local).abs() > jiff::SignedDuration::from_secs(1) =>
        {
            server
        }
        (Some(local), _) => local,
        (None, server) => server.unwrap_or(Timestamp::UNIX_EPOCH),
    }
}

/// The change set of the pass that handled the request: the lines of the `Progressing` Events
/// the kustomize-controller published about the object since the request (it publishes them
/// before writing the status that answers the request).
async fn change_set<K: Reconcilable>(
    cluster: &Cluster,
    object: &K,
    since: Timestamp,
) -> Result<Vec<String>, Error> {
    let (Some(uid), Some(namespace)) = (object.meta().uid.clone(), object.meta().namespace.clone())
    else {
        return Ok(Vec::new());
    };
    let api: Api<Event> = Api::namespaced(cluster.client.clone(), &namespace);
    let params = ListParams::default().fields(&format!("involvedObject.uid={uid}"));
    let events = api.list(&params).await.map_err(Error::api(format!(
        "listing the Events of {namespace}/{}",
        object.name_any()
    )))?;
    let mut lines: Vec<String> = events
        .items
        .iter()
        .filter(|e| e.reason.as_deref() == Some(reasons::PROGRESSING))
        .filter(|e| event_time(e).is_some_and(|t| t >= since))
        .flat_map(|e| {
            e.message
                .as_deref()
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    lines.sort();
    lines.dedup();
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, Time};

    fn ks(handled: Option<&str>, ready: Option<(&str, i64)>, generation: i64) -> Kustomization {
        let mut conditions = Vec::new();
        if let Some((status, observed)) = ready {
            conditions.push(Condition {
                type_: "Ready".into(),
                status: status.into(),
                reason: "R".into(),
                message: "m".into(),
                observed_generation: Some(observed),
                last_transition_time: Time(Timestamp::UNIX_EPOCH),
            });
        }
        serde_json::from_value(serde_json::json!({
            "apiVersion": "kustomize.mooring.dev/v1", "kind": "Kustomization",
            "metadata": {"name": "k", "namespace": "n", "generation": generation},
            "spec": {"interval": "1m", "prune": false, "sourceRef": {"kind": "GitRepository", "name": "r"}},
            "status": {"lastHandledReconcileAt": handled, "conditions": conditions},
        }))
        .expect("kustomization")
    }

    #[test]
    fn a_request_is_decided_when_echoed_with_a_ready_verdict_for_this_generation() {
        assert!(decided(
            &ks(Some("t1"), Some(("True", 2)), 2),
            "t1",
            Some(2)
        ));
        assert!(decided(
            &ks(Some("t1"), Some(("False", 2)), 2),
            "t1",
            Some(2)
        ));
        // Another request's echo, no echo, a pass still going, or an older generation: not yet.
        assert!(!decided(
            &ks(Some("t0"), Some(("True", 2)), 2),
            "t1",
            Some(2)
        ));
        assert!(!decided(&ks(None, Some(("True", 2)), 2), "t1", Some(2)));
        assert!(!decided(
            &ks(Some("t1"), Some(("Unknown", 2)), 2),
            "t1",
            Some(2)
        ));
        assert!(!decided(
            &ks(Some("t1"), Some(("True", 1)), 2),
            "t1",
            Some(2)
        ));
        assert!(!decided(&ks(Some("t1"), None, 2), "t1", Some(2)));
    }

    #[test]
    fn the_request_time_is_local_unless_the_server_disagrees_by_more_than_a_second() {
        let written = |server: &str| {
            let mut k = ks(None, None, 1);
            k.metadata.managed_fields = Some(vec![ManagedFieldsEntry {
                manager: Some(FIELD_MANAGER.into()),
                time: Some(Time(server.parse().expect("time"))),
                ..Default::default()
            }]);
            k
        };
        let token = "2026-01-01T10:00:00.5Z";
        let local: Timestamp = token.parse().expect("time");
        assert_eq!(
            requested_since(&written("2026-01-01T10:00:00Z"), token),
            local
        );
        let server: Timestamp = "2026-01-01T09:58:00Z".parse().expect("time");
        assert_eq!(
            requested_since(&written("2026-01-01T09:58:00Z"), token),
            server
        );
    }
}
