//! Start-up and shutdown shared by both controller binaries.

use std::future::Future;

use crate::flags::CommonArgs;
use crate::leader;
use crate::server::Readiness;
use crate::shutdown::Shutdown;

/// Errors while starting a controller.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No usable kubeconfig or in-cluster configuration.
    #[error("building the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    /// The leader-election Lease could not be set up.
    #[error("setting up leader election: {0}")]
    LeaderElection(#[source] kube_lease_manager::LeaseManagerError),
}

/// The identity of this replica in leader election: the pod name, else the host name and pid.
pub fn identity() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    })
}

/// Runs `controller` while this replica leads (or always, without leader election), until
/// shutdown is signalled or leadership is lost. `controller` gets a future that resolves when it
/// must stop, and should finish its in-flight work before returning.
///
/// The controller runs as a task of its own on the runtime's workers, not inside the caller's
/// `block_on`: a reconcile woken by a timer or a socket then runs on the worker that saw the
/// event, instead of that worker waking the main thread to poll the whole controller (measured:
/// the idle source-controller's CPU per minute, docs/benchmarks.md). A panic in the controller
/// is resumed here, as it was when the controller ran inline.
pub async fn run_as_leader<F, Fut>(
    client: kube::Client,
    args: &CommonArgs,
    lease_name: &str,
    readiness: Readiness,
    shutdown: Shutdown,
    controller: F,
) -> Result<(), StartError>
where
    F: FnOnce(tokio::sync::watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if !args.leader_elect {
        readiness.set(true);
        let stopper = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                shutdown.wait().await;
                let _ = stop_tx.send(true);
            }
        });
        joined(tokio::spawn(controller(stop_rx)).await);
        stopper.abort();
        return Ok(());
    }
    let namespace = args.lease_namespace();
    // Shards (different label selectors) each need their own Lease.
    let lease_name = match &args.watch_label_selector {
        Some(selector) => format!("{lease_name}-{:08x}", fnv32(selector)),
        None => lease_name.to_string(),
    };
    let lease_name = lease_name.as_str();
    let mut leadership = leader::contend(client, &namespace, lease_name, &identity())
        .await
        .map_err(StartError::LeaderElection)?;
    tracing::info!(lease = %format!("{namespace}/{lease_name}"), "waiting for leadership");
    tokio::select! {
        acquired = leadership.acquired() => {
            if !acquired { return Ok(()); }
        }
        _ = shutdown.clone().wait() => {
            leadership.release().await;
            return Ok(());
        }
    }
    tracing::info!("leading: starting the controller");
    readiness.set(true);
    let mut run = tokio::spawn(controller(stop_rx));
    tokio::select! {
        ended = &mut run => joined(ended),
        _ = shutdown.clone().wait() => {
            let _ = stop_tx.send(true);
            joined(run.await);
        }
        _ = leadership.lost() => {
            tracing::warn!("leadership lost: stopping the controller");
            let _ = stop_tx.send(true);
            joined(run.await);
        }
    }
    readiness.set(false);
    leadership.release().await;
    Ok(())
}

/// Resolves when `stop` becomes true (a controller's shutdown signal).
pub async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Resumes a panic of the controller's task; the task is never cancelled.
fn joined(ended: Result<(), tokio::task::JoinError>) {
    if let Err(error) = ended
        && error.is_panic()
    {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// A small stable hash (FNV-1a) for Lease names.
fn fnv32(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn shard_lease_names_are_stable_and_distinct() {
        assert_eq!(super::fnv32("shard=a"), super::fnv32("shard=a"));
        assert_ne!(super::fnv32("shard=a"), super::fnv32("shard=b"));
    }
}
