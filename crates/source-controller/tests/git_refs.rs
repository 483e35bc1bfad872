//! Every ref kind, missing refs, and the fetch cache, against the real test git server.

mod common;

use std::path::Path;
use std::time::Instant;

use common::*;
use mooring_api::GitCheckout;
use mooring_source_controller::git::{fetch, resolve};
use mooring_testkit::git::Auth;

#[test]
fn every_ref_kind_resolves_and_fetches() {
    let s = server();
    let repo = s.create_repo("ref-kinds", Auth::None).expect("repo");
    let v1 = repo.commit(&[("a", "1")], "one").expect("commit");
    repo.tag("v1.0.0", false, "").expect("lightweight tag");
    let v11 = repo.commit(&[("a", "2")], "two").expect("commit");
    repo.tag("v1.1.0", true, "release 1.1.0")
        .expect("annotated tag");
    let v2 = repo.commit(&[("a", "3")], "three").expect("commit");
    repo.tag("v2.0.0", true, "release 2")
        .expect("annotated tag");
    repo.tag("not-semver", false, "").expect("tag");
    let dev = repo
        .commit_on("dev", &[("b", "dev")], "on dev")
        .expect("dev commit");
    let remote = https(&repo, &[]);
    let cache = cache();
    let c = cache.path();

    let rev = |r: &str, sha: &str| format!("{r}@sha1:{sha}");
    assert_eq!(
        resolve_and_fetch(&remote, &branch("main"), c, &v2),
        rev("main", &v2)
    );
    assert_eq!(
        resolve_and_fetch(&remote, &branch("dev"), c, &dev),
        rev("dev", &dev)
    );
    let tag = |t: &str| GitCheckout::Tag(t.to_owned());
    assert_eq!(
        resolve_and_fetch(&remote, &tag("v1.0.0"), c, &v1),
        rev("v1.0.0", &v1)
    );
    // Annotated: peeled to the commit.
    assert_eq!(
        resolve_and_fetch(&remote, &tag("v1.1.0"), c, &v11),
        rev("v1.1.0", &v11)
    );
    let semver = GitCheckout::Semver(">=1.0.0 <2.0.0".to_owned());
    assert_eq!(
        resolve_and_fetch(&remote, &semver, c, &v11),
        rev("v1.1.0", &v11)
    );
    let semver = GitCheckout::Semver("*".to_owned());
    assert_eq!(
        resolve_and_fetch(&remote, &semver, c, &v2),
        rev("v2.0.0", &v2)
    );
    let name = GitCheckout::Name("refs/heads/dev".to_owned());
    assert_eq!(
        resolve_and_fetch(&remote, &name, c, &dev),
        rev("refs/heads/dev", &dev)
    );
    let name = GitCheckout::Name("refs/tags/v1.1.0".to_owned());
    assert_eq!(
        resolve_and_fetch(&remote, &name, c, &v11),
        rev("refs/tags/v1.1.0", &v11)
    );
    let commit = GitCheckout::Commit {
        commit: v1.clone(),
        branch: None,
    };
    assert_eq!(
        resolve_and_fetch(&remote, &commit, c, &v1),
        format!("sha1:{v1}")
    );
    let commit = GitCheckout::Commit {
        commit: v11.clone(),
        branch: Some("main".to_owned()),
    };
    assert_eq!(
        resolve_and_fetch(&remote, &commit, c, &v11),
        rev("main", &v11)
    );
}

#[test]
fn missing_refs_and_empty_repositories_have_clear_errors() {
    let s = server();
    let repo = s.create_repo("missing-refs", Auth::None).expect("repo");
    repo.tag("v0.1.0", false, "").expect("tag");
    let remote = remote_with(repo.http_url(), &[]);
    let err = resolve(&remote, &branch("master")).expect_err("no master");
    assert_eq!(
        err.to_string(),
        format!(
            "branch 'master' not found in {}; the repository's default branch (HEAD) is 'main'",
            repo.http_url()
        )
    );
    let err = resolve(&remote, &GitCheckout::Tag("v9".into())).expect_err("no tag");
    assert_eq!(
        err.to_string(),
        format!("tag 'v9' not found in {}", repo.http_url())
    );
    let err = resolve(&remote, &GitCheckout::Semver(">=1.0.0".into())).expect_err("no match");
    assert!(
        err.to_string()
            .contains("matches semver range '>=1.0.0' (1 tags seen"),
        "{err}"
    );
    let err = resolve(&remote, &GitCheckout::Name("refs/heads/nope".into())).expect_err("no ref");
    assert_eq!(err.label(), "ref_not_found");

    let empty = s.empty_repo("empty-repo", Auth::None).expect("empty");
    let remote = remote_with(empty.http_url(), &[]);
    for checkout in [
        branch("main"),
        GitCheckout::Tag("v1".into()),
        GitCheckout::Semver("*".into()),
    ] {
        let err = resolve(&remote, &checkout).expect_err("empty");
        assert_eq!(err.reason(), "EmptyGitRepository", "{checkout:?}: {err}");
        assert!(err.to_string().contains("is empty"), "{err}");
    }
}

#[test]
fn a_missing_commit_fails_at_fetch() {
    let s = server();
    let repo = s.create_repo("missing-commit", Auth::None).expect("repo");
    let remote = remote_with(repo.http_url(), &[]);
    let ghost = "0123456789abcdef0123456789abcdef01234567";
    let checkout = GitCheckout::Commit {
        commit: ghost.to_owned(),
        branch: None,
    };
    s.clear_requests(repo.name());
    let resolved = resolve(&remote, &checkout).expect("commit resolves offline");
    assert_eq!(resolved.revision, format!("sha1:{ghost}"));
    assert!(
        s.requests(repo.name()).is_empty(),
        "a bare commit needs no request"
    );
    let err = fetch(&remote, &resolved, cache().path()).expect_err("no such commit");
    assert_eq!(err.label(), "commit_not_found", "{err}");
    assert!(err.to_string().contains(ghost), "{err}");
}

/// Objects stored in a repository's packs and loose files (an object sent twice counts twice).
fn stored_objects(path: &Path) -> usize {
    let repo = gix::open(path).expect("open the cache");
    repo.objects.iter().expect("iterate objects").count()
}

fn many_files(count: usize, salt: &str) -> Vec<(String, String)> {
    (0..count)
        .map(|i| {
            (
                format!("deploy/file-{i:03}.yaml"),
                format!("kind: ConfigMap # {salt} {i}\n{}", "x".repeat(1500)),
            )
        })
        .collect()
}

#[test]
fn a_second_fetch_reuses_the_cache_and_keeps_the_first_commit() {
    let s = server();
    let repo = s.create_repo("cache-reuse", Auth::None).expect("repo");
    let files = many_files(200, "v1");
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let first = repo.commit(&files, "200 files").expect("commit");
    let remote = remote_with(repo.http_url(), &[]);
    let cache = cache();

    let started = Instant::now();
    let resolved = resolve(&remote, &branch("main")).expect("resolve");
    let resolve_time = started.elapsed();
    let started = Instant::now();
    let fetched = fetch(&remote, &resolved, cache.path()).expect("first fetch");
    let first_time = started.elapsed();
    assert_eq!(fetched.commit, first);
    let after_first = stored_objects(&fetched.repo_path);
    let first_revision = fetched.revision.clone();
    drop(fetched);

    let second = repo
        .commit(&[("deploy/file-000.yaml", "changed\n")], "change one file")
        .expect("commit");
    let resolved = resolve(&remote, &branch("main")).expect("resolve again");
    assert_eq!(resolved.commit, second);
    let started = Instant::now();
    let fetched = fetch(&remote, &resolved, cache.path()).expect("second fetch");
    let second_time = started.elapsed();
    assert_eq!(fetched.commit, second);
    let after_second = stored_objects(&fetched.repo_path);
    // The first artifact's commit is still there, unchanged.
    let cached = gix::open(&fetched.repo_path).expect("open");
    let id = gix::ObjectId::from_hex(first.as_bytes()).expect("hex");
    assert_eq!(cached.find_commit(id).expect("first commit kept").id, id);
    assert_eq!(first_revision, format!("main@sha1:{first}"));

    // A fresh cache needs every object of the new commit again.
    let fresh = tempfile::tempdir().expect("dir");
    let started = Instant::now();
    let full = fetch(&remote, &resolved, fresh.path()).expect("fetch into a fresh cache");
    let fresh_time = started.elapsed();
    let full_objects = stored_objects(&full.repo_path);
    let incremental = after_second - after_first;
    eprintln!(
        "http, 200 files x 1.5 KiB: resolve {resolve_time:?}; first fetch {first_time:?} \
         ({after_first} objects); second fetch into the same cache {second_time:?} \
         (+{incremental} objects); same commit into a fresh cache {fresh_time:?} \
         ({full_objects} objects)"
    );
    assert!(
        incremental < 10,
        "the second fetch must bring only the changed objects, got {incremental}"
    );
    assert!(full_objects > 200);
}

#[test]
fn an_unusable_cache_is_recreated() {
    let s = server();
    let repo = s.create_repo("corrupt-cache", Auth::None).expect("repo");
    let remote = remote_with(repo.http_url(), &[]);
    let cache = cache();
    let resolved = resolve(&remote, &branch("main")).expect("resolve");
    let path = fetch(&remote, &resolved, cache.path())
        .expect("fetch")
        .repo_path;

    std::fs::write(path.join("HEAD"), "not a ref").expect("break HEAD");
    let fetched = fetch(&remote, &resolved, cache.path()).expect("fetch into a re-created cache");
    assert_eq!(fetched.commit, resolved.commit);
    drop(fetched);

    // Objects gone while the refs still claim them.
    let pack = path.join("objects/pack");
    for entry in std::fs::read_dir(&pack).expect("pack dir") {
        std::fs::remove_file(entry.expect("entry").path()).expect("remove pack");
    }
    let head = repo
        .commit(&[("new", "file")], "new commit")
        .expect("commit");
    let resolved = resolve(&remote, &branch("main")).expect("resolve");
    let fetched = fetch(&remote, &resolved, cache.path()).expect("fetch after losing the packs");
    assert_eq!(fetched.commit, head);

    std::fs::remove_dir_all(&path).expect("rm");
    std::fs::write(&path, "a file where the cache was").expect("file");
    drop(fetched);
    let fetched = fetch(&remote, &resolved, cache.path()).expect("fetch over a file");
    assert_eq!(fetched.commit, head);
}

#[test]
fn a_fetch_killed_midway_does_not_block_later_fetches() {
    let s = server();
    let repo = s.create_repo("killed-fetch", Auth::None).expect("repo");
    repo.commit(&[("a", "1")], "first").expect("commit");
    let remote = remote_with(repo.http_url(), &[]);
    let cache = cache();
    let resolved = resolve(&remote, &branch("main")).expect("resolve");
    let path = fetch(&remote, &resolved, cache.path())
        .expect("fetch")
        .repo_path;
    // What a SIGKILL during a fetch leaves (found by tests/faults_crash.rs): gix's lock files
    // and a pack being received.
    std::fs::write(path.join("shallow.lock"), "").expect("shallow.lock");
    std::fs::write(path.join("objects/pack/.tmpXyZ"), "partial pack").expect("temp pack");
    let head = repo.commit(&[("a", "2")], "second").expect("commit");
    let resolved = resolve(&remote, &branch("main")).expect("resolve");
    let fetched = fetch(&remote, &resolved, cache.path()).expect("fetch after a killed fetch");
    assert_eq!(fetched.commit, head);
    assert!(!path.join("shallow.lock").exists());
    assert!(!path.join("objects/pack/.tmpXyZ").exists());
}

#[test]
fn concurrent_fetches_of_one_url_share_the_cache_safely() {
    let s = server();
    let repo = s.create_repo("concurrent-fetch", Auth::None).expect("repo");
    repo.commit_on("other", &[("o", "1")], "other branch")
        .expect("commit");
    let remote = remote_with(repo.http_url(), &[]);
    let cache = cache();
    let checkouts = [
        branch("main"),
        branch("other"),
        branch("main"),
        branch("other"),
    ];
    std::thread::scope(|scope| {
        let handles: Vec<_> = checkouts
            .iter()
            .map(|checkout| {
                let remote = &remote;
                let cache = cache.path();
                scope.spawn(move || {
                    let resolved = resolve(remote, checkout).expect("resolve");
                    let fetched = fetch(remote, &resolved, cache).expect("fetch");
                    assert_eq!(fetched.commit, resolved.commit);
                    let repo = gix::open(&fetched.repo_path).expect("open");
                    let id = gix::ObjectId::from_hex(fetched.commit.as_bytes()).expect("hex");
                    repo.find_commit(id)
                        .expect("commit present")
                        .tree()
                        .expect("tree");
                })
            })
            .collect();
        for handle in handles {
            handle.join().expect("no fetch panicked");
        }
    });
    let entries = std::fs::read_dir(cache.path()).expect("cache root").count();
    assert_eq!(entries, 2, "one repository and its lock file");
}
