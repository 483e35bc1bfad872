//! One test cluster: a fresh control plane, the chart installed with helm, and the controller
//! binaries running as the chart's ServiceAccounts.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use mooring_testkit::control_plane::{ControlPlane, Options};
use mooring_testkit::controllers::{self, Controllers};
use mooring_testkit::tools::{tool, workspace_root};
use tempfile::TempDir;

use crate::chart;
use crate::cli::{Error, run, run_capturing};

/// The Helm release name.
pub const RELEASE: &str = "mooring";
/// The namespace the chart is installed into, and where the Leases live.
pub const NAMESPACE: &str = "mooring-system";
/// The chart's source-controller ServiceAccount.
pub const SOURCE_SERVICE_ACCOUNT: &str = "mooring-source-controller";
/// The chart's kustomize-controller ServiceAccount.
pub const KUSTOMIZE_SERVICE_ACCOUNT: &str = "mooring-kustomize-controller";
/// The chart's kustomize-controller Deployment.
pub const KUSTOMIZE_DEPLOYMENT: &str = "mooring-kustomize-controller";
/// The `--timeout` of every `kubectl wait`: generous, since only a failing test waits it out.
pub const WAIT_TIMEOUT: &str = "--timeout=90s";

/// Numbers the ServiceAccount kubeconfigs written.
static KUBECONFIGS: AtomicUsize = AtomicUsize::new(0);

/// A control plane with kube-controller-manager, and what the tests started on it. Everything
/// stops when it is dropped: the controllers first, then the control plane.
pub struct Cluster {
    controllers: Option<Controllers>,
    plane: ControlPlane,
    kubectl: PathBuf,
    helm: PathBuf,
    work: TempDir,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("server", &self.plane.server())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok's
    /// simulated Nodes (the sample's Deployment rolls out) without Mooring's CRDs: the chart
    /// brings them.
    pub fn start() -> Result<Self, Error> {
        let plane = ControlPlane::start(&Options {
            workloads: true,
            install_crds: false,
            ..Options::default()
        })?;
        let work = tempfile::Builder::new()
            .prefix("mooring-e2e-")
            .tempdir()
            .map_err(|source| Error::Write {
                path: "a temp dir".to_string(),
                source,
            })?;
        Ok(Self {
            controllers: None,
            plane,
            kubectl: tool("kubectl")?,
            helm: tool("helm")?,
            work,
        })
    }

    /// The admin kubeconfig.
    pub fn kubeconfig(&self) -> &Path {
        self.plane.kubeconfig()
    }

    /// Runs kubectl as the cluster admin.
    pub fn kubectl(&self, args: &[&str]) -> Result<String, Error> {
        self.kubectl_as(self.plane.kubeconfig(), args)
    }

    /// Runs kubectl with another kubeconfig (a ServiceAccount's).
    pub fn kubectl_as(&self, kubeconfig: &Path, args: &[&str]) -> Result<String, Error> {
        let kubeconfig = kubeconfig.display().to_string();
        let mut all = vec!["--kubeconfig", kubeconfig.as_str()];
        all.extend_from_slice(args);
        run(&self.kubectl, &all, &[])
    }

    /// `kubectl auth can-i <args>` with `kubeconfig` (a ServiceAccount's): whether it says yes.
    pub fn can_i(&self, kubeconfig: &Path, args: &[&str]) -> bool {
        let mut all = vec!["auth", "can-i"];
        all.extend_from_slice(args);
        // `can-i` exits 1 for "no".
        self.kubectl_as(kubeconfig, &all).is_ok()
    }

    /// `kubectl get <resource> -n <namespace> -o jsonpath=<path>` as admin.
    pub fn jsonpath(&self, resource: &str, namespace: &str, path: &str) -> Result<String, Error> {
        let output = format!("jsonpath={path}");
        self.kubectl(&["get", resource, "--namespace", namespace, "-o", &output])
    }

    /// Writes `content` to `name` in the work dir and `kubectl apply`s it in `namespace`.
    pub fn apply(&self, name: &str, content: &str, namespace: &str) -> Result<String, Error> {
        let file = self.write_file(name, content)?;
        let file = file.display().to_string();
        self.kubectl(&["apply", "--namespace", namespace, "-f", &file])
    }

    /// Runs kubectl as the cluster admin and returns what it printed on stderr: the API server's
    /// warnings.
    pub fn kubectl_warnings(&self, args: &[&str]) -> Result<String, Error> {
        let kubeconfig = self.plane.kubeconfig().display().to_string();
        let mut all = vec!["--kubeconfig", kubeconfig.as_str()];
        all.extend_from_slice(args);
        run_capturing(&self.kubectl, &all, &[]).map(|(_, stderr)| stderr)
    }

    /// `kubectl wait <args>` as admin, with [`WAIT_TIMEOUT`].
    pub fn wait(&self, args: &[&str]) -> Result<String, Error> {
        let mut all = vec!["wait"];
        all.extend_from_slice(args);
        all.push(WAIT_TIMEOUT);
        self.kubectl(&all)
    }

    /// Runs helm as the cluster admin, with its cache, config and data in the work dir.
    pub fn helm(&self, args: &[&str]) -> Result<String, Error> {
        let home = self.work.path().join("helm");
        let (cache, config, data) = (home.join("cache"), home.join("config"), home.join("data"));
        let kubeconfig = self.plane.kubeconfig().display().to_string();
        let mut all = args.to_vec();
        all.extend_from_slice(&["--kubeconfig", kubeconfig.as_str()]);
        let envs = [
            ("HELM_CACHE_HOME", cache.as_path()),
            ("HELM_CONFIG_HOME", config.as_path()),
            ("HELM_DATA_HOME", data.as_path()),
        ];
        run(&self.helm, &all, &envs)
    }

    /// `helm install` of charts/mooring as [`RELEASE`] into [`NAMESPACE`], without the
    /// Deployments (no kubelet runs here), plus `extra` arguments.
    pub fn install_chart(&self, extra: &[&str]) -> Result<String, Error> {
        let chart = chart_dir();
        let mut args = vec!["install", RELEASE, chart.as_str(), "--namespace", NAMESPACE];
        args.extend_from_slice(&["--create-namespace", "--set", "deployControllers=false"]);
        args.extend_from_slice(&["--wait", "--timeout=60s"]);
        args.extend_from_slice(extra);
        self.helm(&args)
    }

    /// `helm upgrade` of the release, keeping its values, plus `extra` arguments.
    pub fn upgrade_chart(&self, extra: &[&str]) -> Result<String, Error> {
        let chart = chart_dir();
        let mut args = vec!["upgrade", RELEASE, chart.as_str(), "--namespace", NAMESPACE];
        args.extend_from_slice(&["--reuse-values", "--wait", "--timeout=60s"]);
        args.extend_from_slice(extra);
        self.helm(&args)
    }

    /// A kubeconfig that authenticates as `service_account` of [`NAMESPACE`] with a token from
    /// the TokenRequest API (`kubectl create token`), for the admin kubeconfig's server and CA.
    pub fn service_account_kubeconfig(&self, service_account: &str) -> Result<PathBuf, Error> {
        let token = self.kubectl(&[
            "create",
            "token",
            service_account,
            "--namespace",
            NAMESPACE,
            "--duration=2h",
        ])?;
        let cluster_field = |field: &str| -> Result<String, Error> {
            let path = format!("jsonpath={{.clusters[0].cluster.{field}}}");
            let value = self.kubectl(&["config", "view", "--raw", "--minify", "-o", &path])?;
            if value.trim().is_empty() {
                return Err(Error::Output {
                    command: "kubectl config view".to_string(),
                    reason: format!("no {field} in the admin kubeconfig"),
                });
            }
            Ok(value.trim().to_string())
        };
        let server = cluster_field("server")?;
        let ca = cluster_field("certificate-authority-data")?;
        let kubeconfig = format!(
            "apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {service_account}
  user:
    token: {token}
contexts:
- name: {service_account}
  context:
    cluster: e2e
    user: {service_account}
    namespace: {NAMESPACE}
current-context: {service_account}
",
            token = token.trim()
        );
        // A new file each time: a running controller keeps the one it was started with.
        let n = KUBECONFIGS.fetch_add(1, Ordering::Relaxed);
        self.write_file(&format!("{service_account}-{n}.kubeconfig"), &kubeconfig)
    }

    /// The kustomize-controller flags that the installed release's Deployment passes (less
    /// what testkit sets itself): the release's values rendered with the Deployments.
    pub fn chart_kustomize_flags(&self) -> Result<Vec<String>, Error> {
        let values = self.helm(&[
            "get",
            "values",
            RELEASE,
            "--namespace",
            NAMESPACE,
            "--all",
            "--output",
            "yaml",
        ])?;
        let values = self.write_file("release-values.yaml", &values)?;
        let values = values.display().to_string();
        let chart = chart_dir();
        let rendered = self.helm(&[
            "template",
            RELEASE,
            chart.as_str(),
            "--namespace",
            NAMESPACE,
            "--values",
            values.as_str(),
            "--set",
            "deployControllers=true",
        ])?;
        let objects = chart::parse(&rendered)?;
        chart::kustomize_flags(&objects, KUSTOMIZE_DEPLOYMENT)
    }

    /// Starts both controller binaries as the chart's ServiceAccounts, with leader election on
    /// Leases in [`NAMESPACE`] and the kustomize-controller flags of the installed release
    /// ([`Cluster::chart_kustomize_flags`]). Controllers already running are stopped first.
    pub fn start_controllers(&mut self) -> Result<&Controllers, Error> {
        self.stop_controllers();
        let started = Controllers::start(&self.controller_options()?)?;
        Ok(self.controllers.insert(started))
    }

    /// Starts a second pair of controllers with the same identities' rights and Leases: standby
    /// replicas while the first pair leads. They stop when the returned value is dropped.
    pub fn start_standby(&self) -> Result<Controllers, Error> {
        Ok(Controllers::start(&self.controller_options()?)?)
    }

    fn controller_options(&self) -> Result<controllers::Options, Error> {
        Ok(controllers::Options {
            source_kubeconfig: self.service_account_kubeconfig(SOURCE_SERVICE_ACCOUNT)?,
            kustomize_kubeconfig: self.service_account_kubeconfig(KUSTOMIZE_SERVICE_ACCOUNT)?,
            leader_election_namespace: Some(NAMESPACE.to_string()),
            log_level: "info".to_string(),
            kustomize_flags: self.chart_kustomize_flags()?,
            source_flags: Vec::new(),
            log_format: "text".to_string(),
        })
    }

    /// Gives `service_account` of `namespace` the built-in ClusterRole `admin` in that namespace
    /// only (a RoleBinding), as a tenant would for its Kustomizations in tenant-safe mode.
    pub fn grant_namespace_admin(
        &self,
        namespace: &str,
        service_account: &str,
    ) -> Result<(), Error> {
        // `admin` is an aggregated role: empty until kube-controller-manager has filled it.
        self.wait(&["--for=jsonpath={.rules}", "clusterrole/admin"])?;
        let subject = format!("--serviceaccount={namespace}:{service_account}");
        let name = format!("{service_account}-namespace-admin");
        self.kubectl(&[
            "create",
            "rolebinding",
            &name,
            "--clusterrole=admin",
            &subject,
            "--namespace",
            namespace,
        ])?;
        Ok(())
    }

    /// The running controllers, if any.
    pub fn controllers(&self) -> Option<&Controllers> {
        self.controllers.as_ref()
    }

    /// Stops both controllers (SIGTERM) and waits until they have exited.
    pub fn stop_controllers(&mut self) {
        if let Some(controllers) = &mut self.controllers {
            controllers.stop();
        }
    }

    /// Writes `content` to the file `name` in the cluster's work dir and returns its path.
    pub fn write_file(&self, name: &str, content: &str) -> Result<PathBuf, Error> {
        let path = self.work.path().join(name);
        std::fs::write(&path, content).map_err(|source| Error::Write {
            path: path.display().to_string(),
            source,
        })?;
        Ok(path)
    }

    /// Asks for a reconcile now, as a user would: `kubectl annotate <resource>
    /// reconcile.mooring.dev/requestedAt=<token>`.
    pub fn request_reconcile(
        &self,
        resource: &str,
        namespace: &str,
        token: &str,
    ) -> Result<(), Error> {
        let annotation = format!("reconcile.mooring.dev/requestedAt={token}");
        self.kubectl(&[
            "annotate",
            "--namespace",
            namespace,
            resource,
            "--overwrite",
            &annotation,
        ])?;
        Ok(())
    }

    /// What a failing test prints: the Mooring objects, recent events and the controller logs.
    pub fn diagnostics(&self) -> String {
        let show = |args: &[&str]| match self.kubectl(args) {
            Ok(out) => out,
            Err(e) => e.to_string(),
        };
        let objects = show(&["get", "gitrepositories,kustomizations", "-A", "-o", "yaml"]);
        let events = show(&[
            "get",
            "events",
            "-A",
            "--sort-by=.metadata.creationTimestamp",
        ]);
        let logs = self
            .controllers
            .as_ref()
            .map(Controllers::log_tails)
            .unwrap_or_default();
        format!("--- objects ---\n{objects}\n--- events ---\n{events}\n{logs}")
    }

    /// The value of `result`, or a panic that names `what` and carries [`Cluster::diagnostics`].
    #[track_caller]
    pub fn must<T>(&self, result: Result<T, Error>, what: &str) -> T {
        match result {
            Ok(value) => value,
            Err(e) => panic!("{what}: {e}\n\n{}", self.diagnostics()),
        }
    }
}

/// charts/mooring in the workspace.
pub fn chart_dir() -> String {
    workspace_root()
        .join("charts/mooring")
        .display()
        .to_string()
}
