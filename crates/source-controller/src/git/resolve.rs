//! Resolving a checkout to a commit and revision by listing refs (`ls-refs`), without fetching
//! objects.

use mooring_api::GitCheckout;
use std::sync::OnceLock;

use super::http_listing::AsyncClients;
use super::listings::{ListingKey, RefListings};
use super::refs::{self, RemoteRef, has_commits, listing_prefixes, listing_refspecs};
use super::transport::{Session, validate};
use super::{GitError, Remote, Resolved};

/// Resolves `checkout` on `remote` to a commit and Flux revision. Blocking; see the module doc.
///
/// - Branch, tag, `name`, semver: one `ls-refs` (the server filters by the ref's prefix),
///   after the capability advertisement when this process has not seen the server's yet;
///   annotated tags are peeled to their commit. No pack is fetched. Over HTTP(S) the listing
///   takes a kept-alive connection ([`super::http_listing`]).
/// - Commit: no network at all (with a branch, one `ls-refs` checks that the branch exists);
///   whether the commit exists is known only when [`super::fetch`] asks for it.
///
/// The default branch: the API's `GitRepositoryRef::checkout()` turns a missing ref into
/// branch `master`, as Flux does, and this function follows the checkout it is given. When
/// that branch is missing, the error names the remote's default branch (its HEAD), so a user
/// with a `main` repository sees what to set.
///
/// An empty repository is [`GitError::EmptyRepository`] whatever the ref kind.
pub fn resolve(remote: &Remote, checkout: &GitCheckout) -> Result<Resolved, GitError> {
    resolve_with(remote, checkout, None)
}

/// How a [`resolve_with`] may share its listing with others.
pub struct Sharing<'a> {
    /// The process's shared listings.
    pub listings: &'a RefListings,
    /// A digest of the credential material used (the Secret's and the proxy's data).
    pub credential: String,
    /// The oldest listing acceptable; `None`: list now (and share the new listing).
    pub max_age: Option<std::time::Duration>,
    /// Set when the pass gives up (its time limit ran out): a wait for another object's
    /// listing ends then.
    pub cancel: &'a std::sync::atomic::AtomicBool,
}

/// [`resolve`], taking the refs from a listing shared with other objects that ask the same URL
/// the same question with the same credentials, when `sharing` allows it.
pub fn resolve_with(
    remote: &Remote,
    checkout: &GitCheckout,
    sharing: Option<Sharing<'_>>,
) -> Result<Resolved, GitError> {
    if let GitCheckout::Commit { branch: None, .. } = checkout {
        let url = validate(remote)?;
        return refs::select(checkout, &[], url.redacted());
    }
    if let GitCheckout::Semver(range) = checkout {
        // An invalid range is a spec error: report it without asking the server.
        super::semver::Range::parse(range).map_err(|why| GitError::InvalidSemverRange {
            range: range.clone(),
            why,
        })?;
    }
    let session = Session::start(remote, "listing refs")?;
    let refspecs = listing_refspecs(checkout);
    let prefixes = listing_prefixes(checkout);
    let list = || -> Result<Vec<RemoteRef>, GitError> {
        if let Some(refs) = prefixes
            .as_deref()
            .and_then(|prefixes| super::http_listing::list(&session, prefixes))
        {
            return Ok(refs);
        }
        let scratch = Scratch::new(&session)?;
        session.list_refs(&scratch.repo, &refspecs, true)
    };
    let listed = match sharing {
        None => list()?,
        Some(sharing) => {
            let key = ListingKey {
                url: remote.url.clone(),
                credential: sharing.credential,
                refspecs: refspecs.clone(),
            };
            let url = session.url.redacted().to_owned();
            sharing
                .listings
                .get_or_list(key, sharing.max_age, sharing.cancel, &url, list)?
        }
    };
    let url = session.url.redacted();
    match refs::select(checkout, &listed, url) {
        Err(e @ (GitError::RefNotFound { .. } | GitError::NoSemverMatch { .. }))
            if !has_commits(&listed) =>
        {
            // HEAD is unborn or missing: list every ref to tell an empty repository apart.
            let scratch = Scratch::new(&session)?;
            let all = session.list_refs(&scratch.repo, &["HEAD".to_owned()], false)?;
            if has_commits(&all) {
                Err(e)
            } else {
                Err(GitError::EmptyRepository {
                    url: url.to_owned(),
                })
            }
        }
        result => result,
    }
}

/// What [`resolve_async`] came to.
#[derive(Debug)]
pub enum Quick {
    /// The checkout, resolved.
    Resolved(Resolved),
    /// The remote's time limit ran out.
    TimedOut,
    /// Not answered here: [`resolve_with`] must (SSH, a proxy, credentials in the URL, a
    /// server not speaking protocol v2, another object's listing of the URL under way, any
    /// failure, or a checkout that does not resolve, so that errors are worded by gix as
    /// before).
    NotHere,
}

/// [`resolve_with`] for the common case of a pass, without a blocking thread: a commit without
/// a branch (no network), or a branch, tag or semver range whose refs come from a shared
/// listing fresh enough for `max_age` or from one `ls-refs` on a kept-alive connection of the
/// caller's runtime ([`super::http_listing::list_async`]). Bounded by `remote.timeout`.
pub async fn resolve_async(
    remote: &Remote,
    checkout: &GitCheckout,
    listings: &RefListings,
    credential: String,
    max_age: Option<std::time::Duration>,
    clients: &AsyncClients,
) -> Quick {
    let Ok(url) = validate(remote) else {
        return Quick::NotHere;
    };
    let listed = if let GitCheckout::Commit { branch: None, .. } = checkout {
        Vec::new()
    } else {
        if let GitCheckout::Semver(range) = checkout
            && super::semver::Range::parse(range).is_err()
        {
            return Quick::NotHere;
        }
        let Some(prefixes) = listing_prefixes(checkout) else {
            return Quick::NotHere;
        };
        let key = ListingKey {
            url: remote.url.clone(),
            credential,
            refspecs: listing_refspecs(checkout),
        };
        let list = super::http_listing::list_async(remote, &url, &prefixes, clients);
        let listing = listings.get_or_list_async(key, max_age, list);
        match tokio::time::timeout(remote.timeout, listing).await {
            Err(_) => return Quick::TimedOut,
            Ok(None) => return Quick::NotHere,
            Ok(Some(listed)) => listed,
        }
    };
    match refs::select(checkout, &listed, url.redacted()) {
        Ok(resolved) => Quick::Resolved(resolved),
        Err(_) => Quick::NotHere,
    }
}

/// gix needs a repository to run `ls-refs` from. Nothing is ever written to it, so one empty
/// bare repository per process serves every listing; creating one per listing cost more CPU than
/// the listing itself (measured with 1000 GitRepositories).
struct Scratch {
    repo: gix::Repository,
}

/// The process-wide scratch repository's directory. Statics are never dropped, so it stays in
/// the temp dir after the process ends: one empty bare repository (about 100 KB) per process.
static SCRATCH_DIR: OnceLock<Result<tempfile::TempDir, String>> = OnceLock::new();

impl Scratch {
    fn new(session: &Session<'_>) -> Result<Scratch, GitError> {
        let dir = SCRATCH_DIR
            .get_or_init(|| {
                let dir = tempfile::Builder::new()
                    .prefix("mooring-ls-refs-")
                    .tempdir()
                    .map_err(|e| format!("creating a temp dir: {e}"))?;
                gix::init_bare(dir.path()).map_err(|e| super::classify::chain(&e))?;
                Ok(dir)
            })
            .as_ref()
            .map_err(|detail| GitError::Cache {
                path: std::env::temp_dir(),
                detail: detail.clone(),
            })?;
        let repo =
            gix::open_opts(dir.path(), session.open_options()).map_err(|e| GitError::Cache {
                path: dir.path().to_owned(),
                detail: super::classify::chain(&e),
            })?;
        Ok(Scratch { repo })
    }
}
