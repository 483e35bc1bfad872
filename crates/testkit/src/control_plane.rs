//! A real Kubernetes control plane for tests: etcd and kube-apiserver (and optionally
//! kube-controller-manager) started from the binaries `make tools` builds, on free 127.0.0.1 ports.
//!
//! With [`Options::workloads`] it is a cluster where workloads run: kube-controller-manager with
//! its default controllers, kube-scheduler, and kwok simulating [`WORKLOAD_NODES`] Nodes and the
//! lifecycle of their Pods (no kubelet, no container runtime: images are never pulled).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tempfile::TempDir;

use crate::certs::{TestCa, signing_key_pair_pem};
use crate::process::Supervised;
use crate::tools::{MissingTool, tool, workspace_root};

/// How long a component may take to become ready before start-up fails.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// Lines of component logs carried in a start-up error.
const LOG_TAIL_LINES: usize = 40;
/// How many simulated Nodes a plane with [`Options::workloads`] has.
pub const WORKLOAD_NODES: usize = 3;
/// The label that marks the simulated Nodes kwok manages (value `true`).
pub const SIMULATED_NODE_LABEL: &str = "node.mooring.dev/simulated";
/// The lifecycle kwok plays for Nodes and Pods (Ready Nodes, running and Ready Pods, completing
/// Job Pods, deleted Pods removed).
/// The file (in the plane's directory) kwok serves as the log of a simulated Pod's containers
/// when no `Logs` object names the Pod (see [`ControlPlane::serve_pod_log`]): empty.
const SIMULATED_POD_LOG: &str = "simulated-pod.log";

/// The CRD of kwok's `Logs`, with which a test gives one Pod a log of its own.
const KWOK_LOGS_CRD: &str = include_str!("kwok-logs-crd.yaml");

const KWOK_STAGES: &str = include_str!("kwok-stages.yaml");

/// Why the control plane could not be started or used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tool binary is missing.
    #[error(transparent)]
    MissingTool(#[from] MissingTool),
    /// A file or directory operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Certificate generation failed.
    #[error("generating certificates: {0}")]
    Certificates(#[from] rcgen::Error),
    /// A component did not become ready.
    #[error(
        "{component} did not start: {reason}\n--- last lines of the {component} log ---\n{log_tail}"
    )]
    StartUp {
        /// etcd, kube-apiserver, kube-controller-manager, kube-scheduler or kwok.
        component: String,
        /// What went wrong.
        reason: String,
        /// The tail of the component's log.
        log_tail: String,
    },
    /// A kubectl command failed.
    #[error("kubectl {args} failed: {stderr}")]
    Kubectl {
        /// The arguments given.
        args: String,
        /// What kubectl printed on stderr.
        stderr: String,
    },
    /// The shared control plane failed to start earlier in this test binary.
    #[error("the shared test control plane could not be started: {0}")]
    Shared(String),
    /// Creating a test namespace failed.
    #[error("creating namespace {name}: {source}")]
    Namespace {
        /// The namespace.
        name: String,
        /// The API error.
        source: kube::Error,
    },
    /// Building a client from the kubeconfig failed.
    #[error("building a client from {kubeconfig}: {reason}")]
    Client {
        /// The kubeconfig file.
        kubeconfig: String,
        /// What went wrong.
        reason: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// Options for [`ControlPlane::start`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Also run kube-controller-manager (garbage collection, namespace deletion, ServiceAccounts).
    pub controller_manager: bool,
    /// Run workloads: kube-controller-manager with all its default controllers (deployment,
    /// replicaset, statefulset, job, endpointslice, persistentvolume binder, pvc-protection, ...),
    /// kube-scheduler, and kwok with [`WORKLOAD_NODES`] simulated Ready Nodes whose Pods become
    /// Running and Ready (Job Pods then Succeeded). Implies `controller_manager`.
    pub workloads: bool,
    /// Install the CRDs from the workspace's `crds/` directory.
    pub install_crds: bool,
    /// Extra kube-apiserver flags.
    pub extra_apiserver_args: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            controller_manager: false,
            workloads: false,
            install_crds: true,
            extra_apiserver_args: Vec::new(),
        }
    }
}

/// A running control plane. Its processes stop when it is dropped or when the test binary exits.
#[derive(Debug)]
pub struct ControlPlane {
    // Field order matters: processes stop before the directory they use is removed.
    kwok: Option<Supervised>,
    scheduler: Option<Supervised>,
    controller_manager: Option<Supervised>,
    // Behind a lock so that a plane shared as `&'static` can restart it.
    apiserver: Mutex<Supervised>,
    etcd: Mutex<Supervised>,
    // What a restart of kube-apiserver needs: the same binary and flags (port, certificates).
    apiserver_bin: PathBuf,
    apiserver_args: Vec<String>,
    server: String,
    kubeconfig: PathBuf,
    dir: TempDir,
    /// Only for planes kept for the whole test binary, which are never dropped: removes `dir`
    /// at exit.
    janitor: Option<Supervised>,
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
pub fn free_port() -> Result<u16, Error> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(io("binding a free port"))?;
    Ok(listener
        .local_addr()
        .map_err(io("reading a bound port"))?
        .port())
}

impl ControlPlane {
    /// Starts etcd and kube-apiserver, writes an admin kubeconfig and installs the CRDs.
    pub fn start(options: &Options) -> Result<Self, Error> {
        let etcd_bin = tool("etcd")?;
        let apiserver_bin = tool("kube-apiserver")?;
        tool("kubectl")?;
        let dir = tempfile::Builder::new()
            .prefix("mooring-control-plane-")
            .tempdir()
            .map_err(io("creating the control plane directory"))?;
        let path = dir.path().to_path_buf();

        let etcd_port = free_port()?;
        let etcd_peer_port = free_port()?;
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{etcd_peer_port}");
        let etcd_args = vec![
            format!("--data-dir={}", path.join("etcd").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=default={peer_url}"),
            "--unsafe-no-fsync=true".to_string(),
            "--log-level=warn".to_string(),
        ];
        let etcd_log = path.join("etcd.log");
        let etcd = Supervised::spawn("etcd", &etcd_bin, &etcd_args, &[], &etcd_log, &path)
            .map_err(io("starting etcd"))?;

        let ca = TestCa::new("mooring-test-cluster-ca")?;
        let serving = ca.server_cert("kube-apiserver")?;
        let admin = ca.client_cert("mooring-test-admin", &["system:masters"])?;
        let write = |name: &str, content: &str| -> Result<PathBuf, Error> {
            let file = path.join(name);
            std::fs::write(&file, content).map_err(io(format!("writing {name}")))?;
            Ok(file)
        };
        let ca_file = write("ca.crt", ca.cert_pem())?;
        let tls_cert = write("apiserver.crt", &serving.cert_pem)?;
        let tls_key = write("apiserver.key", &serving.key_pem)?;
        let (sa_private, sa_public) = signing_key_pair_pem()?;
        let sa_key = write("service-account.key", &sa_private)?;
        let sa_pub = write("service-account.pub", &sa_public)?;

        let port = free_port()?;
        let server = format!("https://127.0.0.1:{port}");
        let apiserver_args = vec![
            format!("--etcd-servers={etcd_url}"),
            format!("--secure-port={port}"),
            "--bind-address=127.0.0.1".to_string(),
            "--advertise-address=127.0.0.1".to_string(),
            // The kubernetes Service endpoint cannot be a loopback address; no pod needs it here.
            "--endpoint-reconciler-type=none".to_string(),
            format!("--cert-dir={}", path.join("certs").display()),
            format!("--tls-cert-file={}", tls_cert.display()),
            format!("--tls-private-key-file={}", tls_key.display()),
            format!("--client-ca-file={}", ca_file.display()),
            "--authorization-mode=RBAC".to_string(),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".to_string(),
            format!("--service-account-key-file={}", sa_pub.display()),
            format!("--service-account-signing-key-file={}", sa_key.display()),
            // Room for the Services of a benchmark's thousands of apps.
            "--service-cluster-ip-range=10.96.0.0/16".to_string(),
            "--allow-privileged=true".to_string(),
            "--enable-priority-and-fairness=false".to_string(),
            "--v=1".to_string(),
        ];
        let apiserver_args: Vec<String> = apiserver_args
            .into_iter()
            .chain(options.extra_apiserver_args.iter().cloned())
            .collect();
        let apiserver_log = path.join("kube-apiserver.log");
        let apiserver = Supervised::spawn(
            "kube-apiserver",
            &apiserver_bin,
            &apiserver_args,
            &[],
            &apiserver_log,
            &path,
        )
        .map_err(io("starting kube-apiserver"))?;

        let kubeconfig = write(
            "kubeconfig",
            &kubeconfig_yaml(&server, ca.cert_pem(), &admin),
        )?;
        let mut plane = Self {
            kwok: None,
            scheduler: None,
            controller_manager: None,
            apiserver: Mutex::new(apiserver),
            etcd: Mutex::new(etcd),
            apiserver_bin,
            apiserver_args,
            server,
            kubeconfig,
            dir,
            janitor: None,
        };
        plane.wait_ready()?;
        if options.controller_manager || options.workloads {
            plane.start_controller_manager(&ca_file, &sa_key, options.workloads)?;
        }
        if options.workloads {
            plane.start_workload_components()?;
        }
        if options.install_crds {
            plane.install_crds()?;
        }
        Ok(plane)
    }

    /// The API server URL, `https://127.0.0.1:<port>`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Removes the plane's directory when the test binary exits: for a plane that is never
    /// dropped (kept in a static), whose directory (etcd's data, about 130 MB) would otherwise
    /// stay in the temp dir after every run.
    pub fn remove_dir_at_exit(mut self) -> Result<Self, Error> {
        let dir = self.dir.path().to_path_buf();
        self.janitor =
            Some(crate::process::janitor(&dir, &dir).map_err(io("starting the janitor"))?);
        Ok(self)
    }

    /// The admin kubeconfig file.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The directory holding the control plane's data, certificates and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The pids of the running components.
    pub fn pids(&self) -> Vec<u32> {
        let apiserver = self.apiserver().pid();
        [
            lock(&self.etcd).pid(),
            apiserver,
            self.controller_manager.as_ref().and_then(Supervised::pid),
            self.scheduler.as_ref().and_then(Supervised::pid),
            self.kwok.as_ref().and_then(Supervised::pid),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// A `kubectl` command pointed at this control plane as admin.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new(
            tool("kubectl")
                .map(|t| t.into_os_string())
                .unwrap_or_else(|_| "kubectl".into()),
        );
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        cmd
    }

    /// Runs kubectl with `args`, returning stdout, or an error carrying stderr.
    pub fn run_kubectl(&self, args: &[&str]) -> Result<String, Error> {
        let out = self
            .kubectl()
            .args(args)
            .output()
            .map_err(io("running kubectl"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(Error::Kubectl {
                args: args.join(" "),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }

    /// Runs kubectl with `args` and `input` on its stdin (`apply -f -`), returning stdout.
    pub fn run_kubectl_with_input(&self, args: &[&str], input: &str) -> Result<String, Error> {
        use std::io::Write as _;
        let mut child = self
            .kubectl()
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(io("running kubectl"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(input.as_bytes())
                .map_err(io("writing kubectl's input"))?;
        }
        let out = child
            .wait_with_output()
            .map_err(io("waiting for kubectl"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(Error::Kubectl {
                args: args.join(" "),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }

    /// The admin client configuration of this control plane.
    pub async fn config(&self) -> Result<kube::Config, Error> {
        let failed = |reason: String| Error::Client {
            kubeconfig: self.kubeconfig.display().to_string(),
            reason,
        };
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig)
            .map_err(|e| failed(e.to_string()))?;
        kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .map_err(|e| failed(e.to_string()))
    }

    /// An admin client for this control plane, bound to the calling tokio runtime.
    pub async fn client(&self) -> Result<kube::Client, Error> {
        let config = self.config().await?;
        kube::Client::try_from(config).map_err(|e| Error::Client {
            kubeconfig: self.kubeconfig.display().to_string(),
            reason: e.to_string(),
        })
    }

    fn apiserver(&self) -> MutexGuard<'_, Supervised> {
        lock(&self.apiserver)
    }

    /// Stops kube-apiserver (SIGTERM, then SIGKILL after 5 s); etcd and the data stay. Clients
    /// see connections refused until [`ControlPlane::start_apiserver`].
    pub fn stop_apiserver(&self) {
        self.apiserver().stop();
    }

    /// Starts kube-apiserver again with the same flags (port, certificates, etcd) after
    /// [`ControlPlane::stop_apiserver`], and waits until it answers `/readyz`. The kubeconfig
    /// and every client built from it work again as they are. Blocking.
    pub fn start_apiserver(&self) -> Result<(), Error> {
        {
            let mut apiserver = self.apiserver();
            if !apiserver.has_exited() {
                return Ok(());
            }
            *apiserver = Supervised::spawn(
                "kube-apiserver",
                &self.apiserver_bin,
                &self.apiserver_args,
                &[],
                &self.dir.path().join("kube-apiserver.log"),
                self.dir.path(),
            )
            .map_err(io("starting kube-apiserver again"))?;
        }
        self.wait_ready()
    }

    /// Restarts kube-apiserver: [`ControlPlane::stop_apiserver`] then
    /// [`ControlPlane::start_apiserver`]. Blocking.
    pub fn restart_apiserver(&self) -> Result<(), Error> {
        self.stop_apiserver();
        self.start_apiserver()
    }

    fn wait_ready(&self) -> Result<(), Error> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            {
                let mut etcd = lock(&self.etcd);
                if etcd.has_exited() {
                    return Err(startup_error(&etcd, "etcd exited".into()));
                }
            }
            {
                let mut apiserver = self.apiserver();
                if apiserver.has_exited() {
                    let mut err = startup_error(&apiserver, "kube-apiserver exited".into());
                    if let Error::StartUp { log_tail, .. } = &mut err {
                        log_tail.push_str("\n--- etcd ---\n");
                        log_tail.push_str(&lock(&self.etcd).log_tail(LOG_TAIL_LINES / 2));
                    }
                    return Err(err);
                }
            }
            let last_error =
                match self.run_kubectl(&["get", "--raw=/readyz", "--request-timeout=2s"]) {
                    Ok(_) => return Ok(()),
                    Err(e) => e.to_string(),
                };
            if Instant::now() > deadline {
                return Err(startup_error(
                    &self.apiserver(),
                    format!("not ready after {READY_TIMEOUT:?}: {last_error}"),
                ));
            }
            // Polls a condition with a deadline; the API server offers no readiness notification.
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn start_controller_manager(
        &mut self,
        ca_file: &Path,
        sa_key: &Path,
        all_controllers: bool,
    ) -> Result<(), Error> {
        let bin = tool("kube-controller-manager")?;
        let path = self.dir.path().to_path_buf();
        let controllers = if all_controllers {
            // The default set. Those that need what this plane lacks (a cloud provider, CSR
            // signing keys, node CIDR allocation) disable themselves with a log line.
            "*"
        } else {
            // clusterrole-aggregation fills the built-in `admin`, `edit` and `view` roles,
            // which tenants bind their ServiceAccounts to.
            "namespace,garbagecollector,serviceaccount,serviceaccount-token,clusterrole-aggregation"
        };
        let args = vec![
            format!("--kubeconfig={}", self.kubeconfig.display()),
            format!("--authentication-kubeconfig={}", self.kubeconfig.display()),
            format!("--authorization-kubeconfig={}", self.kubeconfig.display()),
            format!("--root-ca-file={}", ca_file.display()),
            format!("--service-account-private-key-file={}", sa_key.display()),
            format!("--controllers={controllers}"),
            "--leader-elect=false".to_string(),
            "--bind-address=127.0.0.1".to_string(),
            format!("--secure-port={}", free_port()?),
            format!("--cert-dir={}", path.join("kcm-certs").display()),
        ];
        let log = path.join("kube-controller-manager.log");
        let kcm = Supervised::spawn("kube-controller-manager", &bin, &args, &[], &log, &path)
            .map_err(io("starting kube-controller-manager"))?;
        self.controller_manager = Some(kcm);
        Ok(())
    }

    /// Starts kube-scheduler and kwok, creates the simulated Nodes and waits until they are
    /// Ready. Blocking.
    fn start_workload_components(&mut self) -> Result<(), Error> {
        let path = self.dir.path().to_path_buf();
        let kubeconfig = self.kubeconfig.display().to_string();
        let scheduler_args = vec![
            format!("--kubeconfig={kubeconfig}"),
            format!("--authentication-kubeconfig={kubeconfig}"),
            format!("--authorization-kubeconfig={kubeconfig}"),
            "--leader-elect=false".to_string(),
            "--bind-address=127.0.0.1".to_string(),
            format!("--secure-port={}", free_port()?),
        ];
        self.scheduler = Some(
            Supervised::spawn(
                "kube-scheduler",
                &tool("kube-scheduler")?,
                &scheduler_args,
                &[],
                &path.join("kube-scheduler.log"),
                &path,
            )
            .map_err(io("starting kube-scheduler"))?,
        );

        let stages = path.join("kwok-stages.yaml");
        // kwok's kubelet endpoint serves the simulated Pods' logs (`kubectl logs`: API server ->
        // the Node's kubelet port): a Pod named by a `Logs` object gets its file, the others an
        // empty one.
        self.run_kubectl_with_input(&["apply", "--server-side", "-f", "-"], KWOK_LOGS_CRD)?;
        self.run_kubectl(&[
            "wait",
            "--for=condition=Established",
            "--timeout=30s",
            "crd/logs.kwok.x-k8s.io",
        ])?;
        let pod_log = path.join(SIMULATED_POD_LOG);
        std::fs::write(&pod_log, "").map_err(io("creating the simulated pods' log"))?;
        let kubelet_port = free_port()?;
        let config = format!(
            "{KWOK_STAGES}---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: mooring-simulated-pod-log
spec:
  selector: {{}}
  logs:
  - containers: []
    logsFile: {}
",
            pod_log.display()
        );
        std::fs::write(&stages, config).map_err(io("writing kwok's stages"))?;
        let kwok_home = path.join("kwok-home");
        std::fs::create_dir_all(&kwok_home).map_err(io("creating kwok's home"))?;
        let kwok_args = vec![
            format!("--kubeconfig={kubeconfig}"),
            format!("--config={}", stages.display()),
            "--manage-all-nodes=false".to_string(),
            format!("--manage-nodes-with-label-selector={SIMULATED_NODE_LABEL}=true"),
            // kwok renews each Node's Lease: the node lifecycle controller takes that as the
            // kubelet's heartbeat, so the Nodes stay Ready and untainted.
            "--node-lease-duration-seconds=40".to_string(),
            "--cidr=10.244.0.0/16".to_string(),
            // The API server reaches a Node's kubelet at its address and daemon endpoint port:
            // kwok's server, which speaks TLS with a certificate of its own (the API server
            // has no --kubelet-certificate-authority, so it does not verify it).
            "--node-ip=127.0.0.1".to_string(),
            format!("--node-port={kubelet_port}"),
            format!("--server-address=127.0.0.1:{kubelet_port}"),
            "--enable-crds=Logs".to_string(),
        ];
        // kwok also reads ~/.kwok/kwok.yaml when it exists: a home of its own keeps it out.
        let kwok_env = [("HOME".to_string(), kwok_home.display().to_string())];
        self.kwok = Some(
            Supervised::spawn(
                "kwok",
                &tool("kwok")?,
                &kwok_args,
                &kwok_env,
                &path.join("kwok.log"),
                &path,
            )
            .map_err(io("starting kwok"))?,
        );

        let nodes: String = (0..WORKLOAD_NODES)
            .map(|i| simulated_node_yaml(&format!("simulated-node-{i}")))
            .collect();
        self.run_kubectl_with_input(
            &[
                "apply",
                "--server-side",
                "--field-manager=mooring-testkit",
                "-f",
                "-",
            ],
            &nodes,
        )?;
        let ready = self.run_kubectl(&[
            "wait",
            "--for=condition=Ready",
            "--timeout=60s",
            "node",
            "-l",
            &format!("{SIMULATED_NODE_LABEL}=true"),
        ]);
        if let Err(e) = ready {
            let component = self.kwok.as_ref().expect("kwok was just started");
            return Err(startup_error(
                component,
                format!("the simulated Nodes are not Ready: {e}"),
            ));
        }
        Ok(())
    }

    /// Makes kwok serve `cri_log` (non-empty, in the CRI log format a kubelet keeps:
    /// `<RFC 3339 time> stdout F <line>` per line) as the log of the containers of Pod
    /// `namespace/pod`, which must be running on a simulated Node (needs
    /// [`Options::workloads`]); returns once `pods/log` through the API serves it. Blocking.
    pub fn serve_pod_log(&self, namespace: &str, pod: &str, cri_log: &str) -> Result<(), Error> {
        assert!(
            !cri_log.is_empty(),
            "an empty log cannot be told from no log"
        );
        let file = self
            .dir
            .path()
            .join(format!("pod-log-{namespace}-{pod}.log"));
        std::fs::write(&file, cri_log).map_err(io("writing a simulated pod's log"))?;
        let logs = format!(
            "apiVersion: kwok.x-k8s.io/v1alpha1
kind: Logs
metadata:
  name: {pod}
  namespace: {namespace}
spec:
  logs:
  - containers: []
    logsFile: {}
",
            file.display()
        );
        self.run_kubectl_with_input(
            &[
                "apply",
                "--server-side",
                "--field-manager=mooring-testkit",
                "-f",
                "-",
            ],
            &logs,
        )?;
        // kwok learns of the object through a watch; until then the Pod's log is the empty
        // default.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let served = self.run_kubectl(&["logs", "-n", namespace, pod]);
            match served {
                Ok(text) if !text.is_empty() => return Ok(()),
                _ if Instant::now() > deadline => {
                    let component = self.kwok.as_ref().expect("a workload plane runs kwok");
                    return Err(startup_error(
                        component,
                        format!("kwok does not serve the log of pod {namespace}/{pod}: {served:?}"),
                    ));
                }
                // Polls a condition with a deadline: nothing notifies when kwok's watch caught up.
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Creates a pre-made PersistentVolume `name` of `capacity` (e.g. `1Gi`) in `storage_class`,
    /// for a PersistentVolumeClaim of that class to bind to (needs [`Options::workloads`]: the
    /// binder runs in kube-controller-manager). No StorageClass object exists for the class, so
    /// binding is immediate. The volume is a hostPath nothing ever writes (kwok runs no
    /// containers). Blocking.
    pub fn create_persistent_volume(
        &self,
        name: &str,
        storage_class: &str,
        capacity: &str,
    ) -> Result<(), Error> {
        let pv = format!(
            "apiVersion: v1
kind: PersistentVolume
metadata:
  name: {name}
spec:
  storageClassName: {storage_class}
  capacity:
    storage: {capacity}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath:
    path: /tmp/mooring-simulated-volumes/{name}
"
        );
        self.run_kubectl_with_input(
            &[
                "apply",
                "--server-side",
                "--field-manager=mooring-testkit",
                "-f",
                "-",
            ],
            &pv,
        )?;
        Ok(())
    }

    /// Applies every CRD in the workspace's `crds/` and waits until they are Established.
    pub fn install_crds(&self) -> Result<(), Error> {
        let crds = workspace_root().join("crds");
        let crds = crds.to_string_lossy();
        self.run_kubectl(&[
            "apply",
            "--server-side",
            "--field-manager=mooring-testkit",
            "-f",
            &crds,
        ])?;
        self.run_kubectl(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "-f",
            &crds,
        ])?;
        Ok(())
    }
}

/// Locks `mutex`, ignoring poisoning (a panicking test must not wedge the shared plane).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn startup_error(component: &Supervised, reason: String) -> Error {
    Error::StartUp {
        component: component.name().to_string(),
        reason,
        log_tail: component.log_tail(LOG_TAIL_LINES),
    }
}

/// A Node that kwok manages (by its label) and the scheduler may place Pods on.
fn simulated_node_yaml(name: &str) -> String {
    format!(
        "---
apiVersion: v1
kind: Node
metadata:
  name: {name}
  labels:
    {SIMULATED_NODE_LABEL}: \"true\"
    kubernetes.io/hostname: {name}
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
  annotations:
    kwok.x-k8s.io/node: fake
"
    )
}

fn kubeconfig_yaml(server: &str, ca_pem: &str, admin: &crate::certs::CertPair) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: mooring-test
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: admin
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: mooring-test
  context:
    cluster: mooring-test
    user: admin
    namespace: default
current-context: mooring-test
",
        ca = b64(ca_pem),
        cert = b64(&admin.cert_pem),
        key = b64(&admin.key_pem),
    )
}
