//! What every Kustomization reconcile shares, built in one place for the shipped binary and
//! for in-process runs (tests, benchmarks), so both run the same wiring.

use mooring_runtime::status::OwnWrites;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::reflector::{self, ObjectRef, Store};
use mooring_api::Kustomization;
use mooring_runtime::backoff::FailureTracker;
use mooring_runtime::events::{Recorder, Reporter};
use tokio::sync::mpsc;

use crate::artifact::{ArtifactCache, ArtifactError, Limits};
use crate::build::Batcher;
use crate::build::cache::BuildCache;
use crate::controller::Writers;
use crate::metrics::Metrics;
use crate::source::Source;
use crate::state::Memories;
use crate::target::{Cluster, Remotes};
use crate::wakes::Wakes;

/// Settings from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The kustomize binary.
    pub kustomize: PathBuf,
    /// Whether a Kustomization may name a source or a dependency in another namespace.
    pub allow_cross_namespace_refs: bool,
    /// The ServiceAccount impersonated for a Kustomization without `spec.serviceAccountName`;
    /// None: the controller's own identity.
    pub default_service_account: Option<String>,
    /// Whether kustomize may fetch remote bases.
    pub allow_remote_bases: bool,
    /// Whether a `${var}` without a value or default fails the build (Flux's
    /// `StrictPostBuildSubstitutions`), instead of becoming an empty string.
    pub strict_substitution: bool,
    /// Requests in flight at once per apply stage.
    pub apply_concurrency: usize,
    /// How long to wait for a source that has no artifact yet before looking again.
    pub requeue_dependency: Duration,
    /// The most objects one render may hold; 0: no limit.
    pub max_render_objects: usize,
}

/// The least time between two evictions of unused extracted artifacts asked for by renders.
pub const ARTIFACT_EVICTION_SPACING: Duration = Duration::from_secs(10);

/// Shared state of the reconciler.
pub struct Context {
    /// The controller's own client (watches, status, discovery).
    pub client: kube::Client,
    /// This cluster: clients per identity, discovery and the live view of managed objects.
    pub local: Arc<Cluster>,
    /// The remote clusters that `spec.kubeConfig` names.
    pub remotes: Remotes,
    /// Downloaded and extracted artifacts, shared by digest.
    pub artifacts: Arc<ArtifactCache>,
    /// Evictions of unused extracted artifacts asked for by renders
    /// ([`crate::steps::render`]): at most one per [`ARTIFACT_EVICTION_SPACING`].
    pub artifact_evictions: Arc<mooring_runtime::spaced::Spaced>,
    /// Command-line settings.
    pub settings: Settings,
    /// Publishes Kubernetes Events.
    pub recorder: Recorder,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Consecutive failures per object, for backoff.
    pub failures: FailureTracker,
    /// Our status writes that the watch cache may not show yet.
    pub writes: OwnWrites,
    /// Every Kustomization, as seen by the controller's watch.
    pub kustomizations: Store<Kustomization>,
    /// Every GitRepository (the sources), as much of each as [`Source`] keeps.
    pub sources: Store<Source>,
    /// What each Kustomization last rendered and wrote.
    pub memories: Arc<Memories>,
    /// Wake-ups of Kustomizations, less the echoes of their own writes.
    pub wakes: Arc<Wakes>,
    /// kustomize outputs shared by build input.
    pub builds: BuildCache,
    /// Runs plain builds that come close together in one kustomize process.
    pub batcher: Arc<Batcher>,
    /// Builds ahead of their passes at once (`steps::render::build_ahead`).
    pub ahead: tokio::sync::Semaphore,
    /// The builds started ahead of their passes and not ended.
    pub ahead_keys: std::sync::Mutex<std::collections::HashSet<crate::build::cache::BuildKey>>,
}

/// The bytes of kustomize output kept for sharing (a 4-object app renders about 1 KiB).
pub const BUILD_CACHE_BYTES: usize = 16 << 20;

/// The first retry of a failing Kustomization, doubled per failure up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// The longest backoff (a Kustomization's own `retryInterval` caps it when shorter).
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The context and the channels that feed the controller loop.
pub struct Parts {
    /// The context.
    pub context: Context,
    /// The writers of the context's stores.
    pub writers: Writers,
    /// Wake-ups from [`Context::wakes`]: a Kustomization whose objects changed, or one whose
    /// change was held while its pass ran.
    pub wakeups: mpsc::UnboundedReceiver<ObjectRef<Kustomization>>,
}

impl Settings {
    /// The ServiceAccount a Kustomization acts as: its `spec.serviceAccountName`, else the
    /// controller's default one; None means the controller's own identity.
    pub fn service_account<'a>(&'a self, ks: &'a Kustomization) -> Option<&'a str> {
        ks.spec
            .service_account_name
            .as_deref()
            .filter(|sa| !sa.is_empty())
            .or(self.default_service_account.as_deref())
    }
}

impl Context {
    /// Builds the context: `config` is the one `client` was made from (impersonating clients
    /// derive from it), `cache_dir` holds extracted artifacts.
    pub fn build(
        config: kube::Config,
        client: kube::Client,
        settings: Settings,
        cache_dir: PathBuf,
        limits: Limits,
        metrics: Metrics,
    ) -> Result<Parts, ArtifactError> {
        let (kustomizations, ks_writer) = reflector::store();
        let (sources, src_writer) = reflector::store();
        let (wake_tx, wakeups) = mpsc::unbounded_channel();
        let memories = Arc::new(Memories::default());
        let wakes = Arc::new(Wakes::new(wake_tx, memories.clone()));
        let batcher = Arc::new(Batcher::new(
            crate::build::LINGER,
            crate::steps::render::AHEAD,
            metrics.kustomize_processes.clone(),
        ));
        let context = Context {
            client: client.clone(),
            local: Arc::new(Cluster::local(config, client.clone(), wakes.clone())),
            remotes: Remotes::new(wakes.clone()),
            artifacts: Arc::new(ArtifactCache::new(cache_dir, limits)?),
            artifact_evictions: mooring_runtime::spaced::Spaced::new(ARTIFACT_EVICTION_SPACING),
            settings,
            recorder: Recorder::new(
                client.clone(),
                Reporter::from("mooring-kustomize-controller"),
            ),
            metrics,
            failures: FailureTracker::new(MIN_BACKOFF, MAX_BACKOFF),
            writes: OwnWrites::default(),
            kustomizations,
            sources,
            memories,
            wakes,
            builds: BuildCache::new(BUILD_CACHE_BYTES),
            batcher,
            ahead: tokio::sync::Semaphore::new(crate::steps::render::AHEAD),
            ahead_keys: Default::default(),
        };
        Ok(Parts {
            context,
            writers: Writers {
                kustomizations: ks_writer,
                sources: src_writer,
            },
            wakeups,
        })
    }
}
