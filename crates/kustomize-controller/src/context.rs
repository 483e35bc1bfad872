//! What every Kustomization reconcile shares.

use std::path::PathBuf;
use std::time::Duration;

use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;
use mooring_api::{GitRepository, Kustomization};
use mooring_runtime::backoff::FailureTracker;

use crate::apply::KindCache;
use crate::artifact::ArtifactCache;
use crate::client_cache::ClientCache;
use crate::drift::DriftWatcher;
use crate::metrics::Metrics;
use crate::state::AppliedStates;

/// Settings from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The kustomize binary.
    pub kustomize: PathBuf,
    /// Whether a Kustomization may use a source in another namespace.
    pub allow_cross_namespace_refs: bool,
    /// Whether kustomize may fetch remote bases.
    pub allow_remote_bases: bool,
    /// Whether a `${var}` without a value or default fails the build (Flux's
    /// `StrictPostBuildSubstitutions`), instead of becoming an empty string.
    pub strict_substitution: bool,
    /// Requests in flight at once per apply stage.
    pub apply_concurrency: usize,
    /// How long to wait for a source that has no artifact yet before looking again.
    pub requeue_dependency: Duration,
}

/// Shared state of the reconciler.
pub struct Context {
    /// The controller's own client (watches, status, Secrets for substitution).
    pub client: kube::Client,
    /// Clients per impersonated ServiceAccount.
    pub clients: ClientCache,
    /// Downloaded and extracted artifacts, shared by digest.
    pub artifacts: ArtifactCache,
    /// Command-line settings.
    pub settings: Settings,
    /// Publishes Kubernetes Events.
    pub recorder: Recorder,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Consecutive failures per object, for backoff.
    pub failures: FailureTracker,
    /// Every Kustomization, as seen by the controller's watch.
    pub kustomizations: Store<Kustomization>,
    /// Every GitRepository (the sources).
    pub sources: Store<GitRepository>,
    /// Watches of managed objects.
    pub drift: DriftWatcher,
    /// What each Kustomization last rendered and applied.
    pub applied: AppliedStates,
    /// Discovery, shared by every apply.
    pub kinds: KindCache,
}
