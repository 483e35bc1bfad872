//! What every GitRepository reconcile shares.

use mooring_runtime::status::OwnWrites;
use std::path::PathBuf;
use std::time::Duration;

use kube::runtime::reflector::{self, Store, store::Writer};
use mooring_api::{GitRepository, Receiver};
use mooring_runtime::backoff::FailureTracker;
use mooring_runtime::events::{Recorder, Reporter};

use crate::cli::{
    Args, DEFAULT_ARTIFACT_RETENTION, DEFAULT_MAX_ARTIFACT_SIZE, DEFAULT_MAX_GIT_OBJECT_SIZE,
    DEFAULT_MAX_GIT_TIMEOUT,
};
use crate::metrics::Metrics;
use crate::receiver::{Hooks, Refresh};
use crate::storage::Storage;

/// The first retry after a failure; each further failure doubles it.
pub const BACKOFF_BASE: Duration = Duration::from_secs(2);
/// The longest a failing GitRepository waits between retries.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// The reporting component of the controller's Events.
const REPORTER: &str = "mooring-source-controller";

/// Settings from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where git caches (one bare repository per URL) live; never served.
    pub git_cache: PathBuf,
    /// The base URL artifacts are advertised under, e.g. `http://mooring-source.ns.svc.`.
    pub advertised_base: String,
    /// How many artifacts to keep per GitRepository, the current one included.
    pub retention: usize,
    /// The largest artifact accepted, in compressed bytes.
    pub max_artifact_size: Option<u64>,
    /// The longest one git operation may take, whatever `spec.timeout` says.
    pub max_git_timeout: Duration,
    /// The largest git object read into memory.
    pub max_git_object_size: Option<u64>,
}

impl Settings {
    /// The settings of a run that sets no flag but these two (in-process runs).
    pub fn with_defaults(git_cache: PathBuf, advertised_base: String) -> Self {
        Self {
            git_cache,
            advertised_base,
            retention: DEFAULT_ARTIFACT_RETENTION,
            max_artifact_size: Some(DEFAULT_MAX_ARTIFACT_SIZE),
            max_git_timeout: DEFAULT_MAX_GIT_TIMEOUT,
            max_git_object_size: Some(DEFAULT_MAX_GIT_OBJECT_SIZE),
        }
    }

    /// The settings the command line asks for.
    pub fn from_args(args: &Args) -> Self {
        Self {
            git_cache: args.git_cache_path.clone(),
            advertised_base: args.storage_adv_addr.clone(),
            retention: args.artifact_retention.max(1),
            max_artifact_size: (args.max_artifact_size > 0).then_some(args.max_artifact_size),
            max_git_timeout: args.max_git_timeout,
            max_git_object_size: (args.max_git_object_size > 0).then_some(args.max_git_object_size),
        }
    }
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
    /// Our status writes that the watch cache may not show yet.
    pub writes: OwnWrites,
    /// Every GitRepository, as seen by the controller's watch.
    pub repositories: Store<GitRepository>,
    /// Every Receiver, as seen by the controller's watch.
    pub receivers: Store<Receiver>,
    /// The webhook paths served.
    pub hooks: Hooks,
    /// Queues GitRepository reconciles from inside the process (webhook calls).
    pub refresh: Refresh,
    /// Ref listings shared by GitRepositories with the same URL and credentials.
    pub listings: std::sync::Arc<crate::git::RefListings>,
    /// The HTTP clients of ref listings made on the controller's runtime (their kept
    /// connections belong to it).
    pub listing_clients: std::sync::Arc<crate::git::AsyncClients>,
    /// Evictions of unused git caches asked for by builds ([`crate::steps::evict_git_caches_soon`]).
    pub evictions: std::sync::Arc<mooring_runtime::spaced::Spaced>,
    /// Artifacts shared by GitRepositories that pack the same commit the same way.
    pub archives: crate::archive::shared::SharedArchives,
}

/// What feeds the context's stores and queue; [`crate::controller::run`] takes it.
pub struct Feeds {
    /// Feeds [`Context::repositories`].
    pub repositories: Writer<GitRepository>,
    /// Feeds [`Context::receivers`].
    pub receivers: Writer<Receiver>,
    /// What [`Context::refresh`] queues.
    pub refresh: tokio_stream::wrappers::UnboundedReceiverStream<
        kube::runtime::reflector::ObjectRef<GitRepository>,
    >,
}

impl Context {
    /// The context of one controller run, the shipped binary's and an in-process one's alike:
    /// only the client, the storage directory and the settings come from the caller. The
    /// [`Feeds`] go to [`crate::controller::run`].
    pub fn new(
        client: kube::Client,
        storage: PathBuf,
        settings: Settings,
    ) -> Result<(Self, Feeds), prometheus::Error> {
        let (repositories, writer) = reflector::store();
        let (receivers, receivers_writer) = reflector::store();
        let (refresh, queued) = Refresh::channel();
        let metrics = Metrics::new()?;
        let listings = std::sync::Arc::new(crate::git::RefListings::counted(
            metrics.git_requests.with_label_values(&["ls-refs"]),
            metrics.git_listings_shared.clone(),
        ));
        let context = Self {
            recorder: Recorder::new(client.clone(), Reporter::from(REPORTER)),
            client,
            storage: Storage::new(storage),
            settings,
            metrics,
            failures: FailureTracker::new(BACKOFF_BASE, BACKOFF_MAX),
            writes: OwnWrites::default(),
            repositories,
            receivers,
            hooks: Hooks::default(),
            refresh,
            listings,
            listing_clients: Default::default(),
            evictions: mooring_runtime::spaced::Spaced::new(crate::steps::EVICTION_SPACING),
            archives: Default::default(),
        };
        let feeds = Feeds {
            repositories: writer,
            receivers: receivers_writer,
            refresh: queued,
        };
        Ok((context, feeds))
    }
}

impl Context {
    /// What the receiver server reads, accepting bodies up to `max_body` bytes.
    pub fn receiver_server(&self, max_body: usize) -> crate::receiver::server::Receivers {
        crate::receiver::server::Receivers {
            hooks: self.hooks.clone(),
            receivers: self.receivers.clone(),
            repositories: self.repositories.clone(),
            refresh: self.refresh.clone(),
            listings: self.listings.clone(),
            max_body,
            calls: self.metrics.receiver_calls.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn in_process_defaults_are_the_binarys() {
        let args = Args::try_parse_from([
            "mooring-source-controller",
            "--git-cache-path",
            "/cache",
            "--storage-adv-addr",
            "http://127.0.0.1:9090",
        ])
        .expect("args");
        assert_eq!(
            Settings::from_args(&args),
            Settings::with_defaults("/cache".into(), "http://127.0.0.1:9090".into())
        );
    }
}
