//! Ref listings shared by the GitRepositories that ask the same server the same question with
//! the same credentials: one `ls-refs` per (URL, credential, refs asked for) per interval
//! window, however many objects use it.
//!
//! The key holds a digest of the credential material (the Secret's data, the proxy's), never
//! the material itself, and objects with different credentials never share: a listing made
//! with one tenant's token is not an answer for another's.
//!
//! Concurrent askers of one key wait for the one listing under way (single flight) instead of
//! each listing for themselves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::GitError;
use super::refs::RemoteRef;

/// Slots kept before unused ones are dropped.
const MAX_SLOTS: usize = 4096;

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
struct Slot {
    listed: Option<(Instant, Vec<RemoteRef>)>,
}

/// The shared listings of one process.
#[derive(Default)]
pub struct RefListings {
    slots: Mutex<HashMap<ListingKey, Arc<Mutex<Slot>>>>,
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
    /// (a webhook announced a change).
    pub fn invalidate_url(&self, url: &str) {
        let slots: Vec<Arc<Mutex<Slot>>> = {
            let map = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            map.iter()
                .filter(|(k, _)| k.url == url)
                .map(|(_, s)| s.clone())
                .collect()
        };
        for slot in slots {
            slot.lock().unwrap_or_else(PoisonError::into_inner).listed = None;
        }
    }

    /// The refs for `key`: a listing at most `max_age` old, or a new one made by `list` (also
    /// when `max_age` is `None`). Blocking: waits for a listing of the same key under way.
    pub(crate) fn get_or_list(
        &self,
        key: ListingKey,
        max_age: Option<Duration>,
        list: impl FnOnce() -> Result<Vec<RemoteRef>, GitError>,
    ) -> Result<Vec<RemoteRef>, GitError> {
        let slot = {
            let mut map = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            if map.len() >= MAX_SLOTS && !map.contains_key(&key) {
                map.retain(|_, s| Arc::strong_count(s) > 1);
            }
            map.entry(key).or_default().clone()
        };
        let mut held = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let (Some(max_age), Some((at, refs))) = (max_age, &held.listed)
            && at.elapsed() < max_age
        {
            if let Some((_, reused)) = &self.counts {
                reused.inc();
            }
            return Ok(refs.clone());
        }
        if let Some((made, _)) = &self.counts {
            made.inc();
        }
        let refs = list()?;
        held.listed = Some((Instant::now(), refs.clone()));
        Ok(refs)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

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
            .get_or_list(key("u", "a"), hour, list)
            .expect("list");
        listings
            .get_or_list(key("u", "a"), hour, list)
            .expect("list");
        assert_eq!(calls.get(), 1, "shared within the window");
        listings
            .get_or_list(key("u", "b"), hour, list)
            .expect("list");
        assert_eq!(calls.get(), 2, "another credential lists for itself");
        listings
            .get_or_list(key("u", "a"), None, list)
            .expect("list");
        assert_eq!(calls.get(), 3, "no max age: a new listing");
        listings.invalidate_url("u");
        listings
            .get_or_list(key("u", "b"), hour, list)
            .expect("list");
        assert_eq!(calls.get(), 4, "invalidated");
    }

    #[test]
    fn a_failed_listing_is_not_kept() {
        let listings = RefListings::default();
        let hour = Some(Duration::from_secs(3600));
        let failed = listings.get_or_list(key("u", "a"), hour, || {
            Err(GitError::EmptyRepository { url: "u".into() })
        });
        assert!(failed.is_err());
        let calls = Cell::new(0);
        listings
            .get_or_list(key("u", "a"), hour, || {
                calls.set(1);
                Ok(Vec::new())
            })
            .expect("list");
        assert_eq!(calls.get(), 1);
    }
}
