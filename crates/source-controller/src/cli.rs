//! Command-line flags of the source-controller.

use std::net::SocketAddr;
use std::path::PathBuf;

use mooring_runtime::flags::CommonArgs;

/// How many artifacts are kept per GitRepository unless `--artifact-retention` says otherwise.
pub const DEFAULT_ARTIFACT_RETENTION: usize = 2;
/// The longest a git operation may take unless `--max-git-timeout` says otherwise.
pub const DEFAULT_MAX_GIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);
/// The largest git object read into memory unless `--max-git-object-size` says otherwise.
pub const DEFAULT_MAX_GIT_OBJECT_SIZE: u64 = 32 * 1024 * 1024;
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

    /// Connections the artifact server serves at once; more are closed unanswered.
    #[arg(long, env = "MOORING_ARTIFACT_MAX_CONNECTIONS", default_value_t = 256)]
    pub artifact_max_connections: usize,

    /// Address the webhook receiver server listens on (`POST /hook/<digest>` of each
    /// Receiver). Like the artifact server it runs on every replica, and only the leader is
    /// ready, so the Service sends calls to the replica that reconciles.
    #[arg(long, env = "MOORING_RECEIVER_ADDR", default_value = "0.0.0.0:9292")]
    pub receiver_addr: SocketAddr,

    /// The largest webhook body accepted, in bytes; larger calls get 413.
    #[arg(long, env = "MOORING_RECEIVER_MAX_BODY_SIZE", default_value_t = crate::receiver::server::DEFAULT_MAX_BODY)]
    pub receiver_max_body_size: usize,

    /// How many artifacts to keep per GitRepository, the current one included.
    #[arg(long, env = "MOORING_ARTIFACT_RETENTION", default_value_t = DEFAULT_ARTIFACT_RETENTION)]
    pub artifact_retention: usize,

    /// The longest one git operation (listing refs, or fetching) may take, whatever a
    /// GitRepository's `spec.timeout` asks: a longer `spec.timeout` is cut to this, so that a
    /// few objects pointed at a server that never answers cannot hold every worker. Go
    /// duration syntax (`90s`, `5m`).
    #[arg(long, env = "MOORING_MAX_GIT_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub max_git_timeout: std::time::Duration,

    /// The largest single file (git object) read into memory, in bytes (0: no limit). A larger
    /// file that the pack stores whole is fetched into a pack on disk and archived as a stream;
    /// one stored as a delta of another fails with a message naming the limit, instead of
    /// growing the controller by the file's size.
    #[arg(long, env = "MOORING_MAX_GIT_OBJECT_SIZE", default_value_t = DEFAULT_MAX_GIT_OBJECT_SIZE)]
    pub max_git_object_size: u64,

    /// The largest artifact to store, in compressed bytes (0: no limit).
    #[arg(long, env = "MOORING_MAX_ARTIFACT_SIZE", default_value_t = DEFAULT_MAX_ARTIFACT_SIZE)]
    pub max_artifact_size: u64,
}

/// A Go-style duration flag (`90s`, `5m`, `1h30m`), at least one second.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let duration = mooring_api::duration::parse_duration(text).map_err(|e| e.to_string())?;
    if duration < std::time::Duration::from_secs(1) {
        return Err(format!("{text} is shorter than 1s"));
    }
    Ok(duration)
}
