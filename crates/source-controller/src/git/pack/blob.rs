//! Reading a blob that a pack stores whole, as a stream through bounded buffers.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::source::{Inflater, Kind, Source, Type, read_header};

/// A blob stored whole in a pack: its size, and its inflated bytes as a reader that holds a
/// fixed buffer and the inflate window, whatever the size.
pub struct PackedBlob {
    /// The blob's size in bytes.
    pub size: u64,
    src: Source<File>,
    z: Inflater,
    left: u64,
}

impl std::fmt::Debug for PackedBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedBlob")
            .field("size", &self.size)
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

/// The blob `id` when one of the packs under `objects_dir/pack/` stores it whole (not as a
/// delta): its size and a reader of its inflated bytes that holds a bounded buffer. `Ok(None)`
/// when it is loose, stored only as a delta, or absent.
pub fn packed_blob(objects_dir: &Path, id: &gix::oid) -> io::Result<Option<PackedBlob>> {
    for idx in indexes(&objects_dir.join("pack"))? {
        let index = gix::odb::pack::index::File::at(&idx, gix::hash::Kind::Sha1)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let Some(entry) = index.lookup(id) else {
            continue;
        };
        let offset = index.pack_offset_at_index(entry);
        let mut src = Source::new(File::open(idx.with_extension("pack"))?, 0);
        src.seek(offset)?;
        let header = read_header(&mut src)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        // A delta here may be stored whole in another pack.
        if header.ty != Type::Object(Kind::Blob) {
            continue;
        }
        return Ok(Some(PackedBlob {
            size: header.size,
            src,
            z: Inflater::new(),
            left: header.size,
        }));
    }
    Ok(None)
}

/// The `.idx` files in `dir`, sorted; none when it does not exist.
fn indexes(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let list = match std::fs::read_dir(dir) {
        Ok(list) => list,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for item in list {
        let path = item?.path();
        if path.extension().is_some_and(|ext| ext == "idx") {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

impl Read for PackedBlob {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            // The stream must end exactly here, its checksum included.
            let mut probe = [0; 1];
            if self.z.read(&mut self.src, &mut probe)? != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("packed blob inflates to more than its {} bytes", self.size),
                ));
            }
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let got = self.z.read(&mut self.src, &mut buf[..want])?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "packed blob ends after {} of its {} bytes",
                    self.size - self.left,
                    self.size
                ),
            ));
        }
        self.left -= got as u64;
        Ok(got)
    }
}
