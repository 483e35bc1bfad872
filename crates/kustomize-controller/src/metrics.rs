//! Prometheus metrics of the kustomize-controller.

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

/// The kustomize-controller's metrics, registered in one registry.
#[derive(Clone)]
pub struct Metrics {
    /// The registry served on /metrics.
    pub registry: Registry,
    /// Reconcile duration by result.
    pub reconcile_duration: HistogramVec,
    /// Reconciles by result.
    pub reconciles: IntCounterVec,
    /// Objects handled by apply and prune, by action (created, configured, deleted, ...).
    pub objects: IntCounterVec,
    /// Objects re-applied because someone else changed or deleted them.
    pub drift_corrections: IntCounter,
}

impl Metrics {
    /// Creates and registers the metrics.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("mooring_kustomize".to_string()), None)?;
        let reconcile_duration = HistogramVec::new(
            HistogramOpts::new(
                "reconcile_duration_seconds",
                "Kustomization reconcile duration",
            )
            .buckets(vec![
                0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
            &["result"],
        )?;
        let reconciles = IntCounterVec::new(
            Opts::new("reconcile_total", "Kustomization reconciles"),
            &["result"],
        )?;
        let objects = IntCounterVec::new(
            Opts::new(
                "objects_total",
                "Objects handled by apply and prune, by action",
            ),
            &["action"],
        )?;
        let drift_corrections = IntCounter::new(
            "drift_corrections_total",
            "Objects restored after a change by someone else",
        )?;
        registry.register(Box::new(reconcile_duration.clone()))?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(objects.clone()))?;
        registry.register(Box::new(drift_corrections.clone()))?;
        Ok(Self {
            registry,
            reconcile_duration,
            reconciles,
            objects,
            drift_corrections,
        })
    }
}
