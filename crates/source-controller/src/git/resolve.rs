//! Resolving a checkout to a commit and revision by listing refs (`ls-refs`), without fetching
//! objects.

use mooring_api::GitCheckout;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::cache::{CacheLock, LockWait};
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

/// The name of the scratch repository in the directory [`keep_scratch_in`] gives.
const SCRATCH_NAME: &str = "ls-refs-scratch";

/// Where the scratch repository goes, when the binary says ([`keep_scratch_in`]).
static SCRATCH_HOME: OnceLock<PathBuf> = OnceLock::new();

/// The process's scratch repository, once made (a failure is tried again at the next listing).
static SCRATCH_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Keeps the scratch repository in `dir` (the git cache's root), under a fixed name that the
/// next process uses again, instead of a temp dir of its own that no one removes: statics are
/// never dropped, so a controller that restarts in the same pod (its `/tmp` an emptyDir) would
/// leave one empty repository there per start. Call it once, before the first listing; later
/// calls change nothing. Without it (tests, tools), the temp dir is used.
pub fn keep_scratch_in(dir: &Path) {
    let _ = SCRATCH_HOME.set(dir.join(SCRATCH_NAME));
}

impl Scratch {
    fn new(session: &Session<'_>) -> Result<Scratch, GitError> {
        let options = || session.open_options();
        let dir = match SCRATCH_DIR.get() {
            Some(dir) => dir.clone(),
            None => {
                let made = match SCRATCH_HOME.get() {
                    Some(path) => fixed_scratch(path, options(), session),
                    None => temp_scratch(),
                }
                .map_err(|detail| GitError::Cache {
                    path: SCRATCH_HOME
                        .get()
                        .cloned()
                        .unwrap_or_else(std::env::temp_dir),
                    detail,
                })?;
                let kept = SCRATCH_DIR.get_or_init(|| made.clone());
                if *kept != made {
                    // Another listing of this process made one first.
                    let _ = std::fs::remove_dir_all(&made);
                }
                kept.clone()
            }
        };
        let repo = gix::open_opts(&dir, options()).map_err(|e| GitError::Cache {
            path: dir.clone(),
            detail: super::classify::chain(&e),
        })?;
        Ok(Scratch { repo })
    }
}

/// The scratch repository at `path`: the one an earlier process left there when it opens, else
/// a new one (whatever was there, a repository half made by a process killed midway for one,
/// is removed first). Made under the exclusive lock `<path>.lock`, so that processes sharing
/// the git cache never remove one another's repository while it is being made.
fn fixed_scratch(
    path: &Path,
    options: gix::open::Options,
    session: &Session<'_>,
) -> Result<PathBuf, String> {
    if gix::open_opts(path, options.clone()).is_ok() {
        return Ok(path.to_owned());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("creating {}: {e}", parent.display()))?;
    }
    let lock = path.with_extension("lock");
    let _held = CacheLock::acquire(&lock, true, session.deadline, &session.remote.cancel).map_err(
        |wait| match wait {
            LockWait::TimedOut => format!("timed out waiting for {}", lock.display()),
            LockWait::Cancelled => "cancelled".to_owned(),
            LockWait::Failed(e) => e.to_string(),
        },
    )?;
    // Another process may have made it while this one waited.
    if gix::open_opts(path, options).is_ok() {
        return Ok(path.to_owned());
    }
    super::cache::remove(path).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(path).map_err(|e| format!("creating {}: {e}", path.display()))?;
    gix::init_bare(path).map_err(|e| super::classify::chain(&e))?;
    Ok(path.to_owned())
}

/// A scratch repository in a temp dir of its own, left there when the process ends.
fn temp_scratch() -> Result<PathBuf, String> {
    let dir = tempfile::Builder::new()
        .prefix("mooring-ls-refs-")
        .tempdir()
        .map_err(|e| format!("creating a temp dir: {e}"))?;
    gix::init_bare(dir.path()).map_err(|e| super::classify::chain(&e))?;
    Ok(dir.keep())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_repository_left_half_made_is_made_again_and_a_whole_one_is_used_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("git-cache").join(SCRATCH_NAME);
        let options = gix::open::Options::isolated;
        let remote = Remote::new("https://example.invalid/repo.git");
        let session = Session::start(&remote, "listing refs").expect("session");
        // What a process killed while making it could leave: a directory that is no repository.
        std::fs::create_dir_all(&path).expect("mkdir");
        std::fs::write(path.join("leftover"), "").expect("write");
        assert_eq!(fixed_scratch(&path, options(), &session), Ok(path.clone()));
        assert!(!path.join("leftover").exists(), "made again from nothing");
        assert!(gix::open_opts(&path, options()).expect("opens").is_bare());

        std::fs::write(path.join("kept"), "").expect("write");
        assert_eq!(fixed_scratch(&path, options(), &session), Ok(path.clone()));
        assert!(
            path.join("kept").exists(),
            "a repository that opens is used as it is"
        );

        // A file where the repository should be.
        std::fs::remove_dir_all(&path).expect("rm");
        std::fs::write(&path, "not a directory").expect("write");
        assert_eq!(fixed_scratch(&path, options(), &session), Ok(path.clone()));
        assert!(gix::open_opts(&path, options()).expect("opens").is_bare());
    }

    #[test]
    fn processes_sharing_the_git_cache_make_the_scratch_repository_one_at_a_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(SCRATCH_NAME);
        let remote = Remote::new("https://example.invalid/repo.git");
        // Each round starts from a half-made repository that every maker finds unusable.
        for round in 0..5 {
            let _ = super::super::cache::remove(&path);
            std::fs::create_dir_all(path.join("objects")).expect("mkdir");
            let made: Vec<Result<PathBuf, String>> = std::thread::scope(|scope| {
                let makers: Vec<_> = (0..8)
                    .map(|_| {
                        scope.spawn(|| {
                            let session = Session::start(&remote, "listing refs").expect("session");
                            fixed_scratch(&path, gix::open::Options::isolated(), &session)
                        })
                    })
                    .collect();
                makers
                    .into_iter()
                    .map(|m| m.join().expect("join"))
                    .collect()
            });
            for result in made {
                assert_eq!(result, Ok(path.clone()), "round {round}");
            }
            assert!(
                gix::open_opts(&path, gix::open::Options::isolated())
                    .expect("opens")
                    .is_bare()
            );
        }
    }
}
