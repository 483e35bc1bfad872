//! The artifact cache against a real HTTP server serving real `.tar.gz` archives.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::get;
use flate2::Compression;
use flate2::write::GzEncoder;
use mooring_kustomize_controller::artifact::{ArtifactCache, ArtifactError, Limits};
use sha2::{Digest as _, Sha256};
use tar::{EntryType, Header};

/// An HTTP server of archives that counts the requests per file.
#[derive(Clone, Default)]
struct Server {
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    delay: Duration,
    base: String,
}

impl Server {
    async fn start(delay: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = Self {
            delay,
            base: format!("http://{addr}"),
            ..Self::default()
        };
        let app = axum::Router::new()
            .route("/{name}", get(serve))
            .with_state(server.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        server
    }

    /// Publishes an archive and returns its URL and digest.
    fn publish(&self, name: &str, archive: Vec<u8>) -> (String, String) {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&archive)));
        self.files
            .lock()
            .expect("lock")
            .insert(name.to_owned(), archive);
        (format!("{}/{name}", self.base), digest)
    }

    fn hits(&self, name: &str) -> usize {
        self.hits
            .lock()
            .expect("lock")
            .get(name)
            .copied()
            .unwrap_or(0)
    }
}

async fn serve(
    UrlPath(name): UrlPath<String>,
    State(server): State<Server>,
) -> (StatusCode, Vec<u8>) {
    *server
        .hits
        .lock()
        .expect("lock")
        .entry(name.clone())
        .or_default() += 1;
    // Server latency, so that concurrent requests overlap.
    tokio::time::sleep(server.delay).await;
    match server.files.lock().expect("lock").get(&name) {
        Some(bytes) => (StatusCode::OK, bytes.clone()),
        None => (StatusCode::NOT_FOUND, Vec::new()),
    }
}

/// One archive entry, written with raw headers so that hostile names can be made.
enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Device(&'a str),
}

fn set_name(header: &mut Header, name: &str) {
    let field = &mut header.as_old_mut().name;
    field.fill(0);
    field[..name.len()].copy_from_slice(name.as_bytes());
}

fn archive(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    for entry in entries {
        let mut header = Header::new_gnu();
        header.set_mode(0o644);
        let (name, kind, data, link): (&str, EntryType, &[u8], Option<&str>) = match entry {
            Entry::File(n, d) => (n, EntryType::Regular, d, None),
            Entry::Dir(n) => (n, EntryType::Directory, b"", None),
            Entry::Symlink(n, t) => (n, EntryType::Symlink, b"", Some(t)),
            Entry::Hardlink(n, t) => (n, EntryType::Link, b"", Some(t)),
            Entry::Device(n) => (n, EntryType::Char, b"", None),
        };
        set_name(&mut header, name);
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        if let Some(target) = link {
            let field = &mut header.as_old_mut().linkname;
            field.fill(0);
            field[..target.len()].copy_from_slice(target.as_bytes());
        }
        header.set_cksum();
        builder.append(&header, data).expect("append");
    }
    builder.into_inner().expect("tar").finish().expect("gzip")
}

fn good_archive() -> Vec<u8> {
    archive(&[
        Entry::Dir("./"),
        Entry::Dir("./apps/"),
        Entry::File("./apps/kustomization.yaml", b"resources:\n- cm.yaml\n"),
        Entry::File("./apps/cm.yaml", b"apiVersion: v1\nkind: ConfigMap\n"),
        Entry::Symlink("./apps/link.yaml", "cm.yaml"),
        Entry::Symlink("./base", "apps"),
        Entry::File("nested/deep/file.txt", b"implicit parents"),
    ])
}

fn cache_in(root: &Path, limits: Limits) -> ArtifactCache {
    ArtifactCache::new(root.to_path_buf(), limits).expect("cache")
}

/// Names in the cache root other than its private scratch directory.
fn cache_entries(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".scratch")
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn downloads_verifies_and_extracts() {
    let server = Server::start(Duration::ZERO).await;
    let (url, digest) = server.publish("a.tar.gz", good_archive());
    let root = tempfile::tempdir().expect("root");
    let cache = cache_in(root.path(), Limits::default());
    let artifact = cache.get(&url, &digest).await.expect("get");
    assert_eq!(artifact.digest.to_string(), digest);
    assert_eq!(artifact.dir, root.path().join(&digest["sha256:".len()..]));
    let dir = &artifact.dir;
    assert_eq!(
        std::fs::read_to_string(dir.join("apps/cm.yaml")).expect("read"),
        "apiVersion: v1\nkind: ConfigMap\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("apps/link.yaml")).expect("link"),
        "apiVersion: v1\nkind: ConfigMap\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("base/kustomization.yaml")).expect("dir link"),
        "resources:\n- cm.yaml\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("nested/deep/file.txt")).expect("read"),
        "implicit parents"
    );
    let mode = std::fs::metadata(dir.join("apps/cm.yaml"))
        .expect("meta")
        .permissions();
    assert!(mode.readonly(), "extracted files are read-only");
    assert_eq!(
        cache_entries(root.path()),
        vec![digest["sha256:".len()..].to_owned()]
    );
}

#[tokio::test]
async fn digest_mismatch_is_rejected_and_nothing_is_cached() {
    let server = Server::start(Duration::ZERO).await;
    let (url, digest) = server.publish("a.tar.gz", good_archive());
    let wrong = format!("sha256:{}", "0".repeat(64));
    let root = tempfile::tempdir().expect("root");
    let cache = cache_in(root.path(), Limits::default());
    let err = cache.get(&url, &wrong).await.expect_err("mismatch");
    assert_eq!(err.label(), "DigestMismatch");
    let message = err.to_string();
    assert!(
        message.contains(&wrong) && message.contains(&digest),
        "{message}"
    );
    assert!(
        cache_entries(root.path()).is_empty(),
        "{:?}",
        cache_entries(root.path())
    );
    // Nothing was remembered either: the right digest still downloads.
    cache.get(&url, &digest).await.expect("right digest");
    let err = cache.get(&url, "md5:abc").await.expect_err("bad digest");
    assert_eq!(err.label(), "InvalidDigest");
}

#[tokio::test]
async fn unsafe_entries_are_rejected_naming_the_entry() {
    let server = Server::start(Duration::ZERO).await;
    let root = tempfile::tempdir().expect("root");
    let cache = cache_in(root.path(), Limits::default());
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "dotdot",
            archive(&[Entry::File("apps/../../evil.yaml", b"x")]),
            "apps/../../evil.yaml",
            "`..`",
        ),
        (
            "absolute",
            archive(&[Entry::File("/etc/evil.yaml", b"x")]),
            "/etc/evil.yaml",
            "absolute",
        ),
        (
            "escaping-link",
            archive(&[Entry::Symlink("apps/link", "../../outside")]),
            "apps/link",
            "leaves",
        ),
        (
            "absolute-link",
            archive(&[Entry::Symlink("link", "/etc/passwd")]),
            "link",
            "leaves",
        ),
        (
            "through-link",
            archive(&[
                Entry::Symlink("up", "."),
                Entry::Dir("sub/"),
                Entry::Symlink("sub/x", "../up"),
                Entry::File("sub/x/y", b"x"),
            ]),
            "sub/x/y",
            "passes through a symbolic link",
        ),
        (
            "hardlink",
            archive(&[Entry::File("a", b"x"), Entry::Hardlink("b", "a")]),
            "b",
            "hard links",
        ),
        (
            "device",
            archive(&[Entry::Device("dev/null")]),
            "dev/null",
            "device",
        ),
    ];
    for (name, bytes, entry, problem) in cases {
        let (url, digest) = server.publish(name, bytes);
        let err = cache.get(&url, &digest).await.expect_err(name);
        assert_eq!(err.label(), "UnsafeArchiveEntry", "{name}: {err}");
        assert!(
            err.to_string().contains(&format!("{entry:?}")),
            "{name}: {err}"
        );
        assert!(err.to_string().contains(problem), "{name}: {err}");
        assert!(
            cache_entries(root.path()).is_empty(),
            "{name}: {:?}",
            cache_entries(root.path())
        );
    }
}

#[tokio::test]
async fn limits_are_enforced() {
    let server = Server::start(Duration::ZERO).await;
    let root = tempfile::tempdir().expect("root");
    let many: Vec<String> = (0..20).map(|i| format!("f{i}.yaml")).collect();
    let entries: Vec<Entry<'_>> = many.iter().map(|n| Entry::File(n, b"x")).collect();
    let (url, digest) = server.publish("many", archive(&entries));
    let limits = Limits {
        max_files: 10,
        ..Limits::default()
    };
    let err = cache_in(root.path(), limits)
        .get(&url, &digest)
        .await
        .expect_err("files");
    assert!(
        matches!(err, ArtifactError::TooManyFiles { limit: 10 }),
        "{err}"
    );

    let big = vec![b'a'; 64 * 1024];
    let (url, digest) = server.publish("big", archive(&[Entry::File("big.txt", &big)]));
    let limits = Limits {
        max_extracted_bytes: 1024,
        ..Limits::default()
    };
    let err = cache_in(root.path(), limits)
        .get(&url, &digest)
        .await
        .expect_err("bytes");
    assert!(
        matches!(err, ArtifactError::ExtractedTooLarge { limit: 1024 }),
        "{err}"
    );

    let limits = Limits {
        max_download_bytes: 100,
        ..Limits::default()
    };
    let err = cache_in(root.path(), limits)
        .get(&url, &digest)
        .await
        .expect_err("download");
    assert!(
        matches!(err, ArtifactError::DownloadTooLarge { limit: 100, .. }),
        "{err}"
    );

    let (url, digest) = server.publish("junk", b"not a gzip stream at all".to_vec());
    let err = cache_in(root.path(), Limits::default())
        .get(&url, &digest)
        .await
        .expect_err("junk");
    assert_eq!(err.label(), "InvalidArchive", "{err}");
    assert!(
        cache_entries(root.path()).is_empty(),
        "{:?}",
        cache_entries(root.path())
    );
}

#[tokio::test]
async fn cache_hits_do_not_download_again() {
    let server = Server::start(Duration::ZERO).await;
    let (url, digest) = server.publish("a.tar.gz", good_archive());
    let root = tempfile::tempdir().expect("root");
    let cache = cache_in(root.path(), Limits::default());
    let first = cache.get(&url, &digest).await.expect("first");
    let second = cache.get(&url, &digest).await.expect("second");
    assert!(Arc::ptr_eq(&first, &second), "one shared tree per digest");
    assert_eq!(server.hits("a.tar.gz"), 1);
    // A new process on the same root reuses the verified tree too.
    drop(cache);
    let restarted = cache_in(root.path(), Limits::default());
    let third = restarted.get(&url, &digest).await.expect("after restart");
    assert_eq!(third.dir, first.dir);
    assert_eq!(server.hits("a.tar.gz"), 1);

    let err = restarted
        .get(
            &format!("{}/missing.tar.gz", server.base),
            &format!("sha256:{}", "1".repeat(64)),
        )
        .await
        .expect_err("404");
    assert_eq!(err.label(), "ArtifactNotFound");
}

#[tokio::test]
async fn concurrent_gets_download_once() {
    let server = Server::start(Duration::from_millis(200)).await;
    let (url, digest) = server.publish("a.tar.gz", good_archive());
    let root = tempfile::tempdir().expect("root");
    let cache = Arc::new(cache_in(root.path(), Limits::default()));
    let gets = (0..8).map(|_| {
        let cache = cache.clone();
        let (url, digest) = (url.clone(), digest.clone());
        tokio::spawn(async move { cache.get(&url, &digest).await })
    });
    let results = futures::future::join_all(gets).await;
    let artifacts: Vec<_> = results
        .into_iter()
        .map(|r| r.expect("join").expect("get"))
        .collect();
    assert!(artifacts.iter().all(|a| Arc::ptr_eq(a, &artifacts[0])));
    assert_eq!(server.hits("a.tar.gz"), 1);
}

#[tokio::test]
async fn retain_evicts_only_unused_trees() {
    let server = Server::start(Duration::ZERO).await;
    let (url_a, digest_a) = server.publish("a", good_archive());
    let (url_b, digest_b) = server.publish("b", archive(&[Entry::File("b.yaml", b"b")]));
    let (url_c, digest_c) = server.publish("c", archive(&[Entry::File("c.yaml", b"c")]));
    let root = tempfile::tempdir().expect("root");
    let cache = cache_in(root.path(), Limits::default());
    let a = cache.get(&url_a, &digest_a).await.expect("a");
    let b = cache.get(&url_b, &digest_b).await.expect("b");
    let c = cache.get(&url_c, &digest_c).await.expect("c");
    let (b_dir, c_dir) = (b.dir.clone(), c.dir.clone());
    drop(b);
    drop(c);
    // Keep c by digest; a is still held by a caller; b is unused.
    let keep = HashSet::from([digest_c.clone()]);
    assert_eq!(cache.retain(&keep).await.expect("retain"), 1);
    assert!(a.dir.is_dir() && c_dir.is_dir() && !b_dir.exists());
    drop(a);
    assert_eq!(cache.retain(&keep).await.expect("retain"), 1);
    assert_eq!(
        cache_entries(root.path()),
        vec![digest_c["sha256:".len()..].to_owned()]
    );
    // An evicted digest downloads again.
    cache.get(&url_a, &digest_a).await.expect("a again");
    assert_eq!(server.hits("a"), 2);
    assert_eq!(server.hits("c"), 1);
}
