//! Writing a version-2 pack index, as `git index-pack` writes it.

use std::io::{self, BufWriter, Write};
use std::path::Path;

use sha1::{Digest, Sha1};

use super::scan::Entry;
use super::{PackError, malformed};

/// Offsets from this one on go to the table of 64-bit offsets.
const LARGE_OFFSET: u64 = 1 << 31;

/// Writes the index of `entries` (with their `ids`, in pack order) to a temporary file next to
/// `path` and renames it into place.
pub(super) fn write(
    path: &Path,
    entries: &[Entry],
    ids: &[[u8; 20]],
    checksum: &[u8; 20],
) -> Result<(), PackError> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_unstable_by(|&a, &b| ids[a].cmp(&ids[b]));
    if let Some(pair) = order.windows(2).find(|w| ids[w[0]] == ids[w[1]]) {
        let second = entries[pair[0]].offset.max(entries[pair[1]].offset);
        return Err(malformed(
            second,
            format!(
                "object {} appears twice in the pack",
                hex::encode(ids[pair[0]])
            ),
        ));
    }

    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-index-")
        .tempfile_in(dir)?;
    write_to(tmp.as_file(), entries, ids, &order, checksum)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The index bytes, in id order.
fn write_to(
    file: &std::fs::File,
    entries: &[Entry],
    ids: &[[u8; 20]],
    order: &[usize],
    checksum: &[u8; 20],
) -> io::Result<()> {
    let mut out = Hashed {
        inner: BufWriter::new(file),
        sha: Sha1::new(),
    };
    out.write_all(b"\xfftOc")?;
    out.write_all(&2u32.to_be_bytes())?;
    let mut fanout = [0u32; 256];
    for id in ids {
        fanout[usize::from(id[0])] += 1;
    }
    let mut total = 0;
    for count in fanout {
        total += count;
        out.write_all(&total.to_be_bytes())?;
    }
    for &i in order {
        out.write_all(&ids[i])?;
    }
    for &i in order {
        out.write_all(&entries[i].crc.to_be_bytes())?;
    }
    let mut large = Vec::new();
    for &i in order {
        let offset = entries[i].offset;
        let word = if offset < LARGE_OFFSET {
            offset as u32
        } else {
            // At most 2^32 objects: the pack header counts them in a u32.
            let slot = 0x8000_0000 | large.len() as u32;
            large.push(offset);
            slot
        };
        out.write_all(&word.to_be_bytes())?;
    }
    for offset in large {
        out.write_all(&offset.to_be_bytes())?;
    }
    out.write_all(checksum)?;
    let own = out.sha.finalize();
    out.inner.write_all(&own)?;
    out.inner.flush()
}

/// A writer that hashes what it writes.
struct Hashed<W> {
    inner: W,
    sha: Sha1,
}

impl<W: Write> Write for Hashed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
