//! Fetching one resolved commit, depth 1, into the per-URL cache repository.

use std::num::NonZeroU32;
use std::path::Path;

use gix::remote::fetch::Shallow;
use mooring_api::GitCheckout;

use super::cache::{self, CacheLock, CachePaths, LockWait};
use super::refs::{revision, validate_commit};
use super::transport::Session;
use super::{CommitInfo, Fetched, GitError, Remote, Resolved};

/// The longest subject kept in [`CommitInfo`].
const MAX_SUBJECT_CHARS: usize = 256;

/// Fetches `resolved` from `remote` into the cache under `cache_root`. Blocking; see the module
/// doc.
///
/// One bare repository per URL (`<cache_root>/<sha256(url)>`) keeps what earlier fetches
/// brought, so a new commit only transfers objects the cache lacks: the cached tips are sent as
/// `have`s. Each fetch asks for depth 1 of a single refspec and no tags: the resolved ref
/// (`+refs/heads/main:refs/mooring/heads/main`), or the commit SHA itself for a commit
/// checkout (the server must allow any SHA in `want`, as GitHub and GitLab do). Fetching by
/// ref works with every server; if the ref moved since [`super::resolve`], the newer tip is
/// fetched and reported in [`Fetched::commit`] and [`Fetched::revision`].
///
/// An exclusive lock file serializes fetches of one URL (threads and processes). A cache that
/// cannot be opened, or that a fetch finds corrupt, is deleted and fetched again from scratch.
/// The returned [`Fetched`] holds a shared lock until dropped.
pub fn fetch(remote: &Remote, resolved: &Resolved, cache_root: &Path) -> Result<Fetched, GitError> {
    let commit = validate_commit(&resolved.commit)?;
    let session = Session::start(remote, "fetch")?;
    let paths = CachePaths::new(cache_root, &session.url.cache_key());
    std::fs::create_dir_all(cache_root).map_err(|e| GitError::Cache {
        path: cache_root.to_owned(),
        detail: format!("creating the cache root: {e}"),
    })?;
    let exclusive = lock(&session, &paths.lock, true)?;
    let options = session.open_options();
    let (mut repo, fresh) = cache::open_or_create(&paths.repo, &options)?;
    let (refspec, local_ref) = refspec_for(resolved.ref_name.as_deref(), &commit);
    let started = std::time::Instant::now();
    let by_sha = resolved.ref_name.is_none().then_some(commit.as_str());
    // Another object with this URL fetched this ref at this commit already (after listing
    // it with its own credentials, as this one did): nothing to download.
    let present = !fresh && peeled_commit(&repo, &local_ref).is_ok_and(|c| c == commit);
    let outcome = match receive_unless(present, &session, &repo, &refspec, by_sha) {
        Err(Failure::Corrupt(why)) if !fresh => {
            tracing::warn!(path = %paths.repo.display(), %why, "git cache looks corrupt; fetching into a new one");
            repo = cache::recreate(&paths.repo, &options)?;
            receive(&session, &repo, &refspec, by_sha)
        }
        other => other,
    };
    let outcome = match outcome {
        Err(Failure::Other(refused @ GitError::ObjectTooLarge { .. })) => receive_streamed(
            &session,
            &repo,
            resolved.ref_name.as_deref(),
            &commit,
            &local_ref,
            refused,
        ),
        other => other,
    };
    let stats = outcome.map_err(|failure| match failure {
        Failure::Other(e) => e,
        Failure::Corrupt(detail) => GitError::Cache {
            path: paths.repo.clone(),
            detail,
        },
    })?;
    tracing::debug!(
        url = session.url.redacted(),
        objects = stats,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "fetched"
    );
    let name = name_of(resolved);
    let received = Received {
        repo,
        exclusive,
        local_ref,
        downloaded: !present,
    };
    received.into_fetched(&session, paths, name.as_deref())
}

/// Fetches the tip of a branch or tag checkout from a URL the cache has never fetched, without
/// resolving it first: for such a URL a listing would only name the commit the fetch is about
/// to bring (gix's fetch asks the server for the ref itself). A new GitRepository then costs
/// the server three requests instead of five, and this process one blocking task instead of
/// two. Blocking.
///
/// `Ok(None)` when this does not apply or did not work out: another kind of checkout, a cache
/// of the URL that exists already (another object fetched it), or a fetch that failed other
/// than by running out of time. The caller then resolves and fetches as usual, so that a
/// missing branch, an empty repository or a bad URL is reported in the words of
/// [`super::resolve`]. `Err` only for [`GitError::Timeout`] and [`GitError::Cancelled`].
pub fn fetch_new(
    remote: &Remote,
    checkout: &GitCheckout,
    cache_root: &Path,
) -> Result<Option<Fetched>, GitError> {
    let (name, ref_name) = match checkout {
        GitCheckout::Branch(branch) => (branch, format!("refs/heads/{branch}")),
        GitCheckout::Tag(tag) => (tag, format!("refs/tags/{tag}")),
        _ => return Ok(None),
    };
    let out_of_time = |e: GitError| match e {
        GitError::Timeout { .. } | GitError::Cancelled { .. } => Err(e),
        _ => Ok(None),
    };
    let Ok(session) = Session::start(remote, "fetch") else {
        return Ok(None);
    };
    let paths = CachePaths::new(cache_root, &session.url.cache_key());
    if paths.repo.exists() || std::fs::create_dir_all(cache_root).is_err() {
        return Ok(None);
    }
    let exclusive = match lock(&session, &paths.lock, true) {
        Ok(lock) => lock,
        Err(e) => return out_of_time(e),
    };
    let (repo, fresh) = match cache::open_or_create(&paths.repo, &session.open_options()) {
        Ok(opened) => opened,
        Err(e) => return out_of_time(e),
    };
    if !fresh {
        // Another object's fetch of this URL came first.
        return Ok(None);
    }
    let (refspec, local_ref) = refspec_for(Some(&ref_name), "");
    let outcome = match receive(&session, &repo, &refspec, None) {
        Err(Failure::Other(refused @ GitError::ObjectTooLarge { .. })) => {
            receive_streamed(&session, &repo, Some(&ref_name), "", &local_ref, refused)
        }
        other => other,
    };
    match outcome {
        Ok(objects) => tracing::debug!(
            url = session.url.redacted(),
            objects,
            "fetched a new URL's ref without listing it first"
        ),
        Err(Failure::Other(e)) => return out_of_time(e),
        Err(Failure::Corrupt(_)) => return Ok(None),
    }
    let received = Received {
        repo,
        exclusive,
        local_ref,
        downloaded: true,
    };
    match received.into_fetched(&session, paths, Some(name)) {
        Ok(fetched) => Ok(Some(fetched)),
        Err(e) => out_of_time(e),
    }
}

/// A cache repository that holds the fetched ref, still under the exclusive lock.
struct Received {
    repo: gix::Repository,
    exclusive: CacheLock,
    /// The cache's ref the fetch wrote.
    local_ref: String,
    /// Whether anything was downloaded.
    downloaded: bool,
}

impl Received {
    /// Reads the fetched commit, then trades the exclusive lock for a shared one. `name` is the
    /// revision's name part (`main` in `main@sha1:...`).
    fn into_fetched(
        self,
        session: &Session<'_>,
        paths: CachePaths,
        name: Option<&str>,
    ) -> Result<Fetched, GitError> {
        let fetched = peeled_commit(&self.repo, &self.local_ref)?;
        let tag_object = tag_object(&self.repo, &self.local_ref);
        let info = commit_info(&self.repo, &fetched)?;
        drop(self.repo);
        drop(self.exclusive);
        let shared = lock(session, &paths.lock, false)?;
        Ok(Fetched {
            repo_path: paths.repo,
            revision: revision(name, &fetched)?,
            commit: fetched,
            info,
            tag_object,
            lock: shared,
            downloaded: self.downloaded,
        })
    }
}

/// The commit of `revision` (`main@sha1:<hex>`, `sha1:<hex>`) from the cache of `url` alone,
/// without talking to the server: used to rebuild a lost artifact while the remote is down.
/// Blocking. Fails when the cache does not exist or lacks the commit.
pub fn cached(
    url: &str,
    revision: &str,
    cache_root: &Path,
    timeout: std::time::Duration,
) -> Result<Fetched, GitError> {
    let parsed = super::url::RepoUrl::parse(url)?;
    let hex = revision
        .rsplit_once("sha1:")
        .map(|(_, hex)| hex)
        .unwrap_or(revision);
    let commit = validate_commit(hex)?;
    let paths = CachePaths::new(cache_root, &parsed.cache_key());
    let missing = |detail: String| GitError::Cache {
        path: paths.repo.clone(),
        detail,
    };
    if !paths.repo.is_dir() {
        return Err(missing("no cache of this URL".to_owned()));
    }
    if cache::is_damaged(&paths.repo) {
        return Err(missing(
            "an object of it could not be read; it is fetched again".to_owned(),
        ));
    }
    let never = std::sync::atomic::AtomicBool::new(false);
    let deadline = std::time::Instant::now() + timeout;
    let shared =
        CacheLock::acquire(&paths.lock, false, deadline, &never).map_err(|wait| match wait {
            LockWait::Failed(e) => e,
            LockWait::TimedOut | LockWait::Cancelled => {
                missing("timed out waiting for the cache lock".to_owned())
            }
        })?;
    let repo = gix::open_opts(&paths.repo, gix::open::Options::isolated())
        .map_err(|e| missing(super::classify::chain(&e)))?;
    let info = commit_info(&repo, &commit)?;
    let name = revision.rsplit_once('@').map(|(name, _)| name.to_owned());
    // The tag object of a tag revision, when the cached tag ref still leads to this commit.
    let tag_object = name.as_deref().and_then(|name| {
        let local = match name.strip_prefix("refs/") {
            Some(rest) => format!("refs/mooring/{rest}"),
            None => format!("refs/mooring/tags/{name}"),
        };
        let peeled = peeled_commit(&repo, &local).ok()?;
        (peeled == commit)
            .then(|| tag_object(&repo, &local))
            .flatten()
    });
    Ok(Fetched {
        repo_path: paths.repo,
        revision: super::refs::revision(name.as_deref(), &commit)?,
        commit,
        info,
        tag_object,
        lock: shared,
        downloaded: false,
    })
}

/// The refspec to fetch and the local ref it writes: of the remote ref `ref_name`, else of
/// `commit` by its SHA.
fn refspec_for(ref_name: Option<&str>, commit: &str) -> (String, String) {
    let local = match ref_name {
        Some(name) => format!(
            "refs/mooring/{}",
            name.strip_prefix("refs/").unwrap_or(name)
        ),
        None => format!("refs/mooring/commits/{commit}"),
    };
    let source = ref_name.unwrap_or(commit);
    (format!("+{source}:{local}"), local)
}

/// The name part of the resolved revision (`main` in `main@sha1:...`).
fn name_of(resolved: &Resolved) -> Option<String> {
    resolved
        .revision
        .rsplit_once('@')
        .map(|(name, _)| name.to_owned())
}

fn lock(session: &Session<'_>, path: &Path, exclusive: bool) -> Result<CacheLock, GitError> {
    let operation = session.operation;
    let url = session.url.redacted().to_owned();
    CacheLock::acquire(path, exclusive, session.deadline, &session.remote.cancel).map_err(|wait| {
        match wait {
            LockWait::TimedOut => GitError::Timeout {
                operation: "waiting for the cache lock for a fetch",
                url,
                after: session.remote.timeout,
                setting: session.remote.timeout_setting,
            },
            LockWait::Cancelled => GitError::Cancelled { operation, url },
            LockWait::Failed(e) => e,
        }
    })
}

/// [`receive`], or nothing when the commit is `present` already.
fn receive_unless(
    present: bool,
    session: &Session<'_>,
    repo: &gix::Repository,
    refspec: &str,
    by_sha: Option<&str>,
) -> Result<u64, Failure> {
    if present {
        return Ok(0);
    }
    receive(session, repo, refspec, by_sha)
}

/// After gix refused the repository for an object larger than it reads into memory: the
/// fetch again with the pack streamed to disk and indexed in bounded memory
/// ([`super::streamed`]). The refusal stands where that path does not apply.
fn receive_streamed(
    session: &Session<'_>,
    repo: &gix::Repository,
    ref_name: Option<&str>,
    commit: &str,
    local_ref: &str,
    refused: GitError,
) -> Result<u64, Failure> {
    let Some(limit) = session.remote.object_size_limit else {
        return Err(Failure::Other(refused));
    };
    match super::streamed::fetch(session, repo, ref_name, commit, local_ref, limit) {
        Ok(Some(objects)) => {
            tracing::debug!(
                url = session.url.redacted(),
                objects,
                "fetched a repository with a file larger than --max-git-object-size, streamed"
            );
            Ok(objects)
        }
        Ok(None) => Err(Failure::Other(refused)),
        Err(e) => Err(Failure::Other(e)),
    }
}

enum Failure {
    /// The local repository is damaged: worth one retry with a new cache.
    Corrupt(String),
    Other(GitError),
}

/// One fetch of `refspec` at depth 1 (`by_sha`: the commit, when the refspec names it);
/// returns how many objects the received pack held.
fn receive(
    session: &Session<'_>,
    repo: &gix::Repository,
    refspec: &str,
    by_sha: Option<&str>,
) -> Result<u64, Failure> {
    let remote = session
        .gix_remote(repo, &[refspec.to_owned()])
        .map_err(Failure::Other)?;
    let conn = session
        .connect_for_fetch(repo, &remote)
        .map_err(Failure::Other)?;
    let classify = |e: gix::Error| {
        // Only a failure nothing else explains, that gix calls corruption, and that is not
        // the server's own complaint, is blamed on the cache.
        let chain = super::classify::chain(&e);
        let from_server = chain.contains("server reply") || chain.contains("ERR ");
        match session.classify(&e, by_sha) {
            GitError::Remote { .. } if e.classify().is_corrupted() && !from_server => {
                Failure::Corrupt(chain)
            }
            other => Failure::Other(other),
        }
    };
    let prepared = conn
        .prepare_fetch(gix::progress::Discard, Default::default())
        .map_err(classify)?;
    let depth = NonZeroU32::MIN;
    let outcome = prepared
        .with_shallow(Shallow::DepthAtRemote(depth))
        .receive(gix::progress::Discard, session.interrupt())
        .map_err(classify)?;
    super::http_listing::remember_handshake(session.remote, &session.url, &outcome.handshake);
    Ok(match outcome.status {
        gix::remote::fetch::Status::Change {
            write_pack_bundle, ..
        } => write_pack_bundle.index.num_objects as u64,
        gix::remote::fetch::Status::NoPackReceived { .. } => 0,
    })
}

/// The commit `local_ref` points to, through tags.
fn peeled_commit(repo: &gix::Repository, local_ref: &str) -> Result<String, GitError> {
    let read = |detail: String| GitError::ReadCommit {
        commit: local_ref.to_owned(),
        detail,
    };
    let mut reference = repo
        .find_reference(local_ref)
        .map_err(|e| read(super::classify::chain(&e)))?;
    let commit = reference
        .peel_to_commit()
        .map_err(|e| read(super::classify::chain(&e)))?;
    Ok(commit.id.to_hex().to_string())
}

/// The annotated tag object `local_ref` points to, if it points to one.
fn tag_object(repo: &gix::Repository, local_ref: &str) -> Option<String> {
    let reference = repo.find_reference(local_ref).ok()?;
    let id = reference.id().detach();
    let object = repo.find_object(id).ok()?;
    (object.kind == gix::object::Kind::Tag).then(|| id.to_hex().to_string())
}

/// Author, committer, time and subject of `commit`.
fn commit_info(repo: &gix::Repository, commit: &str) -> Result<CommitInfo, GitError> {
    let read = |e: gix::Error| GitError::ReadCommit {
        commit: commit.to_owned(),
        detail: super::classify::chain(&e),
    };
    let id = gix::ObjectId::from_hex(commit.as_bytes()).map_err(|e| GitError::ReadCommit {
        commit: commit.to_owned(),
        detail: e.to_string(),
    })?;
    let object = repo.find_commit(id).map_err(read)?;
    let who = |s: gix::actor::SignatureRef<'_>| format!("{} <{}>", s.name, s.email);
    let author_signature = object.author().map_err(read)?;
    let author = who(author_signature);
    let author_time = author_signature
        .time()
        .ok()
        .and_then(|t| jiff::Timestamp::from_second(t.seconds).ok())
        .map(|t| t.to_string())
        .unwrap_or_default();
    let committer = who(object.committer().map_err(read)?);
    let seconds = object.time().map_err(read)?.seconds;
    let time = jiff::Timestamp::from_second(seconds)
        .map(|t| t.to_string())
        .unwrap_or_default();
    let message = object.message_raw_sloppy().to_string();
    Ok(CommitInfo {
        author,
        committer,
        time,
        author_time,
        subject: subject(&message),
    })
}

/// The first line of `message`, at most [`MAX_SUBJECT_CHARS`] characters.
fn subject(message: &str) -> String {
    let line = message.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    line.trim().chars().take(MAX_SUBJECT_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn resolved(revision: &str, ref_name: Option<&str>) -> Resolved {
        Resolved {
            commit: SHA.into(),
            revision: revision.into(),
            ref_name: ref_name.map(str::to_owned),
        }
    }

    #[test]
    fn one_refspec_per_fetch() {
        let r = resolved(&format!("main@sha1:{SHA}"), Some("refs/heads/main"));
        assert_eq!(
            refspec_for(r.ref_name.as_deref(), SHA),
            (
                "+refs/heads/main:refs/mooring/heads/main".into(),
                "refs/mooring/heads/main".into()
            )
        );
        let r = resolved(&format!("sha1:{SHA}"), None);
        let (spec, local) = refspec_for(r.ref_name.as_deref(), SHA);
        assert_eq!(spec, format!("+{SHA}:refs/mooring/commits/{SHA}"));
        assert_eq!(local, format!("refs/mooring/commits/{SHA}"));
    }

    #[test]
    fn revision_name_survives_a_moved_ref() {
        let r = resolved(
            &format!("refs/heads/main@sha1:{SHA}"),
            Some("refs/heads/main"),
        );
        assert_eq!(name_of(&r).as_deref(), Some("refs/heads/main"));
        assert_eq!(name_of(&resolved(&format!("sha1:{SHA}"), None)), None);
    }

    #[test]
    fn subject_is_the_first_line_and_bounded() {
        assert_eq!(subject("\n  fix: things  \n\nbody"), "fix: things");
        assert_eq!(subject(""), "");
        let long = "é".repeat(300);
        assert_eq!(subject(&long).chars().count(), MAX_SUBJECT_CHARS);
    }
}
