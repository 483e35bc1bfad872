//! The environment every scenario runs in: a real control plane, a real git server, and the two
//! controllers as separate processes started from command templates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use mooring_testkit::control_plane::{ControlPlane, Options, free_port};
use mooring_testkit::git::GitServer;

use crate::cli::Args;
use crate::error::Error;
use crate::procs::ControllerProcess;

/// How long a controller may take to answer its readiness probe.
const CONTROLLER_READY: Duration = Duration::from_secs(60);

/// Everything a scenario needs.
pub struct Bench {
    // Field order is drop order: the controllers stop before the API server and git server.
    /// The source-controller process.
    pub source: ControllerProcess,
    /// The kustomize-controller process.
    pub kustomize: ControllerProcess,
    /// The flags.
    pub args: Args,
    /// The API server and etcd.
    pub plane: ControlPlane,
    /// The git server (its HTTP side runs on a thread of this process).
    pub git: Arc<GitServer>,
    /// An admin client.
    pub client: kube::Client,
    /// GitRepository in the configured group.
    pub gitrepo: ApiResource,
    /// Kustomization in the configured group.
    pub kustomization: ApiResource,
    /// The scratch directory (logs, storage).
    pub work: PathBuf,
    /// Watches kube-apiserver held before the controllers started (its own informers).
    pub apiserver_watches: BTreeMap<crate::steady::Key, f64>,
    /// The source-controller command's {extra_port} (the default command serves webhook
    /// receivers there).
    pub receiver_port: u16,
}

impl Bench {
    /// Starts the control plane, installs the CRDs, starts the git server and both controllers.
    pub async fn start(args: Args, work: &Path) -> Result<Bench, Error> {
        let workloads = args.workloads;
        if workloads {
            eprintln!(
                "[bench] starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler \
                 and kwok ..."
            );
        } else {
            eprintln!("[bench] starting etcd and kube-apiserver ...");
        }
        let plane = tokio::task::spawn_blocking(move || {
            ControlPlane::start(&Options {
                controller_manager: false,
                workloads,
                install_crds: false,
                // The default Service range (a /16) has room for P1's 1000 Services at N=1000.
                extra_apiserver_args: Vec::new(),
            })
        })
        .await
        .map_err(|e| Error::Setting(format!("control plane thread: {e}")))?
        .map_err(Error::ControlPlane)?;
        let crds = args
            .crds
            .clone()
            .unwrap_or_else(|| crate::workspace_root().join("crds"));
        let crds = crds.display().to_string();
        plane
            .run_kubectl(&["apply", "--server-side", "-f", &crds])
            .map_err(Error::ControlPlane)?;
        plane
            .run_kubectl(&[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "-f",
                &crds,
            ])
            .map_err(Error::ControlPlane)?;
        let client = plane.client().await.map_err(Error::ControlPlane)?;
        let apiserver_watches = crate::steady::open_watches(&client).await?;

        eprintln!("[bench] starting the git server ...");
        let git = tokio::task::spawn_blocking(GitServer::start)
            .await
            .map_err(|e| Error::Setting(format!("git server thread: {e}")))?
            .map_err(Error::git("starting the git server"))?;

        let artifact_port = free_port().map_err(Error::ControlPlane)?;
        let kustomize_bin =
            mooring_testkit::tools::tool("kustomize").map_err(|e| Error::Setting(e.to_string()))?;
        let here = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_default();
        let start = |name: &str, template: &str, bin: Option<&PathBuf>| {
            let bin = bin
                .cloned()
                .unwrap_or_else(|| here.join(format!("mooring-{name}")));
            let ops_port = free_port().map_err(Error::ControlPlane)?;
            let extra_port = free_port().map_err(Error::ControlPlane)?;
            let dir = work.join(name);
            let command = fill(
                template,
                &[
                    ("bin", bin.display().to_string()),
                    ("work", dir.display().to_string()),
                    ("artifact_port", artifact_port.to_string()),
                    ("ops_port", ops_port.to_string()),
                    ("extra_port", extra_port.to_string()),
                    ("kubeconfig", plane.kubeconfig().display().to_string()),
                    ("kustomize", kustomize_bin.display().to_string()),
                ],
            )?;
            eprintln!("[bench] starting {name}: {command}");
            let process = ControllerProcess::spawn(name, &command, plane.kubeconfig(), &dir)?;
            Ok::<_, Error>((process, ops_port, extra_port))
        };
        let (source, source_ops, receiver_port) = start(
            "source-controller",
            &args.source_cmd,
            args.source_controller.as_ref(),
        )?;
        let (kustomize, kustomize_ops, _) = start(
            "kustomize-controller",
            &args.kustomize_cmd,
            args.kustomize_controller.as_ref(),
        )?;
        if !args.ready_path.is_empty() {
            source
                .wait_ready(source_ops, &args.ready_path, CONTROLLER_READY)
                .await?;
            kustomize
                .wait_ready(kustomize_ops, &args.ready_path, CONTROLLER_READY)
                .await?;
        }
        let gvk = |group: &str, kind: &str| GroupVersionKind::gvk(group, &args.api_version, kind);
        let gitrepo = ApiResource::from_gvk_with_plural(
            &gvk(&args.source_group, "GitRepository"),
            "gitrepositories",
        );
        let kustomization = ApiResource::from_gvk_with_plural(
            &gvk(&args.kustomize_group, "Kustomization"),
            "kustomizations",
        );
        Ok(Bench {
            args,
            plane,
            git: Arc::new(git),
            client,
            gitrepo,
            kustomization,
            source,
            kustomize,
            work: work.to_path_buf(),
            apiserver_watches,
            receiver_port,
        })
    }

    /// GitRepositories in `ns`.
    pub fn gitrepos(&self, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), ns, &self.gitrepo)
    }

    /// Kustomizations in `ns`.
    pub fn kustomizations(&self, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), ns, &self.kustomization)
    }

    /// The plain-HTTP URL of repository `name` on the git server.
    pub fn git_url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}.git", self.git.http_port())
    }

    /// The controllers, the API server and etcd, by name, for a [`crate::procs::Meter`].
    pub fn metered(&self) -> Vec<(String, u32)> {
        let mut pids = vec![
            (self.source.name.clone(), self.source.pid),
            (self.kustomize.name.clone(), self.kustomize.pid),
        ];
        // ControlPlane::pids lists etcd first, then kube-apiserver.
        let names = ["etcd", "kube-apiserver"];
        pids.extend(
            self.plane
                .pids()
                .into_iter()
                .zip(names)
                .map(|(pid, name)| (name.to_string(), pid)),
        );
        // This process serves git over HTTP and waits for its git http-backend children.
        pids.push(("harness (git server)".to_string(), std::process::id()));
        pids
    }

    /// Fails when a controller has exited, with the tail of its log.
    pub fn check_controllers(&self) -> Result<(), Error> {
        for c in [&self.source, &self.kustomize] {
            if !c.alive() {
                return Err(Error::Controller {
                    name: c.name.clone(),
                    detail: format!("exited; its log:\n{}", c.log_tail(30)),
                });
            }
        }
        Ok(())
    }

    /// Creates namespace `name`.
    pub async fn namespace(&self, name: &str) -> Result<(), Error> {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client.clone());
        let ns = serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))
            .map_err(Error::Encode)?;
        api.create(&PostParams::default(), &ns)
            .await
            .map_err(Error::kube(format!("creating namespace {name}")))?;
        Ok(())
    }
}

/// Replaces `{key}` placeholders; an unknown placeholder is an error.
pub fn fill(template: &str, values: &[(&str, String)]) -> Result<String, Error> {
    let mut out = template.to_string();
    for (key, value) in values {
        out = out.replace(&format!("{{{key}}}"), value);
    }
    if let Some(start) = out.find('{')
        && out[start..].contains('}')
    {
        return Err(Error::Setting(format!(
            "unknown placeholder in command template: {}",
            &out[start..]
        )));
    }
    Ok(out)
}
