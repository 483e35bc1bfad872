//! The Receiver reconcile: validate, read the token, publish the path, write the status.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use mooring_api::conditions::{ConditionStatus, remove_condition, set_condition, types};
use mooring_api::constants::{RECONCILE_REQUESTED_AT_ANNOTATION, SOURCE_FIELD_MANAGER};
use mooring_api::receiver::RECEIVER_TOKEN_KEY;
use mooring_api::{Receiver, ReceiverStatus};
use mooring_runtime::runner::Action;

use super::{Hook, Refusal, validate, webhook_path};
use crate::context::Context;
use crate::error::Error;

/// The condition reason when the token cannot be read.
pub const TOKEN_NOT_FOUND: &str = "TokenNotFound";

/// How a pass ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiverOutcome {
    /// Served at this path.
    Ready {
        /// The webhook path.
        path: String,
    },
    /// The spec cannot work: wait for a change.
    Stalled(Refusal),
    /// The token could not be read: retried with backoff.
    Failed(Refusal),
}

/// The status after a pass ending in `outcome`, from the `current` one (equal input, equal
/// output: nothing is rewritten on an unchanged pass).
pub fn next_status(
    current: &ReceiverStatus,
    generation: Option<i64>,
    outcome: &ReceiverOutcome,
    requested_at: Option<&str>,
    now: &Time,
) -> ReceiverStatus {
    let mut status = current.clone();
    status.observed_generation = generation;
    if let Some(at) = requested_at {
        status.last_handled_reconcile_at = Some(at.to_string());
    }
    let conditions = &mut status.conditions;
    match outcome {
        ReceiverOutcome::Ready { path } => {
            let message = format!("Receiver initialized for path: {path}");
            set_condition(
                conditions,
                types::READY,
                ConditionStatus::True,
                mooring_api::conditions::reasons::SUCCEEDED,
                &message,
                generation,
                now,
            );
            remove_condition(conditions, types::STALLED);
            status.webhook_path = Some(path.clone());
        }
        ReceiverOutcome::Stalled(refusal) | ReceiverOutcome::Failed(refusal) => {
            set_condition(
                conditions,
                types::READY,
                ConditionStatus::False,
                refusal.reason,
                &refusal.message,
                generation,
                now,
            );
            if matches!(outcome, ReceiverOutcome::Stalled(_)) {
                set_condition(
                    conditions,
                    types::STALLED,
                    ConditionStatus::True,
                    refusal.reason,
                    &refusal.message,
                    generation,
                    now,
                );
            } else {
                remove_condition(conditions, types::STALLED);
            }
            status.webhook_path = None;
        }
    }
    status
}

/// Reconciles one Receiver. Reads its Secret and writes its status (API).
pub async fn reconcile(receiver: Arc<Receiver>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = receiver.namespace().unwrap_or_default();
    let name = receiver.name_any();
    let key = format!("Receiver/{ns}/{name}");
    let reference = ObjectRef::from_obj(&*receiver);
    let outcome = match validate(&receiver.spec, &ns) {
        Err(refusal) => ReceiverOutcome::Stalled(refusal),
        Ok(()) => match read_token(&ctx, &ns, &receiver.spec.secret_ref.name).await {
            Err(message) => ReceiverOutcome::Failed(Refusal {
                reason: TOKEN_NOT_FOUND,
                message,
            }),
            Ok(token) => {
                let path = webhook_path(&token, &name, &ns);
                ctx.hooks.publish(
                    path.clone(),
                    Hook {
                        receiver: reference.clone(),
                        uid: receiver.uid(),
                        type_: receiver.spec.type_,
                        token,
                        events: receiver.spec.events.clone(),
                        resources: receiver.spec.resources.clone(),
                    },
                );
                ReceiverOutcome::Ready { path }
            }
        },
    };
    if !matches!(outcome, ReceiverOutcome::Ready { .. }) {
        ctx.hooks.withdraw(&reference);
    }
    let current = receiver.status.clone().unwrap_or_default();
    let status = next_status(
        &current,
        receiver.meta().generation,
        &outcome,
        receiver
            .annotations()
            .get(RECONCILE_REQUESTED_AT_ANNOTATION)
            .map(String::as_str),
        &Time(jiff::Timestamp::now()),
    );
    if receiver.status.as_ref() != Some(&status) {
        let api: Api<Receiver> = Api::namespaced(ctx.client.clone(), &ns);
        mooring_runtime::status::apply_status(&api, &name, SOURCE_FIELD_MANAGER, &status)
            .await
            .map_err(Error::PatchStatus)?;
    }
    Ok(match outcome {
        ReceiverOutcome::Ready { .. } => {
            ctx.failures.reset(&key);
            let interval = receiver.spec.interval().unwrap_or(Duration::from_secs(600));
            Action::requeue(mooring_runtime::backoff::jittered_interval(interval))
        }
        ReceiverOutcome::Failed(refusal) => {
            tracing::info!(receiver = %key, message = %refusal.message, "Receiver not ready");
            Action::requeue(ctx.failures.record_failure(&key))
        }
        ReceiverOutcome::Stalled(_) => Action::await_change(),
    })
}

/// Decides when to retry after `reconcile` returned an error.
pub fn error_policy(receiver: Arc<Receiver>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = format!(
        "Receiver/{}/{}",
        receiver.namespace().unwrap_or_default(),
        receiver.name_any()
    );
    tracing::warn!(receiver = %key, error = %error, "reconcile failed");
    Action::requeue(ctx.failures.record_failure(&key))
}

/// The token from the Secret's `token` key; the error message names the Secret and key, never
/// the value. Talks to the API.
async fn read_token(ctx: &Context, ns: &str, secret: &str) -> Result<Vec<u8>, String> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let found = api
        .get_opt(secret)
        .await
        .map_err(|e| format!("reading Secret '{secret}' (spec.secretRef): {e}"))?
        .ok_or_else(|| format!("Secret '{secret}' (spec.secretRef) not found"))?;
    found
        .data
        .and_then(|mut data| data.remove(RECEIVER_TOKEN_KEY))
        .map(|bytes| bytes.0)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            format!("Secret '{secret}' (spec.secretRef) has no key '{RECEIVER_TOKEN_KEY}'")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Time {
        Time(jiff::Timestamp::from_second(1_700_000_000).expect("time"))
    }

    #[test]
    fn an_unchanged_pass_gives_an_equal_status() {
        let ready = ReceiverOutcome::Ready {
            path: "/hook/abc".into(),
        };
        let first = next_status(&ReceiverStatus::default(), Some(1), &ready, None, &now());
        let later = Time(jiff::Timestamp::from_second(1_700_000_600).expect("time"));
        assert_eq!(next_status(&first, Some(1), &ready, None, &later), first);
        assert_eq!(first.webhook_path.as_deref(), Some("/hook/abc"));
    }

    #[test]
    fn a_refusal_withdraws_the_path_and_stalls() {
        let ready = ReceiverOutcome::Ready {
            path: "/hook/abc".into(),
        };
        let first = next_status(&ReceiverStatus::default(), Some(1), &ready, None, &now());
        let stalled = ReceiverOutcome::Stalled(Refusal {
            reason: "ReconciliationFailed",
            message: "spec.type 'harbor' is not supported".into(),
        });
        let status = next_status(&first, Some(2), &stalled, None, &now());
        assert_eq!(status.webhook_path, None);
        assert!(mooring_api::conditions::is_stalled(&status.conditions));
        assert!(!mooring_api::conditions::is_ready(&status.conditions));
    }
}
