//! Ref listings shared by the GitRepositories that ask the same server the same question with
//! the same credentials: one `ls-refs` per (URL, credential, refs asked for) per interval
//! window, however many objects use it.
//!
//! The key holds a digest of the credential material (the Secret's data, the proxy's), never
//! the material itself, and objects with different credentials never share: a listing made
//! with one tenant's token is not an answer for another's.
//!
//! Concurrent askers of one key wait for the one listing under way (single flight) instead of
//! each listing for themselves. No lock is held while a listing talks to the server: a waiter
//! waits on a condition variable and gives up when its pass is cancelled (its time limit ran
//! out), and when the listing under way fails or is abandoned, one waiter lists in its place.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::GitError;
use super::refs::RemoteRef;

/// Slots kept before unused ones are dropped.
const MAX_SLOTS: usize = 4096;

/// How often a waiter looks at its cancel flag.
const CANCEL_POLL: Duration = Duration::from_millis(100);

/// What a listing is shared by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListingKey {
    /// The URL as the GitRepository writes it.
    pub url: String,
    /// A digest of the credential material (empty: none).
    pub credential: String,
    /// The refs asked for.
    pub refspecs: Vec<String>,
}

#[derive(Default)]
struct State {
    /// The last listing and when it was started.
    listed: Option<(Instant, Vec<RemoteRef>)>,
    /// A listing is under way.
    listing: bool,
    /// When the listings of this slot were last declared out of date: a listing started
    /// before that is not kept.
    invalidated: Option<Instant>,
}

#[derive(Default)]
struct Slot {
    state: Mutex<State>,
    /// Signalled when a listing ends, however it ends.
    done: Condvar,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Ends a listing under way, also when the lister fails or panics: waiters are woken either
/// way, and one of them lists when this one left nothing.
struct Listing<'a> {
    slot: &'a Slot,
    started: Instant,
    refs: Option<Vec<RemoteRef>>,
}

impl Drop for Listing<'_> {
    fn drop(&mut self) {
        let mut state = self.slot.lock();
        state.listing = false;
        let current = state.invalidated.is_none_or(|at| self.started >= at);
        if let Some(refs) = self.refs.take().filter(|_| current) {
            state.listed = Some((self.started, refs));
        }
        drop(state);
        self.slot.done.notify_all();
    }
}

/// The shared listings of one process.
#[derive(Default)]
pub struct RefListings {
    slots: Mutex<HashMap<ListingKey, Arc<Slot>>>,
    /// Listings made (asked of a server) and listings reused.
    counts: Option<(prometheus::IntCounter, prometheus::IntCounter)>,
}

impl std::fmt::Debug for RefListings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefListings").finish_non_exhaustive()
    }
}

impl RefListings {
    /// Shared listings counting into `made` (a listing asked of a server) and `reused`.
    pub fn counted(made: prometheus::IntCounter, reused: prometheus::IntCounter) -> Self {
        Self {
            slots: Mutex::default(),
            counts: Some((made, reused)),
        }
    }

    /// Forgets every listing of `url`, whatever the credential: the next asker lists again
    /// (a webhook announced a change). Never waits for a listing under way.
    pub fn invalidate_url(&self, url: &str) {
        let slots: Vec<Arc<Slot>> = {
            let map = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            map.iter()
                .filter(|(k, _)| k.url == url)
                .map(|(_, s)| s.clone())
                .collect()
        };
        for slot in slots {
            let mut state = slot.lock();
            state.listed = None;
            state.invalidated = Some(Instant::now());
        }
    }

    /// The refs for `key`: a listing at most `max_age` old, or a new one made by `list` (also
    /// when `max_age` is `None`). Blocking: waits for a listing of the same key under way,
    /// until it ends or `cancel` is set (then [`GitError::Cancelled`] naming `url`, which is
    /// the redacted URL).
    pub(crate) fn get_or_list(
        &self,
        key: ListingKey,
        max_age: Option<Duration>,
        cancel: &AtomicBool,
        url: &str,
        list: impl FnOnce() -> Result<Vec<RemoteRef>, GitError>,
    ) -> Result<Vec<RemoteRef>, GitError> {
        let slot = self.slot(key);
        let asked = Instant::now();
        let mut state = slot.lock();
        loop {
            // A listing started after this asker came is fresh enough whatever `max_age`
            // says: it is the listing this asker would have made.
            let fresh = |at: &Instant| *at >= asked || max_age.is_some_and(|m| at.elapsed() < m);
            if let Some((at, refs)) = &state.listed
                && fresh(at)
            {
                if let Some((_, reused)) = &self.counts {
                    reused.inc();
                }
                return Ok(refs.clone());
            }
            if !state.listing {
                break;
            }
            if cancel.load(Ordering::Relaxed) {
                return Err(GitError::Cancelled {
                    operation: "waiting for a shared ref listing",
                    url: url.to_owned(),
                });
            }
            state = slot
                .done
                .wait_timeout(state, CANCEL_POLL)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.listing = true;
        drop(state);
        let mut listing = Listing {
            slot: &slot,
            started: Instant::now(),
            refs: None,
        };
        if let Some((made, _)) = &self.counts {
            made.inc();
        }
        let refs = list()?;
        listing.refs = Some(refs.clone());
        Ok(refs)
    }

    /// [`RefListings::get_or_list`] for an async caller, which never waits: the refs of a
    /// listing at most `max_age` old, or of a new one made by `list`. `None` when another
    /// listing of the key is under way (the caller then waits for it with `get_or_list`) or
    /// when `list` gave nothing (a waiter, or the caller, then lists in its place).
    pub(crate) async fn get_or_list_async(
        &self,
        key: ListingKey,
        max_age: Option<Duration>,
        list: impl Future<Output = Option<Vec<RemoteRef>>>,
    ) -> Option<Vec<RemoteRef>> {
        let slot = self.slot(key);
        {
            let mut state = slot.lock();
            if let Some((at, refs)) = &state.listed
                && max_age.is_some_and(|m| at.elapsed() < m)
            {
                if let Some((_, reused)) = &self.counts {
                    reused.inc();
                }
                return Some(refs.clone());
            }
            if state.listing {
                return None;
            }
            state.listing = true;
        }
        let mut listing = Listing {
            slot: &slot,
            started: Instant::now(),
            refs: None,
        };
        // Counted when it gave refs: otherwise the lister that takes over counts its own.
        let refs = list.await?;
        if let Some((made, _)) = &self.counts {
            made.inc();
        }
        listing.refs = Some(refs.clone());
        Some(refs)
    }

    /// The slot of `key`, made on first use.
    fn slot(&self, key: ListingKey) -> Arc<Slot> {
        let mut map = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_SLOTS && !map.contains_key(&key) {
            map.retain(|_, s| Arc::strong_count(s) > 1);
        }
        map.entry(key).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    static NO: AtomicBool = AtomicBool::new(false);
    const HOUR: Option<Duration> = Some(Duration::from_secs(3600));

    fn key(url: &str, credential: &str) -> ListingKey {
        ListingKey {
            url: url.into(),
            credential: credential.into(),
            refspecs: vec!["refs/heads/main".into()],
        }
    }

    #[test]
    fn a_fresh_listing_is_shared_by_key_and_never_across_credentials() {
        let listings = RefListings::default();
        let calls = Cell::new(0);
        let list = || {
            calls.set(calls.get() + 1);
            Ok(Vec::new())
        };
        let hour = Some(Duration::from_secs(3600));
        listings
            .get_or_list(key("u", "a"), hour, &NO, "u", list)
            .expect("list");
        listings
            .get_or_list(key("u", "a"), hour, &NO, "u", list)
            .expect("list");
        assert_eq!(calls.get(), 1, "shared within the window");
        listings
            .get_or_list(key("u", "b"), hour, &NO, "u", list)
            .expect("list");
        assert_eq!(calls.get(), 2, "another credential lists for itself");
        listings
            .get_or_list(key("u", "a"), None, &NO, "u", list)
            .expect("list");
        assert_eq!(calls.get(), 3, "no max age: a new listing");
        listings.invalidate_url("u");
        listings
            .get_or_list(key("u", "b"), hour, &NO, "u", list)
            .expect("list");
        assert_eq!(calls.get(), 4, "invalidated");
    }

    #[test]
    fn a_failed_listing_is_not_kept() {
        let listings = RefListings::default();
        let hour = Some(Duration::from_secs(3600));
        let failed = listings.get_or_list(key("u", "a"), hour, &NO, "u", || {
            Err(GitError::EmptyRepository { url: "u".into() })
        });
        assert!(failed.is_err());
        let calls = Cell::new(0);
        listings
            .get_or_list(key("u", "a"), hour, &NO, "u", || {
                calls.set(1);
                Ok(Vec::new())
            })
            .expect("list");
        assert_eq!(calls.get(), 1);
    }

    /// Starts a listing of key ("u", "a") on another thread that holds until `release` is
    /// sent, and returns once it is under way.
    fn held_listing(
        listings: &Arc<RefListings>,
        outcome: Result<Vec<RemoteRef>, GitError>,
    ) -> (
        std::sync::mpsc::Sender<()>,
        std::thread::JoinHandle<Result<Vec<RemoteRef>, GitError>>,
    ) {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (started, under_way) = std::sync::mpsc::channel::<()>();
        let listings = listings.clone();
        let lister = std::thread::spawn(move || {
            listings.get_or_list(key("u", "a"), None, &NO, "u", || {
                started.send(()).expect("started");
                wait.recv().expect("release");
                outcome
            })
        });
        under_way.recv().expect("the listing started");
        (release, lister)
    }

    fn refs(name: &str) -> Vec<RemoteRef> {
        vec![RemoteRef {
            name: name.into(),
            commit: Some("0".repeat(40)),
            symref_target: None,
        }]
    }

    #[test]
    fn a_waiter_takes_the_listing_under_way_instead_of_making_its_own() {
        let listings = Arc::new(RefListings::default());
        let (release, lister) = held_listing(&listings, Ok(refs("refs/heads/main")));
        let waiter = {
            let listings = listings.clone();
            std::thread::spawn(move || {
                listings.get_or_list(key("u", "a"), HOUR, &NO, "u", || {
                    panic!("the waiter must not list")
                })
            })
        };
        release.send(()).expect("release");
        let listed = lister.join().expect("lister").expect("listed");
        let shared = waiter.join().expect("waiter").expect("shared");
        assert_eq!(listed, shared);
    }

    #[test]
    fn a_waiter_gives_up_when_cancelled_and_holds_no_lock_while_waiting() {
        let listings = Arc::new(RefListings::default());
        let (release, lister) = held_listing(&listings, Ok(refs("refs/heads/main")));
        let cancel = Arc::new(AtomicBool::new(false));
        let waiter = {
            let listings = listings.clone();
            let cancel = cancel.clone();
            std::thread::spawn(move || {
                listings.get_or_list(key("u", "a"), None, &cancel, "https://***@host/r", || {
                    panic!("the waiter must not list")
                })
            })
        };
        // Invalidation (a webhook, on an async thread) never waits for the listing.
        listings.invalidate_url("u");
        cancel.store(true, Ordering::Relaxed);
        let given_up = waiter.join().expect("waiter");
        assert!(
            matches!(&given_up, Err(GitError::Cancelled { url, .. }) if url == "https://***@host/r"),
            "{given_up:?}"
        );
        release.send(()).expect("release");
        lister.join().expect("lister").expect("listed");
        // The listing started before the invalidation: it is not kept for later askers.
        let calls = Cell::new(0);
        listings
            .get_or_list(
                key("u", "a"),
                Some(Duration::from_secs(3600)),
                &NO,
                "u",
                || {
                    calls.set(calls.get() + 1);
                    Ok(Vec::new())
                },
            )
            .expect("list");
        assert_eq!(
            calls.get(),
            1,
            "a listing from before the invalidation was reused"
        );
    }

    #[test]
    fn when_the_listing_under_way_fails_a_waiter_lists_in_its_place() {
        let listings = Arc::new(RefListings::default());
        let failure = Err(GitError::EmptyRepository { url: "u".into() });
        let (release, lister) = held_listing(&listings, failure);
        let waiter = {
            let listings = listings.clone();
            std::thread::spawn(move || {
                listings.get_or_list(key("u", "a"), None, &NO, "u", || Ok(refs("refs/tags/v1")))
            })
        };
        release.send(()).expect("release");
        assert!(lister.join().expect("lister").is_err());
        let own = waiter
            .join()
            .expect("waiter")
            .expect("the waiter's own listing");
        assert_eq!(own, refs("refs/tags/v1"));
    }

    /// Polls `future` once (the futures here never wait on anything but the test).
    fn now<T>(future: impl Future<Output = T>) -> T {
        let mut future = std::pin::pin!(future);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(value) => value,
            std::task::Poll::Pending => panic!("the future waited"),
        }
    }

    #[test]
    fn an_async_asker_shares_fresh_listings_and_never_waits_for_one_under_way() {
        let listings = Arc::new(RefListings::default());
        // A listing made here is shared with the blocking askers, and the other way round.
        let made = now(listings
            .get_or_list_async(key("u", "a"), HOUR, async { Some(refs("refs/heads/main")) }));
        assert_eq!(made, Some(refs("refs/heads/main")));
        let shared = listings
            .get_or_list(key("u", "a"), HOUR, &NO, "u", || panic!("shared"))
            .expect("shared");
        assert_eq!(shared, refs("refs/heads/main"));
        let again = now(listings.get_or_list_async(key("u", "a"), HOUR, async {
            panic!("a fresh listing is reused")
        }));
        assert_eq!(again, Some(refs("refs/heads/main")));
        // No max age: a new listing, as for the blocking asker.
        let new = now(listings
            .get_or_list_async(key("u", "a"), None, async { Some(refs("refs/heads/next")) }));
        assert_eq!(new, Some(refs("refs/heads/next")));

        // Another asker's listing under way: `None` at once, and the blocking asker waits.
        let (release, lister) = held_listing(&listings, Ok(refs("refs/tags/v2")));
        let under_way = now(listings.get_or_list_async(key("u", "a"), None, async {
            panic!("must not list while another listing is under way")
        }));
        assert_eq!(under_way, None);
        release.send(()).expect("release");
        lister.join().expect("lister").expect("listed");
    }

    #[test]
    fn an_async_listing_that_gives_nothing_is_taken_over_by_the_next_asker() {
        let listings = RefListings::default();
        let failed = now(listings.get_or_list_async(key("u", "a"), HOUR, async { None }));
        assert_eq!(failed, None);
        // The slot is free again and nothing was kept: the blocking asker lists.
        let calls = Cell::new(0);
        let listed = listings
            .get_or_list(key("u", "a"), HOUR, &NO, "u", || {
                calls.set(calls.get() + 1);
                Ok(refs("refs/heads/main"))
            })
            .expect("list");
        assert_eq!((calls.get(), listed), (1, refs("refs/heads/main")));
    }
}
