//! Reading a pack through a fixed buffer: the bytes an entry used (hashed and CRC'd on the way
//! when indexing), entry headers, and zlib streams whose compressed length only inflating tells.

use std::io::{self, Read, Seek, SeekFrom};

use flate2::{Decompress, FlushDecompress, Status};
use sha1::{Digest, Sha1};

use super::{PackError, malformed};

/// Bytes read from the pack file at a time.
const BUFFER: usize = 64 << 10;

/// A pack file read through a fixed buffer, knowing the pack offset of the next byte.
pub(super) struct Source<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    offset: u64,
    /// SHA-1 of every byte consumed, for the pack's trailing checksum (indexing only).
    sha: Option<Sha1>,
    /// CRC32 of the bytes consumed since [`Source::start_crc`] (indexing only).
    crc: Option<crc32fast::Hasher>,
}

impl<R: Read> Source<R> {
    /// Reads `inner`, whose next byte is at pack offset `offset`.
    pub(super) fn new(inner: R, offset: u64) -> Source<R> {
        Source {
            inner,
            buf: vec![0; BUFFER].into_boxed_slice(),
            pos: 0,
            len: 0,
            offset,
            sha: None,
            crc: None,
        }
    }

    /// Hashes every byte consumed from now on, until [`Source::take_sha`].
    pub(super) fn hashing(mut self) -> Source<R> {
        self.sha = Some(Sha1::new());
        self
    }

    /// The pack offset of the next byte.
    pub(super) fn offset(&self) -> u64 {
        self.offset
    }

    /// The buffered bytes, reading more when none are left; empty at the end of the file.
    pub(super) fn fill(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.len {
            self.pos = 0;
            self.len = loop {
                match self.inner.read(&mut self.buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            };
        }
        Ok(&self.buf[self.pos..self.len])
    }

    /// Marks `n` buffered bytes as used.
    pub(super) fn consume(&mut self, n: usize) {
        let used = &self.buf[self.pos..self.pos + n];
        if let Some(sha) = &mut self.sha {
            sha.update(used);
        }
        if let Some(crc) = &mut self.crc {
            crc.update(used);
        }
        self.pos += n;
        self.offset += n as u64;
    }

    /// The next byte, or `None` at the end of the file.
    pub(super) fn byte(&mut self) -> io::Result<Option<u8>> {
        let Some(&b) = self.fill()?.first() else {
            return Ok(None);
        };
        self.consume(1);
        Ok(Some(b))
    }

    /// Fills `out`, or fails with `UnexpectedEof`.
    pub(super) fn read_exact(&mut self, out: &mut [u8]) -> io::Result<()> {
        let mut done = 0;
        while done < out.len() {
            let input = self.fill()?;
            if input.is_empty() {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let n = input.len().min(out.len() - done);
            out[done..done + n].copy_from_slice(&input[..n]);
            self.consume(n);
            done += n;
        }
        Ok(())
    }

    /// Starts a CRC32 over the bytes consumed from now on.
    pub(super) fn start_crc(&mut self) {
        self.crc = Some(crc32fast::Hasher::new());
    }

    /// The CRC32 since [`Source::start_crc`].
    pub(super) fn take_crc(&mut self) -> u32 {
        self.crc.take().map_or(0, crc32fast::Hasher::finalize)
    }

    /// The SHA-1 of every byte consumed so far; later bytes are not hashed.
    pub(super) fn take_sha(&mut self) -> Option<[u8; 20]> {
        self.sha.take().map(|sha| sha.finalize().into())
    }
}

impl<R: Read + Seek> Source<R> {
    /// Continues at pack offset `offset`.
    pub(super) fn seek(&mut self, offset: u64) -> io::Result<()> {
        self.inner.seek(SeekFrom::Start(offset))?;
        self.pos = 0;
        self.len = 0;
        self.offset = offset;
        Ok(())
    }
}

/// The type of a pack entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Type {
    Object(Kind),
    /// A delta against the entry at this pack offset.
    OfsDelta(u64),
    /// A delta against the object with this id.
    RefDelta([u8; 20]),
}

/// The type of a git object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Commit,
    Tree,
    Blob,
    Tag,
}

impl Kind {
    /// The name that starts the object's hashed header.
    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Commit => "commit",
            Kind::Tree => "tree",
            Kind::Blob => "blob",
            Kind::Tag => "tag",
        }
    }

    /// The hasher of an object of this kind and `size` bytes, its header (`blob 12\0`) fed:
    /// the object's id is this hash once its content is added.
    pub(super) fn hasher(self, size: u64) -> Sha1 {
        let mut sha = Sha1::new();
        sha.update(format!("{} {size}\0", self.name()));
        sha
    }
}

/// A parsed entry header.
#[derive(Debug)]
pub(super) struct Header {
    pub(super) ty: Type,
    /// The inflated size: of the object, or of a delta's instructions.
    pub(super) size: u64,
}

/// Reads the header of the entry that starts at `src`'s offset; `src` then stands at the zlib
/// stream.
pub(super) fn read_header<R: Read>(src: &mut Source<R>) -> Result<Header, PackError> {
    let offset = src.offset();
    let mut next = || -> Result<u8, PackError> {
        src.byte()?
            .ok_or_else(|| malformed(offset, "pack ends inside an entry header"))
    };
    let first = next()?;
    let mut size = u64::from(first & 0x0f);
    let mut shift = 4;
    let mut more = first & 0x80 != 0;
    while more {
        if shift > 57 {
            return Err(malformed(offset, "entry size does not fit in 64 bits"));
        }
        let b = next()?;
        size |= u64::from(b & 0x7f) << shift;
        shift += 7;
        more = b & 0x80 != 0;
    }
    let ty = match (first >> 4) & 7 {
        1 => Type::Object(Kind::Commit),
        2 => Type::Object(Kind::Tree),
        3 => Type::Object(Kind::Blob),
        4 => Type::Object(Kind::Tag),
        6 => {
            let mut b = next()?;
            let mut back = u64::from(b & 0x7f);
            while b & 0x80 != 0 {
                if back >= 1 << 56 {
                    return Err(malformed(
                        offset,
                        "delta base offset does not fit in 64 bits",
                    ));
                }
                b = next()?;
                back = ((back + 1) << 7) | u64::from(b & 0x7f);
            }
            if back == 0 || back > offset {
                return Err(malformed(
                    offset,
                    format!("delta base {back} bytes back is not before this entry"),
                ));
            }
            Type::OfsDelta(offset - back)
        }
        7 => {
            let mut id = [0; 20];
            src.read_exact(&mut id)
                .map_err(|e| super::read_error(offset, e))?;
            Type::RefDelta(id)
        }
        other => return Err(malformed(offset, format!("invalid entry type {other}"))),
    };
    Ok(Header { ty, size })
}

/// Inflates one zlib stream at a time from a [`Source`], consuming exactly its bytes.
pub(super) struct Inflater {
    z: Decompress,
    ended: bool,
}

impl Inflater {
    pub(super) fn new() -> Inflater {
        Inflater {
            z: Decompress::new(true),
            ended: false,
        }
    }

    /// Starts the next stream.
    pub(super) fn reset(&mut self) {
        self.z.reset(true);
        self.ended = false;
    }

    /// Inflates into `out`; 0 only when the stream ended cleanly (or `out` is empty). A stream
    /// cut short is `UnexpectedEof`, a corrupt one `InvalidData`.
    pub(super) fn read<R: Read>(
        &mut self,
        src: &mut Source<R>,
        out: &mut [u8],
    ) -> io::Result<usize> {
        if self.ended || out.is_empty() {
            return Ok(0);
        }
        loop {
            let input = src.fill()?;
            let at_eof = input.is_empty();
            let (in_before, out_before) = (self.z.total_in(), self.z.total_out());
            let status = self
                .z
                .decompress(input, out, FlushDecompress::None)
                .map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("corrupt zlib stream: {e}"),
                    )
                })?;
            // Both differences are bounded by the slices' lengths.
            let consumed = (self.z.total_in() - in_before) as usize;
            let produced = (self.z.total_out() - out_before) as usize;
            src.consume(consumed);
            if status == Status::StreamEnd {
                self.ended = true;
                return Ok(produced);
            }
            if produced > 0 {
                return Ok(produced);
            }
            if at_eof {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "pack ends inside a zlib stream",
                ));
            }
            if consumed == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "zlib stream makes no progress",
                ));
            }
        }
    }
}

/// One entry's zlib stream as a reader.
pub(super) struct Inflate<'a, R> {
    pub(super) src: &'a mut Source<R>,
    pub(super) z: &'a mut Inflater,
}

impl<R: Read> Read for Inflate<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.z.read(self.src, out)
    }
}
