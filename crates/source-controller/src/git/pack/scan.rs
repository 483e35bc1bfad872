//! The first pass over a pack: every entry's header, CRC32 and compressed extent, the id of
//! every whole object (hashed while it streams through a fixed buffer), and the pack's checksum.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use sha1::Digest;

use super::source::{Inflater, Kind, Source, Type, read_header};
use super::{INTERRUPT_EVERY, PackError, check_interrupt, malformed, read_error};

/// Inflated bytes hashed at a time.
const OUTPUT: usize = 64 << 10;

/// One entry of the pack, in pack order.
#[derive(Debug)]
pub(super) struct Entry {
    /// Where the entry starts.
    pub(super) offset: u64,
    /// Where its zlib stream starts.
    pub(super) data_offset: u64,
    /// Its inflated size, from the header and checked against the stream.
    pub(super) size: u64,
    /// CRC32 of the entry's bytes in the pack.
    pub(super) crc: u32,
    pub(super) object: Object,
}

/// What an entry stores.
#[derive(Debug)]
pub(super) enum Object {
    /// A whole object, hashed.
    Whole { kind: Kind, id: [u8; 20] },
    /// A delta against the entry at this index (an OFS_DELTA).
    OfsDelta { base: u32 },
    /// A delta against the object with this id (a REF_DELTA).
    RefDelta { base: [u8; 20] },
}

/// The result of the first pass.
pub(super) struct Scanned {
    pub(super) entries: Vec<Entry>,
    pub(super) checksum: [u8; 20],
}

/// Reads the whole pack at `path` once, validating its framing, every zlib stream, every
/// entry's inflated size and the trailing checksum.
pub(super) fn scan(path: &Path, interrupt: &AtomicBool) -> Result<Scanned, PackError> {
    let mut src = Source::new(File::open(path)?, 0).hashing();
    let mut head = [0; 12];
    src.read_exact(&mut head)
        .map_err(|e| short(e, 0, "file is shorter than a pack header"))?;
    if &head[..4] != b"PACK" {
        return Err(malformed(0, "no PACK signature"));
    }
    let version = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    if version != 2 && version != 3 {
        return Err(malformed(4, format!("unsupported pack version {version}")));
    }
    let count = u32::from_be_bytes([head[8], head[9], head[10], head[11]]);

    // The header's count is not trusted for the allocation: each entry takes some bytes.
    let mut entries: Vec<Entry> = Vec::with_capacity(count.min(4096) as usize);
    let mut z = Inflater::new();
    let mut out = vec![0; OUTPUT];
    let mut since_check = 0;
    for n in 0..count {
        check_interrupt(interrupt)?;
        let offset = src.offset();
        if src.fill()?.is_empty() {
            return Err(malformed(
                offset,
                format!("pack ends after {n} of the {count} objects its header counts"),
            ));
        }
        src.start_crc();
        let header = read_header(&mut src)?;
        let data_offset = src.offset();
        let (object, mut sha) = match header.ty {
            Type::Object(kind) => (
                Object::Whole { kind, id: [0; 20] },
                Some(kind.hasher(header.size)),
            ),
            Type::OfsDelta(base) => {
                let Ok(index) = entries.binary_search_by_key(&base, |e| e.offset) else {
                    return Err(malformed(
                        offset,
                        format!("delta base offset {base} is not the start of an entry"),
                    ));
                };
                // `index` < `entries.len()` <= `count`, a u32.
                (Object::OfsDelta { base: index as u32 }, None)
            }
            Type::RefDelta(base) => (Object::RefDelta { base }, None),
        };

        z.reset();
        let mut total = 0;
        loop {
            let got = z
                .read(&mut src, &mut out)
                .map_err(|e| read_error(offset, e))?;
            if got == 0 {
                break;
            }
            total += got as u64;
            if total > header.size {
                return Err(malformed(
                    offset,
                    format!(
                        "entry inflates to more than the {} bytes of its header",
                        header.size
                    ),
                ));
            }
            if let Some(sha) = &mut sha {
                sha.update(&out[..got]);
            }
            since_check += got as u64;
            if since_check >= INTERRUPT_EVERY {
                check_interrupt(interrupt)?;
                since_check = 0;
            }
        }
        if total != header.size {
            return Err(malformed(
                offset,
                format!(
                    "entry inflates to {total} bytes, its header says {}",
                    header.size
                ),
            ));
        }
        let object = match (object, sha) {
            (Object::Whole { kind, .. }, Some(sha)) => Object::Whole {
                kind,
                id: sha.finalize().into(),
            },
            (object, _) => object,
        };
        entries.push(Entry {
            offset,
            data_offset,
            size: header.size,
            crc: src.take_crc(),
            object,
        });
    }

    let end = src.offset();
    let checksum = src.take_sha().unwrap_or_default();
    let mut trailer = [0; 20];
    src.read_exact(&mut trailer)
        .map_err(|e| short(e, end, "pack ends before its trailing checksum"))?;
    if trailer != checksum {
        return Err(malformed(
            end,
            "trailing checksum does not match the pack (or the header's object count is wrong)",
        ));
    }
    if !src.fill()?.is_empty() {
        return Err(malformed(src.offset(), "bytes after the trailing checksum"));
    }
    Ok(Scanned { entries, checksum })
}

/// The end of the file where `what` was expected is malformed input; other errors are I/O.
fn short(e: std::io::Error, offset: u64, what: &str) -> PackError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        malformed(offset, what)
    } else {
        PackError::Io(e)
    }
}
