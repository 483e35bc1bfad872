//! Prometheus metrics of the kustomize-controller.

use std::future::Future;
use std::time::Instant;

use mooring_runtime::reconcile::ReconcileMetrics;
use mooring_runtime::runner::QueueMetrics;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
};

/// The steps of a pass, as `mooring_kustomize_pass_step_seconds` labels them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Adding the finalizer to a Kustomization's first pass that gets past the gate.
    Finalizer,
    /// The clients of the target cluster and identity (a remote kubeconfig, impersonation).
    Target,
    /// Artifact, build, decryption and substitution, or the render kept from the last pass.
    Render,
    /// Reading the inventory of the last pass and deciding what to write.
    Plan,
    /// Recording in status the inventory widened by the objects about to be created.
    Inventory,
    /// Dry runs, applies and the waits for new CRDs and Namespaces.
    Apply,
    /// Deleting what the render no longer holds.
    Prune,
    /// The Event naming what the pass changed.
    Events,
    /// Health checks.
    Health,
    /// The end of the pass: the status write and the outcome's Event when it has them; observed
    /// for every pass that gets there, one that writes nothing included.
    Status,
}

impl Step {
    /// Every step, in the order a pass takes them.
    pub const ALL: [Step; 10] = [
        Step::Finalizer,
        Step::Target,
        Step::Render,
        Step::Plan,
        Step::Inventory,
        Step::Apply,
        Step::Prune,
        Step::Events,
        Step::Health,
        Step::Status,
    ];

    /// The metric's `step` label.
    pub const fn label(self) -> &'static str {
        match self {
            Step::Finalizer => "finalizer",
            Step::Target => "target",
            Step::Render => "render",
            Step::Plan => "plan",
            Step::Inventory => "inventory",
            Step::Apply => "apply",
            Step::Prune => "prune",
            Step::Events => "events",
            Step::Health => "health",
            Step::Status => "status",
        }
    }
}

/// The kustomize-controller's metrics, registered in one registry.
#[derive(Clone)]
pub struct Metrics {
    /// The registry served on /metrics.
    pub registry: Registry,
    /// Reconciles and their duration, by result.
    pub reconcile: ReconcileMetrics,
    /// Kustomizations due and waiting for a worker, and how long they waited.
    pub queue: QueueMetrics,
    /// How long each step of a pass took, by `step` ([`Step::label`]).
    pub steps: HistogramVec,
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
        let queue = QueueMetrics::register(&registry, "Kustomization")?;
        let steps = HistogramVec::new(
            HistogramOpts::new(
                "pass_step_seconds",
                "How long each step of a Kustomization pass took",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                60.0,
            ]),
            &["step"],
        )?;
        registry.register(Box::new(steps.clone()))?;
        for step in Step::ALL {
            steps.with_label_values(&[step.label()]);
        }
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
            queue,
            steps,
            objects,
            drift_corrections,
            builds,
            kustomize_processes,
            commit_to_applied,
        })
    }

    /// Runs `work` and records how long it took as `step`, whatever its result.
    pub async fn timed<F: Future>(&self, step: Step, work: F) -> F::Output {
        let started = Instant::now();
        let output = work.await;
        self.steps
            .with_label_values(&[step.label()])
            .observe(started.elapsed().as_secs_f64());
        output
    }
}
