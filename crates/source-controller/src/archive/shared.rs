//! Artifacts shared by GitRepositories that pack the same commit the same way.
//!
//! The archive is deterministic: one commit of one cache repository with the same options
//! gives the same bytes. When many GitRepositories follow one repository (a monorepo with an
//! object per team or per cluster path), the first to reach a commit builds the archive and
//! the others copy its file into their own storage directory, checking the digest as they
//! copy. A build of a key in progress makes the others wait for it instead of building too.
//! A copy that cannot be made (the file was collected, or its bytes no longer match) falls
//! back to building.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use sha2::{Digest as _, Sha256};

use super::{ArchiveOptions, ArchiveSummary};
use crate::storage::{Storage, StoreError, StoredArtifact};

/// How many (commit, options) keys are remembered; the least recently used idle ones go
/// first.
const KEPT: usize = 256;

/// What identifies an archive's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ArchiveKey {
    /// The cache repository the commit is read from.
    pub repo: PathBuf,
    /// The commit archived.
    pub commit: String,
    /// Everything else that goes into the archive.
    pub options: ArchiveOptions,
}

/// An archive built for a key, in some GitRepository's storage directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Made {
    /// The artifact's path relative to the storage root.
    pub path: String,
    /// `sha256:<hex>` of its bytes.
    pub digest: String,
    /// What the build reported.
    pub summary: ArchiveSummary,
}

/// One key's record; holding its lock is building or copying it.
pub type Slot = Arc<tokio::sync::Mutex<Option<Made>>>;

/// The archives this process built, by key.
#[derive(Debug, Default)]
pub struct SharedArchives {
    slots: Mutex<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    by_key: HashMap<ArchiveKey, (Slot, u64)>,
    clock: u64,
}

impl SharedArchives {
    /// The slot of `key`: lock it, copy what it holds or build and record.
    pub fn slot(&self, key: ArchiveKey) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.clock += 1;
        let now = slots.clock;
        let slot = {
            let entry = slots.by_key.entry(key).or_default();
            entry.1 = now;
            entry.0.clone()
        };
        if slots.by_key.len() > KEPT {
            let mut idle: Vec<(u64, ArchiveKey)> = slots
                .by_key
                .iter()
                .filter(|(_, (slot, _))| Arc::strong_count(slot) == 1)
                .map(|(key, (_, used))| (*used, key.clone()))
                .collect();
            idle.sort_by_key(|(used, _)| *used);
            let excess = slots.by_key.len() - KEPT;
            for (_, key) in idle.into_iter().take(excess) {
                slots.by_key.remove(&key);
            }
        }
        slot
    }

    /// How many keys are remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .by_key
            .len()
    }
}

/// Why a copy was not made.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The file could not be read (collected since, most likely).
    #[error("read the shared artifact: {0}")]
    Read(io::Error),
    /// The new file could not be written.
    #[error("write the copy: {0}")]
    Write(io::Error),
    /// The bytes read are not the ones recorded.
    #[error("the shared artifact's digest is {found}, not the recorded {expected}")]
    Digest { expected: String, found: String },
}

/// Stores a copy of the `shared` artifact as an artifact of `namespace/name` (file stem
/// `commit`). Blocking.
pub fn copy_shared(
    storage: &Storage,
    namespace: &str,
    name: &str,
    commit: &str,
    shared: &Made,
) -> Result<(StoredArtifact, ArchiveSummary), StoreError<CopyError>> {
    let from = storage
        .local_path(&shared.path)
        .map_err(|e| StoreError::Build(CopyError::Read(io::Error::other(e))))?;
    let file = File::open(from).map_err(|e| StoreError::Build(CopyError::Read(e)))?;
    storage.store(namespace, name, commit, |out| {
        copy_verified(file, &shared.digest, out).map(|()| shared.summary.clone())
    })
}

/// Copies `from` into `out`, hashing as it goes; fails unless the bytes have `digest`.
/// Blocking.
pub fn copy_verified(
    mut from: impl Read,
    digest: &str,
    out: &mut impl Write,
) -> Result<(), CopyError> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        hasher.update(&buffer[..read]);
        out.write_all(&buffer[..read]).map_err(CopyError::Write)?;
    }
    let found = format!("sha256:{}", hex::encode(hasher.finalize()));
    if found != digest {
        return Err(CopyError::Digest {
            expected: digest.to_string(),
            found,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(commit: &str) -> ArchiveKey {
        ArchiveKey {
            repo: "/cache/a".into(),
            commit: commit.into(),
            options: ArchiveOptions::default(),
        }
    }

    #[test]
    fn one_key_one_slot_and_options_tell_keys_apart() {
        let shared = SharedArchives::default();
        let a = shared.slot(key("c1"));
        let again = shared.slot(key("c1"));
        assert!(Arc::ptr_eq(&a, &again));
        let mut other = key("c1");
        other.options.ignore = Some("*.md".into());
        assert!(!Arc::ptr_eq(&a, &shared.slot(other)));
        assert!(!Arc::ptr_eq(&a, &shared.slot(key("c2"))));
        assert_eq!(shared.len(), 3);
    }

    #[test]
    fn idle_keys_are_forgotten_beyond_the_limit_oldest_first_but_held_ones_stay() {
        let shared = SharedArchives::default();
        let held = shared.slot(key("held"));
        for i in 0..KEPT + 10 {
            shared.slot(key(&format!("c{i}")));
        }
        assert_eq!(shared.len(), KEPT);
        let slots = shared.slots.lock().expect("lock");
        assert!(slots.by_key.contains_key(&key("held")), "in use: kept");
        assert!(!slots.by_key.contains_key(&key("c0")), "oldest idle: gone");
        assert!(slots.by_key.contains_key(&key(&format!("c{}", KEPT + 9))));
        drop(slots);
        drop(held);
    }

    fn summary() -> ArchiveSummary {
        ArchiveSummary {
            digest: String::new(),
            size: 0,
            files: 1,
            dropped_symlinks: vec!["out".into()],
        }
    }

    #[test]
    fn a_copy_lands_in_the_objects_own_directory_and_a_damaged_or_collected_source_stores_nothing()
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::new(dir.path());
        let (first, _) = storage
            .store("ns", "a", "c1", |out| out.write_all(b"archive bytes"))
            .expect("store");
        let made = Made {
            path: first.path.clone(),
            digest: first.digest.clone(),
            summary: summary(),
        };
        let (copy, copied_summary) = copy_shared(&storage, "ns", "b", "c1", &made).expect("copy");
        assert_eq!(copy.digest, first.digest);
        assert_ne!(copy.path, first.path);
        assert!(
            copy.path.starts_with("gitrepository/ns/b/"),
            "{}",
            copy.path
        );
        assert_eq!(copied_summary, summary());
        assert!(storage.verify(&copy.path, &copy.digest));

        // Same size, other bytes: refused, and no file is left for c.
        let first_file = storage.local_path(&first.path).expect("path");
        std::fs::write(&first_file, b"archive bytez").expect("damage");
        let error = copy_shared(&storage, "ns", "c", "c1", &made).expect_err("refused");
        assert!(
            matches!(error, StoreError::Build(CopyError::Digest { .. })),
            "{error}"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path().join("gitrepository/ns/c"))
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{left:?}");

        std::fs::remove_file(&first_file).expect("collect");
        let error = copy_shared(&storage, "ns", "c", "c1", &made).expect_err("refused");
        assert!(
            matches!(error, StoreError::Build(CopyError::Read(_))),
            "{error}"
        );
    }

    #[test]
    fn a_copy_is_made_only_of_the_recorded_bytes() {
        let bytes = b"an artifact".to_vec();
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        let mut out = Vec::new();
        copy_verified(&bytes[..], &digest, &mut out).expect("copy");
        assert_eq!(out, bytes);

        let mut out = Vec::new();
        let error = copy_verified(&b"an artifacT"[..], &digest, &mut out).expect_err("refused");
        assert!(
            matches!(error, CopyError::Digest { ref expected, .. } if *expected == digest),
            "{error}"
        );
    }
}
