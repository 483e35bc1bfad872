//! The Kustomization reconcile driver: runs the steps of [`crate::steps`] in order, updates
//! the remembered state once at the end of the pass, and writes the status.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams};
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use mooring_api::conditions::reasons;
use mooring_api::constants::{
    FINALIZER, KUSTOMIZE_FIELD_MANAGER, RECONCILE_REQUESTED_AT_ANNOTATION,
};
use mooring_api::kustomization::ResourceInventory;
use mooring_api::{Kustomization, KustomizationStatus};
use mooring_runtime::finalizers;
use mooring_runtime::reconcile::{self, Class, Tail, finish, object_key};
use mooring_runtime::runner::Action;

use crate::apply::{ApplyOptions, ChangeSet};
use crate::context::Context;
use crate::decide::{AppliedRender, HISTORY_READY, HISTORY_REVISION_KEY, Outcome, next_status};
use crate::error::Error;
use crate::inventory::{InventoryEntry, ObjectId, Owner};
use crate::metrics::Step;
use crate::state::Memory;
use crate::steps::gate::Gate;
use crate::steps::plan::Why;
use crate::steps::render::Render;
use crate::steps::{apply, cleanup, gate, health, plan, prune, render};
use crate::target::{self, Cluster};

/// Reconciles one Kustomization: called by the controller on every trigger.
pub async fn reconcile(ks: Arc<Kustomization>, ctx: Arc<Context>) -> Result<Action, Error> {
    // A pass must never decide from an inventory older than the one it wrote last.
    if let Some(action) = reconcile::skip_stale_copy(&ctx.writes, &*ks) {
        return Ok(action);
    }
    let ns = ks.namespace().unwrap_or_default();
    let owner = Owner::new(&ns, &ks.name_any());
    // Changes seen while this pass runs wait for its end, and the echoes of its own writes
    // are dropped then (see `crate::wakes`).
    let _pass = ctx.wakes.pass(&owner);
    let api: Api<Kustomization> = Api::namespaced(ctx.client.clone(), &ns);
    let ours = ks.finalizers().iter().any(|f| f == FINALIZER);
    if ks.meta().deletion_timestamp.is_some() {
        if !ours {
            return Ok(Action::await_change());
        }
        let action = delete(&ks, &ctx, &ns).await?;
        finalizers::remove(&api, &*ks, FINALIZER)
            .await
            .map_err(|e| {
                Error::Finalizer(format!(
                    "removing the finalizer: {}",
                    mooring_runtime::errors::chain(&e)
                ))
            })?;
        ctx.wakes.forget(&owner);
        return Ok(action);
    }
    let gate = gate::gate(
        &ks,
        ctx.settings.allow_cross_namespace_refs,
        &ctx.sources,
        &ctx.kustomizations,
    );
    // The finalizer is needed once something is applied, and a pass that the gate stops
    // applies nothing: until the first pass gets past the gate, a Kustomization that has
    // applied nothing goes without it. One waiting for its source or a dependency (a
    // bootstrap, a thousand apps applied at once) costs no write but its status, and none
    // while it waits for a new source (`awaits_new_source`).
    if ours || (gate.is_err() && applied_nothing(&ks)) {
        return reconcile_live(ks, ctx, gate).await;
    }
    // The finalizer is added and the pass goes on with the answer: the event of the write is
    // an echo that starts no second pass.
    let added = ctx
        .metrics
        .timed(Step::Finalizer, finalizers::add(&api, &*ks, FINALIZER))
        .await;
    match added {
        Ok(written) => {
            let rv = written.resource_version().unwrap_or_default();
            ctx.wakes.wrote_finalizer(&owner, rv);
            reconcile_live(Arc::new(written), ctx, gate).await
        }
        // The copy this pass started from is older than the object on the server: an earlier
        // pass added the finalizer, or a deletion began, and the watch has not delivered it
        // yet. The patch tests the finalizer list, and the server refuses it. The pass ends
        // without failing (no warning, no backoff) and looks again shortly: the event of our
        // own finalizer write is an echo that wakes nothing (see `crate::wakes`), so waiting
        // for it would wait for the next relist.
        Err(kube::Error::Api(status)) if status.code == 422 => {
            tracing::debug!(object = %object_key(&*ks), "finalizer list changed since this copy; looking again");
            Ok(Action::requeue(reconcile::STALE_COPY_RETRY))
        }
        Err(e) => Err(Error::Finalizer(format!(
            "adding the finalizer: {}",
            mooring_runtime::errors::chain(&e)
        ))),
    }
}

/// The deletion of a Kustomization: deletes what it applied (unless pruning is off). `Ok`
/// lets the finalizer go.
async fn delete(ks: &Kustomization, ctx: &Context, ns: &str) -> Result<Action, Error> {
    match cleanup::cleanup(ks, ctx).await {
        Ok(deleted) => {
            publish_changes(ctx, ks, "Deleted", &deleted).await;
            ctx.writes.forget(ks);
            ctx.remotes.release(ks, &ctx.kustomizations.state());
            Ok(Action::await_change())
        }
        Err(error) => {
            // A namespace being deleted takes its RoleBindings (and the kubeconfig Secret)
            // with it: the deletion would be refused forever. Its own objects go with the
            // namespace; what is left elsewhere is named.
            let leaving = namespace_terminating(ctx, ns).await;
            let note = if leaving {
                format!(
                    "the namespace is being deleted; objects of the inventory outside it are left in place: {error}"
                )
            } else {
                format!("deleting the applied objects failed, retrying: {error}")
            };
            if leaving {
                // The namespace refuses new objects while it terminates, Events included:
                // the log is where this is said for sure.
                tracing::warn!(kustomization = %format!("{ns}/{}", ks.name_any()), "{note}");
            }
            publish(ctx, ks, EventType::Warning, reasons::PRUNE_FAILED, note).await;
            if leaving {
                Ok(Action::await_change())
            } else {
                Err(error)
            }
        }
    }
}

/// Whether the namespace `ns` is being deleted (listed, so that list rights are enough).
async fn namespace_terminating(ctx: &Context, ns: &str) -> bool {
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    let params = ListParams::default().fields(&format!("metadata.name={ns}"));
    match api.list(&params).await {
        Ok(list) => list
            .items
            .iter()
            .any(|n| n.metadata.deletion_timestamp.is_some()),
        Err(e) => {
            tracing::debug!(namespace = %ns, error = %e, "reading the namespace");
            false
        }
    }
}

/// Decides when to retry after `reconcile` returned an error (status was not written).
///
/// The delay is bounded by the object's `spec.retryInterval` here too: a pass whose status
/// write failed (the API server restarting) is retried as soon as one that failed a step.
pub fn error_policy(ks: Arc<Kustomization>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = object_key(&*ks);
    let error = mooring_runtime::errors::chain(error);
    tracing::warn!(object = %key, %error, "reconcile failed");
    Action::requeue(
        ctx.failures
            .record_failure_at_most(&key, Some(retry_bound(&ks))),
    )
}

/// The longest a failing Kustomization waits between retries: its `spec.retryInterval`
/// (which defaults to `spec.interval`), or a minute when that cannot be read.
fn retry_bound(ks: &Kustomization) -> Duration {
    ks.spec.retry_interval().unwrap_or(Duration::from_secs(60))
}

/// A pass's result and when to look again.
pub struct Pass {
    /// How the pass ended.
    pub outcome: Outcome,
    /// When to look again: after `spec.interval`, or while health is pending, when the
    /// timeout would run out (watches may wake it sooner).
    pub class: Class,
}

/// Whether `ks` records no applied object: no `status.inventory`, or an empty one.
fn applied_nothing(ks: &Kustomization) -> bool {
    ks.status
        .as_ref()
        .and_then(|s| s.inventory.as_ref())
        .is_none_or(|inventory| inventory.entries.is_empty())
}

/// A pass of `ks` from what the gate found: it applies only when `gate` is `Ok`, and then
/// `ks` carries the finalizer.
async fn reconcile_live(
    ks: Arc<Kustomization>,
    ctx: Arc<Context>,
    gate: Result<Gate, Error>,
) -> Result<Action, Error> {
    if ks.spec.suspend {
        // Suspension ends with a spec change, which triggers a reconcile by itself.
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    let owner = Owner::new(&ks.namespace().unwrap_or_default(), &ks.name_any());
    let mut memory = ctx.memories.get(&owner);
    let mut status = ks.status.clone().unwrap_or_default();
    let result = match gate {
        Ok(gate) => run(&ks, &ctx, gate, &mut memory, &mut status, started).await,
        Err(error) => Err(error),
    };
    ctx.memories.put(owner, memory);
    if matches!(result, Err(Error::Waiting { .. })) && awaits_new_source(&ks, &ctx) {
        ctx.metrics.reconcile.observe(
            Class::Waiting {
                after: Duration::ZERO,
            }
            .label(),
            started.elapsed(),
        );
        return Ok(Action::requeue(ctx.settings.requeue_dependency));
    }
    let (outcome, class) = match result {
        Ok(pass) => (pass.outcome, pass.class),
        Err(error) => {
            tracing::info!(object = %object_key(&*ks), error = %error, "Kustomization not ready");
            let outcome = error.outcome();
            let class = match (&error, &outcome) {
                (Error::InvalidSpec { .. }, _) => Class::Stalled,
                (Error::Waiting { .. }, _) => Class::Waiting {
                    after: ctx.settings.requeue_dependency,
                },
                // Backoff from 1 s, capped by the Kustomization's own retryInterval.
                (
                    _,
                    Outcome::Failed {
                        reason, message, ..
                    },
                ) => Class::Failure {
                    reason: reason.clone(),
                    message: message.clone(),
                    at_most: Some(retry_bound(&ks)),
                },
                _ => Class::Stalled,
            };
            (outcome, class)
        }
    };
    let desired = desired_status(&ks, &status, &outcome);
    let tail = Tail {
        client: &ctx.client,
        field_manager: KUSTOMIZE_FIELD_MANAGER,
        metrics: &ctx.metrics.reconcile,
        failures: &ctx.failures,
        recorder: &ctx.recorder,
        writes: &ctx.writes,
    };
    let pass = reconcile::Pass {
        class,
        status: desired,
    };
    // `status` is what the server holds: the object's, or the inventory this pass recorded
    // before creating objects.
    let finished = finish(tail, &*ks, Some(&status), pass, started);
    ctx.metrics
        .timed(Step::Status, finished)
        .await
        .map_err(|reconcile::Error::PatchStatus(e)| Error::PatchStatus(e))
}

/// Whether `ks` is new, has never written a status, and waits for a source that exists, has
/// no artifact yet, has not failed and is not suspended: the state of every Kustomization
/// applied together with its GitRepository (a bootstrap, a new app). Such a pass writes
/// nothing, neither status nor finalizer: the source's artifact, or its failure, changes the
/// source and wakes `ks` (see `controller::using`), and the pass then reports what it
/// finds. A Kustomization older than `--requeue-dependency` (when this pass requeues it)
/// reports the wait as any other.
fn awaits_new_source(ks: &Kustomization, ctx: &Context) -> bool {
    let young = ks
        .meta()
        .creation_timestamp
        .as_ref()
        .is_some_and(|created| {
            let age = jiff::Timestamp::now().duration_since(created.0);
            age < jiff::SignedDuration::try_from(ctx.settings.requeue_dependency)
                .unwrap_or_default()
        });
    let reported = ks.status.as_ref().is_some_and(|s| !s.conditions.is_empty());
    if !young || reported || !ks.spec.depends_on.is_empty() {
        return false;
    }
    let ns = ks
        .spec
        .source_ref
        .namespace
        .clone()
        .unwrap_or_else(|| ks.namespace().unwrap_or_default());
    let source = kube::runtime::reflector::ObjectRef::new(&ks.spec.source_ref.name).within(&ns);
    ctx.sources.get(&source).is_some_and(|repo| {
        let status = repo.status.as_ref();
        let failed = status
            .and_then(|s| mooring_api::conditions::find_condition(&s.conditions, "Ready"))
            .is_some_and(|c| c.status == "False");
        // A suspended source gets no artifact to wake this one: the wait is reported at once.
        status.and_then(|s| s.artifact.as_ref()).is_none() && !failed && !repo.spec.suspend
    })
}

/// One pass past the gate: render → plan → apply → prune → health. `memory` and `status` are
/// updated as the pass goes (what was written stays known even when a later step fails).
async fn run(
    ks: &Kustomization,
    ctx: &Context,
    gate: Gate,
    memory: &mut Memory,
    status: &mut KustomizationStatus,
    started: Instant,
) -> Result<Pass, Error> {
    let ns = ks.namespace().unwrap_or_default();
    let owner = Owner::new(&ns, &ks.name_any());
    let revision = gate.source.revision.clone();
    let clients = ctx
        .metrics
        .timed(Step::Target, target::clients(ks, ctx))
        .await
        .map_err(|e| Error::Identity {
            revision: revision.clone(),
            message: e.to_string(),
        })?;
    let cluster = clients.target.cluster.clone();
    let client = clients.target.client.clone();
    memory.on_cluster(cluster.fingerprint);

    let rendering = render::render(
        ks,
        ctx,
        &clients,
        &gate.source,
        &gate.default_namespace,
        memory.render.clone(),
    );
    let render = ctx.metrics.timed(Step::Render, rendering).await?;
    memory.render = Some(render.clone());
    watch_kinds(&cluster, &render);

    let stored = status.inventory.clone().unwrap_or_default();
    // An inventory recorded on another cluster lists objects there: the same ids here are
    // other objects, and must not be pruned as these.
    let stored = match stored.cluster.as_deref() {
        Some(there) if there != cluster.name && !stored.entries.is_empty() => {
            let note = format!(
                "the {} objects of status.inventory are on {}, and spec.kubeConfig names {} \
                 now: they are left there, neither pruned nor deleted",
                stored.entries.len(),
                target::described(there),
                cluster.described()
            );
            publish(ctx, ks, EventType::Warning, reasons::PRUNE_FAILED, note).await;
            ResourceInventory::default()
        }
        _ => stored,
    };
    let planning = async {
        let old =
            prune::read_inventory_live(&client, &cluster.kinds, &stored, &gate.default_namespace)
                .await
                .map_err(|e| Error::Build {
                    revision: revision.clone(),
                    message: format!("status.inventory: {e}"),
                })?;
        let plan = plan::plan(
            &render,
            &memory.written,
            |id| cluster.live.lookup(id),
            Instant::now(),
        );
        Ok::<_, Error>((old, plan))
    };
    let (old, plan) = ctx.metrics.timed(Step::Plan, planning).await?;
    let opts = ApplyOptions {
        field_manager: KUSTOMIZE_FIELD_MANAGER.to_string(),
        default_namespace: gate.default_namespace.clone(),
        force: ks.spec.force,
        concurrency: ctx.settings.apply_concurrency,
        wait_timeout: gate.timeout,
        kinds: cluster.kinds.clone(),
        // What the view shows absent is created without a dry run when nothing else is
        // written (see `apply`): a cold start costs one request per object.
        absent: Arc::new(plan.absent()),
    };
    if !plan.apply.is_empty() {
        let widened = apply::widened_inventory(&old, &render).map_err(|e| Error::Build {
            revision: revision.clone(),
            message: e.to_string(),
        })?;
        if let Some(mut widened) = widened {
            widened.cluster = Some(cluster.name.clone());
            let recording = apply::record_intent(&ctx.client, &ctx.writes, ks, status, widened);
            *status = ctx.metrics.timed(Step::Inventory, recording).await?;
        }
    }
    let applying = apply::apply(&client, &render, &plan, &opts);
    let applied = match ctx.metrics.timed(Step::Apply, applying).await {
        Ok(applied) => applied,
        Err((error, partial)) => {
            remember(memory, &partial);
            count_drift_corrections(ctx, &plan, &old, &partial.changes);
            // Discovery knows the render's kinds now: watch them, so that the view can tell
            // which objects of the widened inventory never came to exist.
            watch_kinds(&cluster, &render);
            publish_changes(ctx, ks, reasons::PROGRESSING, &partial.changes).await;
            return Err(error);
        }
    };
    remember(memory, &applied);
    count_drift_corrections(ctx, &plan, &old, &applied.changes);
    count_actions(ctx, &applied.changes);
    // Kinds that a CRD of this render defines are known to discovery only now.
    watch_kinds(&cluster, &render);

    let mut changes = applied.changes;
    if ks.spec.prune {
        let stale = prune::stale(&old, &render);
        let pruning = prune::prune(&client, &stale, &owner, &revision, &opts);
        let pruned = ctx.metrics.timed(Step::Prune, pruning).await;
        let pruned = match pruned {
            Ok(pruned) => pruned,
            Err(error) => {
                publish_changes(ctx, ks, reasons::PROGRESSING, &changes).await;
                return Err(error);
            }
        };
        for entry in &pruned.entries {
            memory.written.remove(&entry.key.id());
            memory.health.remove(&entry.key.id());
        }
        count_actions(ctx, &pruned);
        changes.extend(pruned);
    }
    publish_changes(ctx, ks, reasons::PROGRESSING, &changes).await;

    let mut inventory = render.inventory();
    inventory.cluster = Some(cluster.name.clone());
    // The render was made for, or kept for, this source provenance (`render.provenance`).
    let applied_render = new_render(status, &render, &gate.source.provenance, started);
    if let Some(commit_time) = applied_render
        .as_ref()
        .filter(|a| a.first)
        .and_then(|a| a.metadata.get("git.commitTime"))
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
    {
        let seconds = jiff::Timestamp::now()
            .duration_since(commit_time)
            .as_secs_f64();
        ctx.metrics.commit_to_applied.observe(seconds.max(0.0));
    }
    let targets = health::targets(ks, &render);
    let summary = if targets.is_empty() {
        None
    } else {
        let assessing = health::assess(
            &client,
            &targets,
            &render,
            &cluster.live,
            &memory.health,
            &opts,
        );
        let (summary, assessed) = ctx.metrics.timed(Step::Health, assessing).await;
        memory.health = assessed;
        Some(summary).filter(|s| !s.all_current)
    };
    let Some(summary) = summary else {
        memory.unhealthy_since = None;
        return Ok(Pass {
            outcome: Outcome::Ready {
                revision,
                inventory,
                applied: applied_render,
                checked: !targets.is_empty(),
            },
            class: Class::Success {
                interval: gate.interval,
            },
        });
    };
    // The timeout counts from the last write, or from when health was first found missing.
    let since = match memory.unhealthy_since {
        Some(since) if !changes.has_writes() => since,
        _ => Instant::now(),
    };
    memory.unhealthy_since = Some(since);
    if !summary.failed.is_empty() || since.elapsed() >= gate.timeout {
        let message = if summary.failed.is_empty() {
            format!("timeout waiting for: {}", summary.message)
        } else {
            summary.message
        };
        return Err(Error::Unhealthy {
            revision,
            message,
            inventory,
        });
    }
    // The view may not show this pass's writes yet: their events, echoes or not, wake it.
    ctx.wakes.awaits_view(&owner);
    Ok(Pass {
        outcome: Outcome::HealthPending {
            revision,
            inventory,
            message: summary.message,
            applied: applied_render,
        },
        // Watches on the managed objects wake the pass sooner; this bounds the wait.
        class: Class::Progressing {
            after: gate
                .timeout
                .saturating_sub(since.elapsed())
                .max(Duration::from_secs(1)),
        },
    })
}

/// The render for `status.history`, unless the newest entry already records it, Ready: a
/// render applied first by this pass, or one whose entry still waits for its health checks.
fn new_render(
    status: &KustomizationStatus,
    render: &Render,
    provenance: &BTreeMap<String, String>,
    started: Instant,
) -> Option<AppliedRender> {
    let newest = status.history.first();
    let recorded = newest.is_some_and(|h| {
        h.digest == render.digest
            && h.metadata
                .as_ref()
                .and_then(|m| m.get(HISTORY_REVISION_KEY))
                == Some(&render.revision)
    });
    let settled = recorded && newest.is_some_and(|h| h.last_reconciled_status == HISTORY_READY);
    (!settled).then(|| AppliedRender {
        first: !recorded,
        metadata: std::iter::once((HISTORY_REVISION_KEY.to_owned(), render.revision.clone()))
            .chain(provenance.clone())
            .collect(),
        digest: render.digest.clone(),
        duration: format!("{:.3}s", started.elapsed().as_secs_f64()),
    })
}

/// Starts the live view's watch of every kind of the render that discovery knows.
fn watch_kinds(cluster: &Cluster, render: &Render) {
    for desired in &render.objects {
        if let Some(kind) = cluster.kinds.cached(&desired.api_version, &desired.id.kind) {
            cluster.live.ensure_watch(&kind.resource);
        }
    }
}

/// Records in `memory` what an apply's writes left.
fn remember(memory: &mut Memory, applied: &apply::Applied) {
    memory.written.extend(applied.written.iter().cloned());
    memory.health.extend(applied.assessed.iter().cloned());
}

/// Counts (and logs) the writes of `changes` that put back what the cluster lost or someone
/// changed: objects planned as drifted, objects whose state was unknown to the view but which
/// the apply found changed, and missing objects that were applied before (in `applied_before`,
/// the inventory of the last pass). An object created for the first time restores nothing.
/// Called for failed passes too, so that a correction written before another object failed is
/// not left out.
fn count_drift_corrections(
    ctx: &Context,
    plan: &plan::Plan,
    applied_before: &[InventoryEntry],
    changes: &ChangeSet,
) {
    let before: HashSet<&ObjectId> = applied_before.iter().map(|e| &e.id).collect();
    for entry in changes.writes() {
        let id = entry.key.id();
        let restored = match plan.apply.get(&id) {
            Some(Why::Drifted | Why::Unverified) => true,
            Some(Why::Missing) => before.contains(&id),
            Some(Why::Changed) | None => false,
        };
        if restored {
            tracing::info!(object = %id.subject(), action = %entry.action, "restored drift");
            ctx.metrics.drift_corrections.inc();
        }
    }
}

fn count_actions(ctx: &Context, changes: &ChangeSet) {
    for entry in &changes.entries {
        ctx.metrics
            .objects
            .with_label_values(&[entry.action.as_str()])
            .inc();
    }
}

/// Publishes the writes of `changes` as one Event, when there are any.
async fn publish_changes(ctx: &Context, ks: &Kustomization, reason: &str, changes: &ChangeSet) {
    if !changes.has_writes() {
        return;
    }
    let lines: Vec<String> = changes.writes().map(|e| e.to_string()).collect();
    let publishing = publish(ctx, ks, EventType::Normal, reason, lines.join("\n"));
    ctx.metrics.timed(Step::Events, publishing).await;
}

/// The status after a pass that ended with `outcome`, from `current`.
fn desired_status(
    ks: &Kustomization,
    current: &KustomizationStatus,
    outcome: &Outcome,
) -> KustomizationStatus {
    let requested_at = ks
        .annotations()
        .get(RECONCILE_REQUESTED_AT_ANNOTATION)
        .map(String::as_str);
    let now = Time(jiff::Timestamp::now());
    let generation = ks.meta().generation.unwrap_or(0);
    next_status(current, generation, outcome, requested_at, &now)
}

/// Publishes an Event about `ks`; failures to publish are logged, never fatal.
async fn publish(ctx: &Context, ks: &Kustomization, type_: EventType, reason: &str, note: String) {
    mooring_runtime::events::publish(&ctx.recorder, ks, type_, reason, note).await;
}
