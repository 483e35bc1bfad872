//! Artifact files on disk: `<root>/gitrepository/<namespace>/<name>/<commit>-<digest>.tar.gz`.
//!
//! The file name carries the first 12 hex digits of the content's sha256 after the commit.
//! The same commit archived with other options (ignore rules, includes) therefore gets a new
//! file instead of replacing one a consumer may be downloading or about to verify, and a
//! rebuild of identical content lands on the same name (the archive is deterministic).
//! Files are written to a hidden temp file in the target directory, synced, then renamed into
//! place, so a reader only ever sees complete artifacts. Each process names its temp files with
//! a tag of its own: a temp file without this process's tag was left by a process that died
//! mid-write (a crash, an OOM kill) and is removed by the next GC of its directory. File times
//! are not used for this, as they tick coarsely and a kill just before a restart would leave a
//! file that looks as new as the restarted process's own writes.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use sha2::{Digest as _, Sha256};

/// The directory of GitRepository artifacts under the storage root.
pub const KIND_DIR: &str = "gitrepository";
/// Artifact file suffix.
pub const ARTIFACT_SUFFIX: &str = ".tar.gz";
/// How many hex digits of the digest go into a file name.
const DIGEST_IN_NAME: usize = 12;
/// Prefix of files being written; hidden, so the server never serves them.
const TEMP_PREFIX: &str = ".tmp-";
/// The digests remembered by [`Storage::holds`] are forgotten when there are this many.
const VERIFIED_LIMIT: usize = 4096;
/// A temp file older than this was left by a crashed write and is removed by [`Storage::gc`],
/// even when it carries this process's tag.
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A namespace, name or file stem could leave its directory.
    #[error(
        "invalid {what} {value:?}: only letters, digits, '.', '-' and '_' are allowed, not starting with '.'"
    )]
    InvalidName { what: &'static str, value: String },
    /// A relative artifact path is absolute or has `..`.
    #[error("invalid artifact path {path:?}: it must be relative, without `..`")]
    InvalidPath { path: String },
    /// The artifact directory could not be created.
    #[error("create directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    /// The temp file could not be created, written or synced.
    #[error("write artifact in {path}: {source}")]
    WriteArtifact { path: PathBuf, source: io::Error },
    /// The temp file could not be renamed into place.
    #[error("rename artifact to {path}: {source}")]
    Persist { path: PathBuf, source: io::Error },
    /// A directory could not be listed.
    #[error("list directory {path}: {source}")]
    ReadDir { path: PathBuf, source: io::Error },
    /// A file could not be removed.
    #[error("remove {path}: {source}")]
    Remove { path: PathBuf, source: io::Error },
}

impl StorageError {
    /// A stable short name of the failure, for metrics and event reasons.
    pub fn label(&self) -> &'static str {
        match self {
            Self::InvalidName { .. } => "InvalidName",
            Self::InvalidPath { .. } => "InvalidPath",
            Self::CreateDir { .. } => "CreateDir",
            Self::WriteArtifact { .. } => "WriteArtifact",
            Self::Persist { .. } => "Persist",
            Self::ReadDir { .. } => "ReadDir",
            Self::Remove { .. } => "Remove",
        }
    }
}

/// Why [`Storage::store`] failed: in storage, or in the caller's build step.
#[derive(Debug, thiserror::Error)]
pub enum StoreError<E> {
    /// The storage side failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The build step failed; nothing was stored.
    #[error("build artifact: {0}")]
    Build(E),
}

/// A stored artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredArtifact {
    /// Path relative to the storage root, `/`-separated (`status.artifact.path`).
    pub path: String,
    /// `sha256:<hex>` of the file.
    pub digest: String,
    /// Size of the file in bytes.
    pub size: u64,
}

/// The writer handed to the build step: hashes and counts what it writes.
pub struct ArtifactWriter {
    file: BufWriter<File>,
    hasher: Sha256,
    size: u64,
}

impl Write for ArtifactWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// What identifies one version of a file on disk without reading it: a write in place, a
/// replacement or a truncation changes at least one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStamp {
    dev: u64,
    ino: u64,
    /// The file's size in bytes.
    pub(crate) len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileStamp {
    /// The stamp of the file `meta` describes.
    pub(crate) fn of(meta: &fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt as _;
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// The artifact storage directory.
#[derive(Debug, Clone)]
pub struct Storage {
    root: PathBuf,
    /// Files whose digest was read in full, with the stamp they had then: an unchanged file
    /// is not hashed again on every pass.
    verified: Arc<Mutex<HashMap<PathBuf, (FileStamp, String)>>>,
    /// Prefix of the temp files this storage writes: [`TEMP_PREFIX`], a tag unique to this
    /// process and storage, and `-`.
    temp_prefix: Arc<str>,
}

impl Storage {
    /// Storage rooted at `root` (created on first store).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            verified: Arc::default(),
            temp_prefix: format!("{TEMP_PREFIX}{}-", instance_tag()).into(),
        }
    }

    /// The prefix of the temp files this storage writes; a temp file in storage without it
    /// is taken for a dead process's.
    pub fn temp_prefix(&self) -> &str {
        &self.temp_prefix
    }

    /// Whether the artifact at `path` is a regular file with `digest` (`sha256:<hex>`). The
    /// file is hashed in full the first time (unless this `Storage` wrote it, hashing it as it
    /// went) and whenever its size, times or inode changed since it was last found good;
    /// otherwise the answer costs one `stat`. Blocking.
    pub fn holds(&self, path: &str, digest: &str) -> bool {
        if self.holds_known(path, digest) {
            return true;
        }
        let Some((file_path, stamp)) = self.stamped(path) else {
            return false;
        };
        self.verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&file_path);
        if !self.verify(path, digest) {
            return false;
        }
        // The file may have changed while it was read: only a stamp taken before and still
        // true after the read is remembered.
        let unchanged = fs::symlink_metadata(&file_path).is_ok_and(|m| FileStamp::of(&m) == stamp);
        if unchanged {
            self.remember_good(file_path, stamp, digest);
        }
        true
    }

    /// The local path of the artifact at `path` and its stamp, when it is a regular file.
    fn stamped(&self, path: &str) -> Option<(PathBuf, FileStamp)> {
        let file_path = self.local_path(path).ok()?;
        let meta = fs::symlink_metadata(&file_path).ok()?;
        meta.file_type()
            .is_file()
            .then(|| (file_path, FileStamp::of(&meta)))
    }

    /// Remembers that the file at `file_path`, as `stamp` shows it, holds `digest`.
    fn remember_good(&self, file_path: PathBuf, stamp: FileStamp, digest: &str) {
        let mut verified = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Files of old revisions are collected from disk but not from here: start over now and
        // then rather than grow with every revision ever served.
        if verified.len() >= VERIFIED_LIMIT {
            verified.clear();
        }
        verified.insert(file_path, (stamp, digest.to_string()));
    }

    /// Whether the artifact at `path` is a file already found to hold `digest` and unchanged
    /// since (same size, times and inode): one `stat`, never a read. `false` says only that
    /// [`Storage::holds`] must decide.
    pub fn holds_known(&self, path: &str, digest: &str) -> bool {
        let Some((file_path, stamp)) = self.stamped(path) else {
            return false;
        };
        self.verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&file_path)
            .is_some_and(|(known, good)| *known == stamp && good == digest)
    }

    /// The storage root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of one GitRepository's artifacts, relative to the root.
    pub fn artifact_dir(&self, namespace: &str, name: &str) -> Result<String, StorageError> {
        check_segment("namespace", namespace)?;
        check_segment("name", name)?;
        Ok(format!("{KIND_DIR}/{namespace}/{name}"))
    }

    /// The file of a relative artifact path; refuses absolute paths and `..`.
    pub fn local_path(&self, path: &str) -> Result<PathBuf, StorageError> {
        let relative = Path::new(path);
        let plain = relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        if path.is_empty() || !plain || path.contains('\\') {
            return Err(StorageError::InvalidPath {
                path: path.to_string(),
            });
        }
        Ok(self.root.join(relative))
    }

    /// Writes an artifact of `namespace/name` with `build`, then moves it into place as
    /// `<stem>-<digest prefix>.tar.gz`; returns where it went and the build step's result.
    ///
    /// Blocking. When `build` fails, nothing is left behind.
    pub fn store<T, E>(
        &self,
        namespace: &str,
        name: &str,
        stem: &str,
        build: impl FnOnce(&mut ArtifactWriter) -> Result<T, E>,
    ) -> Result<(StoredArtifact, T), StoreError<E>> {
        check_segment("file stem", stem)?;
        let dir_rel = self.artifact_dir(namespace, name)?;
        let dir = self.root.join(&dir_rel);
        fs::create_dir_all(&dir).map_err(|source| StorageError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        let write_error = |source| StorageError::WriteArtifact {
            path: dir.clone(),
            source,
        };
        let temp = tempfile::Builder::new()
            .prefix(&*self.temp_prefix)
            .suffix(ARTIFACT_SUFFIX)
            .tempfile_in(&dir)
            .map_err(write_error)?;
        let file = temp.as_file().try_clone().map_err(write_error)?;
        let mut writer = ArtifactWriter {
            file: BufWriter::with_capacity(64 * 1024, file),
            hasher: Sha256::new(),
            size: 0,
        };
        // On error `temp` is dropped here, which deletes it.
        let built = build(&mut writer).map_err(StoreError::Build)?;
        writer.flush().map_err(write_error)?;
        temp.as_file().sync_all().map_err(write_error)?;

        let hex = hex::encode(writer.hasher.finalize());
        let file_name = format!("{stem}-{}{ARTIFACT_SUFFIX}", &hex[..DIGEST_IN_NAME]);
        let target = dir.join(&file_name);
        temp.persist(&target).map_err(|e| StorageError::Persist {
            path: target.clone(),
            source: e.error,
        })?;
        // Make the rename itself durable; a failure here does not undo a complete artifact.
        if let Err(error) = File::open(&dir).and_then(|d| d.sync_all()) {
            tracing::warn!(dir = %dir.display(), %error, "sync artifact directory");
        }
        let stored = StoredArtifact {
            path: format!("{dir_rel}/{file_name}"),
            digest: format!("sha256:{hex}"),
            size: writer.size,
        };
        // Hashed while it was written: the next pass's check needs only a `stat`.
        if let Ok(meta) = fs::symlink_metadata(&target) {
            self.remember_good(target, FileStamp::of(&meta), &stored.digest);
        }
        Ok((stored, built))
    }

    /// Whether the artifact at `path` exists as a regular file and has `digest`
    /// (`sha256:<hex>`). Reads the whole file, streaming. Blocking.
    pub fn verify(&self, path: &str, digest: &str) -> bool {
        let Some(expected) = digest.strip_prefix("sha256:") else {
            return false;
        };
        let Ok(file_path) = self.local_path(path) else {
            return false;
        };
        let is_file = fs::symlink_metadata(&file_path).is_ok_and(|m| m.file_type().is_file());
        if !is_file {
            return false;
        }
        match File::open(&file_path).and_then(sha256_hex) {
            Ok(actual) => actual.eq_ignore_ascii_case(expected),
            Err(_) => false,
        }
    }

    /// Removes old artifacts of `namespace/name`: keeps the newest `keep` files by mtime,
    /// counting `keep_path` (the advertised artifact, never removed), and removes temp files
    /// left by crashed writes: those without this storage's tag, and any written long ago.
    /// Returns the removed paths, relative to the root. Blocking.
    pub fn gc(
        &self,
        namespace: &str,
        name: &str,
        keep: usize,
        keep_path: &str,
    ) -> Result<Vec<String>, StorageError> {
        let dir_rel = self.artifact_dir(namespace, name)?;
        let dir = self.root.join(&dir_rel);
        let listing = match fs::read_dir(&dir) {
            Ok(listing) => listing,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(StorageError::ReadDir { path: dir, source }),
        };
        let now = SystemTime::now();
        let mut artifacts = Vec::new();
        let mut stale_temps = Vec::new();
        for entry in listing {
            let entry = entry.map_err(|source| StorageError::ReadDir {
                path: dir.clone(),
                source,
            })?;
            let Ok(file_name) = entry.file_name().into_string() else {
                continue;
            };
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            if file_name.starts_with(TEMP_PREFIX) {
                let age = now.duration_since(modified).unwrap_or_default();
                if !file_name.starts_with(&*self.temp_prefix) || age > STALE_TEMP_AGE {
                    stale_temps.push(file_name);
                }
            } else if file_name.ends_with(ARTIFACT_SUFFIX) {
                artifacts.push((modified, file_name));
            }
        }
        let current = keep_path
            .strip_prefix(&dir_rel)
            .and_then(|rest| rest.strip_prefix('/'));
        let mut removed = Vec::new();
        for file_name in select_for_removal(artifacts, keep, current)
            .into_iter()
            .chain(stale_temps)
        {
            let path = dir.join(&file_name);
            match fs::remove_file(&path) {
                Ok(()) => removed.push(format!("{dir_rel}/{file_name}")),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(StorageError::Remove { path, source }),
            }
        }
        Ok(removed)
    }

    /// Removes every artifact of `namespace/name` (the object is being deleted). Blocking.
    pub fn remove_all(&self, namespace: &str, name: &str) -> Result<(), StorageError> {
        let dir = self.root.join(self.artifact_dir(namespace, name)?);
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(StorageError::Remove { path: dir, source }),
        }
        // Best effort: the namespace directory goes when it was the last object in it.
        if let Some(parent) = dir.parent() {
            let _ = fs::remove_dir(parent);
        }
        Ok(())
    }

    /// The URL of the artifact at `path` behind `base_url` (`host:port`, or a full
    /// `http(s)://` URL used as given).
    pub fn url_for(path: &str, base_url: &str) -> String {
        let base = base_url.trim_end_matches('/');
        let scheme = if base.contains("://") { "" } else { "http://" };
        let encoded: Vec<String> = path.split('/').map(encode_segment).collect();
        format!("{scheme}{base}/{}", encoded.join("/"))
    }
}

/// A tag no other process (a restarted one included, whose pid may well be the same in a
/// container) and no other storage of this process uses: the clock at creation, the pid and a
/// counter.
fn instance_tag() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{nanos:x}{:x}{count:x}", std::process::id())
}

/// The artifacts to remove: all but the newest `keep` (the current one counts and stays).
fn select_for_removal(
    mut artifacts: Vec<(SystemTime, String)>,
    keep: usize,
    current: Option<&str>,
) -> Vec<String> {
    // Newest first; equal times fall back to the name so the choice is stable.
    artifacts.sort_by(|a, b| b.cmp(a));
    let mut kept = usize::from(current.is_some_and(|c| artifacts.iter().any(|(_, n)| n == c)));
    let mut removed = Vec::new();
    for (_, file_name) in artifacts {
        if Some(file_name.as_str()) == current {
            continue;
        }
        if kept < keep {
            kept += 1;
        } else {
            removed.push(file_name);
        }
    }
    removed
}

/// Hex sha256 of everything `reader` yields, read in chunks.
pub fn sha256_hex(mut reader: impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Kubernetes names are DNS labels or subdomains; anything else is refused before it becomes
/// a path component.
fn check_segment(what: &'static str, value: &str) -> Result<(), StorageError> {
    let valid = !value.is_empty()
        && value.len() <= 253
        && !value.starts_with('.')
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(StorageError::InvalidName {
            what,
            value: value.to_string(),
        })
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
