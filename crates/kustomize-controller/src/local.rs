//! The controller in the calling process, for tests, benchmarks and tooling. Production uses
//! [`crate::run`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{reflector, watcher};
use mooring_runtime::backoff::FailureTracker;
use tokio::sync::{mpsc, watch};

use crate::apply::KindCache;
use crate::artifact::{ArtifactCache, ArtifactError, Limits};
use crate::client_cache::ClientCache;
use crate::context::{Context, Settings};
use crate::controller::{self, Writers};
use crate::drift::DriftWatcher;
use crate::metrics::Metrics;
use crate::state::AppliedStates;

/// Where and how to run.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Artifact cache directory.
    pub artifact_cache: PathBuf,
    /// The kustomize binary.
    pub kustomize: PathBuf,
    /// Only watch Kustomizations in this namespace.
    pub namespace: Option<String>,
    /// Reconciles at once.
    pub concurrency: u16,
    /// How long to wait before looking again at a missing source or dependency.
    pub requeue_dependency: Duration,
    /// Fail on substitution variables without value or default.
    pub strict_substitution: bool,
}

/// Why an in-process controller could not start.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// Metrics registration failed.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The artifact cache directory is unusable.
    #[error("artifact cache: {0}")]
    Cache(#[from] ArtifactError),
}

/// A running in-process kustomize-controller.
pub struct LocalController {
    /// The shared context (metrics, state).
    pub context: Arc<Context>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl LocalController {
    /// Stops the controller and waits for in-flight reconciles.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Starts the controller with `client`, built from `config` (impersonation derives from it).
pub fn start(
    config: kube::Config,
    client: kube::Client,
    options: LocalOptions,
) -> Result<LocalController, LocalError> {
    let (kustomizations, ks_writer) = reflector::store();
    let (sources, src_writer) = reflector::store();
    let (wake_tx, wake_rx) = mpsc::unbounded_channel();
    let (resync_tx, resync_rx) = mpsc::unbounded_channel();
    let context = Arc::new(Context {
        client: client.clone(),
        clients: ClientCache::new(config),
        artifacts: ArtifactCache::new(options.artifact_cache, Limits::default())?,
        settings: Settings {
            kustomize: options.kustomize,
            allow_cross_namespace_refs: true,
            allow_remote_bases: false,
            strict_substitution: options.strict_substitution,
            apply_concurrency: 8,
            requeue_dependency: options.requeue_dependency,
        },
        recorder: Recorder::new(
            client.clone(),
            Reporter::from("mooring-kustomize-controller"),
        ),
        metrics: Metrics::new()?,
        failures: FailureTracker::new(Duration::from_millis(500), Duration::from_secs(30)),
        kustomizations,
        sources,
        drift: DriftWatcher::new(client, wake_tx, resync_tx),
        applied: AppliedStates::default(),
        kinds: KindCache::new(),
    });
    let config = match &options.namespace {
        Some(ns) => watcher::Config::default().fields(&format!("metadata.namespace={ns}")),
        None => watcher::Config::default(),
    };
    let (stop, mut stop_rx) = watch::channel(false);
    let shutdown = async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    };
    let writers = Writers {
        kustomizations: ks_writer,
        sources: src_writer,
    };
    let task = tokio::spawn(controller::run(
        context.clone(),
        writers,
        wake_rx,
        resync_rx,
        config,
        options.concurrency,
        shutdown,
    ));
    Ok(LocalController {
        context,
        stop,
        task,
    })
}
