//! Requeue timing: jittered intervals after success, exponential backoff per object after failure.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The fraction of an interval by which a requeue may be moved earlier or later.
pub const JITTER_FRACTION: f64 = 0.05;

/// `interval` moved by a random amount within ±`fraction` of itself (`unit` in [0, 1)).
///
/// Jitter spreads objects created together so they do not all hit git and the API server at once.
pub fn jittered(interval: Duration, fraction: f64, unit: f64) -> Duration {
    let spread = interval.as_secs_f64() * fraction;
    let offset = spread * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
    Duration::from_secs_f64((interval.as_secs_f64() + offset).max(0.0))
}

/// `interval` with [`JITTER_FRACTION`] of random jitter.
pub fn jittered_interval(interval: Duration) -> Duration {
    jittered(interval, JITTER_FRACTION, rand::random::<f64>())
}

/// The delay before retry number `failures` (1-based): `base` doubled per failure, capped at `max`.
pub fn backoff_delay(failures: u32, base: Duration, max: Duration) -> Duration {
    let exponent = failures.saturating_sub(1).min(20);
    base.saturating_mul(1u32 << exponent).min(max)
}

/// Consecutive failures per object, for exponential backoff (kube-runtime has none per object).
#[derive(Debug)]
pub struct FailureTracker {
    base: Duration,
    max: Duration,
    failures: Mutex<HashMap<String, u32>>,
}

impl FailureTracker {
    /// A tracker whose delays start at `base` and stop growing at `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Records a failure of `key` and returns how long to wait before retrying it.
    pub fn record_failure(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let count = failures.entry(key.to_string()).or_insert(0);
        *count = count.saturating_add(1);
        jittered(
            backoff_delay(*count, self.base, self.max),
            JITTER_FRACTION,
            rand::random::<f64>(),
        )
    }

    /// [`FailureTracker::record_failure`], the delay no longer than `at_most` (with jitter) when
    /// given: an object's own retry bound (e.g. `spec.retryInterval`) holds whatever failed.
    pub fn record_failure_at_most(&self, key: &str, at_most: Option<Duration>) -> Duration {
        let delay = self.record_failure(key);
        match at_most {
            Some(limit) => delay.min(jittered_interval(limit)),
            None => delay,
        }
    }

    /// Forgets the failures of `key` after a success.
    pub fn reset(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// How many consecutive failures `key` has had.
    pub fn failures(&self, key: &str) -> u32 {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_the_fraction() {
        let interval = Duration::from_secs(100);
        assert_eq!(jittered(interval, 0.1, 0.0), Duration::from_secs(90));
        assert_eq!(jittered(interval, 0.1, 0.5), Duration::from_secs(100));
        assert!(jittered(interval, 0.1, 0.999_999) <= Duration::from_secs(110));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(30);
        let delays: Vec<u64> = (1..=7)
            .map(|n| backoff_delay(n, base, max).as_secs())
            .collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff_delay(1000, base, max), max);
    }

    #[test]
    fn tracker_counts_per_object_and_resets() {
        let tracker = FailureTracker::new(Duration::from_secs(1), Duration::from_secs(60));
        tracker.record_failure("ns/a");
        tracker.record_failure("ns/a");
        let third = tracker.record_failure("ns/a");
        assert!(third >= Duration::from_secs_f64(3.8) && third <= Duration::from_secs_f64(4.2));
        assert_eq!(tracker.failures("ns/b"), 0);
        tracker.reset("ns/a");
        assert_eq!(tracker.failures("ns/a"), 0);
    }
}
