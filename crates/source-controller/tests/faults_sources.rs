//! Faults the source-controller must survive without losing what it serves or starving other
//! objects: a corrupted artifact of the same size, a wiped storage while git is down, servers
//! that never answer, caches of deleted objects, and a file too large to read into memory.
//! Real API server, real git server, the controller in-process.

mod support;

use std::time::Duration;

use kube::api::{Api, DeleteParams, Patch, PatchParams};
use mooring_api::GitRepository;
use mooring_testkit::faults::{self, Row};
use mooring_testkit::git::{Auth, GitServer};
use mooring_testkit::{TestEnv, test_env};
use serde_json::json;
use support::*;

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Asks for a reconcile now, as `kubectl annotate` would.
async fn poke(env: &TestEnv, name: &str, token: &str) {
    let api: Api<GitRepository> = Api::namespaced(env.client.clone(), &env.namespace);
    let patch = json!({"metadata": {"annotations": {
        mooring_api::constants::RECONCILE_REQUESTED_AT_ANNOTATION: token
    }}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("annotate");
}

fn handled(repo: &GitRepository, token: &str) -> bool {
    repo.status
        .as_ref()
        .and_then(|s| s.last_handled_reconcile_at.as_deref())
        == Some(token)
}

fn artifact_of(repo: &GitRepository) -> mooring_api::Artifact {
    repo.status
        .as_ref()
        .and_then(|s| s.artifact.clone())
        .expect("an artifact in status")
}

/// Downloads the advertised artifact and tells whether its bytes have the advertised digest.
async fn served_intact(artifact: &mooring_api::Artifact) -> bool {
    let (code, body) = download(&artifact.url).await;
    code == 200 && artifact.digest.as_deref() == Some(&format!("sha256:{}", sha256_hex(&body)))
}

#[tokio::test]
async fn a_corrupted_artifact_of_the_same_size_is_rebuilt() {
    let env = test_env("src-corrupt").await.expect("env");
    let repo = GitServer::shared()
        .expect("git server")
        .create_repo(&unique("corrupt"), Auth::None)
        .expect("repo");
    let commit = repo
        .commit(&[("deploy/cm.yaml", "kind: ConfigMap\n")], "first")
        .expect("commit");
    let running = start(&env, None).await;
    apply_repo(&env, repo_manifest("app", repo.http_url(), json!({}))).await;
    let ready = wait_for(&env, "app", "Ready", |r| is_ready_at(r, &commit)).await;
    let artifact = artifact_of(&ready);
    assert!(served_intact(&artifact).await);

    // Same length, different bytes: a size check cannot see it.
    let file = running.storage.join(&artifact.path);
    let mut bytes = std::fs::read(&file).expect("read artifact");
    for b in bytes.iter_mut().skip(16).take(64) {
        *b = !*b;
    }
    std::fs::write(&file, &bytes).expect("corrupt artifact in place");
    assert!(!served_intact(&artifact).await, "the corruption is served");

    poke(&env, "app", "after-corruption").await;
    let after = wait_for(&env, "app", "the pass after the corruption", |r| {
        handled(r, "after-corruption")
    })
    .await;
    let rebuilt = artifact_of(&after);
    assert_eq!(rebuilt.digest, artifact.digest, "same commit, same bytes");
    assert!(
        served_intact(&rebuilt).await,
        "the corrupted artifact was rebuilt"
    );
    faults::record(&Row::passed_once(
        "artifact corrupted in storage (same size): rebuilt",
    ));
    running.stop().await;
}

#[tokio::test]
async fn a_wiped_storage_is_rebuilt_from_the_git_cache_while_git_is_down() {
    let env = test_env("src-offline").await.expect("env");
    // A server of its own, so that it can go down without disturbing other tests.
    let server = GitServer::start().expect("git server");
    let repo = server
        .create_repo(&unique("offline"), Auth::None)
        .expect("repo");
    let commit = repo
        .commit(&[("deploy/cm.yaml", "kind: ConfigMap\n")], "first")
        .expect("commit");
    let running = start(&env, None).await;
    apply_repo(&env, repo_manifest("app", repo.http_url(), json!({}))).await;
    let before = wait_for(&env, "app", "Ready", |r| is_ready_at(r, &commit)).await;
    let artifact = artifact_of(&before);

    drop(server);
    std::fs::remove_dir_all(running.storage.join("gitrepository")).expect("wipe storage");
    assert!(!served_intact(&artifact).await);

    poke(&env, "app", "git-down").await;
    let after = wait_for(&env, "app", "the pass with git down", |r| {
        handled(r, "git-down")
    })
    .await;
    let (status, _, message) = ready(&after).expect("Ready condition");
    assert_eq!(status, "False", "git is down: {message}");
    assert!(
        message.contains(&repo.http_url().replace("http://", "")) || message.contains("127.0.0.1"),
        "the message names the remote: {message}"
    );
    assert_eq!(artifact_of(&after).digest, artifact.digest);
    assert!(
        served_intact(&artifact).await,
        "the last artifact is served again, rebuilt from the cache"
    );
    faults::record(&Row::passed_once(
        "storage wiped while git is down: rebuilt from cache",
    ));
    running.stop().await;
}

/// A TCP server that accepts connections and never answers, until dropped.
struct Silent {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Silent {
    async fn start() -> Silent {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        Silent {
            url: format!("http://{addr}/repo.git"),
            task,
        }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn long_timeouts_against_a_silent_server_cannot_starve_other_repositories() {
    let env = test_env("src-starve").await.expect("env");
    let silent = Silent::start().await;
    let repo = GitServer::shared()
        .expect("git server")
        .create_repo(&unique("starve"), Auth::None)
        .expect("repo");
    let commit = repo
        .commit(&[("deploy/cm.yaml", "kind: ConfigMap\n")], "first")
        .expect("commit");
    // Two workers, and more silent objects than workers, each allowed ten hours (600m: the schema takes no `h`).
    let running = start_with(&env, None, 2, |s| {
        s.max_git_timeout = Duration::from_secs(2);
    })
    .await;
    for i in 0..4 {
        let manifest = repo_manifest(
            &format!("silent-{i}"),
            &silent.url,
            json!({"timeout": "600m"}),
        );
        apply_repo(&env, manifest).await;
    }
    apply_repo(&env, repo_manifest("good", repo.http_url(), json!({}))).await;

    let good = wait_for(&env, "good", "Ready despite the silent server", |r| {
        is_ready_at(r, &commit)
    })
    .await;
    assert!(served_intact(&artifact_of(&good)).await);
    let silent_repo = wait_for(&env, "silent-0", "timed out", |r| {
        ready(r).is_some_and(|(s, _, _)| s == "False")
    })
    .await;
    let (_, _, message) = ready(&silent_repo).expect("Ready");
    assert!(
        message.contains("--max-git-timeout") && message.contains("2s"),
        "the message says which limit cut the wait: {message}"
    );
    faults::record(&Row::passed_once(
        "4 GitRepositories timeout 10h on a silent server, 2 workers: others served",
    ));
    running.stop().await;
}

/// The cache directories (not lock files) under `cache`.
fn caches(cache: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cache)
        .map(|l| {
            l.flatten()
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

async fn delete_and_wait(env: &TestEnv, name: &str) {
    let api: Api<GitRepository> = Api::namespaced(env.client.clone(), &env.namespace);
    api.delete(name, &DeleteParams::default())
        .await
        .expect("delete");
    mooring_testkit::wait::wait_for(&api, name, "deleted", Duration::from_secs(60), |o| {
        o.is_none()
    })
    .await;
}

#[tokio::test]
async fn git_caches_go_when_no_gitrepository_uses_their_url() {
    let env = test_env("src-evict").await.expect("env");
    let server = GitServer::shared().expect("git server");
    let shared = server
        .create_repo(&unique("shared"), Auth::None)
        .expect("repo");
    let alone = server
        .create_repo(&unique("alone"), Auth::None)
        .expect("repo");
    let a = shared.commit(&[("a.yaml", "a: 1\n")], "a").expect("commit");
    let b = alone.commit(&[("b.yaml", "b: 1\n")], "b").expect("commit");
    let running = start(&env, None).await;
    for (name, url) in [
        ("one", shared.http_url()),
        ("two", shared.http_url()),
        ("three", alone.http_url()),
    ] {
        apply_repo(&env, repo_manifest(name, url, json!({}))).await;
    }
    for (name, commit) in [("one", &a), ("two", &a), ("three", &b)] {
        wait_for(&env, name, "Ready", |r| is_ready_at(r, commit)).await;
    }
    assert_eq!(caches(&running.cache).len(), 2, "one cache per URL");

    delete_and_wait(&env, "one").await;
    assert_eq!(
        caches(&running.cache).len(),
        2,
        "the shared URL is still used by 'two'"
    );
    delete_and_wait(&env, "two").await;
    assert_eq!(
        caches(&running.cache),
        vec![mooring_source_controller::git::cache_key(alone.http_url())],
        "the shared URL's cache went with its last GitRepository"
    );
    delete_and_wait(&env, "three").await;
    assert!(caches(&running.cache).is_empty());
    faults::record(&Row::passed_once(
        "git caches evicted with the last GitRepository of their URL",
    ));
    running.stop().await;
}

#[tokio::test]
async fn the_cache_of_a_url_no_gitrepository_uses_goes_after_a_build_elsewhere() {
    let env = test_env("src-evict-moved").await.expect("env");
    let server = GitServer::shared().expect("git server");
    let first = server
        .create_repo(&unique("first"), Auth::None)
        .expect("repo");
    let second = server
        .create_repo(&unique("second"), Auth::None)
        .expect("repo");
    let one = first.commit(&[("a.yaml", "a: 1\n")], "a").expect("commit");
    let two = second.commit(&[("b.yaml", "b: 1\n")], "b").expect("commit");
    let running = start(&env, None).await;
    apply_repo(&env, repo_manifest("mover", first.http_url(), json!({}))).await;
    wait_for(&env, "mover", "Ready", |r| is_ready_at(r, &one)).await;
    assert_eq!(
        caches(&running.cache),
        vec![mooring_source_controller::git::cache_key(first.http_url())]
    );
    // Moving to another URL builds an artifact there; the old URL's cache goes without any
    // deletion, at most one eviction spacing after that build (builds close together share
    // one eviction).
    apply_repo(&env, repo_manifest("mover", second.http_url(), json!({}))).await;
    wait_for(&env, "mover", "Ready at the new URL", |r| {
        is_ready_at(r, &two)
    })
    .await;
    let only_second = vec![mooring_source_controller::git::cache_key(second.http_url())];
    let deadline = mooring_source_controller::steps::EVICTION_SPACING + Duration::from_secs(20);
    let mut every = tokio::time::interval(Duration::from_millis(100));
    let evicted = tokio::time::timeout(deadline, async {
        while caches(&running.cache) != only_second {
            every.tick().await;
        }
    })
    .await;
    assert!(
        evicted.is_ok(),
        "the unused cache stayed for {deadline:?}: {:?}",
        caches(&running.cache)
    );
    faults::record(&Row::passed_once(
        "git caches evicted when their URL is no longer used (no deletion)",
    ));
    running.stop().await;
}

/// Bytes no compressor shrinks and that differ for each `seed` (xorshift64).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Reads the artifact at `url` as a stream and returns the size of `path` in it, after
/// checking that every byte of it is zero.
async fn zeros_in_artifact(url: &str, path: &str) -> u64 {
    let (code, body) = download(url).await;
    assert_eq!(code, 200, "artifact {url}");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(body.as_slice()));
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        if entry.path().expect("path").to_str() != Some(path) {
            continue;
        }
        let size = entry.header().size().expect("size");
        let mut read = 0u64;
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            let n = std::io::Read::read(&mut entry, &mut buffer).expect("read");
            if n == 0 {
                break;
            }
            assert!(buffer[..n].iter().all(|b| *b == 0), "a non-zero byte");
            read += n as u64;
        }
        assert_eq!(read, size);
        return size;
    }
    panic!("{path} is not in the artifact");
}

#[tokio::test]
async fn a_file_over_the_object_limit_is_streamed_and_a_deltified_one_refused_naming_the_limit() {
    let env = test_env("src-bigfile").await.expect("env");
    let server = GitServer::shared().expect("git server");
    let limit: u64 = 8 << 20;
    // Zeros pack to almost nothing: a small download that would take its full size in memory
    // if it were read whole. git stores such a file whole in the pack, so it is streamed.
    let big = server
        .create_repo(&unique("big"), Auth::None)
        .expect("repo");
    let size = faults::scaled(48 << 20, 1 << 30) as u64;
    big.commit(&[("deploy/cm.yaml", "kind: ConfigMap\n")], "manifests")
        .expect("commit");
    let big_commit = big
        .commit_zeros("blob.bin", size, "a big file")
        .expect("commit the big file");
    // The same by an annotated tag and by commit, each its own URL (a shared cache would
    // already hold the file): the tag's own object and a bare commit are fetched as well.
    let (tagged, by_commit) = (
        server
            .create_repo(&unique("big-tag"), Auth::None)
            .expect("repo"),
        server
            .create_repo(&unique("big-commit"), Auth::None)
            .expect("repo"),
    );
    let mut other_commits = Vec::new();
    for repo in [&tagged, &by_commit] {
        repo.commit(&[("deploy/cm.yaml", "kind: ConfigMap\n")], "manifests")
            .expect("commit");
        other_commits.push(
            repo.commit_zeros("blob.bin", 4 * limit, "a big file")
                .expect("commit the big file"),
        );
    }
    tagged.tag("v1", true, "release").expect("tag");
    // Two nearly equal files over the limit in one commit: git stores the second as a delta
    // of the first, and resolving it needs both whole in memory.
    let deltified = server
        .create_repo(&unique("delta"), Auth::None)
        .expect("repo");
    let first = noise(12 << 20, 7);
    let mut second = first.clone();
    second[100] ^= 0xff;
    deltified
        .commit_bytes(
            &[
                (
                    b"deploy/cm.yaml".as_slice(),
                    b"kind: ConfigMap\n".as_slice(),
                ),
                (b"a.bin".as_slice(), first.as_slice()),
                (b"b.bin".as_slice(), second.as_slice()),
            ],
            "two big similar files",
        )
        .expect("commit");
    let small = server
        .create_repo(&unique("small"), Auth::None)
        .expect("repo");
    let commit = small
        .commit(&[("deploy/cm.yaml", "kind: ConfigMap\n")], "small")
        .expect("commit");
    let running = start_with(&env, None, 4, |s| s.max_git_object_size = Some(limit)).await;
    apply_repo(&env, repo_manifest("big", big.http_url(), json!({}))).await;
    apply_repo(
        &env,
        repo_manifest("delta", deltified.http_url(), json!({})),
    )
    .await;
    apply_repo(
        &env,
        repo_manifest("big-tag", tagged.http_url(), json!({"ref": {"tag": "v1"}})),
    )
    .await;
    apply_repo(
        &env,
        repo_manifest(
            "big-commit",
            by_commit.http_url(),
            json!({"ref": {"commit": other_commits[1]}}),
        ),
    )
    .await;
    apply_repo(&env, repo_manifest("small", small.http_url(), json!({}))).await;

    let served = wait_for(&env, "big", "Ready", |r| is_ready_at(r, &big_commit)).await;
    let artifact = served
        .status
        .as_ref()
        .and_then(|s| s.artifact.as_ref())
        .expect("artifact");
    assert_eq!(zeros_in_artifact(&artifact.url, "blob.bin").await, size);
    // A later small change is fetched by gix on top of the streamed pack and shallow boundary:
    // the cache gains a pack and keeps the streamed one (a cache found unusable would be made
    // anew, holding one pack).
    let packs_dir = running
        .cache
        .join(mooring_source_controller::git::cache_key(big.http_url()))
        .join("objects/pack");
    let packs = || {
        std::fs::read_dir(&packs_dir)
            .expect("packs")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".pack"))
            .collect::<std::collections::BTreeSet<_>>()
    };
    let streamed = packs();
    assert_eq!(streamed.len(), 1, "{streamed:?}");
    let next = big
        .commit(&[("deploy/cm.yaml", "kind: ConfigMap\n# v2\n")], "v2")
        .expect("commit");
    let api: Api<GitRepository> = Api::namespaced(env.client.clone(), &env.namespace);
    let patch = json!({"metadata": {"annotations": {"reconcile.mooring.dev/requestedAt": "v2"}}});
    api.patch("big", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("annotate");
    wait_for(&env, "big", "Ready at v2", |r| is_ready_at(r, &next)).await;
    let after = packs();
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(after.is_superset(&streamed), "{after:?}");
    for (name, commit) in ["big-tag", "big-commit"].iter().zip(&other_commits) {
        let served = wait_for(&env, name, "Ready", |r| is_ready_at(r, commit)).await;
        let artifact = served
            .status
            .as_ref()
            .and_then(|s| s.artifact.as_ref())
            .expect("artifact");
        assert_eq!(
            zeros_in_artifact(&artifact.url, "blob.bin").await,
            4 * limit
        );
        if *name == "big-tag" {
            assert_eq!(artifact.revision, format!("v1@sha1:{commit}"));
        }
    }

    let failed = wait_for(&env, "delta", "refused", |r| {
        ready(r).is_some_and(|(s, _, _)| s == "False")
    })
    .await;
    let (_, _, message) = ready(&failed).expect("Ready");
    assert!(
        message.contains("--max-git-object-size") && message.contains(&limit.to_string()),
        "{message}"
    );
    wait_for(&env, "small", "Ready", |r| is_ready_at(r, &commit)).await;
    faults::record(&Row::passed_once(format!(
        "a {} MiB file over the object limit: streamed into the artifact; a deltified one refused; others served",
        size >> 20
    )));
    running.stop().await;
}

#[tokio::test]
async fn a_damaged_object_in_the_git_cache_is_reported_then_fetched_again() {
    let env = test_env("src-damaged-cache").await.expect("env");
    let repo = GitServer::shared()
        .expect("git server")
        .create_repo(&unique("damaged"), Auth::None)
        .expect("repo");
    repo.commit(&[("deploy/cm.yaml", "kind: ConfigMap\n")], "manifests")
        .expect("commit");
    let commit = repo
        .commit_zeros("blob.bin", 4 << 20, "a big file")
        .expect("commit");
    // Over the object limit, the file is streamed from the cache's pack when archived.
    let running = start_with(&env, None, 4, |s| s.max_git_object_size = Some(1 << 20)).await;
    apply_repo(&env, repo_manifest("app", repo.http_url(), json!({}))).await;
    let before = wait_for(&env, "app", "Ready", |r| is_ready_at(r, &commit)).await;
    let artifact = artifact_of(&before);

    // The cache's copy of the file is damaged, and the artifact must be built again from it.
    let cache = running
        .cache
        .join(mooring_source_controller::git::cache_key(repo.http_url()));
    let blob = mooring_testkit::git::damage_object_in_pack(&cache, &format!("{commit}:blob.bin"));
    std::fs::remove_dir_all(running.storage.join("gitrepository")).expect("wipe storage");
    poke(&env, "app", "damaged").await;

    // The pass that reads it names the file and says what comes next; the next attempt fetches
    // into a new cache and serves the same artifact again.
    let failed = wait_for(&env, "app", "the damage reported", |r| {
        ready(r).is_some_and(|(s, _, m)| s == "False" && m.contains("blob.bin"))
    })
    .await;
    let (_, reason, message) = ready(&failed).expect("Ready");
    assert_eq!(reason, "ArchiveOperationFailed", "{message}");
    assert!(message.contains(&blob), "{message}");
    assert!(
        message.ends_with("the git cache is fetched again at the next attempt"),
        "{message}"
    );
    let healed = wait_for(&env, "app", "Ready again", |r| {
        ready(r).is_some_and(|(s, _, _)| s == "True") && is_ready_at(r, &commit)
    })
    .await;
    assert_eq!(artifact_of(&healed).digest, artifact.digest);
    assert!(served_intact(&artifact_of(&healed)).await);
    assert_eq!(
        zeros_in_artifact(&artifact_of(&healed).url, "blob.bin").await,
        4 << 20
    );
    assert!(!cache.join("mooring-damaged").exists(), "a new cache");
    faults::record(&Row::passed_once(
        "a damaged object in the git cache: reported, fetched again, served",
    ));
    running.stop().await;
}
