//! The second pass: resolving deltas against their bases to learn their ids.
//!
//! Deltas form trees rooted at whole objects. The trees are walked depth first; a node's content
//! is needed once, when all its children are applied to it. Contents of nodes with children wait
//! in a cache (at most [`super::MAX_CACHE`] bytes in [`super::index_pack`]), and the last child
//! that is a base is handed straight to the next turn of the walk, which is its own. One evicted
//! is rebuilt from its nearest cached ancestor (or the whole object at the root), so memory
//! stays bounded, a chain is applied once whatever the size of its objects, and a rebuild
//! (which hostile packs can make long) is stopped by the operation's time limit.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;

use sha1::Digest;

use super::scan::{Entry, Object};
use super::source::{Inflate, Inflater, Kind, Source};
use super::{PackError, check_interrupt, malformed, read_error};

/// A resolved object: its kind and id, and for a delta the index of its base.
#[derive(Clone, Copy)]
struct Resolved {
    kind: Kind,
    id: [u8; 20],
    parent: Option<u32>,
}

/// The id of every entry, in pack order, keeping at most `cache` bytes of resolved bases; and
/// how many times a delta was applied.
pub(super) fn resolve(
    pack: &Path,
    entries: &[Entry],
    limit: u64,
    cache: u64,
    interrupt: &AtomicBool,
) -> Result<(Vec<[u8; 20]>, u64), PackError> {
    let mut resolved: Vec<Option<Resolved>> = Vec::with_capacity(entries.len());
    let mut by_offset: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut by_id: HashMap<[u8; 20], Vec<u32>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        // Entry indexes fit in u32: the header counts them in a u32.
        let i = i as u32;
        match entry.object {
            Object::Whole { kind, id } => {
                resolved.push(Some(Resolved {
                    kind,
                    id,
                    parent: None,
                }));
                roots.push(i);
            }
            Object::OfsDelta { base } => {
                resolved.push(None);
                by_offset.entry(base).or_default().push(i);
            }
            Object::RefDelta { base } => {
                resolved.push(None);
                by_id.entry(base).or_default().push(i);
            }
        }
    }
    if by_offset.is_empty() && by_id.is_empty() {
        return Ok((resolved.into_iter().flatten().map(|r| r.id).collect(), 0));
    }

    let mut deltas = Deltas {
        entries,
        src: Source::new(File::open(pack)?, 0),
        z: Inflater::new(),
        limit,
        cache: Cache::new(cache),
        interrupt,
        applied: 0,
    };
    // Roots in reverse, so the walk goes through the pack roughly in order.
    let mut stack: Vec<u32> = roots.into_iter().rev().collect();
    // The content of the node pushed last, when it is a base too: the next node popped. A chain
    // of deltas then goes down in one walk whatever the size of its objects, instead of being
    // rebuilt from its root for each of its nodes that the cache cannot hold.
    let mut carried: Option<(u32, Rc<Vec<u8>>)> = None;
    while let Some(node) = stack.pop() {
        check_interrupt(interrupt)?;
        let Some(this) = resolved[node as usize] else {
            continue;
        };
        let mut children = by_offset.remove(&node).unwrap_or_default();
        children.extend(by_id.remove(&this.id).unwrap_or_default());
        let carried_here = carried.take().filter(|(i, _)| *i == node);
        if children.is_empty() {
            continue;
        }
        // Children known to be bases (of OFS_DELTAs) last, so that one of them is carried.
        children.sort_by_key(|child| by_offset.contains_key(child));
        let base = match carried_here {
            Some((_, data)) => data,
            None => deltas.content(node, &resolved)?,
        };
        let count = children.len();
        for (n, child) in children.into_iter().enumerate() {
            check_interrupt(interrupt)?;
            let data = deltas.apply(child, &base)?;
            let id = object_id(this.kind, &data);
            resolved[child as usize] = Some(Resolved {
                kind: this.kind,
                id,
                parent: Some(node),
            });
            if by_offset.contains_key(&child) || by_id.contains_key(&id) {
                let data = Rc::new(data);
                deltas.cache.insert(child, data.clone());
                stack.push(child);
                // The last child pushed is the next popped; `base` goes at the end of this
                // turn, so memory still holds two objects besides the cache.
                if n + 1 == count {
                    carried = Some((child, data));
                }
            }
        }
    }

    if resolved.iter().any(Option::is_none) {
        return Err(unresolved(entries, &resolved));
    }
    let ids = resolved.into_iter().flatten().map(|r| r.id).collect();
    Ok((ids, deltas.applied))
}

/// Why some deltas never resolved: a REF_DELTA whose base is not in the pack.
fn unresolved(entries: &[Entry], resolved: &[Option<Resolved>]) -> PackError {
    let known: HashSet<[u8; 20]> = resolved.iter().flatten().map(|r| r.id).collect();
    let mut first = None;
    for (entry, r) in entries.iter().zip(resolved) {
        if r.is_some() {
            continue;
        }
        if let Object::RefDelta { base } = entry.object
            && !known.contains(&base)
        {
            return PackError::MissingBase(hex::encode(base));
        }
        first.get_or_insert(entry.offset);
    }
    // Unreachable for a pack that hashes consistently: OFS_DELTAs point back and end at a whole
    // object or a REF_DELTA, handled above.
    malformed(first.unwrap_or_default(), "delta never resolves")
}

/// The git object id of `data` as an object of `kind`.
fn object_id(kind: Kind, data: &[u8]) -> [u8; 20] {
    let mut sha = kind.hasher(data.len() as u64);
    sha.update(data);
    sha.finalize().into()
}

/// Reads entries' contents and applies deltas, with the cache of bases.
struct Deltas<'a> {
    entries: &'a [Entry],
    src: Source<File>,
    z: Inflater,
    limit: u64,
    cache: Cache,
    interrupt: &'a AtomicBool,
    /// Deltas applied so far, rebuilds included.
    applied: u64,
}

impl Deltas<'_> {
    /// The content of resolved entry `i`: from the cache, or rebuilt from its nearest cached
    /// ancestor or its whole root.
    fn content(&mut self, i: u32, resolved: &[Option<Resolved>]) -> Result<Rc<Vec<u8>>, PackError> {
        let mut chain = Vec::new();
        let mut at = i;
        let mut data = loop {
            if let Some(data) = self.cache.get(at) {
                break data;
            }
            match resolved[at as usize].and_then(|r| r.parent) {
                Some(parent) => {
                    chain.push(at);
                    at = parent;
                }
                None => break Rc::new(self.whole(at)?),
            }
        };
        for &delta in chain.iter().rev() {
            // A rebuild can be long (a chain of objects bigger than the cache): the operation's
            // time limit stops it too.
            check_interrupt(self.interrupt)?;
            data = Rc::new(self.apply(delta, &data)?);
        }
        self.cache.insert(i, data.clone());
        Ok(data)
    }

    /// Inflates whole entry `i`, refused above the limit.
    fn whole(&mut self, i: u32) -> Result<Vec<u8>, PackError> {
        let entry = &self.entries[i as usize];
        if entry.size > self.limit {
            return Err(PackError::ObjectTooLarge {
                size: entry.size,
                limit: self.limit,
            });
        }
        self.src.seek(entry.data_offset)?;
        self.z.reset();
        let mut data = vec![0; usize::try_from(entry.size).unwrap_or(usize::MAX)];
        Inflate {
            src: &mut self.src,
            z: &mut self.z,
        }
        .read_exact(&mut data)
        .map_err(|e| read_error(entry.offset, e))?;
        Ok(data)
    }

    /// Applies delta entry `i` to `base`, streaming its instructions; the result is refused
    /// above the limit before it is allocated.
    fn apply(&mut self, i: u32, base: &[u8]) -> Result<Vec<u8>, PackError> {
        self.applied += 1;
        let entry = &self.entries[i as usize];
        let at = entry.offset;
        self.src.seek(entry.data_offset)?;
        self.z.reset();
        let mut delta = BufReader::with_capacity(
            8 << 10,
            Inflate {
                src: &mut self.src,
                z: &mut self.z,
            },
        );
        let base_size = varint(&mut delta, at)?;
        if base_size != base.len() as u64 {
            return Err(malformed(
                at,
                format!(
                    "delta expects a base of {base_size} bytes, its base has {}",
                    base.len()
                ),
            ));
        }
        let size = varint(&mut delta, at)?;
        if size > self.limit {
            return Err(PackError::ObjectTooLarge {
                size,
                limit: self.limit,
            });
        }
        // Fits: at most `limit`, which the caller could hold.
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        let mut out = Vec::with_capacity(size);
        while let Some(op) = next_byte(&mut delta, at)? {
            if op & 0x80 != 0 {
                let mut offset = 0usize;
                for n in 0..4 {
                    if op & (1 << n) != 0 {
                        offset |= usize::from(byte(&mut delta, at)?) << (8 * n);
                    }
                }
                let mut len = 0usize;
                for n in 0..3 {
                    if op & (0x10 << n) != 0 {
                        len |= usize::from(byte(&mut delta, at)?) << (8 * n);
                    }
                }
                if len == 0 {
                    len = 0x10000;
                }
                let Some(copy) = base.get(offset..offset.saturating_add(len)) else {
                    return Err(malformed(
                        at,
                        format!(
                            "delta copies {len} bytes at {offset} of a {}-byte base",
                            base.len()
                        ),
                    ));
                };
                if out.len() + len > size {
                    return Err(malformed(
                        at,
                        format!("delta result exceeds its {size} bytes"),
                    ));
                }
                out.extend_from_slice(copy);
            } else if op != 0 {
                let len = usize::from(op);
                if out.len() + len > size {
                    return Err(malformed(
                        at,
                        format!("delta result exceeds its {size} bytes"),
                    ));
                }
                let start = out.len();
                out.resize(start + len, 0);
                delta
                    .read_exact(&mut out[start..])
                    .map_err(|e| read_error(at, e))?;
            } else {
                return Err(malformed(at, "delta instruction 0 is reserved"));
            }
        }
        if out.len() != size {
            return Err(malformed(
                at,
                format!("delta result is {} bytes, it declares {size}", out.len()),
            ));
        }
        Ok(out)
    }
}

/// The next delta byte, or `None` at the end of the delta.
fn next_byte(r: &mut impl BufRead, at: u64) -> Result<Option<u8>, PackError> {
    let Some(&b) = r.fill_buf().map_err(|e| read_error(at, e))?.first() else {
        return Ok(None);
    };
    r.consume(1);
    Ok(Some(b))
}

/// A delta byte that must be there.
fn byte(r: &mut impl BufRead, at: u64) -> Result<u8, PackError> {
    next_byte(r, at)?.ok_or_else(|| malformed(at, "delta ends inside an instruction"))
}

/// A delta's size: 7-bit groups, least significant first, bit 7 = more.
fn varint(r: &mut impl BufRead, at: u64) -> Result<u64, PackError> {
    let mut value = 0u64;
    let mut shift = 0;
    loop {
        let b = byte(r, at)?;
        if shift > 57 {
            return Err(malformed(at, "delta size does not fit in 64 bits"));
        }
        value |= u64::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
}

/// Bookkeeping counted per cached content besides its bytes, so that many empty ones are bounded
/// too.
const ENTRY_COST: u64 = 64;

/// Contents of resolved entries that are bases of others, least recently used evicted first.
struct Cache {
    budget: u64,
    used: u64,
    tick: u64,
    map: HashMap<u32, (Rc<Vec<u8>>, u64)>,
    lru: BTreeMap<u64, u32>,
}

impl Cache {
    fn new(budget: u64) -> Cache {
        Cache {
            budget,
            used: 0,
            tick: 0,
            map: HashMap::new(),
            lru: BTreeMap::new(),
        }
    }

    fn get(&mut self, i: u32) -> Option<Rc<Vec<u8>>> {
        let (data, tick) = self.map.get_mut(&i)?;
        self.lru.remove(tick);
        self.tick += 1;
        *tick = self.tick;
        self.lru.insert(self.tick, i);
        Some(data.clone())
    }

    fn insert(&mut self, i: u32, data: Rc<Vec<u8>>) {
        let cost = data.len() as u64 + ENTRY_COST;
        if cost > self.budget || self.map.contains_key(&i) {
            return;
        }
        while self.used + cost > self.budget {
            let Some((_, old)) = self.lru.pop_first() else {
                break;
            };
            if let Some((data, _)) = self.map.remove(&old) {
                self.used -= data.len() as u64 + ENTRY_COST;
            }
        }
        self.tick += 1;
        self.map.insert(i, (data, self.tick));
        self.lru.insert(self.tick, i);
        self.used += cost;
    }
}
