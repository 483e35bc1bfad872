//! Command-line flags of the source-controller.

use std::net::SocketAddr;
use std::path::PathBuf;

use mooring_runtime::flags::CommonArgs;

/// How many artifacts are kept per GitRepository unless `--artifact-retention` says otherwise.
pub const DEFAULT_ARTIFACT_RETENTION: usize = 2;
/// The largest artifact stored unless `--max-artifact-size` says otherwise, in compressed bytes.
pub const DEFAULT_MAX_ARTIFACT_SIZE: u64 = 512 * 1024 * 1024;

/// The GitRepository controller: fetches git repositories and serves their revisions as
/// artifacts.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "mooring-source-controller", version)]
pub struct Args {
    /// Flags shared by both controllers.
    #[command(flatten)]
    pub common: CommonArgs,

    /// Directory where artifacts are stored and served from.
    #[arg(long, env = "MOORING_STORAGE_PATH", default_value = "/data")]
    pub storage_path: PathBuf,

    /// Directory for the per-repository git caches (never served).
    #[arg(long, env = "MOORING_GIT_CACHE_PATH", default_value = "/cache")]
    pub git_cache_path: PathBuf,

    /// Base URL written into status.artifact.url, e.g. the in-cluster Service
    /// `http://mooring-source-controller.mooring-system.svc.cluster.local.`; use
    /// `http://127.0.0.1:9090` for a local run.
    #[arg(
        long,
        env = "MOORING_STORAGE_ADV_ADDR",
        default_value = "http://mooring-source-controller.mooring-system.svc.cluster.local."
    )]
    pub storage_adv_addr: String,

    /// Address the artifact HTTP server listens on.
    #[arg(long, env = "MOORING_ARTIFACT_ADDR", default_value = "0.0.0.0:9090")]
    pub artifact_addr: SocketAddr,

    /// How many artifacts to keep per GitRepository, the current one included.
    #[arg(long, env = "MOORING_ARTIFACT_RETENTION", default_value_t = DEFAULT_ARTIFACT_RETENTION)]
    pub artifact_retention: usize,

    /// The largest artifact to store, in compressed bytes (0: no limit).
    #[arg(long, env = "MOORING_MAX_ARTIFACT_SIZE", default_value_t = DEFAULT_MAX_ARTIFACT_SIZE)]
    pub max_artifact_size: u64,
}
