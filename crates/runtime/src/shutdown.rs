//! Graceful shutdown on SIGTERM or SIGINT.

use tokio::sync::watch;

/// A shutdown signal that many tasks can wait on.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// The sending side of [`Shutdown`].
#[derive(Debug, Clone)]
pub struct ShutdownTrigger {
    tx: std::sync::Arc<watch::Sender<bool>>,
}

/// A new shutdown signal pair.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (
        ShutdownTrigger {
            tx: std::sync::Arc::new(tx),
        },
        Shutdown { rx },
    )
}

impl ShutdownTrigger {
    /// Signals shutdown to every waiter.
    pub fn trigger(&self) {
        let _ = self.tx.send(true);
    }

    /// Triggers shutdown when the process receives SIGTERM or SIGINT.
    pub fn on_signals(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown requested");
            this.trigger();
        })
    }
}

impl Shutdown {
    /// Resolves once shutdown has been signalled.
    pub async fn wait(mut self) {
        let _ = self.rx.wait_for(|stop| *stop).await;
    }

    /// Whether shutdown has been signalled.
    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }
}

async fn wait_for_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Runs `controller` (a kube-runtime `Controller` run to its end, shutting down gracefully on
/// `shutdown`) until it ends, or until `shutdown` fires while `store` (the controller's primary
/// store) has never been ready.
///
/// A controller runs no reconcile before its store's first list has answered; a graceful
/// shutdown then waits for that list, which a server that never answers holds until the
/// client's read timeout (minutes). With nothing running there is nothing to wait for.
pub async fn run_until_stopped<K>(
    controller: impl std::future::Future<Output = ()>,
    store: kube::runtime::reflector::Store<K>,
    shutdown: impl std::future::Future<Output = ()>,
) where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Default,
{
    use futures::FutureExt;
    let never_ready = async {
        shutdown.await;
        if store.wait_until_ready().now_or_never().is_some() {
            // Ready (or its writer gone): the graceful shutdown decides.
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = controller => {}
        () = never_ready => {
            tracing::warn!(
                kind = %K::kind(&Default::default()),
                "stopping before the first list of the watch answered"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::reflector::store;
    use kube::runtime::watcher::Event;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn a_stop_before_the_first_list_does_not_wait_for_it() {
        let (reader, _writer) = store::<ConfigMap>();
        // The controller of a store never filled: a graceful shutdown of kube-runtime would
        // wait here for good.
        run_until_stopped(std::future::pending(), reader, async {}).await;
    }

    #[tokio::test]
    async fn once_the_store_is_ready_the_controller_finishes_its_work() {
        let (reader, mut writer) = store::<ConfigMap>();
        writer.apply_watcher_event(&Event::InitDone);
        let finished = Arc::new(AtomicBool::new(false));
        let controller = {
            let finished = finished.clone();
            async move {
                tokio::task::yield_now().await;
                finished.store(true, Ordering::SeqCst);
            }
        };
        run_until_stopped(controller, reader, async {}).await;
        assert!(
            finished.load(Ordering::SeqCst),
            "stopped before its work ended"
        );
    }
}
