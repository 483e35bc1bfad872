//! A content-addressed cache of extracted source artifacts.
//!
//! `get(url, digest)` returns the extracted tree of the artifact with that digest, shared by
//! every Kustomization that uses it: the first call downloads the `.tar.gz` to a temporary file
//! while hashing it, checks the digest before a byte is extracted, extracts with limits
//! (see [`extract`]) into a temporary directory and renames it to `<root>/<digest hex>/`;
//! later calls are cache hits with no request. Concurrent calls for one digest share one
//! download. A failed download, a digest mismatch or an unsafe archive leaves nothing in the
//! cache. [`ArtifactCache::retain`] evicts the trees no live Kustomization uses.
//!
//! Layout of `root`: `<hex>/` extracted trees; dot-names are private (`.download-*`,
//! `.extract-*`, `.trash-*`, and `.scratch/` for build working copies) and never evicted by
//! digest.

mod download;
mod extract;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mooring_api::Digest;
use tokio::sync::OnceCell;

pub use extract::{extract as extract_archive, safe_relative, symlink_stays_inside};

/// Size limits applied to every artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest `.tar.gz` accepted, in bytes.
    pub max_download_bytes: u64,
    /// Largest total size of the extracted files, in bytes.
    pub max_extracted_bytes: u64,
    /// Largest number of entries (files, directories, links), counting the directories an
    /// entry's path implies.
    pub max_files: u64,
}

impl Default for Limits {
    /// 256 MiB download, 1 GiB extracted, 100 000 entries.
    fn default() -> Self {
        Self {
            max_download_bytes: 256 << 20,
            max_extracted_bytes: 1 << 30,
            max_files: 100_000,
        }
    }
}

/// An extracted artifact: a read-only tree shared by all its users.
#[derive(Debug, PartialEq, Eq)]
pub struct ExtractedArtifact {
    /// The directory holding the artifact's files.
    pub dir: PathBuf,
    /// The verified digest.
    pub digest: Digest,
}

/// What went wrong under a transport error ("tcp connect error: Connection refused"), as
/// reqwest's own message only repeats the URL.
fn transport_cause(error: &reqwest::Error) -> String {
    match std::error::Error::source(error) {
        Some(cause) => mooring_runtime::errors::chain(cause),
        None => error.to_string(),
    }
}

/// Why an artifact could not be provided.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The digest given is not `<algorithm>:<hex>`.
    #[error("invalid artifact digest: {0}")]
    InvalidDigest(#[source] mooring_api::DigestError),
    /// The HTTP client could not be built.
    #[error("building the HTTP client failed: {0}")]
    Client(#[source] reqwest::Error),
    /// The download failed (connection, read timeout...).
    #[error("downloading {url} failed: {}", transport_cause(source))]
    Download {
        /// The artifact URL.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The server has no such artifact (yet).
    #[error("artifact not found at {url}")]
    NotFound {
        /// The artifact URL.
        url: String,
    },
    /// The server answered with another error status.
    #[error("downloading {url} failed with HTTP status {status}")]
    HttpStatus {
        /// The artifact URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The archive is larger than `max_download_bytes`.
    #[error("artifact at {url} is larger than the {limit} byte download limit")]
    DownloadTooLarge {
        /// The artifact URL.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// The downloaded archive does not have the expected digest.
    #[error("artifact digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The digest the source published.
        expected: String,
        /// The digest of what was downloaded.
        actual: String,
    },
    /// The archive has an entry that is refused.
    #[error("unsafe archive entry {entry:?}: {problem}")]
    UnsafeEntry {
        /// The entry's path as written in the archive.
        entry: String,
        /// Why it is refused.
        problem: &'static str,
    },
    /// The extracted files exceed `max_extracted_bytes`.
    #[error("artifact exceeds the {limit} byte extraction limit")]
    ExtractedTooLarge {
        /// The limit.
        limit: u64,
    },
    /// The archive has more than `max_files` entries.
    #[error("artifact exceeds the {limit} entry limit")]
    TooManyFiles {
        /// The limit.
        limit: u64,
    },
    /// The archive is not a valid gzip-compressed tar.
    #[error("invalid artifact archive: {source}")]
    Archive {
        /// The decoding error.
        #[source]
        source: std::io::Error,
    },
    /// A file system operation of the cache failed.
    #[error("artifact cache: {operation} {} failed: {source}", path.display())]
    Storage {
        /// The operation.
        operation: &'static str,
        /// The path it was applied to.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl ArtifactError {
    /// A stable short label for metrics and event reasons.
    pub fn label(&self) -> &'static str {
        match self {
            Self::InvalidDigest(_) => "InvalidDigest",
            Self::Client(_) => "HttpClient",
            Self::Download { .. } => "DownloadArtifact",
            Self::NotFound { .. } => "ArtifactNotFound",
            Self::HttpStatus { .. } => "DownloadArtifact",
            Self::DownloadTooLarge { .. } => "ArtifactTooLarge",
            Self::DigestMismatch { .. } => "DigestMismatch",
            Self::UnsafeEntry { .. } => "UnsafeArchiveEntry",
            Self::ExtractedTooLarge { .. } | Self::TooManyFiles { .. } => "ArtifactTooLarge",
            Self::Archive { .. } => "InvalidArchive",
            Self::Storage { .. } => "ArtifactStorage",
        }
    }
}

type Slot = Arc<OnceCell<Arc<ExtractedArtifact>>>;

/// The cache of extracted artifacts under one root directory.
#[derive(Debug)]
pub struct ArtifactCache {
    root: PathBuf,
    limits: Limits,
    client: reqwest::Client,
    /// One slot per digest (`sha256:<hex>`); a slot is filled once, by one download.
    slots: Mutex<HashMap<String, Slot>>,
}

/// Makes trash names unique within the process.
static TRASH_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Prefix of private entries of the root.
const PRIVATE_PREFIX: char = '.';

impl ArtifactCache {
    /// A cache in `root` (created if needed; leftovers of an interrupted run are removed).
    /// Trees extracted by an earlier run are reused: they were renamed into place only after
    /// verification.
    pub fn new(root: PathBuf, limits: Limits) -> Result<Self, ArtifactError> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(ArtifactError::Client)?;
        // Working copies of builds interrupted by a restart are garbage.
        let scratch = root.join(".scratch");
        if scratch.is_dir() {
            remove_any(&scratch);
        }
        std::fs::create_dir_all(&scratch).map_err(|e| storage("create", &scratch, e))?;
        for entry in std::fs::read_dir(&root).map_err(|e| storage("list", &root, e))? {
            let entry = entry.map_err(|e| storage("list", &root, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if [".download-", ".extract-", ".trash-"]
                .iter()
                .any(|p| name.starts_with(p))
            {
                remove_any(&entry.path());
            }
        }
        Ok(Self {
            root,
            limits,
            client,
            slots: Mutex::new(HashMap::new()),
        })
    }

    /// Replaces the HTTP client (for example to trust a private CA).
    pub fn with_http_client(mut self, client: reqwest::Client) -> Self {
        self.client = client;
        self
    }

    /// The cache's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A directory on the cache's filesystem for build working copies (so that they can
    /// hard-link the extracted files).
    pub fn scratch_dir(&self) -> PathBuf {
        self.root.join(".scratch")
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The extracted artifact with `digest`, downloaded from `url` when not cached yet.
    pub async fn get(
        &self,
        url: &str,
        digest: &str,
    ) -> Result<Arc<ExtractedArtifact>, ArtifactError> {
        let digest: Digest = digest.parse().map_err(ArtifactError::InvalidDigest)?;
        let key = digest.to_string();
        for _ in 0..3 {
            let slot = self.slots().entry(key.clone()).or_default().clone();
            let artifact = slot
                .get_or_try_init(|| self.fetch(url, &digest))
                .await?
                .clone();
            if tokio::fs::metadata(&artifact.dir)
                .await
                .is_ok_and(|m| m.is_dir())
            {
                return Ok(artifact);
            }
            // The tree vanished from disk (deleted by hand): forget it and fetch again.
            tracing::warn!(dir = %artifact.dir.display(), "cached artifact vanished; fetching again");
            let mut slots = self.slots();
            if slots.get(&key).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                slots.remove(&key);
            }
        }
        let dir = self.root.join(digest.hex());
        Err(storage(
            "keep",
            &dir,
            std::io::Error::other("the extracted tree keeps disappearing"),
        ))
    }

    async fn fetch(
        &self,
        url: &str,
        digest: &Digest,
    ) -> Result<Arc<ExtractedArtifact>, ArtifactError> {
        let dir = self.root.join(digest.hex());
        if tokio::fs::metadata(&dir).await.is_ok_and(|m| m.is_dir()) {
            return Ok(Arc::new(ExtractedArtifact {
                dir,
                digest: digest.clone(),
            }));
        }
        let archive =
            download::to_temp_file(&self.client, url, digest, &self.root, &self.limits).await?;
        let root = self.root.clone();
        let limits = self.limits;
        let target = dir.clone();
        tokio::task::spawn_blocking(move || -> Result<(), ArtifactError> {
            let staging = tempfile::Builder::new()
                .prefix(".extract-")
                .tempdir_in(&root)
                .map_err(|e| storage("create", &root, e))?;
            extract::extract(archive.path(), staging.path(), &limits)?;
            drop(archive);
            let staged = staging.keep();
            if let Err(e) = std::fs::rename(&staged, &target) {
                remove_any(&staged);
                // Another process sharing the root may have won the race.
                if !target.is_dir() {
                    return Err(storage("rename", &target, e));
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| storage("extract", &dir, std::io::Error::other(e)))??;
        tracing::info!(digest = %digest, dir = %dir.display(), "artifact extracted");
        Ok(Arc::new(ExtractedArtifact {
            dir,
            digest: digest.clone(),
        }))
    }

    /// Evicts every extracted tree whose digest is not in `keep` and that no caller still
    /// holds; returns how many were removed. Downloads in flight are left alone.
    pub async fn retain(&self, keep: &HashSet<String>) -> Result<usize, ArtifactError> {
        let keep_hex: HashSet<String> = keep
            .iter()
            .filter_map(|d| d.parse::<Digest>().ok())
            .map(|d| d.hex().to_owned())
            .collect();
        let mut on_disk = Vec::new();
        let mut listing = tokio::fs::read_dir(&self.root)
            .await
            .map_err(|e| storage("list", &self.root, e))?;
        while let Some(entry) = listing
            .next_entry()
            .await
            .map_err(|e| storage("list", &self.root, e))?
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with(PRIVATE_PREFIX) {
                on_disk.push(name);
            }
        }
        let mut trash = Vec::new();
        {
            let mut slots = self.slots();
            let mut victims = Vec::new();
            slots.retain(|key, slot| {
                let hex = key.split_once(':').map_or(key.as_str(), |(_, h)| h);
                if keep_hex.contains(hex) {
                    return true;
                }
                match slot.get() {
                    Some(artifact) if Arc::strong_count(artifact) == 1 => {
                        victims.push(hex.to_owned());
                        false
                    }
                    Some(_) => true,
                    // Empty: a download in flight (a `get` holds the slot), or one that failed
                    // (nobody does), whose slot is dropped.
                    None => Arc::strong_count(slot) > 1,
                }
            });
            let tracked: HashSet<&str> = slots
                .keys()
                .map(|k| k.split_once(':').map_or(k.as_str(), |(_, h)| h))
                .collect();
            victims.extend(
                on_disk
                    .into_iter()
                    .filter(|name| !keep_hex.contains(name) && !tracked.contains(name.as_str())),
            );
            victims.sort();
            victims.dedup();
            // Renamed while the slots are locked, so that no `get` can hand out a tree that is
            // being deleted; the slow removal happens afterwards.
            for hex in victims {
                let from = self.root.join(&hex);
                let n = TRASH_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let to = self.root.join(format!(".trash-{hex}-{n}"));
                if std::fs::rename(&from, &to).is_ok() {
                    trash.push(to);
                }
            }
        }
        let removed = trash.len();
        tokio::task::spawn_blocking(move || trash.iter().for_each(|p| remove_any(p)))
            .await
            .map_err(|e| storage("evict", &self.root, std::io::Error::other(e)))?;
        Ok(removed)
    }
}

fn storage(operation: &'static str, path: &Path, source: std::io::Error) -> ArtifactError {
    ArtifactError::Storage {
        operation,
        path: path.to_path_buf(),
        source,
    }
}

/// Best-effort removal of a file or tree.
fn remove_any(path: &Path) {
    let result = if path.is_dir() && !path.is_symlink() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    if let Err(e) = result {
        tracing::warn!(path = %path.display(), error = %e, "removing a cache entry failed");
    }
}
