//! `make run`: a local control plane with Mooring's CRDs, for trying Mooring by hand.

use mooring_testkit::control_plane::{ControlPlane, Options};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    eprintln!("[run] starting etcd and kube-apiserver ...");
    let plane = tokio::task::spawn_blocking(|| {
        ControlPlane::start(&Options {
            controller_manager: true,
            ..Options::default()
        })
    })
    .await??;
    eprintln!(
        "[run] control plane ready in {:.1}s, CRDs installed",
        started.elapsed().as_secs_f64()
    );
    let kubectl = mooring_testkit::tools::tool("kubectl")?;
    println!();
    println!("Point kubectl at the local control plane:");
    println!("  export KUBECONFIG={}", plane.kubeconfig().display());
    println!("  alias kubectl={}", kubectl.display());
    println!("  kubectl get gitrepositories,kustomizations -A");
    println!();
    println!("Press Ctrl-C to stop everything.");
    tokio::signal::ctrl_c().await?;
    eprintln!("[run] stopping ...");
    drop(plane);
    Ok(())
}
