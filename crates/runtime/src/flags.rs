//! Flags every controller binary takes.

use std::net::SocketAddr;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

/// Flags shared by both controllers.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// How many objects are reconciled at the same time.
    #[arg(long, env = "MOORING_CONCURRENCY", default_value_t = 4)]
    pub concurrency: u16,

    /// Log format.
    #[arg(long, env = "MOORING_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,

    /// Log level or tracing filter directive (e.g. `info`, `debug`, `mooring=debug,kube=info`).
    #[arg(long, env = "MOORING_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Address of the /healthz, /readyz and /metrics server.
    #[arg(long, env = "MOORING_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,

    /// Elect a leader through a Lease so that only one replica reconciles.
    #[arg(long, env = "MOORING_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,

    /// Namespace of the leader-election Lease (default: the pod's namespace, else `default`).
    #[arg(long, env = "MOORING_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,

    /// Only reconcile objects whose labels match this selector (for sharding).
    #[arg(long, env = "MOORING_WATCH_LABEL_SELECTOR")]
    pub watch_label_selector: Option<String>,

    /// Only watch this namespace (default: all namespaces).
    #[arg(long, env = "MOORING_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
}

impl CommonArgs {
    /// The watch configuration for the reconciled kind: the label selector (sharding) and the
    /// namespace, when given.
    pub fn watch_config(&self) -> kube::runtime::watcher::Config {
        watch_config(
            self.watch_label_selector.as_deref(),
            self.watch_namespace.as_deref(),
        )
    }

    /// The namespace for the leader-election Lease.
    pub fn lease_namespace(&self) -> String {
        self.leader_election_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .or_else(|| {
                std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
                    .ok()
                    .map(|s| s.trim().to_string())
            })
            .unwrap_or_else(|| "default".to_string())
    }
}

/// The watch of a controller's own objects: any resourceVersion from the cache (cheap
/// re-lists), optionally narrowed to a label selector (sharding) and one namespace. In-process
/// controllers (tests, benchmarks) call this too, so they watch as the binary does.
pub fn watch_config(
    label_selector: Option<&str>,
    namespace: Option<&str>,
) -> kube::runtime::watcher::Config {
    let mut config = kube::runtime::watcher::Config::default().any_semantic();
    if let Some(selector) = label_selector {
        config = config.labels(selector);
    }
    if let Some(namespace) = namespace {
        config = config.fields(&format!("metadata.namespace={namespace}"));
    }
    config
}
