//! Packs made by the git CLI: the index we write is byte-identical to `git index-pack`'s, and
//! broken packs are refused as malformed (never a panic).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::AtomicBool;

use mooring_testkit::props::{Property, check};
use proptest::prelude::*;
use sha1::{Digest, Sha1};

use super::scan::{Object, scan};
use super::{PackError, index_pack, index_with_cache, packed_blob};

const NO_LIMIT: u64 = 64 << 20;

/// A repository made with the git CLI, with fixed identities and dates and no user config.
struct Repo {
    dir: tempfile::TempDir,
    commits: u32,
}

impl Repo {
    fn new() -> Repo {
        let repo = Repo {
            dir: tempfile::tempdir().expect("tempdir"),
            commits: 0,
        };
        repo.git(&["init", "-q", "-b", "main", "."]);
        repo
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("git");
        cmd.current_dir(self.path())
            .env("HOME", self.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_DATE", "2020-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2020-01-01T00:00:00Z")
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args);
        cmd
    }

    /// Runs git with `input` on stdin and returns its stdout; panics when it fails.
    fn git_in(&self, args: &[&str], input: &[u8]) -> Vec<u8> {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn git");
        let mut stdin = child.stdin.take().expect("stdin");
        let input = input.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().expect("git output");
        writer.join().expect("writer").expect("write stdin");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn git(&self, args: &[&str]) -> Vec<u8> {
        self.git_in(args, b"")
    }

    /// Writes `files` and commits them.
    fn commit(&mut self, files: &[(&str, &[u8])]) {
        for (name, content) in files {
            std::fs::write(self.path().join(name), content).expect("write file");
        }
        self.git(&["add", "-A"]);
        self.commits += 1;
        let message = format!("commit {}", self.commits);
        self.git(&["commit", "-q", "--allow-empty", "-m", &message]);
    }

    /// A pack of every object, from `git pack-objects --stdout` with `args`.
    fn pack(&self, args: &[&str]) -> Vec<u8> {
        let objects = self.git(&["rev-list", "--objects", "--all"]);
        let mut all = vec!["pack-objects", "--stdout", "-q"];
        all.extend_from_slice(args);
        self.git_in(&all, &objects)
    }

    /// `git index-pack -o` of `pack`.
    fn git_index(&self, pack: &[u8]) -> Vec<u8> {
        let dir = tempfile::tempdir_in(self.path()).expect("tempdir");
        let pack_path = dir.path().join("git.pack");
        std::fs::write(&pack_path, pack).expect("write pack");
        let idx_path = dir.path().join("git.idx");
        let (p, i) = (pack_path.to_string_lossy(), idx_path.to_string_lossy());
        self.git(&["index-pack", "-o", &i, &p]);
        std::fs::read(&idx_path).expect("read git idx")
    }

    /// The ids `git verify-pack -v` lists for `pack`, and how many of them are deltas.
    fn verify_pack(&self, pack: &[u8]) -> (Vec<String>, usize) {
        let dir = tempfile::tempdir_in(self.path()).expect("tempdir");
        let pack_path = dir.path().join("v.pack");
        std::fs::write(&pack_path, pack).expect("write pack");
        self.git(&["index-pack", &pack_path.to_string_lossy()]);
        let out = self.git(&["verify-pack", "-v", &pack_path.to_string_lossy()]);
        let mut ids = Vec::new();
        let mut deltas = 0;
        for line in String::from_utf8_lossy(&out).lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.first().is_some_and(|f| f.len() == 40) {
                ids.push(fields[0].to_owned());
                // Deltas have depth and base id after type, size, packed size and offset.
                if fields.len() >= 7 {
                    deltas += 1;
                }
            }
        }
        (ids, deltas)
    }
}

/// The longest delta chain of `pack`, as `git verify-pack -v` shows it (an entry's depth
/// follows its type, size, packed size and offset).
fn chain_depth(repo: &Repo, pack: &[u8]) -> usize {
    let dir = tempfile::tempdir_in(repo.path()).expect("tempdir");
    let pack_path = dir.path().join("d.pack");
    std::fs::write(&pack_path, pack).expect("write pack");
    repo.git(&["index-pack", &pack_path.to_string_lossy()]);
    let out = repo.git(&["verify-pack", "-v", &pack_path.to_string_lossy()]);
    String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.len() >= 7 && fields[0].len() == 40).then(|| fields[5].parse().ok())?
        })
        .max()
        .unwrap_or(0)
}

/// Our index of `pack` with `limit`, and the index bytes.
fn ours(pack: &[u8], limit: u64) -> Result<Vec<u8>, PackError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let pack_path = dir.path().join("ours.pack");
    std::fs::write(&pack_path, pack).expect("write pack");
    let idx_path = dir.path().join("ours.idx");
    let indexed = index_pack(&pack_path, &idx_path, limit, &AtomicBool::new(false))?;
    let idx = std::fs::read(&idx_path).expect("read our idx");
    assert_eq!(indexed.checksum.as_bytes(), &pack[pack.len() - 20..]);
    assert_eq!(idx[idx.len() - 40..idx.len() - 20], pack[pack.len() - 20..]);
    let count = u32::from_be_bytes([pack[8], pack[9], pack[10], pack[11]]);
    assert_eq!(indexed.objects, u64::from(count));
    Ok(idx)
}

/// Deterministic text of `lines` lines; `seed` changes every line.
fn text(seed: u64, lines: usize) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut out = Vec::new();
    for n in 0..lines {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        writeln!(
            out,
            "line {n}: value {:016x} and some words to fill it",
            state
        )
        .expect("write to vec");
    }
    out
}

/// `base` with every `every`-th line replaced.
fn edit(base: &[u8], every: usize, tag: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, line) in base.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        if n % every == 0 {
            writeln!(out, "edited {tag} at {n}").expect("write to vec");
        } else {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    }
    out
}

/// A repository whose pack deltifies: similar files in one commit, and one file edited over
/// `edits` commits (a delta chain).
fn deltified_repo(edits: usize) -> Repo {
    let mut repo = Repo::new();
    let base = text(1, 80);
    let similar: Vec<Vec<u8>> = (0..4).map(|n| edit(&base, 7 + n, "sim")).collect();
    repo.commit(&[
        ("a.txt", &base),
        ("b.txt", &similar[0]),
        ("c.txt", &similar[1]),
        ("d.txt", &similar[2]),
        ("e.txt", &similar[3]),
        ("empty", b""),
    ]);
    let mut current = base.clone();
    for n in 0..edits {
        current = edit(&current, 11 + n % 5, &format!("rev{n}"));
        current.extend_from_slice(format!("appended {n}\n").as_bytes());
        repo.commit(&[("a.txt", &current)]);
    }
    repo
}

/// Counts the OFS_DELTA and REF_DELTA entries of `pack`.
fn delta_kinds(pack: &[u8]) -> (usize, usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p.pack");
    std::fs::write(&path, pack).expect("write pack");
    let scanned = scan(&path, &AtomicBool::new(false)).expect("scan");
    let ofs = scanned
        .entries
        .iter()
        .filter(|e| matches!(e.object, Object::OfsDelta { .. }))
        .count();
    let refs = scanned
        .entries
        .iter()
        .filter(|e| matches!(e.object, Object::RefDelta { .. }))
        .count();
    (ofs, refs)
}

/// Asserts our index of `pack` equals git's and holds every id git lists.
fn assert_like_git(repo: &Repo, pack: &[u8], limit: u64) {
    let ours = ours(pack, limit).expect("index_pack");
    assert!(ours == repo.git_index(pack), "index differs from git's");
    let (ids, _) = repo.verify_pack(pack);
    let count = u32::from_be_bytes([ours[1028], ours[1029], ours[1030], ours[1031]]) as usize;
    let listed: Vec<String> = (0..count)
        .map(|n| hex::encode(&ours[1032 + 20 * n..1032 + 20 * (n + 1)]))
        .collect();
    for id in ids {
        assert!(listed.contains(&id), "{id} missing from our index");
    }
}

#[test]
fn ofs_delta_pack_indexes_like_git() {
    let repo = deltified_repo(12);
    let pack = repo.pack(&["--delta-base-offset", "--window=50", "--depth=50"]);
    let (ofs, refs) = delta_kinds(&pack);
    assert!(ofs > 5 && refs == 0, "{ofs} OFS_DELTA, {refs} REF_DELTA");
    assert!(repo.verify_pack(&pack).1 == ofs);
    assert_like_git(&repo, &pack, NO_LIMIT);
}

#[test]
fn ref_delta_pack_indexes_like_git() {
    let repo = deltified_repo(12);
    let pack = repo.pack(&["--window=50", "--depth=50"]);
    let (ofs, refs) = delta_kinds(&pack);
    assert!(refs > 5 && ofs == 0, "{ofs} OFS_DELTA, {refs} REF_DELTA");
    assert_like_git(&repo, &pack, NO_LIMIT);
}

#[test]
fn a_deep_chain_resolves_with_a_limit_near_its_objects() {
    // Each version of a.txt is about 5 KiB: a 6 KiB limit holds a base and a result, and the
    // cache about one of them.
    let repo = deltified_repo(40);
    for args in [
        &["--delta-base-offset", "--depth=50"][..],
        &["--depth=50"][..],
    ] {
        let pack = repo.pack(args);
        assert_like_git(&repo, &pack, 6 << 10);
    }
}

#[test]
fn without_a_cache_every_base_is_rebuilt_from_its_root() {
    let repo = deltified_repo(40);
    for args in [
        &["--delta-base-offset", "--depth=50"][..],
        &["--depth=50"][..],
    ] {
        let pack = repo.pack(args);
        let dir = tempfile::tempdir().expect("tempdir");
        let (pack_path, idx_path) = (dir.path().join("p.pack"), dir.path().join("p.idx"));
        std::fs::write(&pack_path, &pack).expect("write pack");
        let never = AtomicBool::new(false);
        index_with_cache(&pack_path, &idx_path, NO_LIMIT, 0, &never).expect("index");
        assert!(std::fs::read(&idx_path).expect("idx") == repo.git_index(&pack));
    }
}

#[test]
fn a_chain_of_deltas_too_big_for_the_cache_is_walked_once() {
    // Without a cache every base must come from the walk itself: the chain of a.txt's versions
    // (a delta of a delta ...) is applied once per delta, not rebuilt from its root for each
    // of its nodes (quadratic in the chain's length).
    let repo = deltified_repo(60);
    let pack = repo.pack(&["--delta-base-offset", "--window=50", "--depth=100"]);
    let (ofs, _) = delta_kinds(&pack);
    assert!(ofs > 40, "{ofs} OFS_DELTA");
    assert!(chain_depth(&repo, &pack) > 40, "a long chain");
    let dir = tempfile::tempdir().expect("tempdir");
    let (pack_path, idx_path) = (dir.path().join("p.pack"), dir.path().join("p.idx"));
    std::fs::write(&pack_path, &pack).expect("write pack");
    let never = AtomicBool::new(false);
    let indexed = index_with_cache(&pack_path, &idx_path, NO_LIMIT, 0, &never).expect("index");
    assert!(std::fs::read(&idx_path).expect("idx") == repo.git_index(&pack));
    // Each delta once, and a few again where git's delta tree branches (a base with two
    // children that are bases): 126 for 124 deltas here, 1,629 before the walk carried bases.
    let applied = indexed.deltas_applied;
    assert!(
        applied >= ofs as u64 && applied <= ofs as u64 + ofs as u64 / 10,
        "{applied} delta applications for {ofs} deltas"
    );
}

#[test]
fn empty_blob_and_empty_tree_index_like_git() {
    let mut repo = Repo::new();
    repo.commit(&[("empty", b"")]);
    repo.git(&["rm", "-q", "empty"]);
    repo.commit(&[]);
    let pack = repo.pack(&["--delta-base-offset"]);
    assert_like_git(&repo, &pack, NO_LIMIT);
    let (ids, _) = repo.verify_pack(&pack);
    assert!(ids.contains(&"e69de29bb2d1d6434b8b29ae775ad8c2e48c5391".to_owned()));
    assert!(ids.contains(&"4b825dc642cb6eb9a060e54bf8d69288fbee4904".to_owned()));
}

#[test]
fn empty_pack_indexes_like_git() {
    let repo = Repo::new();
    let pack = repo.git_in(&["pack-objects", "--stdout", "-q"], b"");
    assert_eq!(&pack[8..12], &[0, 0, 0, 0]);
    let ours = ours(&pack, NO_LIMIT).expect("index_pack");
    assert!(ours == repo.git_index(&pack));
}

#[test]
fn whole_objects_above_the_limit_index_like_git() {
    let mut repo = Repo::new();
    let big: Vec<u8> = (0..200u32).flat_map(|n| text(u64::from(n), 10)).collect();
    repo.commit(&[("big", &big)]);
    let pack = repo.pack(&[]);
    assert_like_git(&repo, &pack, 1024);
}

#[test]
fn a_delta_above_the_limit_is_too_large() {
    let repo = deltified_repo(3);
    let pack = repo.pack(&["--delta-base-offset"]);
    match ours(&pack, 4096) {
        Err(PackError::ObjectTooLarge { size, limit }) => {
            assert_eq!(limit, 4096);
            assert!(size > 4096);
        }
        other => panic!("expected ObjectTooLarge, got {other:?}"),
    }
}

/// A small deltified pack with its OFS_DELTA, made once.
fn sample() -> &'static (Repo, Vec<u8>) {
    static SAMPLE: OnceLock<(Repo, Vec<u8>)> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        let repo = deltified_repo(3);
        let pack = repo.pack(&["--delta-base-offset"]);
        (repo, pack)
    })
}

/// `pack` with its trailing checksum recomputed, so that a change inside is what fails.
fn reseal(mut pack: Vec<u8>) -> Vec<u8> {
    let end = pack.len() - 20;
    let sum: [u8; 20] = Sha1::digest(&pack[..end]).into();
    pack[end..].copy_from_slice(&sum);
    pack
}

fn assert_malformed(pack: &[u8], what: &str) {
    match ours(pack, NO_LIMIT) {
        Err(PackError::Malformed(why)) => assert!(why.contains("offset"), "{what}: {why}"),
        other => panic!("{what}: expected Malformed, got {other:?}"),
    }
}

#[test]
fn truncated_packs_are_malformed() {
    let (_, pack) = sample();
    let len = pack.len();
    for cut in [
        0,
        5,
        11,
        12,
        13,
        20,
        len / 3,
        len / 2,
        len - 21,
        len - 20,
        len - 1,
    ] {
        assert_malformed(&pack[..cut], &format!("cut at {cut}"));
    }
}

#[test]
fn corrupt_zlib_streams_are_malformed() {
    let (_, pack) = sample();
    // Every byte from the first entry's zlib stream up to well into the pack, one at a time,
    // with the checksum fixed so that the stream itself must be caught.
    let mut caught_before_trailer = 0;
    for at in 14..pack.len().min(400) - 20 {
        let mut bad = pack.clone();
        bad[at] ^= 0x55;
        let bad = reseal(bad);
        match ours(&bad, NO_LIMIT) {
            Err(PackError::Malformed(why)) => {
                if !why.contains("trailing checksum") {
                    caught_before_trailer += 1;
                }
            }
            // A flipped byte in a header can make another valid-looking type, e.g. a REF_DELTA.
            Err(PackError::MissingBase(_)) => {}
            other => panic!("flipped byte at {at}: got {other:?}"),
        }
    }
    assert!(caught_before_trailer > 100);
}

#[test]
fn a_wrong_object_count_is_malformed() {
    let (_, pack) = sample();
    let count = u32::from_be_bytes([pack[8], pack[9], pack[10], pack[11]]);
    for wrong in [count - 1, count + 1, 0, u32::MAX] {
        let mut bad = pack.clone();
        bad[8..12].copy_from_slice(&wrong.to_be_bytes());
        assert_malformed(&reseal(bad), &format!("count {wrong} for {count}"));
    }
}

#[test]
fn a_bad_header_is_malformed() {
    let (_, pack) = sample();
    let mut bad = pack.clone();
    bad[0] = b'X';
    assert_malformed(&reseal(bad), "signature");
    let mut bad = pack.clone();
    bad[7] = 4;
    assert_malformed(&reseal(bad), "version 4");
}

#[test]
fn a_wrong_trailer_is_malformed() {
    let (_, pack) = sample();
    let mut bad = pack.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_malformed(&bad, "trailer");
}

#[test]
fn trailing_garbage_is_malformed() {
    let (_, pack) = sample();
    let mut bad = pack.clone();
    bad.extend_from_slice(b"garbage");
    assert_malformed(&bad, "garbage");
    let mut bad = pack.clone();
    bad.push(0);
    assert_malformed(&bad, "one zero byte");
}

#[test]
fn a_thin_pack_misses_its_base() {
    let mut repo = deltified_repo(0);
    let next = edit(&text(1, 80), 13, "thin");
    repo.commit(&[("a.txt", &next)]);
    let pack = repo.git_in(
        &["pack-objects", "--stdout", "-q", "--thin", "--revs"],
        b"main\n^main~1\n",
    );
    let (_, refs) = delta_kinds(&pack);
    assert!(
        refs > 0,
        "git made no REF_DELTA against the excluded commit"
    );
    match ours(&pack, NO_LIMIT) {
        Err(PackError::MissingBase(id)) => assert_eq!(id.len(), 40),
        other => panic!("expected MissingBase, got {other:?}"),
    }
}

#[test]
fn interrupt_stops_indexing() {
    let (_, pack) = sample();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p.pack");
    std::fs::write(&path, pack).expect("write pack");
    let got = index_pack(
        &path,
        &dir.path().join("p.idx"),
        NO_LIMIT,
        &AtomicBool::new(true),
    );
    assert!(matches!(got, Err(PackError::Interrupted)), "{got:?}");
    assert!(!dir.path().join("p.idx").exists());
}

/// Named `*_props` so that `make faults` gives it the long form's budget.
mod mutation_props {
    use super::*;

    #[test]
    fn mutated_packs_fail_or_index_like_git() {
        let (repo, pack) = sample();
        check(
            &Property {
                scenario: "property: pack indexing of mutated packs",
                regressions: concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/proptest-regressions/pack/mutated.txt"
                ),
                short_cases: 200,
            },
            (
                prop::collection::vec((0..pack.len() - 20, any::<u8>()), 1..4),
                any::<bool>(),
            ),
            |(changes, fix_trailer)| {
                let mut bad = pack.clone();
                for (at, byte) in changes {
                    bad[at] = byte;
                }
                let bad = if fix_trailer { reseal(bad) } else { bad };
                match ours(&bad, NO_LIMIT) {
                    Ok(idx) => prop_assert!(idx == repo.git_index(&bad)),
                    Err(PackError::Io(e)) => prop_assert!(false, "I/O error: {e}"),
                    Err(_) => {}
                }
                Ok(())
            },
        );
    }
}

/// A repository repacked into one pack, and its objects directory.
fn repacked(repo: &Repo) -> PathBuf {
    repo.git(&["repack", "-a", "-d", "-q", "--window=50"]);
    repo.path().join(".git/objects")
}

fn oid(hex: &str) -> gix::ObjectId {
    gix::ObjectId::from_hex(hex.trim().as_bytes()).expect("object id")
}

#[test]
fn packed_blob_streams_a_whole_blob() {
    let repo = deltified_repo(3);
    let objects = repacked(&repo);
    let (ids, _) = repo.verify_pack(&std::fs::read(pack_file(&objects)).expect("pack"));
    let mut whole = 0;
    let mut deltas = 0;
    let mut blobs = Vec::new();
    for rev in ["main~3", "main~2", "main~1", "main"] {
        for line in String::from_utf8_lossy(&repo.git(&["ls-tree", "-r", rev])).lines() {
            let id = oid(line.split_whitespace().nth(2).expect("id"));
            if !blobs.contains(&id) {
                blobs.push(id);
            }
        }
    }
    for id in blobs {
        assert!(ids.contains(&id.to_string()));
        let expected = repo.git(&["cat-file", "blob", &id.to_string()]);
        match packed_blob(&objects, &id).expect("packed_blob") {
            Some(mut blob) => {
                assert_eq!(blob.size, expected.len() as u64);
                let mut got = Vec::new();
                blob.read_to_end(&mut got).expect("read blob");
                assert!(got == expected, "{id}");
                whole += 1;
            }
            None => deltas += 1,
        }
    }
    assert!(whole > 0 && deltas > 0, "{whole} whole, {deltas} deltas");
}

#[test]
fn packed_blob_is_none_when_loose_or_absent() {
    let mut repo = Repo::new();
    repo.commit(&[("f", b"loose")]);
    let objects = repo.path().join(".git/objects");
    let loose = oid(&String::from_utf8_lossy(
        &repo.git(&["rev-parse", "main:f"]),
    ));
    assert!(packed_blob(&objects, &loose).expect("loose").is_none());
    repacked(&repo);
    let absent = oid("0123456789012345678901234567890123456789");
    assert!(packed_blob(&objects, &absent).expect("absent").is_none());
    assert!(packed_blob(&objects, &loose).expect("packed").is_some());
}

#[test]
fn packed_blob_refuses_a_corrupt_stream() {
    let mut repo = Repo::new();
    let content = text(9, 400);
    repo.commit(&[("f", &content)]);
    let objects = repacked(&repo);
    let id = oid(&String::from_utf8_lossy(
        &repo.git(&["rev-parse", "main:f"]),
    ));
    let pack_path = pack_file(&objects);
    let offset = {
        let blob = packed_blob(&objects, &id).expect("lookup").expect("whole");
        assert_eq!(blob.size, content.len() as u64);
        let index =
            gix::odb::pack::index::File::at(pack_path.with_extension("idx"), gix::hash::Kind::Sha1)
                .expect("index");
        index.pack_offset_at_index(index.lookup(id).expect("in index"))
    };
    let original = std::fs::read(&pack_path).expect("pack");
    let mut perms = std::fs::metadata(&pack_path).expect("meta").permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&pack_path, perms).expect("writable");
    for (what, bytes) in [
        ("flipped", {
            let mut bad = original.clone();
            bad[offset as usize + 200] ^= 0x40;
            bad
        }),
        ("truncated", original[..offset as usize + 100].to_vec()),
    ] {
        std::fs::write(&pack_path, &bytes).expect("write pack");
        let mut blob = packed_blob(&objects, &id).expect("lookup").expect("whole");
        let mut got = Vec::new();
        assert!(
            blob.read_to_end(&mut got).is_err(),
            "{what} stream read as ok"
        );
    }
}

/// The one pack under `objects/pack`.
fn pack_file(objects: &Path) -> PathBuf {
    std::fs::read_dir(objects.join("pack"))
        .expect("pack dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|x| x == "pack"))
        .expect("a pack")
}
