//! Indexing a pack and reading a packed blob take memory bounded by their buffers, not by the
//! object's size: a 256 MiB file of zeros (about 256 KiB packed) is indexed with a 1 MiB limit
//! and read back as a stream, each with less than 8 MiB of heap growth.
//!
//! The heap is counted by a global allocator that keeps the current and peak bytes. Both steps
//! run in one test so that no other test thread allocates meanwhile.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;

use mooring_source_controller::git::pack::{index_pack, packed_blob};
use peak_alloc::PeakAlloc;

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

const SIZE: u64 = 256 << 20;
const CHUNK: usize = 64 << 10;
const BOUND: usize = 8 << 20;

fn git(dir: &Path, args: &[&str], input: Option<&Path>) -> String {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(input) = input {
        cmd.stdin(std::fs::File::open(input).expect("open input"));
    }
    let out = cmd.output().expect("run git");
    assert!(out.status.success(), "git {args:?} failed");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// Runs `f` and returns its result and the heap's peak growth above what was allocated before.
fn peak_growth<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = HEAP.current_usage();
    HEAP.reset_peak_usage();
    let out = f();
    (out, HEAP.peak_usage().saturating_sub(before))
}

#[test]
fn a_huge_zero_file_is_indexed_and_read_in_bounded_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    git(root, &["init", "-q", "--bare", "repo.git"], None);
    let repo = root.join("repo.git");

    // The file is written in chunks and hashed into the repository by git.
    let zeros_path = root.join("zeros");
    let mut zeros = std::fs::File::create(&zeros_path).expect("create");
    let chunk = vec![0u8; CHUNK];
    for _ in 0..SIZE / CHUNK as u64 {
        zeros.write_all(&chunk).expect("write zeros");
    }
    drop(zeros);
    let blob = git(&repo, &["hash-object", "-w", "--stdin"], Some(&zeros_path));
    std::fs::remove_file(&zeros_path).expect("remove zeros");

    // One pack with the blob, indexed by git next to it (so packed_blob finds it) and by us.
    let list = root.join("list");
    std::fs::write(&list, format!("{blob}\n")).expect("write list");
    let pack_dir = repo.join("objects/pack");
    let prefix = pack_dir.join("pack");
    let name = git(
        &repo,
        &["pack-objects", "-q", &prefix.to_string_lossy()],
        Some(&list),
    );
    let pack = pack_dir.join(format!("pack-{name}.pack"));
    let git_idx = std::fs::read(pack.with_extension("idx")).expect("git's idx");
    assert!(std::fs::metadata(&pack).expect("pack").len() < 4 << 20);

    let our_idx = root.join("ours.idx");
    let interrupt = AtomicBool::new(false);
    let (indexed, index_peak) =
        peak_growth(|| index_pack(&pack, &our_idx, 1 << 20, &interrupt).expect("index_pack"));
    assert_eq!(indexed.objects, 1);
    assert!(std::fs::read(&our_idx).expect("our idx") == git_idx);

    let id = gix::ObjectId::from_hex(blob.as_bytes()).expect("blob id");
    let ((size, read, all_zero), read_peak) = peak_growth(|| {
        let mut reader = packed_blob(&repo.join("objects"), &id)
            .expect("packed_blob")
            .expect("stored whole");
        let mut buf = vec![0u8; CHUNK];
        let (mut read, mut all_zero) = (0u64, true);
        loop {
            let n = reader.read(&mut buf).expect("read blob");
            if n == 0 {
                break;
            }
            all_zero &= buf[..n].iter().all(|&b| b == 0);
            read += n as u64;
        }
        (reader.size, read, all_zero)
    });
    assert_eq!(size, SIZE);
    assert_eq!(read, SIZE);
    assert!(all_zero);

    eprintln!(
        "peak heap growth: index_pack {} KiB, packed_blob read {} KiB",
        index_peak >> 10,
        read_peak >> 10
    );
    assert!(
        index_peak < BOUND,
        "index_pack grew the heap by {index_peak} bytes"
    );
    assert!(
        read_peak < BOUND,
        "packed_blob grew the heap by {read_peak} bytes"
    );
}
