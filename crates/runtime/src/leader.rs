//! Leader election on a `coordination.k8s.io/v1` Lease, so that two replicas are safe.

use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;

/// Seconds a Lease is held without renewal before another replica may take it.
pub const LEASE_DURATION_SECONDS: u64 = 15;
/// Seconds before expiry at which the holder renews.
pub const LEASE_GRACE_SECONDS: u64 = 5;

/// A leadership that is being contended for in the background.
pub struct Leadership {
    is_leader: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<kube_lease_manager::Result<LeaseManager>>,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("is_leader", &*self.is_leader.borrow())
            .finish()
    }
}

/// Starts contending for the Lease `name` in `namespace` as `identity`.
pub async fn contend(
    client: kube::Client,
    namespace: &str,
    name: &str,
    identity: &str,
) -> Result<Leadership, kube_lease_manager::LeaseManagerError> {
    let manager = LeaseManagerBuilder::new(client, name)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_duration(LEASE_DURATION_SECONDS)
        .with_grace(LEASE_GRACE_SECONDS)
        .build()
        .await?;
    let (is_leader, task) = manager.watch().await;
    Ok(Leadership { is_leader, task })
}

impl Leadership {
    /// Resolves once this replica holds the Lease.
    pub async fn acquired(&mut self) -> bool {
        self.is_leader.wait_for(|leader| *leader).await.is_ok()
    }

    /// Resolves once this replica has lost the Lease.
    pub async fn lost(&mut self) {
        let _ = self.is_leader.wait_for(|leader| !*leader).await;
    }

    /// Releases the Lease so that another replica can take over at once.
    pub async fn release(self) {
        drop(self.is_leader);
        match self.task.await {
            Ok(Ok(manager)) => {
                if let Err(e) = manager.release().await {
                    tracing::warn!(error = %e, "releasing the leader Lease failed");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "leader election ended with an error"),
            Err(e) => tracing::warn!(error = %e, "leader election task failed"),
        }
    }
}
