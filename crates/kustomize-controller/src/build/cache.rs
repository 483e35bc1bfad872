//! Build outputs shared by key: the Kustomizations that build the same path of the same
//! artifact with the same overrides (and the same decryption keys) run kustomize once, and a
//! pass whose build input did not change runs it not at all, even when its Kustomization's
//! own remembered render was dropped (a spec change that does not touch the build, a failure).
//!
//! Substitution (`postBuild`) comes after the build, on its output, so Kustomizations that
//! differ only in their variables share one build. The key holds the decryption keys'
//! fingerprint: a decrypted output is only ever handed to a Kustomization that holds the same
//! keys. Concurrent requests for one key wait for one build. Outputs are kept up to a byte
//! budget, least recently used first out.
//!
//! A failed build is not kept as an output. Its message is, for [`FAILURE_KEPT_FOR`], when
//! running the build again would fail the same way ([`super::BuildError::repeats`]): the
//! retries of a Kustomization whose kustomization.yaml is broken then do not run kustomize
//! each time for the same input. A new revision, a spec change that touches the build, or a
//! reconcile request builds again at once.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::{BuildInput, Built};

/// The identity of a build: sha256 of everything its output depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BuildKey([u8; 32]);

impl BuildKey {
    /// The key of `input` building the artifact whose digest is `artifact_digest`.
    pub fn of(artifact_digest: &str, input: &BuildInput) -> Self {
        #[derive(Serialize)]
        struct Parts<'a> {
            artifact: &'a str,
            path: &'a str,
            overrides: &'a super::kustomization::Overrides,
            ignore_missing_components: bool,
            allow_remote_bases: bool,
            max_objects: usize,
            decryption: Option<String>,
        }
        let overrides = input.overrides();
        let parts = Parts {
            artifact: artifact_digest,
            path: &input.path,
            overrides: &overrides,
            ignore_missing_components: input.ignore_missing_components,
            allow_remote_bases: input.allow_remote_bases,
            max_objects: input.max_objects,
            decryption: input
                .decryption
                .as_ref()
                .map(|k| hex::encode(k.fingerprint())),
        };
        // Serializing plain data cannot fail; an empty text would still be a stable key.
        let text = serde_json::to_vec(&parts).unwrap_or_default();
        Self(Sha256::digest(&text).into())
    }
}

struct Slot {
    cell: Arc<OnceCell<Arc<Built>>>,
    /// When it was last asked for (a counter, not a clock).
    used: u64,
}

#[derive(Default)]
struct Slots {
    slots: HashMap<BuildKey, Slot>,
    tick: u64,
}

/// How long the message of a failed build is given again instead of running the build.
pub const FAILURE_KEPT_FOR: Duration = Duration::from_secs(600);

/// The most failures kept; past it the oldest go first.
const MAX_FAILURES: usize = 4096;

/// Build outputs by [`BuildKey`], within a byte budget, and the failures that would repeat.
pub struct BuildCache {
    budget: usize,
    slots: Mutex<Slots>,
    failures: Mutex<HashMap<BuildKey, (Arc<str>, Instant)>>,
}

impl std::fmt::Debug for BuildCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The outputs may hold decrypted values: show only the sizes.
        f.debug_struct("BuildCache")
            .field("budget", &self.budget)
            .field("bytes", &self.bytes())
            .finish_non_exhaustive()
    }
}

/// The bytes an output takes.
fn size(built: &Built) -> usize {
    built.yaml.len() + built.revealed.iter().map(String::len).sum::<usize>()
}

impl BuildCache {
    /// A cache keeping at most `budget` bytes of outputs (0: keeps none, but concurrent
    /// requests for one key still share one build).
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            slots: Mutex::new(Slots::default()),
            failures: Mutex::default(),
        }
    }

    /// The message of the build of `key` that failed less than [`FAILURE_KEPT_FOR`] ago in a
    /// way that would repeat ([`BuildCache::failed`]).
    pub fn failure(&self, key: BuildKey) -> Option<Arc<str>> {
        let failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        failures
            .get(&key)
            .filter(|(_, at)| at.elapsed() < FAILURE_KEPT_FOR)
            .map(|(message, _)| message.clone())
    }

    /// Records that the build of `key` failed with `message`, and that running it again would
    /// fail the same way. Drops the failures older than [`FAILURE_KEPT_FOR`].
    pub fn failed(&self, key: BuildKey, message: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        failures.retain(|_, (_, at)| at.elapsed() < FAILURE_KEPT_FOR);
        if failures.len() >= MAX_FAILURES
            && let Some(oldest) = failures
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| *k)
        {
            failures.remove(&oldest);
        }
        failures.insert(key, (Arc::from(message), Instant::now()));
    }

    /// Forgets the failure of `key`, if one is kept: its build ran and succeeded.
    fn succeeded(&self, key: BuildKey) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        failures.remove(&key);
    }

    /// The output for `key`: kept, being built by another caller (waited for), or built now
    /// by `build`.
    pub async fn get_or_build<F, Fut, E>(&self, key: BuildKey, build: F) -> Result<Arc<Built>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Built, E>>,
    {
        let cell = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            slots.tick += 1;
            let tick = slots.tick;
            let slot = slots.slots.entry(key).or_insert_with(|| Slot {
                cell: Arc::default(),
                used: tick,
            });
            slot.used = tick;
            slot.cell.clone()
        };
        let built = cell
            .get_or_try_init(|| async {
                let built = build().await?;
                self.succeeded(key);
                Ok(Arc::new(built))
            })
            .await?
            .clone();
        self.trim();
        Ok(built)
    }

    /// Bytes of the outputs kept.
    pub fn bytes(&self) -> usize {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots
            .slots
            .values()
            .filter_map(|s| s.cell.get())
            .map(|b| size(b))
            .sum()
    }

    /// How many outputs are kept.
    pub fn len(&self) -> usize {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots
            .slots
            .values()
            .filter(|s| s.cell.initialized())
            .count()
    }

    /// Whether no output is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops slots whose build failed or was abandoned, then the least recently used outputs
    /// until the rest fit the budget.
    fn trim(&self) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        // An empty slot nobody waits on: its build failed or its caller went away.
        slots
            .slots
            .retain(|_, s| s.cell.initialized() || Arc::strong_count(&s.cell) > 1);
        let mut kept: Vec<(u64, BuildKey, usize)> = slots
            .slots
            .iter()
            .filter_map(|(k, s)| s.cell.get().map(|b| (s.used, *k, size(b))))
            .collect();
        let mut total: usize = kept.iter().map(|(_, _, n)| n).sum();
        kept.sort_by_key(|(used, _, _)| *used);
        for (_, key, bytes) in kept {
            if total <= self.budget {
                break;
            }
            slots.slots.remove(&key);
            total -= bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn key(n: u8) -> BuildKey {
        BuildKey([n; 32])
    }

    fn built(text: &str) -> Built {
        Built {
            yaml: text.to_string(),
            revealed: Vec::new(),
        }
    }

    #[tokio::test]
    async fn one_build_per_key_and_failures_are_not_kept() {
        let cache = BuildCache::new(1024);
        let runs = AtomicUsize::new(0);
        let build = |text: &'static str| {
            let runs = &runs;
            move || async move {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok::<_, String>(built(text))
            }
        };
        let (a, b) = tokio::join!(
            cache.get_or_build(key(1), build("a")),
            cache.get_or_build(key(1), build("a"))
        );
        assert_eq!(a.expect("a").yaml, "a");
        assert_eq!(b.expect("b").yaml, "a");
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "concurrent requests share one build"
        );
        cache.get_or_build(key(1), build("a")).await.expect("kept");
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "a kept output is not built again"
        );

        let failed = cache
            .get_or_build(key(2), || async { Err::<Built, _>("kustomize failed") })
            .await;
        assert!(failed.is_err());
        cache
            .get_or_build(key(2), build("b"))
            .await
            .expect("retried");
        assert_eq!(runs.load(Ordering::SeqCst), 2, "a failed build runs again");
    }

    #[tokio::test]
    async fn a_failure_that_would_repeat_is_given_again_until_its_key_builds() {
        let cache = BuildCache::new(1024);
        assert!(cache.failure(key(1)).is_none());
        cache.failed(key(1), "invalid kustomization");
        assert_eq!(
            cache.failure(key(1)).as_deref(),
            Some("invalid kustomization")
        );
        assert!(cache.failure(key(2)).is_none(), "per key");
        cache
            .get_or_build(key(1), || async { Ok::<_, ()>(built("fixed")) })
            .await
            .expect("build");
        assert!(cache.failure(key(1)).is_none(), "a success forgets it");
    }

    #[test]
    fn at_most_so_many_failures_are_kept_the_oldest_going_first() {
        let cache = BuildCache::new(0);
        let key_of = |n: usize| BuildKey(Sha256::digest(n.to_le_bytes()).into());
        for n in 0..MAX_FAILURES + 10 {
            cache.failed(key_of(n), "broken");
        }
        assert!(cache.failure(key_of(0)).is_none(), "the oldest went");
        assert!(cache.failure(key_of(MAX_FAILURES + 9)).is_some());
        let kept = cache.failures.lock().expect("lock").len();
        assert_eq!(kept, MAX_FAILURES);
    }

    #[tokio::test]
    async fn the_least_recently_used_outputs_leave_first_within_the_budget() {
        let cache = BuildCache::new(10);
        let text = |t: &'static str| move || async move { Ok::<_, String>(built(t)) };
        cache.get_or_build(key(1), text("aaaa")).await.expect("1");
        cache.get_or_build(key(2), text("bbbb")).await.expect("2");
        cache
            .get_or_build(key(1), text("aaaa"))
            .await
            .expect("1 again");
        cache.get_or_build(key(3), text("cccc")).await.expect("3");
        assert_eq!(cache.bytes(), 8);
        assert_eq!(cache.len(), 2);
        let rebuilt = AtomicUsize::new(0);
        cache
            .get_or_build(key(2), || async {
                rebuilt.fetch_add(1, Ordering::SeqCst);
                Ok::<_, String>(built("bbbb"))
            })
            .await
            .expect("2 again");
        assert_eq!(
            rebuilt.load(Ordering::SeqCst),
            1,
            "2 was the least recently used"
        );
    }

    #[test]
    fn the_key_follows_the_artifact_the_path_the_overrides_and_the_keys() {
        let base = BuildInput::new("/a", "/k");
        let mut other_path = base.clone();
        other_path.path = "apps".into();
        let mut prefixed = base.clone();
        prefixed.name_prefix = Some("p-".into());
        let same = BuildKey::of("sha256:1", &base);
        assert_eq!(same, BuildKey::of("sha256:1", &base.clone()));
        assert_ne!(same, BuildKey::of("sha256:2", &base));
        assert_ne!(same, BuildKey::of("sha256:1", &other_path));
        assert_ne!(same, BuildKey::of("sha256:1", &prefixed));
        // Where the artifact was extracted and the timeout do not change the output.
        let mut moved = BuildInput::new("/elsewhere", "/k");
        moved.timeout = std::time::Duration::from_secs(1);
        assert_eq!(same, BuildKey::of("sha256:1", &moved));
    }
}
