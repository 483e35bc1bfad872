//! Command-line flags of the benchmark harness.

use std::path::PathBuf;

/// The source-controller command used unless `--source-cmd` is given. Placeholders are filled in
/// by the harness (see `--source-cmd`).
pub const DEFAULT_SOURCE_CMD: &str = "{bin} --leader-elect=false --log-format=json \
--storage-path={work}/storage --git-cache-path={work}/git-cache \
--storage-adv-addr=http://127.0.0.1:{artifact_port} --artifact-addr=127.0.0.1:{artifact_port} \
--receiver-addr=127.0.0.1:{extra_port} --metrics-addr=127.0.0.1:{ops_port}";

/// The kustomize-controller command used unless `--kustomize-cmd` is given.
pub const DEFAULT_KUSTOMIZE_CMD: &str = "{bin} --leader-elect=false --log-format=json \
--artifact-cache-path={work}/artifacts --kustomize-path={kustomize} \
--metrics-addr=127.0.0.1:{ops_port}";

/// Measures Mooring (or another implementation of the Flux-shaped GitRepository and
/// Kustomization APIs) on a real kube-apiserver and a real git server on this machine: cold start
/// at scale, memory and CPU, steady-state API traffic, commit-to-applied latency, drift
/// correction, and (with --large) a large repository.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "mooring-bench", version)]
pub struct Args {
    /// P1: number of repositories, GitRepositories and Kustomizations (4 objects each).
    #[arg(long, default_value_t = 100)]
    pub n: usize,

    /// P1: spec.interval of the Kustomizations (short, so that several intervals fall into the
    /// steady-state window).
    #[arg(long, default_value = "10s")]
    pub interval: String,

    /// P1: spec.interval of the GitRepositories.
    #[arg(long, default_value = "1m")]
    pub source_interval: String,

    /// P1: how long to wait for all Kustomizations to become Ready, in seconds (0: 600 + 2 s per
    /// Kustomization).
    #[arg(long, default_value_t = 0)]
    pub p1_timeout: u64,

    /// P1 on a cluster where workloads run (kube-controller-manager with its default
    /// controllers, kube-scheduler, kwok's simulated Nodes): each app is a Deployment, its
    /// Service, a ConfigMap and a ServiceAccount, and with `wait: true` "Ready" includes the
    /// Deployment's rollout through real ReplicaSets and (simulated) Pods.
    #[arg(long)]
    pub workloads: bool,

    /// P1/P3: every GitRepository points at one repository, a monorepo holding each app under
    /// `app-<i>/deploy` (one team repository, one GitRepository and Kustomization per app), so
    /// that P3 shows how GitRepositories with one URL share ref listings and fetches.
    #[arg(long)]
    pub one_url: bool,

    /// P4: how a push is announced: `annotation` (a reconcile request on the GitRepository,
    /// what `flux reconcile` does) or `webhook` (a GitHub push event, HMAC-signed, posted to a
    /// Receiver at {extra_port} of the source-controller command).
    #[arg(long, default_value = "annotation", value_parser = ["annotation", "webhook"])]
    pub push_via: String,

    /// P3: seconds with nothing changing between the two readings of apiserver_request_total.
    #[arg(long, default_value_t = 60)]
    pub steady_window: u64,

    /// P3: seconds to let the controllers settle after P1 before the window starts.
    #[arg(long, default_value_t = 15)]
    pub steady_settle: u64,

    /// P4: number of commits to time.
    #[arg(long, default_value_t = 10)]
    pub commits: usize,

    /// P4: objects in the app that P4 commits to (ConfigMaps, Services, ServiceAccounts and Roles
    /// in equal parts).
    #[arg(long, default_value_t = 100)]
    pub app_objects: usize,

    /// P5: number of drift corrections to time.
    #[arg(long, default_value_t = 5)]
    pub drift_trials: usize,

    /// P4/P5: seconds to wait for one commit or one correction.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,

    /// Run P6, the large repository (slow: it generates about 1 GiB of git data).
    #[arg(long)]
    pub large: bool,

    /// P6: files in the generated repository.
    #[arg(long, default_value_t = 100_000)]
    pub large_files: usize,

    /// P6: total bytes of file content in the generated repository.
    #[arg(long, default_value_t = 1 << 30)]
    pub large_bytes: u64,

    /// P6: seconds to wait for the artifact of the large repository.
    #[arg(long, default_value_t = 1800)]
    pub large_timeout: u64,

    /// Scenarios to run, out of p1 (with p2), p3, p4, p5, p6; p3 needs p1. Default: all but p6,
    /// plus p6 with --large.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,

    /// API group of GitRepository.
    #[arg(long, default_value = "source.mooring.dev")]
    pub source_group: String,

    /// API group of Kustomization.
    #[arg(long, default_value = "kustomize.mooring.dev")]
    pub kustomize_group: String,

    /// API version of both kinds.
    #[arg(long, default_value = "v1")]
    pub api_version: String,

    /// Domain of the reconcile-request annotation: `reconcile.<prefix>/requestedAt`.
    #[arg(long, default_value = "mooring.dev")]
    pub label_prefix: String,

    /// Directory (or file) of CRDs to install, for another implementation's API groups.
    /// Default: the workspace's crds/.
    #[arg(long)]
    pub crds: Option<PathBuf>,

    /// The source-controller binary for the default command (default: next to this binary).
    #[arg(long)]
    pub source_controller: Option<PathBuf>,

    /// The kustomize-controller binary for the default command (default: next to this binary).
    #[arg(long)]
    pub kustomize_controller: Option<PathBuf>,

    /// The source-controller command, run by `sh -c "exec <cmd>"` with KUBECONFIG set.
    /// Placeholders: {bin}, {work} (a scratch directory of its own), {artifact_port} (where it
    /// serves artifacts; the same in both commands), {ops_port} (probed at --ready-path),
    /// {extra_port} (another free port; the default command serves webhook receivers there),
    /// {kubeconfig}, {kustomize} (the kustomize binary).
    #[arg(long, default_value = DEFAULT_SOURCE_CMD)]
    pub source_cmd: String,

    /// The kustomize-controller command; placeholders as for --source-cmd.
    #[arg(long, default_value = DEFAULT_KUSTOMIZE_CMD)]
    pub kustomize_cmd: String,

    /// HTTP path probed on {ops_port} until the controller answers 200 ("" to skip).
    #[arg(long, default_value = "/readyz")]
    pub ready_path: String,

    /// Directory for the JSON results (default: bench/results in the workspace).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,

    /// Keep the scratch directory (controller logs, storage) instead of removing it.
    #[arg(long)]
    pub keep: bool,

    /// P1: also write each app's times (seconds from the first create until its artifact and
    /// until its Kustomization was Ready) to this CSV file, to see how the spread builds up.
    #[arg(long)]
    pub timeline: Option<PathBuf>,
}

impl Args {
    /// Whether scenario `name` (p1..p6) is to run.
    pub fn runs(&self, name: &str) -> bool {
        if self.only.is_empty() {
            return name != "p6" || self.large;
        }
        self.only.iter().any(|s| s.eq_ignore_ascii_case(name))
    }

    /// The annotation that asks for a reconcile now.
    pub fn requested_at_annotation(&self) -> String {
        format!("reconcile.{}/requestedAt", self.label_prefix)
    }

    /// How long P1 may take.
    pub fn p1_timeout_secs(&self) -> u64 {
        if self.p1_timeout > 0 {
            self.p1_timeout
        } else {
            600 + 2 * self.n as u64
        }
    }
}
