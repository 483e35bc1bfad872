//! Upkeep that many passes ask for but that needs to run only now and then: at most once per
//! spacing, with the requests made meanwhile folded into one run.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Runs requested work at most once per `spacing`. The first request runs at once (as a task of
/// its own); one made within `spacing` of the last run's start runs when the spacing has passed,
/// and requests made while that run waits are folded into it.
#[derive(Debug)]
pub struct Spaced {
    spacing: Duration,
    /// A run is waiting for its turn.
    pending: AtomicBool,
    /// When the last run started.
    last: Mutex<Option<Instant>>,
}

impl Spaced {
    /// Runs at least `spacing` apart.
    pub fn new(spacing: Duration) -> Arc<Self> {
        Arc::new(Self {
            spacing,
            pending: AtomicBool::new(false),
            last: Mutex::new(None),
        })
    }

    /// Asks for a run of `work`, spawned on the current runtime. When a run is already waiting,
    /// `work` is dropped and the waiting run stands for it: `work` should read the state it acts
    /// on when it runs, not when it is made.
    pub fn request<F>(self: &Arc<Self>, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if self.pending.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let last = *this.last.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(last) = last {
                tokio::time::sleep_until(last + this.spacing).await;
            }
            // Requests from here on ask for a run of their own.
            this.pending.store(false, Ordering::Release);
            *this.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
            work.await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_request_runs_at_once_and_a_burst_after_it_runs_once_a_spacing_later() {
        let spacing = Duration::from_millis(300);
        let spaced = Spaced::new(spacing);
        let (ran, mut seen) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
        let request = |spaced: &Arc<Spaced>, id: usize| {
            let ran = ran.clone();
            spaced.request(async move {
                let _ = ran.send((id, Instant::now()));
            });
        };
        let start = Instant::now();
        request(&spaced, 0);
        let (id, first) = seen.recv().await.expect("first run");
        assert_eq!(id, 0);
        assert!(first - start < spacing, "the first runs at once");
        for id in 1..=100 {
            request(&spaced, id);
        }
        let (id, second) = seen.recv().await.expect("second run");
        assert_eq!(id, 1, "the burst ran the work of its first request");
        assert!(
            second - first >= spacing,
            "the burst waited for the spacing"
        );
        let more = tokio::time::timeout(3 * spacing, seen.recv()).await;
        assert!(more.is_err(), "the burst of 100 ran once: {more:?}");
        // Long after the last run: at once.
        let asked = Instant::now();
        request(&spaced, 101);
        let (id, third) = seen.recv().await.expect("third run");
        assert_eq!(id, 101);
        assert!(third - asked < spacing);
    }
}
