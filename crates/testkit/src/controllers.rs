//! The two controller binaries run as child processes, for `make run` and the end-to-end tests.
//!
//! They are found next to the running executable (`target/debug/`), so build them first
//! (`cargo build --bins`); `MOORING_BIN_DIR` points elsewhere.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::control_plane::free_port;
use crate::process::Supervised;
use crate::tools::{MissingTool, tool};

/// The source-controller binary's name.
pub const SOURCE_CONTROLLER: &str = "mooring-source-controller";
/// The kustomize-controller binary's name.
pub const KUSTOMIZE_CONTROLLER: &str = "mooring-kustomize-controller";
/// The environment variable that overrides where the controller binaries are looked up.
pub const BIN_DIR_ENV: &str = "MOORING_BIN_DIR";

/// How long a controller may take to answer `/healthz` before start-up fails.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines of a controller log carried in an error.
const LOG_TAIL_LINES: usize = 30;

/// Why the controllers could not be found or started.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A controller binary has not been built.
    #[error("{} not found: build it with `cargo build --bins` (or set {BIN_DIR_ENV})", path.display())]
    MissingBinary {
        /// Where it was expected.
        path: PathBuf,
    },
    /// The kustomize binary is missing.
    #[error(transparent)]
    MissingTool(#[from] MissingTool),
    /// A file, directory or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// No free port could be found.
    #[error("finding a free port: {0}")]
    FreePort(#[source] Box<crate::control_plane::Error>),
    /// A controller exited or never answered `/healthz`.
    #[error("{name} did not start: {reason}\n--- last lines of its log ---\n{log_tail}")]
    StartUp {
        /// The binary.
        name: String,
        /// What went wrong.
        reason: String,
        /// The tail of its log.
        log_tail: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// The directory holding the controller binaries: `$MOORING_BIN_DIR`, else the running
/// executable's directory, or its parent when that is cargo's `deps/` (test binaries).
pub fn bin_dir() -> Result<PathBuf, Error> {
    if let Some(dir) = std::env::var_os(BIN_DIR_ENV) {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().map_err(io("locating the running executable"))?;
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        return Ok(dir.parent().map(Path::to_path_buf).unwrap_or(dir));
    }
    Ok(dir)
}

/// The path of a built controller binary.
pub fn binary(name: &str) -> Result<PathBuf, Error> {
    let path = bin_dir()?.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::MissingBinary { path })
    }
}

/// How to run the controllers.
#[derive(Debug, Clone)]
pub struct Options {
    /// The kubeconfig the source-controller uses.
    pub source_kubeconfig: PathBuf,
    /// The kubeconfig the kustomize-controller uses.
    pub kustomize_kubeconfig: PathBuf,
    /// Namespace of the leader-election Leases; `None` runs without leader election.
    pub leader_election_namespace: Option<String>,
    /// Log level or filter passed to both (`--log-level`).
    pub log_level: String,
    /// Log format of both (`--log-format`): `text` (the default here, for readable failure
    /// messages) or `json` (what the chart deploys).
    pub log_format: String,
    /// More flags for the kustomize-controller, e.g. those a chart's Deployment passes.
    pub kustomize_flags: Vec<String>,
    /// More flags for the source-controller.
    pub source_flags: Vec<String>,
}

impl Options {
    /// Both controllers on one kubeconfig, without leader election: a local run.
    pub fn local(kubeconfig: &Path) -> Self {
        Self {
            source_kubeconfig: kubeconfig.to_path_buf(),
            kustomize_kubeconfig: kubeconfig.to_path_buf(),
            leader_election_namespace: None,
            log_level: "info".to_string(),
            log_format: "text".to_string(),
            kustomize_flags: Vec::new(),
            source_flags: Vec::new(),
        }
    }

    /// Both controllers watching only `namespace`, so that tests sharing a control plane can
    /// each run their own pair.
    pub fn watching(mut self, namespace: &str) -> Self {
        let flag = format!("--watch-namespace={namespace}");
        self.kustomize_flags.push(flag.clone());
        self.source_flags.push(flag);
        self
    }
}

/// Both controllers, running; they stop (SIGTERM, then SIGKILL after 5s) when this is dropped.
#[derive(Debug)]
pub struct Controllers {
    // Field order matters: the kustomize side stops first, and the processes before their files go.
    kustomize: Supervised,
    source: Supervised,
    source_identity: String,
    kustomize_identity: String,
    artifact_base: String,
    dir: TempDir,
    // What a restart of either controller needs.
    options: Options,
    kustomize_bin: PathBuf,
    kustomize_metrics: u16,
    kustomize_flags: Vec<String>,
    source_bin: PathBuf,
    source_metrics: u16,
    source_flags: Vec<String>,
}

/// What one controller process gets besides its own flags.
struct Launch<'a> {
    name: &'a str,
    kubeconfig: &'a Path,
    identity: &'a str,
    metrics_port: u16,
    flags: Vec<String>,
}

impl Controllers {
    /// Starts the source-controller and the kustomize-controller (free ports on 127.0.0.1,
    /// storage and caches in a temp dir) and waits until both answer `/healthz`.
    pub fn start(options: &Options) -> Result<Self, Error> {
        let source_bin = binary(SOURCE_CONTROLLER)?;
        let kustomize_bin = binary(KUSTOMIZE_CONTROLLER)?;
        let kustomize = tool("kustomize")?;
        let dir = tempfile::Builder::new()
            .prefix("mooring-controllers-")
            .tempdir()
            .map_err(io("creating the controllers' directory"))?;
        let port = || free_port().map_err(|e| Error::FreePort(Box::new(e)));
        let artifact_port = port()?;
        let receiver_port = port()?;
        let source_metrics = port()?;
        let kustomize_metrics = port()?;
        let artifact_base = format!("http://127.0.0.1:{artifact_port}");
        // Leader-election identities that tests can look for in the Leases.
        let source_identity = format!("{SOURCE_CONTROLLER}-{source_metrics}");
        let kustomize_identity = format!("{KUSTOMIZE_CONTROLLER}-{kustomize_metrics}");
        let path = |sub: &str| dir.path().join(sub).display().to_string();

        let mut source_flags = vec![
            format!("--storage-path={}", path("storage")),
            format!("--git-cache-path={}", path("git-cache")),
            format!("--storage-adv-addr={artifact_base}"),
            format!("--artifact-addr=127.0.0.1:{artifact_port}"),
            format!("--receiver-addr=127.0.0.1:{receiver_port}"),
        ];
        source_flags.extend(options.source_flags.iter().cloned());
        let source = spawn(
            &source_bin,
            options,
            dir.path(),
            Launch {
                name: SOURCE_CONTROLLER,
                kubeconfig: &options.source_kubeconfig,
                identity: &source_identity,
                metrics_port: source_metrics,
                flags: source_flags.clone(),
            },
        )?;
        let mut kustomize_flags = vec![
            format!("--kustomize-path={}", kustomize.display()),
            format!("--artifact-cache-path={}", path("artifact-cache")),
        ];
        kustomize_flags.extend(options.kustomize_flags.iter().cloned());
        let kustomize = spawn(
            &kustomize_bin,
            options,
            dir.path(),
            Launch {
                name: KUSTOMIZE_CONTROLLER,
                kubeconfig: &options.kustomize_kubeconfig,
                identity: &kustomize_identity,
                metrics_port: kustomize_metrics,
                flags: kustomize_flags.clone(),
            },
        )?;
        let mut controllers = Self {
            kustomize,
            source,
            source_identity,
            kustomize_identity,
            artifact_base,
            dir,
            options: options.clone(),
            kustomize_bin,
            kustomize_metrics,
            kustomize_flags,
            source_bin,
            source_metrics,
            source_flags,
        };
        wait_healthy(&mut controllers.source, source_metrics)?;
        wait_healthy(&mut controllers.kustomize, kustomize_metrics)?;
        Ok(controllers)
    }

    /// The base URL the source-controller writes into `status.artifact.url`.
    pub fn artifact_base_url(&self) -> &str {
        &self.artifact_base
    }

    /// The source-controller's leader-election identity (its `POD_NAME`).
    pub fn source_identity(&self) -> &str {
        &self.source_identity
    }

    /// The kustomize-controller's leader-election identity (its `POD_NAME`).
    pub fn kustomize_identity(&self) -> &str {
        &self.kustomize_identity
    }

    /// The directory holding storage, caches and the two logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The temp dir (`TMPDIR`) of a controller (`SOURCE_CONTROLLER` or `KUSTOMIZE_CONTROLLER`),
    /// the same across its restarts.
    pub fn temp_dir(&self, name: &str) -> PathBuf {
        temp_dir_of(self.dir.path(), name)
    }

    /// The log file of a controller (`SOURCE_CONTROLLER` or `KUSTOMIZE_CONTROLLER`).
    pub fn log_file(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    /// The last lines of both logs, for failure messages.
    pub fn log_tails(&self) -> String {
        format!(
            "--- {SOURCE_CONTROLLER} ---\n{}\n--- {KUSTOMIZE_CONTROLLER} ---\n{}",
            self.source.log_tail(LOG_TAIL_LINES),
            self.kustomize.log_tail(LOG_TAIL_LINES)
        )
    }

    /// Whether either controller has exited.
    pub fn any_exited(&mut self) -> bool {
        self.source.has_exited() || self.kustomize.has_exited()
    }

    /// Kills the kustomize-controller with SIGKILL, as a crash or an OOM kill would: nothing
    /// in flight is finished.
    pub fn kill_kustomize(&mut self) {
        self.kustomize.kill();
    }

    /// Starts the kustomize-controller again with the same flags, identity and artifact cache,
    /// and waits until it answers `/healthz`.
    pub fn restart_kustomize(&mut self) -> Result<(), Error> {
        self.kustomize.stop();
        self.kustomize = spawn(
            &self.kustomize_bin,
            &self.options,
            self.dir.path(),
            Launch {
                name: KUSTOMIZE_CONTROLLER,
                kubeconfig: &self.options.kustomize_kubeconfig,
                identity: &self.kustomize_identity,
                metrics_port: self.kustomize_metrics,
                flags: self.kustomize_flags.clone(),
            },
        )?;
        wait_healthy(&mut self.kustomize, self.kustomize_metrics)
    }

    /// Kills the source-controller with SIGKILL: its artifact server goes with it, so
    /// artifact URLs refuse connections until [`Controllers::restart_source`].
    pub fn kill_source(&mut self) {
        self.source.kill();
    }

    /// Starts the source-controller again with the same flags, identity, storage and artifact
    /// port, and waits until it answers `/healthz`.
    pub fn restart_source(&mut self) -> Result<(), Error> {
        self.source.stop();
        self.source = spawn(
            &self.source_bin,
            &self.options,
            self.dir.path(),
            Launch {
                name: SOURCE_CONTROLLER,
                kubeconfig: &self.options.source_kubeconfig,
                identity: &self.source_identity,
                metrics_port: self.source_metrics,
                flags: self.source_flags.clone(),
            },
        )?;
        wait_healthy(&mut self.source, self.source_metrics)
    }

    /// The pid of a running controller (`SOURCE_CONTROLLER` or `KUSTOMIZE_CONTROLLER`): a test
    /// compares it to tell that a controller was never restarted.
    pub fn pid(&self, name: &str) -> Option<u32> {
        match name {
            SOURCE_CONTROLLER => self.source.pid(),
            KUSTOMIZE_CONTROLLER => self.kustomize.pid(),
            _ => None,
        }
    }

    /// What a controller's `/metrics` shows now (Prometheus text).
    pub fn metrics(&self, name: &str) -> Result<String, Error> {
        let port = match name {
            SOURCE_CONTROLLER => self.source_metrics,
            _ => self.kustomize_metrics,
        };
        http_get(SocketAddr::from(([127, 0, 0, 1], port)), "/metrics")
    }

    /// Whether a controller's `/readyz` answers 200 now (it does only while it leads).
    pub fn ready(&self, name: &str) -> bool {
        let port = match name {
            SOURCE_CONTROLLER => self.source_metrics,
            _ => self.kustomize_metrics,
        };
        answers_200(SocketAddr::from(([127, 0, 0, 1], port)), "/readyz")
    }

    /// The pid of the running kustomize-controller process.
    pub fn kustomize_pid(&self) -> Option<u32> {
        self.kustomize.pid()
    }

    /// The source-controller's artifact storage directory.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The source-controller's process id, while it runs.
    pub fn source_pid(&self) -> Option<u32> {
        self.source.pid()
    }

    /// Stops both (SIGTERM: they finish in-flight work and release their Leases).
    pub fn stop(&mut self) {
        self.kustomize.stop();
        self.source.stop();
    }
}

fn spawn(
    bin: &Path,
    options: &Options,
    dir: &Path,
    launch: Launch<'_>,
) -> Result<Supervised, Error> {
    let mut args = launch.flags;
    args.push(format!("--metrics-addr=127.0.0.1:{}", launch.metrics_port));
    args.push(format!("--log-format={}", options.log_format));
    args.push(format!("--log-level={}", options.log_level));
    match &options.leader_election_namespace {
        Some(namespace) => {
            args.push("--leader-elect=true".to_string());
            args.push(format!("--leader-election-namespace={namespace}"));
        }
        None => args.push("--leader-elect=false".to_string()),
    }
    // Each controller's temp files go under the test's directory, where a test can see what
    // the process leaves behind ([`Controllers::temp_dir`]) and where they go with the test.
    let temp = temp_dir_of(dir, launch.name);
    std::fs::create_dir_all(&temp).map_err(io(format!("creating {}", temp.display())))?;
    let envs = [
        (
            "KUBECONFIG".to_string(),
            launch.kubeconfig.display().to_string(),
        ),
        ("POD_NAME".to_string(), launch.identity.to_string()),
        ("TMPDIR".to_string(), temp.display().to_string()),
    ];
    let log = dir.join(format!("{}.log", launch.name));
    Supervised::spawn(launch.name, bin, &args, &envs, &log, dir)
        .map_err(io(format!("starting {}", launch.name)))
}

fn temp_dir_of(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.tmp"))
}

/// Waits until the process answers `GET /healthz` with 200, failing early if it exits.
fn wait_healthy(process: &mut Supervised, port: u16) -> Result<(), Error> {
    let deadline = Instant::now() + START_TIMEOUT;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        if process.has_exited() {
            return Err(start_up(process, "exited".to_string()));
        }
        if healthz_ok(addr) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(start_up(
                process,
                format!("no answer on {addr}/healthz after {START_TIMEOUT:?}"),
            ));
        }
        // A fresh process offers no readiness notification; poll with a deadline.
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn healthz_ok(addr: SocketAddr) -> bool {
    answers_200(addr, "/healthz")
}

/// Whether `GET path` on `addr` answers 200.
fn answers_200(addr: SocketAddr, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.ends_with(b" 200")
}

/// The body of `GET path` on `addr` (HTTP/1.1, `Connection: close`), when the answer is 200.
fn http_get(addr: SocketAddr, path: &str) -> Result<String, Error> {
    let failed = |what: &str| {
        let what = format!("{what} http://{addr}{path}");
        move |source: std::io::Error| Error::Io { what, source }
    };
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(failed("connecting to"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(failed("reading"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(failed("requesting"))?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(failed("reading"))?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(answer.len());
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let body = answer.get(split + 4..).unwrap_or_default();
    if !head.starts_with("HTTP/1.1 200") {
        return Err(failed("an error status from")(std::io::Error::other(
            head.lines().next().unwrap_or_default().to_string(),
        )));
    }
    let chunked = head
        .lines()
        .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_vec()
    };
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The payload of a chunked HTTP/1.1 body.
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&rest[..line_end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok());
        let data = &rest[line_end + 2..];
        match size {
            Some(size) if size > 0 && data.len() >= size => {
                out.extend_from_slice(&data[..size]);
                rest = data[size..].strip_prefix(b"\r\n").unwrap_or(&data[size..]);
            }
            _ => break,
        }
    }
    out
}

fn start_up(process: &Supervised, reason: String) -> Error {
    Error::StartUp {
        name: process.name().to_string(),
        reason,
        log_tail: process.log_tail(LOG_TAIL_LINES),
    }
}
