//! The fetch cache: one bare repository per URL under the cache root, named by the URL's
//! SHA-256, guarded by a lock file next to it (`flock`, so it works across threads and
//! processes), and re-created when it cannot be opened. What a process killed mid-fetch leaves
//! in it (gix lock files, temp files of a pack being received) is removed by the next fetch.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::GitError;

/// How often a waiting fetch retries the lock.
const LOCK_POLL: Duration = Duration::from_millis(20);

/// A held lock on one cache repository: exclusive while fetching, shared while reading.
/// Released when dropped.
#[derive(Debug)]
pub struct CacheLock {
    _file: File,
}

/// Why waiting for the lock ended without it.
pub(crate) enum LockWait {
    /// The deadline passed.
    TimedOut,
    /// The caller cancelled.
    Cancelled,
    /// The lock file could not be used.
    Failed(GitError),
}

impl CacheLock {
    /// Waits for the lock on `path` (exclusive or shared) until `deadline` or `cancel`.
    pub(crate) fn acquire(
        path: &Path,
        exclusive: bool,
        deadline: Instant,
        cancel: &AtomicBool,
    ) -> Result<CacheLock, LockWait> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| LockWait::Failed(cache_error(path, "opening the lock file", e)))?;
        loop {
            let attempt = if exclusive {
                file.try_lock()
            } else {
                file.try_lock_shared()
            };
            match attempt {
                Ok(()) => return Ok(CacheLock { _file: file }),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => {
                    return Err(LockWait::Failed(cache_error(path, "locking", e)));
                }
            }
            if cancel.load(Ordering::Relaxed) {
                return Err(LockWait::Cancelled);
            }
            if Instant::now() >= deadline {
                return Err(LockWait::TimedOut);
            }
            std::thread::sleep(LOCK_POLL);
        }
    }
}

/// Where the cache of one URL lives.
pub(crate) struct CachePaths {
    pub(crate) repo: PathBuf,
    pub(crate) lock: PathBuf,
}

impl CachePaths {
    /// `<root>/<key>` and `<root>/<key>.lock`.
    pub(crate) fn new(root: &Path, key: &str) -> CachePaths {
        CachePaths {
            repo: root.join(key),
            lock: root.join(format!("{key}.lock")),
        }
    }
}

/// Opens the cache repository at `path` with `options`, creating it when missing and
/// re-creating it when it is unusable (not a bare repository, unreadable HEAD, config or
/// shallow file, a ref whose commit is missing). Returns the repository and whether it was created now. Call with the
/// exclusive lock held.
pub(crate) fn open_or_create(
    path: &Path,
    options: &gix::open::Options,
) -> Result<(gix::Repository, bool), GitError> {
    if path.is_dir() {
        remove_leftovers(path);
    }
    if path.exists() {
        match open_checked(path, options) {
            Ok(repo) => return Ok((repo, false)),
            Err(why) => {
                tracing::warn!(path = %path.display(), %why, "git cache is unusable; re-creating it");
                remove(path)?;
            }
        }
    }
    create(path, options).map(|repo| (repo, true))
}

/// Deletes the cache at `path` and creates it again (after a fetch found it corrupt).
pub(crate) fn recreate(
    path: &Path,
    options: &gix::open::Options,
) -> Result<gix::Repository, GitError> {
    remove(path)?;
    create(path, options)
}

fn create(path: &Path, options: &gix::open::Options) -> Result<gix::Repository, GitError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| cache_error(path, "creating the cache root", e))?;
    }
    init_bare(path).map_err(|e| cache_error(path, "creating a bare repository", e))?;
    open_checked(path, options).map_err(|detail| GitError::Cache {
        path: path.to_owned(),
        detail,
    })
}

/// Creates the smallest bare repository git and gix open at `path`, which must not exist:
/// `HEAD`, a `config` that says bare, and the `objects/pack` and `refs` directories. A fetch
/// cache needs nothing else. `gix::init_bare` also writes eleven hook samples, a description
/// and `info/exclude`, and probes the filesystem with scratch files: about 28 new inodes per
/// repository against 6, and creating inodes was a fifth of the source-controller's CPU at
/// cold start with a thousand new URLs (docs/benchmarks.md). Refs directories below `refs`
/// are created when a ref is first written.
fn init_bare(path: &Path) -> std::io::Result<()> {
    std::fs::create_dir(path)?;
    std::fs::create_dir_all(path.join("objects").join("pack"))?;
    std::fs::create_dir(path.join("refs"))?;
    std::fs::write(path.join("HEAD"), "ref: refs/heads/main\n")?;
    std::fs::write(
        path.join("config"),
        "[core]\n\trepositoryformatversion = 0\n\tbare = true\n",
    )
}

/// The file [`mark_damaged`] leaves in a cache.
const DAMAGED: &str = "mooring-damaged";

/// Marks the cache at `repo_path` as damaged (an object in it could not be read): the next
/// fetch of its URL, under the exclusive lock, finds it unusable and fetches into a new one,
/// and [`super::cached`] no longer serves from it. `why` is kept in the file for whoever looks.
pub fn mark_damaged(repo_path: &Path, why: &str) -> std::io::Result<()> {
    std::fs::write(repo_path.join(DAMAGED), why)
}

/// Whether [`mark_damaged`] marked the cache at `repo_path`.
pub(crate) fn is_damaged(repo_path: &Path) -> bool {
    repo_path.join(DAMAGED).exists()
}

fn open_checked(path: &Path, options: &gix::open::Options) -> Result<gix::Repository, String> {
    if is_damaged(path) {
        return Err("an object of it could not be read (marked damaged)".to_owned());
    }
    let repo = gix::open_opts(path, options.clone()).map_err(|e| super::classify::chain(&e))?;
    if !repo.is_bare() {
        return Err("not a bare repository".to_owned());
    }
    repo.head_name()
        .map_err(|e| format!("HEAD: {}", super::classify::chain(&e)))?;
    repo.shallow_commits()
        .map_err(|e| format!("shallow file: {}", super::classify::chain(&e)))?;
    // A ref whose objects are gone would be offered to the server as a `have` and fail the
    // negotiation; the cache holds few refs, so checking each is cheap.
    let platform = repo.references().map_err(|e| super::classify::chain(&e))?;
    let refs = platform.all().map_err(|e| super::classify::chain(&e))?;
    for reference in refs {
        let mut reference = reference.map_err(|e| format!("refs: {e}"))?;
        let name = reference.name().as_bstr().to_string();
        let id = reference
            .peel_to_id()
            .map_err(|e| format!("{name}: {}", super::classify::chain(&e)))?;
        repo.find_commit(id.detach())
            .map_err(|e| format!("{name}: {}", super::classify::chain(&e)))?;
    }
    Ok(repo)
}

/// Removes every cache under `root` whose URL is not in `live_urls`, with its lock file, and
/// returns the removed repositories. A cache whose lock is held (a fetch or an archive is
/// reading it) is left for a later pass. Blocking.
pub fn evict_unused(root: &Path, live_urls: &[String]) -> Vec<PathBuf> {
    let live: std::collections::HashSet<String> =
        live_urls.iter().map(|u| super::url::cache_key(u)).collect();
    let Ok(listing) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in listing.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let is_key = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
        if !is_key || live.contains(&name) {
            continue;
        }
        let paths = CachePaths::new(root, &name);
        let never = AtomicBool::new(false);
        let Ok(held) = CacheLock::acquire(&paths.lock, true, Instant::now(), &never) else {
            continue;
        };
        match remove(&paths.repo) {
            Ok(()) => {
                // The lock file goes last, while still held: a fetch that opens it afterwards
                // creates a new one and a new cache.
                let _ = std::fs::remove_file(&paths.lock);
                removed.push(paths.repo);
            }
            Err(error) => tracing::warn!(%error, "evicting an unused git cache"),
        }
        drop(held);
    }
    removed
}

/// Removes the files a fetch killed midway leaves in the cache at `path`: `*.lock` files at the
/// top (`shallow.lock`, `packed-refs.lock`, ...) and under `refs/`, which make gix refuse every
/// later fetch, and temp files of packs being received under `objects/pack/`. Only a fetch
/// writes them, and fetches hold the exclusive lock, which the caller holds now: every such
/// file belongs to a process that is gone. Best effort; a file that stays fails the fetch
/// with its own message.
fn remove_leftovers(path: &Path) {
    let mut removed = 0;
    let mut sweep = |dir: &Path, stale: &dyn Fn(&str) -> bool, recurse: bool| {
        let mut dirs = vec![dir.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            let Ok(listing) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in listing.flatten() {
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                let name = entry.file_name();
                if kind.is_dir() && recurse {
                    dirs.push(entry.path());
                } else if kind.is_file()
                    && name.to_str().is_some_and(stale)
                    && std::fs::remove_file(entry.path()).is_ok()
                {
                    removed += 1;
                }
            }
        }
    };
    let lock = |name: &str| name.ends_with(".lock");
    sweep(path, &lock, false);
    sweep(&path.join("refs"), &lock, true);
    sweep(
        &path.join("objects").join("pack"),
        &|name: &str| name.starts_with(".tmp"),
        false,
    );
    if removed > 0 {
        tracing::info!(path = %path.display(), removed, "removed the lock and temp files of an interrupted fetch");
    }
}

pub(crate) fn remove(path: &Path) -> Result<(), GitError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        // A file where the directory should be.
        Err(_) if path.is_file() => {
            std::fs::remove_file(path).map_err(|e| cache_error(path, "removing", e))
        }
        Err(e) => Err(cache_error(path, "removing", e)),
    }
}

fn cache_error(path: &Path, what: &str, e: std::io::Error) -> GitError {
    GitError::Cache {
        path: path.to_owned(),
        detail: format!("{what}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(30)
    }

    #[test]
    fn paths_are_derived_from_the_key() {
        let paths = CachePaths::new(Path::new("/cache"), "abc");
        assert_eq!(paths.repo, Path::new("/cache/abc"));
        assert_eq!(paths.lock, Path::new("/cache/abc.lock"));
    }

    #[test]
    fn exclusive_lock_excludes_others_until_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.lock");
        let cancel = AtomicBool::new(false);
        let held = CacheLock::acquire(&path, true, far(), &cancel)
            .ok()
            .expect("first");
        let soon = Instant::now() + Duration::from_millis(60);
        assert!(matches!(
            CacheLock::acquire(&path, false, soon, &cancel),
            Err(LockWait::TimedOut)
        ));
        cancel.store(true, Ordering::Relaxed);
        assert!(matches!(
            CacheLock::acquire(&path, true, far(), &cancel),
            Err(LockWait::Cancelled)
        ));
        cancel.store(false, Ordering::Relaxed);
        drop(held);
        let a = CacheLock::acquire(&path, false, far(), &cancel)
            .ok()
            .expect("shared a");
        let b = CacheLock::acquire(&path, false, far(), &cancel)
            .ok()
            .expect("shared b");
        let soon = Instant::now() + Duration::from_millis(60);
        assert!(matches!(
            CacheLock::acquire(&path, true, soon, &cancel),
            Err(LockWait::TimedOut)
        ));
        drop((a, b));
    }

    #[test]
    fn only_caches_of_unused_urls_are_evicted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = gix::open::Options::isolated();
        let kept_url = "https://example.com/kept.git".to_owned();
        let gone_url = "https://example.com/gone.git";
        let busy_url = "https://example.com/busy.git";
        for url in [kept_url.as_str(), gone_url, busy_url] {
            let paths = CachePaths::new(dir.path(), &super::super::url::cache_key(url));
            open_or_create(&paths.repo, &options).expect("create");
            std::fs::write(&paths.lock, "").expect("lock file");
        }
        std::fs::write(dir.path().join("not-a-cache"), "x").expect("other file");
        let busy = CachePaths::new(dir.path(), &super::super::url::cache_key(busy_url));
        let cancel = AtomicBool::new(false);
        let reading = CacheLock::acquire(&busy.lock, false, far(), &cancel)
            .ok()
            .expect("a reader holds the busy cache");

        let removed = evict_unused(dir.path(), std::slice::from_ref(&kept_url));
        let gone = CachePaths::new(dir.path(), &super::super::url::cache_key(gone_url));
        assert_eq!(removed, vec![gone.repo.clone()]);
        assert!(!gone.repo.exists() && !gone.lock.exists());
        assert!(busy.repo.exists(), "a cache in use is left alone");
        let kept = CachePaths::new(dir.path(), &super::super::url::cache_key(&kept_url));
        assert!(kept.repo.exists());
        assert!(dir.path().join("not-a-cache").exists());

        drop(reading);
        let removed = evict_unused(dir.path(), &[kept_url]);
        assert_eq!(removed, vec![busy.repo]);
    }

    #[test]
    fn leftovers_of_a_killed_fetch_are_removed_and_the_cache_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = gix::open::Options::isolated();
        let path = dir.path().join("repo");
        open_or_create(&path, &options).expect("create");
        let leftovers = [
            "shallow.lock",
            "packed-refs.lock",
            "refs/mooring/heads/main.lock",
            "objects/pack/.tmpAbC123",
        ];
        for file in leftovers {
            let file = path.join(file);
            std::fs::create_dir_all(file.parent().expect("parent")).expect("dir");
            std::fs::write(&file, b"partial").expect("leftover");
        }
        let kept = path.join("objects/pack/pack-1234.keep");
        std::fs::write(&kept, b"").expect("keep file");
        let (_, created) = open_or_create(&path, &options).expect("reopen");
        assert!(!created, "the cache itself is kept");
        for file in leftovers {
            assert!(!path.join(file).exists(), "{file} is left");
        }
        assert!(kept.exists());
    }

    #[test]
    fn a_new_cache_is_a_small_bare_repository_that_git_and_gix_accept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("repo");
        let (repo, created) =
            open_or_create(&path, &gix::open::Options::isolated()).expect("create");
        assert!(created && repo.is_bare());
        let mut entries: Vec<String> = walk(&path);
        entries.sort();
        assert_eq!(
            entries,
            ["HEAD", "config", "objects", "objects/pack", "refs"],
            "no hook samples, description or probe files"
        );
        let git = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(&path)
            .args(["rev-parse", "--is-bare-repository"])
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("git runs");
        assert_eq!(
            String::from_utf8_lossy(&git.stdout).trim(),
            "true",
            "{git:?}"
        );
        assert!(
            init_bare(&path).is_err(),
            "an existing directory is never initialised over"
        );
    }

    fn walk(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut dirs = vec![root.to_owned()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("read_dir") {
                let path = entry.expect("entry").path();
                let relative = path.strip_prefix(root).expect("inside").to_owned();
                out.push(relative.to_string_lossy().into_owned());
                if path.is_dir() {
                    dirs.push(path);
                }
            }
        }
        out
    }

    #[test]
    fn unusable_cache_is_recreated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = gix::open::Options::isolated();
        let path = dir.path().join("repo");
        let (_, created) = open_or_create(&path, &options).expect("create");
        assert!(created);
        let (_, created) = open_or_create(&path, &options).expect("reopen");
        assert!(!created);
        std::fs::write(path.join("HEAD"), "garbage").expect("corrupt HEAD");
        let (repo, created) = open_or_create(&path, &options).expect("recreate");
        assert!(created);
        assert!(repo.is_bare());
        std::fs::remove_dir_all(&path).expect("rm");
        std::fs::write(&path, "a file").expect("file in the way");
        let (_, created) = open_or_create(&path, &options).expect("replace file");
        assert!(created);
    }
}
