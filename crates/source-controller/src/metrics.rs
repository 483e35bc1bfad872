//! Prometheus metrics of the source-controller.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// The source-controller's metrics, registered in one registry.
#[derive(Clone)]
pub struct Metrics {
    /// The registry served on /metrics.
    pub registry: Registry,
    /// Reconcile duration by result (`success`, `failure`, `stalled`).
    pub reconcile_duration: HistogramVec,
    /// Reconciles by result.
    pub reconciles: IntCounterVec,
    /// Duration of git operations by kind (`resolve`, `fetch`).
    pub git_duration: HistogramVec,
    /// Size in bytes of each GitRepository's current artifact.
    pub artifact_size: IntGaugeVec,
}

impl Metrics {
    /// Creates and registers the metrics.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("mooring_source".to_string()), None)?;
        let buckets = vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
        let reconcile_duration = HistogramVec::new(
            HistogramOpts::new(
                "reconcile_duration_seconds",
                "GitRepository reconcile duration",
            )
            .buckets(buckets.clone()),
            &["result"],
        )?;
        let reconciles = IntCounterVec::new(
            Opts::new("reconcile_total", "GitRepository reconciles"),
            &["result"],
        )?;
        let git_duration = HistogramVec::new(
            HistogramOpts::new(
                "git_operation_duration_seconds",
                "Duration of git operations",
            )
            .buckets(buckets),
            &["operation"],
        )?;
        let artifact_size = IntGaugeVec::new(
            Opts::new("artifact_size_bytes", "Size of the current artifact"),
            &["namespace", "name"],
        )?;
        registry.register(Box::new(reconcile_duration.clone()))?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(git_duration.clone()))?;
        registry.register(Box::new(artifact_size.clone()))?;
        Ok(Self {
            registry,
            reconcile_duration,
            reconciles,
            git_duration,
            artifact_size,
        })
    }
}
