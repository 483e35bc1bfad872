//! The end of every reconcile pass, shared by both controllers: count and time the pass, write
//! the status only when it changed, warn on failure, and choose when to look again.
//!
//! A controller's driver runs its steps, turns the result into a [`Pass`] (how it ended, and
//! the status the object should now have), and hands it to [`finish`]. The decisions are
//! [`plan`] and [`requeue_after`], plain functions with plain unit tests.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use crate::events::{EventType, Recorder};
use crate::runner::Action;
use kube::core::object::HasStatus;
use kube::{Api, Resource, ResourceExt};
use prometheus::core::Collector;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backoff::{FailureTracker, jittered_interval};

/// How a pass ended, with the hint the requeue needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Class {
    /// Done: look again after `interval` with jitter; the object's backoff starts over.
    Success {
        /// The object's `spec.interval`.
        interval: Duration,
    },
    /// Work under way (applied, health pending): look again after `after`. Backoff untouched.
    Progressing {
        /// When to look again at the latest (watches may wake the object sooner).
        after: Duration,
    },
    /// Waiting for something outside the object (a source, a dependency): look again after
    /// `after`. Backoff untouched.
    Waiting {
        /// When to look again at the latest.
        after: Duration,
    },
    /// A step failed: retried after the object's next backoff delay, and a Warning Event with
    /// `reason` and `message` is published when the status changes.
    Failure {
        /// The Event reason (the condition reason).
        reason: String,
        /// The Event note.
        message: String,
        /// The longest the backoff may grow to for this object (e.g. `spec.retryInterval`);
        /// `None`: the tracker's own maximum.
        at_most: Option<Duration>,
    },
    /// The spec cannot work as written: wait for it to change.
    Stalled,
}

impl Class {
    /// The `result` label of the reconcile metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Class::Success { .. } => "success",
            Class::Progressing { .. } => "progressing",
            Class::Waiting { .. } => "waiting",
            Class::Failure { .. } => "failure",
            Class::Stalled => "stalled",
        }
    }
}

/// Every `result` label value, in a stable order (for tests and dashboards summing them).
pub const RESULT_LABELS: [&str; 5] = ["success", "progressing", "waiting", "failure", "stalled"];

/// A finished pass: how it ended and the status the object should have now.
#[derive(Debug, Clone, PartialEq)]
pub struct Pass<S> {
    /// How the pass ended.
    pub class: Class,
    /// The desired status (computed from the current one, so unchanged input gives an equal value).
    pub status: S,
}

/// What [`finish`] writes and publishes, decided from plain data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The desired status differs from the current one.
    pub write_status: bool,
    /// Publish the failure's Warning Event: only with a status change, so a failure that
    /// repeats itself does not repeat its Event on every retry.
    pub warn: bool,
}

/// Whether to write the status and whether to warn, for a pass ending in `class` that wants
/// `desired` where the object has `current`.
pub fn plan<S: PartialEq>(class: &Class, current: Option<&S>, desired: &S) -> Plan {
    let write_status = current != Some(desired);
    Plan {
        write_status,
        warn: write_status && matches!(class, Class::Failure { .. }),
    }
}

/// How long until `key` is looked at again after a pass ending in `class` (`None`: only when
/// it changes); records the failure in `failures`, or forgets past ones after a success.
pub fn requeue_after(class: &Class, failures: &FailureTracker, key: &str) -> Option<Duration> {
    match class {
        Class::Success { interval } => {
            failures.reset(key);
            Some(jittered_interval(*interval))
        }
        Class::Progressing { after } | Class::Waiting { after } => Some(*after),
        Class::Failure { at_most, .. } => Some(failures.record_failure_at_most(key, *at_most)),
        Class::Stalled => None,
    }
}

/// The controller [`Action`] for a [`requeue_after`] answer.
pub fn action(after: Option<Duration>) -> Action {
    after.map_or_else(Action::await_change, Action::requeue)
}

/// How long a pass that found a cached copy older than its own last status write waits before
/// looking again, should the write's watch event (which normally wakes it first) not come.
pub const STALE_COPY_RETRY: Duration = Duration::from_secs(1);

/// The answer for a pass over `object` when the cache still holds the copy from before this
/// controller's last status write to it (see [`crate::status::OwnWrites`]): nothing is done
/// now, the fresh copy's event brings the next pass. `None`: the copy is current, go on.
pub fn skip_stale_copy<K>(writes: &crate::status::OwnWrites, object: &K) -> Option<Action>
where
    K: Resource + HasStatus,
    K::Status: Serialize,
{
    writes.is_stale(object).then(|| {
        tracing::debug!(object = %object_key(object), "cached copy predates our status write; waiting for its event");
        Action::requeue(STALE_COPY_RETRY)
    })
}

/// The key under which an object's failures are tracked: `namespace/name`.
pub fn object_key<K: Resource>(object: &K) -> String {
    format!(
        "{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

/// The reconcile counter and duration histogram, both labelled by `result` ([`Class::label`]).
#[derive(Debug, Clone)]
pub struct ReconcileMetrics {
    /// `<prefix>_reconcile_total{result}`.
    pub reconciles: IntCounterVec,
    /// `<prefix>_reconcile_duration_seconds{result}`.
    pub duration: HistogramVec,
}

impl ReconcileMetrics {
    /// Creates both metrics, described for `kind` (e.g. `GitRepository`), and registers them in
    /// `registry` (whose prefix names the controller).
    pub fn register(
        registry: &Registry,
        kind: &str,
        buckets: Vec<f64>,
    ) -> Result<Self, prometheus::Error> {
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "reconcile_duration_seconds",
                format!("{kind} reconcile duration"),
            )
            .buckets(buckets),
            &["result"],
        )?;
        let reconciles = IntCounterVec::new(
            Opts::new("reconcile_total", format!("{kind} reconciles")),
            &["result"],
        )?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(reconciles.clone()))?;
        Ok(Self {
            reconciles,
            duration,
        })
    }

    /// Counts one pass with result `label` that took `elapsed`.
    pub fn observe(&self, label: &str, elapsed: Duration) {
        self.reconciles.with_label_values(&[label]).inc();
        self.duration
            .with_label_values(&[label])
            .observe(elapsed.as_secs_f64());
    }

    /// How many passes ended with result `label`. Reads without creating the series, so
    /// asking does not add a zero sample to /metrics.
    pub fn count(&self, label: &str) -> u64 {
        self.counts()
            .into_iter()
            .filter(|(l, _)| l == label)
            .map(|(_, n)| n)
            .sum()
    }

    /// How many passes ended, whatever the result.
    pub fn total(&self) -> u64 {
        self.counts().into_iter().map(|(_, n)| n).sum()
    }

    /// (result, count) of every series the counter has.
    fn counts(&self) -> Vec<(String, u64)> {
        self.reconciles
            .collect()
            .iter()
            .flat_map(|family| family.get_metric())
            .map(|metric| {
                let label = metric
                    .get_label()
                    .iter()
                    .find(|l| l.name() == "result")
                    .map(|l| l.value().to_string())
                    .unwrap_or_default();
                // Counts are whole numbers kept in an f64.
                (label, metric.get_counter().value() as u64)
            })
            .collect()
    }
}

/// What [`finish`] needs from a controller's context, borrowed for one call.
#[derive(Clone, Copy)]
pub struct Tail<'a> {
    /// The API client that writes the status.
    pub client: &'a kube::Client,
    /// The field manager of the status write.
    pub field_manager: &'a str,
    /// The reconcile counter and histogram.
    pub metrics: &'a ReconcileMetrics,
    /// Per-object backoff.
    pub failures: &'a FailureTracker,
    /// Publishes the failure Warning Events.
    pub recorder: &'a Recorder,
    /// Remembers the status write, so that the next pass does not start from the copy the
    /// cache held before it.
    pub writes: &'a crate::status::OwnWrites,
}

/// Why [`finish`] could not finish a pass.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing the status failed; neither the backoff nor the requeue were touched.
    #[error("patching status: {0}")]
    PatchStatus(#[source] kube::Error),
}

/// Ends a pass over `object` that began at `started`: observes the metrics, writes
/// `pass.status` when it differs from `current` (what the server holds: the object's status,
/// unless the pass wrote part of it already), publishes the failure's Warning Event with that
/// write, and returns when to look again (see [`requeue_after`]).
///
/// Talks to the API server (the status write and the Event).
pub async fn finish<K>(
    tail: Tail<'_>,
    object: &K,
    current: Option<&K::Status>,
    pass: Pass<K::Status>,
    started: Instant,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + HasStatus
        + Clone
        + DeserializeOwned
        + Debug,
    K::Status: PartialEq + Serialize,
{
    tail.metrics.observe(pass.class.label(), started.elapsed());
    let decided = plan(&pass.class, current, &pass.status);
    if decided.warn
        && let Class::Failure {
            reason, message, ..
        } = &pass.class
    {
        crate::events::publish(
            tail.recorder,
            object,
            EventType::Warning,
            reason,
            message.clone(),
        )
        .await;
    }
    if decided.write_status {
        let api: Api<K> =
            Api::namespaced(tail.client.clone(), &object.namespace().unwrap_or_default());
        let written =
            crate::status::apply_status(&api, &object.name_any(), tail.field_manager, &pass.status)
                .await
                .map_err(Error::PatchStatus)?;
        tail.writes.wrote(&written);
    }
    Ok(action(requeue_after(
        &pass.class,
        tail.failures,
        &object_key(object),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(at_most: Option<Duration>) -> Class {
        Class::Failure {
            reason: "GitOperationFailed".into(),
            message: "unreachable".into(),
            at_most,
        }
    }

    fn tracker() -> FailureTracker {
        FailureTracker::new(Duration::from_secs(10), Duration::from_secs(600))
    }

    #[test]
    fn an_unchanged_status_is_not_written_and_does_not_warn() {
        let plan_same = plan(&failure(None), Some(&"s"), &"s");
        assert_eq!(
            plan_same,
            Plan {
                write_status: false,
                warn: false
            }
        );
    }

    #[test]
    fn a_changed_status_is_written_and_only_failures_warn() {
        let changed = plan(&failure(None), Some(&"old"), &"new");
        assert_eq!(
            changed,
            Plan {
                write_status: true,
                warn: true
            }
        );
        for class in [
            Class::Success {
                interval: Duration::from_secs(60),
            },
            Class::Progressing {
                after: Duration::from_secs(5),
            },
            Class::Waiting {
                after: Duration::from_secs(5),
            },
            Class::Stalled,
        ] {
            assert_eq!(
                plan(&class, Some(&"old"), &"new"),
                Plan {
                    write_status: true,
                    warn: false
                },
                "{class:?}"
            );
        }
    }

    #[test]
    fn an_object_without_status_gets_one() {
        let first = plan(&Class::Stalled, None, &"new");
        assert!(first.write_status);
    }

    #[test]
    fn failures_back_off_and_success_resets_the_backoff() {
        let failures = tracker();
        let first = requeue_after(&failure(None), &failures, "ns/a").expect("requeue");
        let second = requeue_after(&failure(None), &failures, "ns/a").expect("requeue");
        assert!(first >= Duration::from_millis(9_500) && first <= Duration::from_millis(10_500));
        assert!(second >= Duration::from_millis(19_000) && second <= Duration::from_millis(21_000));
        assert_eq!(failures.failures("ns/a"), 2);

        let success = Class::Success {
            interval: Duration::from_secs(300),
        };
        let after = requeue_after(&success, &failures, "ns/a").expect("requeue");
        assert!(after >= Duration::from_secs(285) && after <= Duration::from_secs(315));
        assert_eq!(failures.failures("ns/a"), 0, "success resets the backoff");
        let again = requeue_after(&failure(None), &failures, "ns/a").expect("requeue");
        assert!(
            again <= Duration::from_millis(10_500),
            "backoff starts over"
        );
    }

    #[test]
    fn a_failure_backoff_stays_within_its_limit() {
        let failures = tracker();
        for _ in 0..5 {
            let _ = requeue_after(&failure(None), &failures, "ns/a");
        }
        let limited = requeue_after(&failure(Some(Duration::from_secs(30))), &failures, "ns/a")
            .expect("requeue");
        assert!(limited <= Duration::from_millis(31_500), "{limited:?}");
    }

    #[test]
    fn progressing_and_waiting_keep_the_backoff_and_stalled_waits_for_a_change() {
        let failures = tracker();
        let _ = requeue_after(&failure(None), &failures, "ns/a");
        let after = Duration::from_secs(5);
        assert_eq!(
            requeue_after(&Class::Progressing { after }, &failures, "ns/a"),
            Some(after)
        );
        assert_eq!(
            requeue_after(&Class::Waiting { after }, &failures, "ns/a"),
            Some(after)
        );
        assert_eq!(requeue_after(&Class::Stalled, &failures, "ns/a"), None);
        assert_eq!(failures.failures("ns/a"), 1);
    }

    #[test]
    fn answers_become_controller_actions() {
        let after = Duration::from_secs(7);
        assert_eq!(action(Some(after)), Action::requeue(after));
        assert_eq!(action(None), Action::await_change());
    }

    #[test]
    fn labels_are_the_documented_result_values() {
        let labels: Vec<&str> = [
            Class::Success {
                interval: Duration::ZERO,
            },
            Class::Progressing {
                after: Duration::ZERO,
            },
            Class::Waiting {
                after: Duration::ZERO,
            },
            failure(None),
            Class::Stalled,
        ]
        .iter()
        .map(Class::label)
        .collect();
        assert_eq!(labels, RESULT_LABELS);
    }

    #[test]
    fn metrics_count_by_result() {
        let registry = Registry::new_custom(Some("test".into()), None).expect("registry");
        let metrics =
            ReconcileMetrics::register(&registry, "Thing", vec![0.1, 1.0]).expect("register");
        metrics.observe("success", Duration::from_millis(20));
        metrics.observe("failure", Duration::from_millis(20));
        metrics.observe("failure", Duration::from_millis(20));
        assert_eq!(metrics.count("failure"), 2);
        assert_eq!(metrics.count("stalled"), 0);
        assert_eq!(metrics.total(), 3);
        assert_eq!(
            metrics.reconciles.collect()[0].get_metric().len(),
            2,
            "reading a count creates no series"
        );
        let names: Vec<String> = registry
            .gather()
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        assert!(
            names.contains(&"test_reconcile_total".to_string()),
            "{names:?}"
        );
        assert!(
            names.contains(&"test_reconcile_duration_seconds".to_string()),
            "{names:?}"
        );
    }
}
