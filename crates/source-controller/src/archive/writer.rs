//! Writing the entries as a deterministic `.tar.gz`, hashing and counting the compressed bytes
//! on the way out.
//!
//! What makes two runs byte-identical: entries in byte order of their path; GNU headers with
//! uid/gid 0, empty user and group names, mtime 0 and normalised modes; a gzip header with no
//! file name, mtime 0 and OS "unknown"; a fixed compression level with a fixed backend (flate2
//! on zlib-rs, pinned by Cargo.lock). A flate2 or zlib-rs upgrade may change the compressed
//! bytes, and so the digest, of the same content; the content itself stays identical.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Write};
use std::rc::Rc;

use flate2::{Compression, GzBuilder};
use sha2::{Digest as _, Sha256};
use tar::{EntryType, Header};

use super::ArchiveError;
use super::entries::{Entries, Node, Source};
use super::paths::as_path;

/// gzip level 6: the zlib default, a good balance for YAML-heavy trees.
pub const COMPRESSION_LEVEL: u32 = 6;
/// Mode of directory entries.
pub const DIR_MODE: u32 = 0o755;
/// Mode of regular files (git's 100644).
pub const FILE_MODE: u32 = 0o644;
/// Mode of executable files (git's 100755).
pub const EXECUTABLE_MODE: u32 = 0o755;
/// Mode of symlink entries (ignored by extractors on Linux).
pub const SYMLINK_MODE: u32 = 0o777;
/// gzip "operating system" byte for "unknown", so the output does not depend on the host.
const GZIP_OS_UNKNOWN: u8 = 255;

/// What was written.
#[derive(Debug)]
pub struct Written {
    /// `sha256:<hex>` of the compressed bytes.
    pub digest: String,
    /// Number of compressed bytes.
    pub size: u64,
    /// Number of regular files.
    pub files: u64,
}

/// Writes `entries` to `out`, reading blob content from `repo` one blob at a time.
pub fn write_archive<W: Write>(
    repo: &gix::Repository,
    entries: &Entries,
    out: W,
    limit: Option<u64>,
    max_file_size: Option<u64>,
) -> Result<Written, ArchiveError> {
    let exceeded = Rc::new(Cell::new(false));
    let counted = Counted {
        inner: out,
        hasher: Sha256::new(),
        written: 0,
        limit,
        exceeded: Rc::clone(&exceeded),
    };
    let gzip = GzBuilder::new()
        .mtime(0)
        .operating_system(GZIP_OS_UNKNOWN)
        .write(counted, Compression::new(COMPRESSION_LEVEL));
    let mut tar = tar::Builder::new(gzip);
    let write_error = |source: io::Error| match limit {
        Some(limit) if exceeded.get() => ArchiveError::TooLarge { limit },
        _ => ArchiveError::Write(source),
    };

    let mut files = 0;
    for (path, node) in entries.iter() {
        append(&mut tar, repo, path, node, max_file_size).map_err(|e| match e {
            ArchiveError::Write(source) => write_error(source),
            other => other,
        })?;
        if matches!(node, Node::File { .. }) {
            files += 1;
        }
    }
    let gzip = tar.into_inner().map_err(write_error)?;
    let mut counted = gzip.finish().map_err(write_error)?;
    counted.inner.flush().map_err(write_error)?;
    Ok(Written {
        digest: format!("sha256:{}", hex::encode(counted.hasher.finalize())),
        size: counted.written,
        files,
    })
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    repo: &gix::Repository,
    path: &[u8],
    node: &Node,
    max_file_size: Option<u64>,
) -> Result<(), ArchiveError> {
    let mut header = Header::new_gnu();
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(0);
    match node {
        Node::Dir => {
            header.set_entry_type(EntryType::Directory);
            header.set_mode(DIR_MODE);
            // The trailing slash marks a directory for tools that look only at names.
            let mut name = path.to_vec();
            name.push(b'/');
            tar.append_data(&mut header, as_path(&name), io::empty())
                .map_err(ArchiveError::Write)
        }
        Node::File { executable, source } => {
            header.set_entry_type(EntryType::Regular);
            header.set_mode(if *executable {
                EXECUTABLE_MODE
            } else {
                FILE_MODE
            });
            match source {
                Source::Blob(id) => {
                    // Asked before the blob is read: the header costs no allocation of its size.
                    if let Some(limit) = max_file_size {
                        let size = repo
                            .find_header(*id)
                            .map_err(|source| ArchiveError::ReadObject {
                                id: id.to_string(),
                                source,
                            })?
                            .size();
                        if size > limit {
                            // Stored whole in a pack, it is copied as a stream; a loose or
                            // deltified object would have to be read whole.
                            let objects = repo.objects.store_ref().path();
                            let blob = crate::git::pack::packed_blob(objects, id)
                                .map_err(|source| ArchiveError::ReadPackedObject {
                                    path: super::paths::display(path),
                                    id: id.to_string(),
                                    source,
                                })?
                                .ok_or_else(|| ArchiveError::FileTooLarge {
                                    path: super::paths::display(path),
                                    size,
                                    limit,
                                })?;
                            header.set_size(blob.size);
                            // A short or corrupt stream is the pack's fault, not the archive's.
                            let mut reading = ReadErrors {
                                inner: blob,
                                failed: None,
                            };
                            return tar
                                .append_data(&mut header, as_path(path), &mut reading)
                                .map_err(|e| match reading.failed.take() {
                                    Some(source) => ArchiveError::ReadPackedObject {
                                        path: super::paths::display(path),
                                        id: id.to_string(),
                                        source,
                                    },
                                    None => ArchiveError::Write(e),
                                });
                        }
                    }
                    let blob = repo
                        .find_blob(*id)
                        .map_err(|source| ArchiveError::ReadObject {
                            id: id.to_string(),
                            source,
                        })?;
                    header.set_size(blob.data.len() as u64);
                    tar.append_data(&mut header, as_path(path), blob.data.as_slice())
                        .map_err(ArchiveError::Write)
                }
                Source::Scratch(scratch) => {
                    let file = File::open(scratch).map_err(ArchiveError::ReadScratch)?;
                    let size = file.metadata().map_err(ArchiveError::ReadScratch)?.len();
                    header.set_size(size);
                    tar.append_data(&mut header, as_path(path), file)
                        .map_err(ArchiveError::Write)
                }
            }
        }
        Node::Symlink { target } => {
            header.set_entry_type(EntryType::Symlink);
            header.set_mode(SYMLINK_MODE);
            tar.append_link(&mut header, as_path(path), as_path(target))
                .map_err(ArchiveError::Write)
        }
    }
}

/// Hashes and counts what passes through, and fails once `limit` bytes would be exceeded.
struct Counted<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
    limit: Option<u64>,
    /// Set when the limit stopped a write, so the error can be told apart from an I/O error
    /// after it went through the tar and gzip layers.
    exceeded: Rc<Cell<bool>>,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(limit) = self.limit
            && self.written.saturating_add(buf.len() as u64) > limit
        {
            self.exceeded.set(true);
            return Err(io::Error::other("artifact size limit exceeded"));
        }
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that keeps its first error, so that a failure of the source is told apart from one
/// of the archive it is copied into.
struct ReadErrors<R> {
    inner: R,
    failed: Option<std::io::Error>,
}

impl<R: std::io::Read> std::io::Read for ReadErrors<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if self.failed.is_none() {
                self.failed = Some(std::io::Error::new(e.kind(), e.to_string()));
            }
        })
    }
}
