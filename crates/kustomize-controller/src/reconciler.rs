//! The Kustomization reconcile driver: a thin sequence of named steps.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};
use mooring_api::Kustomization;
use mooring_api::constants::{
    FINALIZER, KUSTOMIZE_FIELD_MANAGER, RECONCILE_REQUESTED_AT_ANNOTATION,
};
use mooring_runtime::backoff::jittered_interval;
use mooring_runtime::status::apply_status;

use crate::context::Context;
use crate::decide::{Outcome, next_status};
use crate::error::Error;
use crate::steps;

/// Reconciles one Kustomization: called by the controller on every trigger.
pub async fn reconcile(ks: Arc<Kustomization>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = ks.namespace().unwrap_or_default();
    let api: Api<Kustomization> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, ks, |event| async {
        match event {
            Finalizer::Apply(ks) => apply(ks, ctx.clone()).await,
            Finalizer::Cleanup(ks) => steps::cleanup(&ks, &ctx)
                .await
                .map(|()| Action::await_change()),
        }
    })
    .await
    .map_err(|e| Error::Finalizer(e.to_string()))
}

/// Decides when to retry after `reconcile` returned an error (status was not written).
pub fn error_policy(ks: Arc<Kustomization>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = format!("{}/{}", ks.namespace().unwrap_or_default(), ks.name_any());
    tracing::warn!(object = %key, error = %error, "reconcile failed");
    Action::requeue(ctx.failures.record_failure(&key))
}

/// A pass's result and when to look again.
pub struct Pass {
    /// How the pass ended.
    pub outcome: Outcome,
    /// When to reconcile again at the latest (watches may wake it sooner).
    pub requeue: Duration,
}

async fn apply(ks: Arc<Kustomization>, ctx: Arc<Context>) -> Result<Action, Error> {
    if ks.spec.suspend {
        // Suspension ends with a spec change, which triggers a reconcile by itself.
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    let retry = ks.spec.retry_interval().unwrap_or(Duration::from_secs(60));
    let (outcome, action) = match steps::run(&ks, &ctx, started).await {
        Ok(pass) => {
            let action = Action::requeue(pass.requeue);
            (pass.outcome, action)
        }
        Err(error) => {
            tracing::info!(namespace = %ks.namespace().unwrap_or_default(), name = %ks.name_any(), error = %error, "Kustomization not ready");
            let action = match &error {
                Error::InvalidSpec { .. } => Action::await_change(),
                Error::Waiting { .. } => Action::requeue(ctx.settings.requeue_dependency),
                _ => Action::requeue(jittered_interval(retry)),
            };
            (error.outcome(), action)
        }
    };
    let result = match &outcome {
        Outcome::Ready { .. } => "success",
        Outcome::HealthPending { .. } => "progressing",
        Outcome::Waiting { .. } => "waiting",
        Outcome::Failed { .. } => "failure",
        Outcome::Stalled { .. } => "stalled",
    };
    ctx.metrics.reconciles.with_label_values(&[result]).inc();
    ctx.metrics
        .reconcile_duration
        .with_label_values(&[result])
        .observe(started.elapsed().as_secs_f64());
    write_status(&ks, &ctx, &outcome).await?;
    Ok(action)
}

async fn write_status(ks: &Kustomization, ctx: &Context, outcome: &Outcome) -> Result<(), Error> {
    let current = ks.status.clone().unwrap_or_default();
    let requested_at = ks
        .annotations()
        .get(RECONCILE_REQUESTED_AT_ANNOTATION)
        .map(String::as_str);
    let now = Time(jiff::Timestamp::now());
    let generation = ks.meta().generation.unwrap_or(0);
    let desired = next_status(&current, generation, outcome, requested_at, &now);
    if ks.status.as_ref() == Some(&desired) {
        return Ok(());
    }
    if let Outcome::Failed {
        reason, message, ..
    } = outcome
    {
        publish(ctx, ks, EventType::Warning, reason, message.clone()).await;
    }
    let api: Api<Kustomization> =
        Api::namespaced(ctx.client.clone(), &ks.namespace().unwrap_or_default());
    apply_status(&api, &ks.name_any(), KUSTOMIZE_FIELD_MANAGER, &desired)
        .await
        .map_err(Error::PatchStatus)?;
    Ok(())
}

/// Publishes an Event about `ks`; failures to publish are logged, never fatal.
pub(crate) async fn publish(
    ctx: &Context,
    ks: &Kustomization,
    type_: EventType,
    reason: &str,
    note: String,
) {
    mooring_runtime::events::publish(&ctx.recorder, ks, type_, reason, note).await;
}
