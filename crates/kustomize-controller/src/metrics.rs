//! Prometheus metrics of the kustomize-controller.

use mooring_runtime::reconcile::ReconcileMetrics;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};

/// The kustomize-controller's metrics, registered in one registry.
#[derive(Clone)]
pub struct Metrics {
    /// The registry served on /metrics.
    pub registry: Registry,
    /// Reconciles and their duration, by result.
    pub reconcile: ReconcileMetrics,
    /// Objects handled by apply and prune, by action (created, configured, deleted, ...).
    pub objects: IntCounterVec,
    /// Objects re-applied because someone else changed or deleted them.
    pub drift_corrections: IntCounter,
    /// kustomize builds run (a build shared or kept is not counted again).
    pub builds: IntCounter,
    /// kustomize processes started: one per build, or one for several plain builds run
    /// together (`build::Batcher`).
    pub kustomize_processes: IntCounter,
    /// From a revision's commit time to its render being applied, per new render. No
    /// per-object labels, like the other metrics: the history entry holds the per-object
    /// record.
    pub commit_to_applied: Histogram,
}

impl Metrics {
    /// Creates and registers the metrics.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("mooring_kustomize".to_string()), None)?;
        let reconcile = ReconcileMetrics::register(
            &registry,
            "Kustomization",
            vec![
                0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ],
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
        registry.register(Box::new(objects.clone()))?;
        let builds = IntCounter::new(
            "builds_total",
            "kustomize builds run; renders shared by key or kept from an earlier pass are not counted",
        )?;
        let kustomize_processes = IntCounter::new(
            "processes_total",
            "kustomize processes started; plain builds that come together share one",
        )?;
        registry.register(Box::new(drift_corrections.clone()))?;
        registry.register(Box::new(builds.clone()))?;
        registry.register(Box::new(kustomize_processes.clone()))?;
        let commit_to_applied = Histogram::with_opts(
            HistogramOpts::new(
                "commit_to_applied_seconds",
                "From a revision's commit time to its render applied",
            )
            .buckets(vec![
                0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
            ]),
        )?;
        registry.register(Box::new(commit_to_applied.clone()))?;
        Ok(Self {
            registry,
            reconcile,
            objects,
            drift_corrections,
            builds,
            kustomize_processes,
            commit_to_applied,
        })
    }
}
