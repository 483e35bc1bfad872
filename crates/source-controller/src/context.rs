//! What every GitRepository reconcile shares.

use std::path::PathBuf;

use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;
use mooring_api::GitRepository;
use mooring_runtime::backoff::FailureTracker;

use crate::metrics::Metrics;
use crate::storage::Storage;

/// Settings from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where git caches (one bare repository per URL) live; never served.
    pub git_cache: PathBuf,
    /// The base URL artifacts are advertised under, e.g. `http://mooring-source.ns.svc.`.
    pub advertised_base: String,
    /// How many artifacts to keep per GitRepository, the current one included.
    pub retention: usize,
    /// The largest artifact accepted, in compressed bytes.
    pub max_artifact_size: Option<u64>,
}

/// Shared state of the reconciler.
pub struct Context {
    /// The API client.
    pub client: kube::Client,
    /// Artifact storage.
    pub storage: Storage,
    /// Command-line settings.
    pub settings: Settings,
    /// Publishes Kubernetes Events.
    pub recorder: Recorder,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Consecutive failures per object, for backoff.
    pub failures: FailureTracker,
    /// Every GitRepository, as seen by the controller's watch.
    pub repositories: Store<GitRepository>,
}
