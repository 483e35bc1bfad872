//! `make run`: a local control plane with Mooring's CRDs where workloads run (kube-scheduler and
//! kwok's simulated Nodes next to kube-controller-manager), a git server holding
//! `examples/sample-app`, both controllers as processes, and the example GitRepository and
//! Kustomization applied. Ctrl-C stops everything.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use mooring_testkit::control_plane::{ControlPlane, Options, WORKLOAD_NODES};
use mooring_testkit::controllers::{self, Controllers};
use mooring_testkit::examples;
use mooring_testkit::git::{Auth, GitServer, Repo};
use mooring_testkit::tools::tools_dir;

/// How long the sample may take to become Ready before `make run` says so.
const READY_TIMEOUT: Duration = Duration::from_secs(180);
/// Namespace and name of the example objects.
const NAMESPACE: &str = "default";
const NAME: &str = "sample";

/// Everything `make run` started; the fields drop (and stop) in this order.
struct Running {
    controllers: Controllers,
    repo: Repo,
    _git: GitServer,
    plane: ControlPlane,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    let running = tokio::select! {
        running = start() => running?,
        signal = stop_signal() => {
            eprintln!("[run] {signal} during start-up: stopping ...");
            return Ok(());
        }
    };
    print_usage(&running);
    tokio::select! {
        ready = wait_ready(&running, started) => {
            if let Err(e) = ready {
                eprintln!("[run] {e:#}\n{}", running.controllers.log_tails());
                eprintln!("[run] everything stays up for inspection; Ctrl-C stops it");
            }
        }
        signal = stop_signal() => {
            eprintln!("[run] {signal}: stopping ...");
            return Ok(());
        }
    }
    let signal = stop_signal().await;
    eprintln!("[run] {signal}: stopping the controllers, the git server and the control plane ...");
    drop(running);
    eprintln!("[run] stopped");
    Ok(())
}

async fn start() -> anyhow::Result<Running> {
    let started = Instant::now();
    eprintln!(
        "[run] starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok ..."
    );
    let plane = tokio::task::spawn_blocking(|| {
        ControlPlane::start(&Options {
            workloads: true,
            ..Options::default()
        })
    })
    .await??;
    eprintln!(
        "[run] control plane ready with {WORKLOAD_NODES} simulated Nodes, CRDs installed ({:.1}s)",
        started.elapsed().as_secs_f64()
    );
    let git = tokio::task::spawn_blocking(GitServer::start).await??;
    let repo = git.create_repo(NAME, Auth::None)?;
    let files = examples::sample_app_files()?;
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(path, content)| (path.as_str(), content.as_str()))
        .collect();
    let commit = repo.commit(&files, "the sample app")?;
    eprintln!(
        "[run] git server up: {} at {}",
        repo.http_url(),
        &commit[..12.min(commit.len())]
    );
    let kubeconfig = plane.kubeconfig().to_path_buf();
    let controllers = tokio::task::spawn_blocking(move || {
        Controllers::start(&controllers::Options::local(&kubeconfig))
    })
    .await??;
    eprintln!("[run] controllers started");
    let manifests = examples::example_manifests(repo.http_url())?;
    plane
        .run_kubectl_with_input(&["apply", "-n", NAMESPACE, "-f", "-"], &manifests)
        .context("applying examples/gitrepository.yaml and examples/kustomization.yaml")?;
    eprintln!(
        "[run] applied the example GitRepository and Kustomization ({:.1}s since start)",
        started.elapsed().as_secs_f64()
    );
    Ok(Running {
        controllers,
        repo,
        _git: git,
        plane,
    })
}

async fn wait_ready(running: &Running, started: Instant) -> anyhow::Result<()> {
    let applied = Instant::now();
    let client = running.plane.client().await?;
    let api = kube::Api::namespaced(client, NAMESPACE);
    let ks = examples::wait_ready(&api, NAME, READY_TIMEOUT).await?;
    let revision = ks
        .status
        .and_then(|s| s.last_applied_revision)
        .unwrap_or_default();
    println!(
        "Kustomization {NAMESPACE}/{NAME} is Ready at {revision}: {:.1}s after the apply, {:.1}s \
         after start (with `wait: true`: the Deployment has rolled out).",
        applied.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    // What `kubectl get pods` shows the user: the sample's Pods, Running on simulated Nodes.
    let pods = running.plane.run_kubectl(&[
        "get",
        "pods",
        "-n",
        NAMESPACE,
        "-l",
        &format!("app.kubernetes.io/name={NAME}"),
        "-o",
        "wide",
    ])?;
    println!("kubectl get pods -n {NAMESPACE} -o wide:");
    print!("{pods}");
    println!("Press Ctrl-C to stop everything.");
    Ok(())
}

fn print_usage(running: &Running) {
    let logs = running.controllers.dir();
    println!();
    println!("Mooring is running locally:");
    println!(
        "  control plane  {} (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok \
         with {WORKLOAD_NODES} simulated Nodes)",
        running.plane.server()
    );
    println!("  git server     {}", running.repo.http_url());
    println!("  controller logs  {}/mooring-*.log", logs.display());
    println!();
    println!("Watch the sample become Ready (in another terminal):");
    println!(
        "  export KUBECONFIG={}",
        running.plane.kubeconfig().display()
    );
    println!("  export PATH={}/bin:$PATH", tools_dir().display());
    println!("  kubectl get gitrepo,ks -A -w");
    println!("  kubectl get deploy,pods -n {NAMESPACE}   (Pods run on kwok's simulated Nodes)");
    println!();
    println!("Change the sample and have it applied now rather than at the next interval:");
    println!("  git clone {} sample", running.repo.path().display());
    println!("  (edit, commit, git push)");
    println!(
        "  kubectl annotate -n {NAMESPACE} gitrepository {NAME} --overwrite \
         reconcile.mooring.dev/requestedAt=\"$(date +%s)\""
    );
    println!();
    // `cargo build --bins` put the `mooring` command (and `kubectl-mooring`) next to this binary.
    let bins = controllers::bin_dir().unwrap_or_default();
    println!(
        "Or with the mooring command (docs/cli.md), also `kubectl mooring` with the same PATH:"
    );
    println!("  export PATH={}:$PATH", bins.display());
    println!("  mooring get all -A");
    println!("  mooring -n {NAMESPACE} reconcile kustomization {NAME} --with-source");
    println!("  mooring -n {NAMESPACE} tree kustomization {NAME}");
    println!("  mooring -n {NAMESPACE} trace configmap sample-config");
    println!("  mooring -n {NAMESPACE} history kustomization {NAME}");
    println!("  mooring -n {NAMESPACE} why kustomization {NAME}");
    println!("  mooring -n {NAMESPACE} events");
    println!();
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM, naming the signal.
async fn stop_signal() -> &'static str {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "interrupt";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupt",
        _ = term.recv() => "terminated",
    }
}
