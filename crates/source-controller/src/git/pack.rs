//! Git packs with bounded memory: indexing a received pack file, and reading a blob that a pack
//! stores whole as a stream.
//!
//! gix inflates every object whole when it indexes a pack or reads a blob, so a repository with
//! one huge file costs its whole size in memory. Here whole objects are hashed while they are
//! inflated through a fixed buffer; only deltas need memory (their base and their result), and
//! those are refused above a limit. Git never deltifies files above `core.bigFileThreshold`, so
//! the huge files are the whole ones.
//!
//! Only SHA-1 packs of version 2 or 3 are read, and only version-2 indexes are written.

mod blob;
mod idx;
mod resolve;
mod scan;
mod source;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

pub use blob::{PackedBlob, packed_blob};

/// What [`index_pack`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indexed {
    /// The pack's trailing SHA-1, which also closes the index.
    pub checksum: gix::ObjectId,
    /// How many objects the pack holds.
    pub objects: u64,
    /// How many times a delta was applied: once per delta, and again for each delta of a
    /// base that had to be rebuilt (it did not fit the cache, and it was not the next one
    /// walked).
    pub deltas_applied: u64,
}

/// Why a pack could not be indexed.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// Reading the pack or writing the index failed.
    #[error("pack I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The pack breaks its format; the message says what and at which offset.
    #[error("malformed pack: {0}")]
    Malformed(String),
    /// A delta base or a delta result that would have to be held in memory is above the limit.
    #[error("a delta base or result of {size} bytes is above the limit of {limit} bytes")]
    ObjectTooLarge { size: u64, limit: u64 },
    /// A REF_DELTA's base is not in the pack (a thin pack); the base's id.
    #[error("delta base {0} is not in the pack (thin pack)")]
    MissingBase(String),
    /// The interrupt flag was set.
    #[error("pack indexing interrupted")]
    Interrupted,
}

/// Writes the version-2 index of the pack file `pack` to `idx`, holding at most `limit` bytes of
/// any one object in memory; the index is byte-identical to `git index-pack`'s.
///
/// Whole objects of any size are hashed while they stream through a fixed buffer. Delta bases
/// and delta results are held in memory and refused above `limit`; resolved objects that are
/// bases of further deltas are kept in a cache of at most [`MAX_CACHE`] bytes (or `limit`, if
/// smaller), so one indexing holds at most twice `limit` plus that. Besides that, memory grows
/// with the number of objects (about a hundred bytes each), not with their size.
///
/// A pack holding the same object twice is refused as malformed (git writes both entries
/// unless `--strict`). The index goes to a temporary file next to `idx` and is renamed into
/// place, so `idx` is either absent, the old file, or complete. `interrupt` is checked for each
/// object and every few MiB of inflated data.
pub fn index_pack(
    pack: &Path,
    idx: &Path,
    limit: u64,
    interrupt: &AtomicBool,
) -> Result<Indexed, PackError> {
    index_with_cache(pack, idx, limit, limit.min(MAX_CACHE), interrupt)
}

/// The most resolved delta bases [`index_pack`] keeps: enough for the delta chains of
/// manifests and source files, small next to the limit of one object.
pub const MAX_CACHE: u64 = 8 << 20;

/// [`index_pack`] with a cache of resolved bases of `cache` bytes.
fn index_with_cache(
    pack: &Path,
    idx: &Path,
    limit: u64,
    cache: u64,
    interrupt: &AtomicBool,
) -> Result<Indexed, PackError> {
    let scanned = scan::scan(pack, interrupt)?;
    let (ids, deltas_applied) = resolve::resolve(pack, &scanned.entries, limit, cache, interrupt)?;
    idx::write(idx, &scanned.entries, &ids, &scanned.checksum)?;
    Ok(Indexed {
        checksum: gix::ObjectId::from(scanned.checksum),
        objects: scanned.entries.len() as u64,
        deltas_applied,
    })
}

/// Inflated bytes between two looks at the interrupt flag.
const INTERRUPT_EVERY: u64 = 4 << 20;

fn check_interrupt(interrupt: &AtomicBool) -> Result<(), PackError> {
    if interrupt.load(Ordering::Relaxed) {
        Err(PackError::Interrupted)
    } else {
        Ok(())
    }
}

fn malformed(offset: u64, what: impl std::fmt::Display) -> PackError {
    PackError::Malformed(format!("{what} (at offset {offset})"))
}

/// An error of the inflate or delta reader: corrupt or truncated data is malformed input, the
/// rest is I/O.
fn read_error(offset: u64, e: std::io::Error) -> PackError {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::InvalidData | ErrorKind::UnexpectedEof => malformed(offset, e),
        _ => PackError::Io(e),
    }
}
