//! Reconciles taken in the order they were asked for.
//!
//! kube's controller runs at most `concurrency` reconciles at once and keeps the others in its
//! scheduler, which hands the waiting ones out in no particular order (they sit in a hash set).
//! Under a backlog, such as a cold start of 1,000 objects, an unlucky object waits for the whole
//! backlog: in the benchmark at N=1000, Kustomizations whose artifact came in the first second
//! were applied 55 s later, while the median one was applied 0.5 s after its artifact.
//!
//! A [`Gate`] bounds the passes instead: kube's own limit is lifted (its scheduler then hands
//! every due object out at once, in the order they became due), and each pass waits for a turn
//! at a fair semaphore, first come, first served. kube still never runs two passes of one
//! object at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use kube::runtime::controller::Action;
use tokio::sync::Semaphore;

/// A first-come, first-served limit on passes running at once. Clones share the limit.
#[derive(Clone)]
pub struct Gate {
    turns: Arc<Semaphore>,
}

/// A pass's future, as kube's controller takes it.
pub type PassFuture<E> = Pin<Box<dyn Future<Output = Result<Action, E>> + Send>>;

impl Gate {
    /// A gate letting `concurrency` passes run at once (0: no limit).
    pub fn new(concurrency: u16) -> Gate {
        let permits = match concurrency {
            0 => Semaphore::MAX_PERMITS,
            n => usize::from(n),
        };
        Gate {
            turns: Arc::new(Semaphore::new(permits)),
        }
    }

    /// Waits for a turn; `None` once the gate is closed.
    pub async fn enter(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.turns.clone().acquire_owned().await.ok()
    }

    /// Closes the gate: every pass still waiting ends at once without running, and no pass
    /// starts any more. For shutdown.
    pub fn close(&self) {
        self.turns.close();
    }

    /// `shutdown`, closing the gate when it ends: give it to kube's `graceful_shutdown_on`,
    /// which then waits only for the passes that had their turn.
    pub fn closing(
        &self,
        shutdown: impl Future<Output = ()> + Send + Sync + 'static,
    ) -> impl Future<Output = ()> + Send + Sync + 'static {
        let gate = self.clone();
        async move {
            shutdown.await;
            gate.close();
        }
    }

    /// `reconcile`, each pass of which first waits for its turn here. A pass still waiting when
    /// the gate closes returns [`Action::await_change`] without running (the controller is
    /// stopping).
    pub fn wrap<K, C, E, Fut>(
        &self,
        reconcile: impl Fn(Arc<K>, Arc<C>) -> Fut + Send + Sync + 'static,
    ) -> impl FnMut(Arc<K>, Arc<C>) -> PassFuture<E>
    where
        K: Send + Sync + 'static,
        C: Send + Sync + 'static,
        E: 'static,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
    {
        let gate = self.clone();
        let reconcile = Arc::new(reconcile);
        move |object, ctx| {
            let gate = gate.clone();
            let reconcile = reconcile.clone();
            Box::pin(async move {
                let Some(_turn) = gate.enter().await else {
                    return Ok(Action::await_change());
                };
                // Boxed: a waiting pass then holds a pointer, not the space of a whole pass
                // (a backlog of 1,000 waiting passes cost ~10 MiB unboxed).
                Box::pin(reconcile(object, ctx)).await
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn passes_take_their_turns_in_the_order_they_asked() {
        let gate = Gate::new(1);
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = gate.enter().await.expect("a turn");
        let mut passes: Vec<_> = (0..50)
            .map(|i| {
                let (gate, order) = (gate.clone(), order.clone());
                Box::pin(async move {
                    let _turn = gate.enter().await.expect("a turn");
                    order.lock().expect("order").push(i);
                })
            })
            .collect();
        // Each asks for its turn, in this order, while the first turn is held.
        for pass in passes.iter_mut() {
            assert!(futures::poll!(pass).is_pending());
        }
        drop(first);
        futures::future::join_all(passes).await;
        assert_eq!(*order.lock().expect("order"), (0..50).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn closing_ends_every_wait_without_running_the_pass() {
        let gate = Gate::new(1);
        let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut pass = gate.wrap({
            let ran = ran.clone();
            move |_: Arc<()>, _: Arc<()>| {
                let ran = ran.clone();
                async move {
                    ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Ok::<_, std::io::Error>(Action::await_change())
                }
            }
        });
        let held = gate.enter().await.expect("a turn");
        let waiting: Vec<_> = (0..10)
            .map(|_| tokio::spawn(pass(Arc::new(()), Arc::new(()))))
            .collect();
        gate.closing(async {}).await;
        for task in waiting {
            let action = task.await.expect("join").expect("ok");
            assert_eq!(action, Action::await_change());
        }
        assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 0);
        drop(held);
        assert!(gate.enter().await.is_none(), "a closed gate gives no turn");
    }
}
