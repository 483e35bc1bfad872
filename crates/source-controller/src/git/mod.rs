//! Git for the source-controller: credentials from a Secret, resolving a GitRepository's ref to a
//! commit without fetching, and fetching that one commit into a per-URL cache with gix.
//!
//! The reconciler calls [`resolve`] first (a protocol v2 `ls-refs`, no objects), compares the
//! revision with the stored artifact, and calls [`fetch`] only when it changed.
//!
//! **Blocking.** gix's HTTP transport is blocking only, and SSH runs the external `ssh`, so
//! [`resolve`] and [`fetch`] block: call them from `tokio::task::spawn_blocking`. Each is bounded
//! by [`Remote::timeout`] (a reqwest client timeout, `ssh -o ConnectTimeout`, and a watchdog that
//! interrupts gix between reads) and stops early when [`Remote::cancel`] is set. The one
//! exception is [`resolve_async`]: a pass whose refs come from a shared listing or from one
//! `ls-refs` on a kept connection of the controller's own runtime resolves without a blocking
//! thread, and leaves everything else (and every failure) to [`resolve_with`].
//!
//! Transports:
//! - HTTPS: basic auth answers the server's 401 through a gix credentials callback; a bearer
//!   token is an `Authorization` header on every request (gix's `http.extraHeader`); the CA and
//!   client certificate and the proxy configure the reqwest client. Credentials are never sent
//!   over plain `http://`. Ref listings without a proxy take a kept-alive async client instead
//!   (`http_listing`), which sends the Secret's credentials with each request; any failure there
//!   is listed again through gix, so errors read the same. Fetches without a proxy keep gix's
//!   protocol but send its requests on those clients (`http_fetch`), driven by the fetching
//!   thread, with the Secret's credentials on each request.
//! - SSH: the OpenSSH client, given a private temp dir with the key (0600), `known_hosts`
//!   (strict checking, no other host-key source) and, for an encrypted key, an `SSH_ASKPASS`
//!   script that prints the passphrase from a 0600 file. The key is never decrypted in process,
//!   so every key format OpenSSH reads works. The image must ship `ssh` and `/bin/sh`.
//!
//! Repositories are opened with gix's isolated options: no global or system git config, no
//! credential helpers and no prompts take part.

mod auth;
mod cache;
mod classify;
mod error;
mod fetch;
mod http_fetch;
mod http_listing;
mod listings;
pub mod pack;
mod proxy;
mod refs;
mod resolve;
mod semver;
mod ssh;
mod ssh_secret;
mod streamed;
mod tls;
mod transport;
mod url;

#[cfg(test)]
mod refs_props;
#[cfg(test)]
mod url_props;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

pub use auth::{AuthError, GitAuth, HttpCredentials, Sensitive};
pub use cache::{CacheLock, evict_unused, mark_damaged};
pub use error::GitError;
pub use fetch::{cached, fetch, fetch_new};
pub use http_listing::AsyncClients;
pub use listings::{ListingKey, RefListings};
pub use proxy::ProxyConfig;
pub use resolve::{Quick, Sharing, keep_scratch_in, resolve, resolve_async, resolve_with};
pub use transport::alloc_limit_override;
pub use url::{Scheme, cache_key, redact};

/// Flux's default timeout of the git operations of one reconcile.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A git server to talk to, and how.
#[derive(Clone)]
pub struct Remote {
    /// `http://`, `https://` or `ssh://` URL; credentials in it are honoured (not over http).
    pub url: String,
    /// Credentials and trust, from the GitRepository's Secret.
    pub auth: GitAuth,
    /// Proxy for HTTP(S), from the proxy Secret.
    pub proxy: Option<ProxyConfig>,
    /// Upper bound of one operation ([`resolve`] or [`fetch`]).
    pub timeout: Duration,
    /// The setting `timeout` comes from, named when an operation runs out of it.
    pub timeout_setting: &'static str,
    /// Set it to stop an operation early (for example on shutdown).
    pub cancel: Arc<AtomicBool>,
    /// The largest git object (a file, a tree) read into memory; a fetch that brings a
    /// larger one fails instead of growing the process by its size. `None`: no limit.
    pub object_size_limit: Option<u64>,
}

impl Remote {
    /// A remote with no credentials, no proxy and Flux's default timeout.
    pub fn new(url: impl Into<String>) -> Remote {
        Remote {
            url: url.into(),
            auth: GitAuth::none(),
            proxy: None,
            timeout: DEFAULT_TIMEOUT,
            timeout_setting: "spec.timeout",
            cancel: Arc::new(AtomicBool::new(false)),
            object_size_limit: None,
        }
    }
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("url", &redact(&self.url))
            .field("auth", &self.auth)
            .field("proxy", &self.proxy)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// What a ref resolves to on the remote, before anything is fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The commit SHA-1, 40 lower-case hex digits (annotated tags peeled).
    pub commit: String,
    /// Flux's revision: `main@sha1:<hex>`, `v1.2.3@sha1:<hex>`, `refs/heads/main@sha1:<hex>`,
    /// `sha1:<hex>`.
    pub revision: String,
    /// The full remote ref to fetch (`refs/heads/main`, `refs/tags/v1.2.3`); `None` for a
    /// commit, which is fetched by its SHA.
    pub ref_name: Option<String>,
}

/// A fetched commit in the cache.
#[derive(Debug)]
pub struct Fetched {
    /// The bare cache repository holding the commit (read it with gix).
    pub repo_path: PathBuf,
    /// The commit SHA-1. Equal to [`Resolved::commit`] unless the ref moved between
    /// [`resolve`] and [`fetch`]; then it is the newer tip.
    pub commit: String,
    /// The revision of [`Fetched::commit`] (the resolved name with the fetched commit).
    pub revision: String,
    /// Metadata of the commit.
    pub info: CommitInfo,
    /// The annotated tag object the fetched ref points to (SHA-1 hex); `None` for branches,
    /// commits and lightweight tags.
    pub tag_object: Option<String>,
    /// Shared lock on the cache: while it is held, no fetch of the same URL changes or deletes
    /// the repository. Drop it when done reading.
    pub lock: CacheLock,
    /// Whether the server was asked for it (false: the cache held the commit already).
    pub downloaded: bool,
}

/// Metadata of a commit, for events and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    /// `Name <email>` of the author.
    pub author: String,
    /// `Name <email>` of the committer.
    pub committer: String,
    /// Commit time, RFC 3339 in UTC.
    pub time: String,
    /// Author time, RFC 3339 in UTC.
    pub author_time: String,
    /// First line of the message, at most 256 characters.
    pub subject: String,
}
