//! Artifact storage on a temp directory: atomic digest-named files, verify, GC, removal and
//! path checks.

use std::fs::{self, File};
use std::io::{self, Write};
use std::time::{Duration, SystemTime};

use mooring_source_controller::storage::{
    Storage, StorageError, StoreError, StoredArtifact, sha256_hex,
};

fn storage() -> (tempfile::TempDir, Storage) {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = Storage::new(dir.path().join("data"));
    (dir, storage)
}

fn store_bytes(storage: &Storage, name: &str, stem: &str, bytes: &[u8]) -> StoredArtifact {
    let (stored, ()) = storage
        .store("ns", name, stem, |w| w.write_all(bytes))
        .expect("store");
    stored
}

fn files_in(storage: &Storage, name: &str) -> Vec<String> {
    let dir = storage.root().join(format!("gitrepository/ns/{name}"));
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn store_names_file_by_commit_and_digest() {
    let (_dir, storage) = storage();
    let stored = store_bytes(&storage, "app", "abc123", b"hello");
    let hex = sha256_hex(&b"hello"[..]).expect("hash");
    assert_eq!(stored.digest, format!("sha256:{hex}"));
    assert_eq!(stored.size, 5);
    assert_eq!(
        stored.path,
        format!("gitrepository/ns/app/abc123-{}.tar.gz", &hex[..12])
    );
    let on_disk = fs::read(storage.local_path(&stored.path).expect("path")).expect("read");
    assert_eq!(on_disk, b"hello");
    assert_eq!(
        files_in(&storage, "app"),
        [format!("abc123-{}.tar.gz", &hex[..12])]
    );
}

#[test]
fn same_commit_with_other_content_gets_another_file() {
    let (_dir, storage) = storage();
    let a = store_bytes(&storage, "app", "abc", b"one");
    let b = store_bytes(&storage, "app", "abc", b"two");
    let again = store_bytes(&storage, "app", "abc", b"one");
    assert_ne!(a.path, b.path);
    assert_eq!(a, again);
    assert_eq!(files_in(&storage, "app").len(), 2);
}

#[test]
fn failed_build_leaves_nothing() {
    let (_dir, storage) = storage();
    let result = storage.store("ns", "app", "abc", |w| {
        w.write_all(b"partial")?;
        Err::<(), io::Error>(io::Error::other("boom"))
    });
    assert!(matches!(result, Err(StoreError::Build(_))));
    assert!(files_in(&storage, "app").is_empty());
}

#[test]
fn verify_detects_missing_tampered_and_wrong_algorithm() {
    let (_dir, storage) = storage();
    let stored = store_bytes(&storage, "app", "abc", b"content");
    assert!(storage.verify(&stored.path, &stored.digest));
    assert!(storage.verify(
        &stored.path,
        &stored.digest.to_uppercase().replace("SHA256", "sha256")
    ));
    assert!(!storage.verify(&stored.path, &stored.digest.replace("sha256", "sha512")));
    assert!(!storage.verify("gitrepository/ns/app/missing.tar.gz", &stored.digest));
    assert!(!storage.verify("../outside", &stored.digest));
    fs::write(storage.local_path(&stored.path).expect("path"), b"tampered").expect("write");
    assert!(!storage.verify(&stored.path, &stored.digest));
}

#[test]
fn a_stored_artifact_is_known_good_until_its_file_changes() {
    let (_dir, storage) = storage();
    let stored = store_bytes(&storage, "app", "abc", b"content");
    // Hashed while written: known without reading it again.
    assert!(storage.holds_known(&stored.path, &stored.digest));
    assert!(!storage.holds_known(&stored.path, "sha256:0000"));
    assert!(storage.holds(&stored.path, &stored.digest));
    // Same size, other bytes, other modification time: no longer known, and found bad.
    let path = storage.local_path(&stored.path).expect("path");
    fs::write(&path, b"CONTENT").expect("write");
    File::options()
        .write(true)
        .open(&path)
        .expect("open")
        .set_modified(SystemTime::now() - Duration::from_secs(60))
        .expect("mtime");
    assert!(!storage.holds_known(&stored.path, &stored.digest));
    assert!(!storage.holds(&stored.path, &stored.digest));
    // A new Storage (a restarted process) knows nothing until it has read the file.
    let again = store_bytes(&storage, "app", "def", b"other");
    let restarted = Storage::new(storage.root());
    assert!(!restarted.holds_known(&again.path, &again.digest));
    assert!(restarted.holds(&again.path, &again.digest));
    assert!(restarted.holds_known(&again.path, &again.digest));
}

#[test]
fn gc_keeps_newest_and_current() {
    let (_dir, storage) = storage();
    let base = SystemTime::now() - Duration::from_secs(1000);
    let mut stored = Vec::new();
    for i in 0..5u64 {
        let s = store_bytes(
            &storage,
            "app",
            &format!("c{i}"),
            format!("v{i}").as_bytes(),
        );
        let file = File::options()
            .write(true)
            .open(storage.local_path(&s.path).expect("path"))
            .expect("open");
        file.set_modified(base + Duration::from_secs(i * 10))
            .expect("mtime");
        stored.push(s);
    }
    // The current artifact is the oldest one: it stays, and counts towards `keep`.
    let removed = storage.gc("ns", "app", 2, &stored[0].path).expect("gc");
    let mut expected: Vec<String> = vec![
        stored[1].path.clone(),
        stored[2].path.clone(),
        stored[3].path.clone(),
    ];
    expected.sort();
    let mut removed_sorted = removed.clone();
    removed_sorted.sort();
    assert_eq!(removed_sorted, expected);
    let left = files_in(&storage, "app");
    assert_eq!(left.len(), 2);
    assert!(stored[0].path.ends_with(&left[0]) || stored[0].path.ends_with(&left[1]));
    // Nothing more to do.
    assert!(
        storage
            .gc("ns", "app", 2, &stored[0].path)
            .expect("gc")
            .is_empty()
    );
    // Unknown objects have nothing to collect.
    assert!(storage.gc("ns", "other", 2, "").expect("gc").is_empty());
}

#[test]
fn gc_removes_stale_temp_files_only() {
    let (_dir, storage) = storage();
    let s = store_bytes(&storage, "app", "c", b"x");
    let dir = storage.root().join("gitrepository/ns/app");
    // Both carry this process's tag; only the one written long ago is collected.
    let stale_name = format!("{}old.tar.gz", storage.temp_prefix());
    let stale = dir.join(&stale_name);
    let fresh = dir.join(format!("{}new.tar.gz", storage.temp_prefix()));
    fs::write(&stale, b"").expect("write");
    fs::write(&fresh, b"").expect("write");
    File::options()
        .write(true)
        .open(&stale)
        .expect("open")
        .set_modified(SystemTime::now() - Duration::from_secs(7200))
        .expect("mtime");
    let removed = storage.gc("ns", "app", 1, &s.path).expect("gc");
    assert_eq!(removed, [format!("gitrepository/ns/app/{stale_name}")]);
    assert!(fresh.exists());
}

#[test]
fn gc_removes_temp_files_a_previous_process_left() {
    let (dir, storage) = storage();
    store_bytes(&storage, "app", "c", b"x");
    let artifacts = storage.root().join("gitrepository/ns/app");
    // Killed mid-write the instant before the restart: the file is as new as anything the
    // restarted process writes, so only its name tells it apart.
    let killed_name = format!("{}killed.tar.gz", storage.temp_prefix());
    let killed = artifacts.join(&killed_name);
    fs::write(&killed, b"partial").expect("write");
    // The restarted process opens the same storage; its own write in flight stays.
    let restarted = Storage::new(dir.path().join("data"));
    assert_ne!(restarted.temp_prefix(), storage.temp_prefix());
    let own = artifacts.join(format!("{}own.tar.gz", restarted.temp_prefix()));
    fs::write(&own, b"").expect("write");
    let s = store_bytes(&restarted, "app", "d", b"y");
    let removed = restarted.gc("ns", "app", 2, &s.path).expect("gc");
    assert_eq!(removed, [format!("gitrepository/ns/app/{killed_name}")]);
    assert!(own.exists());
}

#[test]
fn remove_all_deletes_the_object_directory() {
    let (_dir, storage) = storage();
    store_bytes(&storage, "app", "c", b"x");
    store_bytes(&storage, "keep", "c", b"y");
    storage.remove_all("ns", "app").expect("remove");
    assert!(!storage.root().join("gitrepository/ns/app").exists());
    assert!(storage.root().join("gitrepository/ns/keep").exists());
    storage
        .remove_all("ns", "app")
        .expect("removing twice is fine");
}

#[test]
fn names_and_paths_that_escape_are_refused() {
    let (_dir, storage) = storage();
    for (ns, name) in [
        ("..", "x"),
        ("ns", ".."),
        ("a/b", "x"),
        ("ns", ""),
        ("ns", ".hidden"),
    ] {
        let err = storage.artifact_dir(ns, name).expect_err("refused");
        assert_eq!(err.label(), "InvalidName", "{ns:?}/{name:?}");
    }
    let err = storage
        .store("ns", "app", "../../x", |_| Ok::<(), io::Error>(()))
        .expect_err("refused");
    assert!(matches!(
        err,
        StoreError::Storage(StorageError::InvalidName { .. })
    ));
    for path in ["/etc/passwd", "../x", "a/../../x", "", "a\\..\\x", "./a"] {
        assert!(storage.local_path(path).is_err(), "{path:?}");
    }
    assert!(storage.remove_all("..", "x").is_err());
    assert!(storage.gc("ns", "../x", 1, "").is_err());
}

#[test]
fn url_for_joins_base_and_path() {
    let path = "gitrepository/ns/app/abc-0123.tar.gz";
    assert_eq!(
        Storage::url_for(path, "source-controller.mooring-system.svc.cluster.local."),
        "http://source-controller.mooring-system.svc.cluster.local./gitrepository/ns/app/abc-0123.tar.gz"
    );
    assert_eq!(
        Storage::url_for(path, "https://example.test:9090/"),
        "https://example.test:9090/gitrepository/ns/app/abc-0123.tar.gz"
    );
    assert_eq!(Storage::url_for("a b/c", "h:1"), "http://h:1/a%20b/c");
}
