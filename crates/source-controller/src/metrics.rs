//! Prometheus metrics of the source-controller.

use mooring_runtime::reconcile::ReconcileMetrics;
use mooring_runtime::runner::QueueMetrics;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// The source-controller's metrics, registered in one registry.
#[derive(Clone)]
pub struct Metrics {
    /// The registry served on /metrics.
    pub registry: Registry,
    /// Reconciles and their duration, by result (`success`, `failure`, `stalled`).
    pub reconcile: ReconcileMetrics,
    /// GitRepositories due and waiting for a worker, and how long they waited.
    pub queue: QueueMetrics,
    /// Duration of git operations by kind (`resolve`, `fetch`).
    pub git_duration: HistogramVec,
    /// Size in bytes of each GitRepository's current artifact.
    pub artifact_size: IntGaugeVec,
    /// Webhook calls answered by the receiver server, by HTTP status code.
    pub receiver_calls: IntCounterVec,
    /// Git operations asked of servers, by `operation`: `ls-refs` (a ref listing), `fetch`.
    pub git_requests: IntCounterVec,
    /// Ref listings taken from another object's listing (same URL, same credentials) instead
    /// of asking the server.
    pub git_listings_shared: prometheus::IntCounter,
    /// Artifacts stored, by `how`: `built` from git objects, or `copied` from another
    /// GitRepository's artifact of the same commit and options.
    pub archives: IntCounterVec,
}

impl Metrics {
    /// Creates and registers the metrics.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("mooring_source".to_string()), None)?;
        let buckets = vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
        let reconcile = ReconcileMetrics::register(&registry, "GitRepository", buckets.clone())?;
        let queue = QueueMetrics::register(&registry, "GitRepository")?;
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
        registry.register(Box::new(git_duration.clone()))?;
        registry.register(Box::new(artifact_size.clone()))?;
        let receiver_calls = IntCounterVec::new(
            Opts::new(
                "receiver_requests_total",
                "Webhook calls answered by the receiver server",
            ),
            &["code"],
        )?;
        registry.register(Box::new(receiver_calls.clone()))?;
        let git_requests = IntCounterVec::new(
            Opts::new(
                "git_requests_total",
                "Git operations asked of git servers, by operation",
            ),
            &["operation"],
        )?;
        registry.register(Box::new(git_requests.clone()))?;
        let git_listings_shared = prometheus::IntCounter::new(
            "git_listings_shared_total",
            "Ref listings taken from another object's listing of the same URL and credentials",
        )?;
        registry.register(Box::new(git_listings_shared.clone()))?;
        let archives = IntCounterVec::new(
            Opts::new(
                "artifacts_stored_total",
                "Artifacts stored, built from git objects or copied from an identical one",
            ),
            &["how"],
        )?;
        registry.register(Box::new(archives.clone()))?;
        // Every known series from the start, at 0: a rate over a series that appears only
        // with its first sample misses that sample, and a scrape shows what can be counted.
        for code in ["200", "202", "401", "404", "405", "413", "503"] {
            receiver_calls.with_label_values(&[code]);
        }
        for operation in ["ls-refs", "fetch"] {
            git_requests.with_label_values(&[operation]);
        }
        for how in ["built", "copied"] {
            archives.with_label_values(&[how]);
        }
        Ok(Self {
            registry,
            reconcile,
            queue,
            git_duration,
            artifact_size,
            receiver_calls,
            git_requests,
            git_listings_shared,
            archives,
        })
    }
}
