//! The source-controller binary's memory stays bounded by its flags, not by what repositories
//! hold: a repository with one huge file (zeros: a tiny download that would take its whole size
//! in memory), then many GitRepositories fetching at once. Anonymous RSS (`RssAnon`, what the
//! kernel cannot page back to a file) is sampled from /proc throughout.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use mooring_testkit::controllers::{Controllers, Options};
use mooring_testkit::faults::{self, Row};
use mooring_testkit::git::{Auth, GitServer};
use mooring_testkit::test_env;
use serde_json::json;
use support::*;

/// The bound the issue sets for the source-controller, anonymous memory only.
const RSS_BOUND_KIB: u64 = 64 * 1024;

/// `RssAnon` of `pid` in KiB.
fn rss_anon_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Samples a process's anonymous RSS every 10 ms on its own thread and keeps the peak.
struct PeakRss {
    peak: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PeakRss {
    fn start(pid: u32) -> PeakRss {
        let peak = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (peak, done) = (peak.clone(), done.clone());
            move || {
                while !done.load(Ordering::Relaxed) {
                    if let Some(kib) = rss_anon_kib(pid) {
                        peak.fetch_max(kib, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        });
        PeakRss {
            peak,
            done,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u64 {
        self.done.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

#[tokio::test]
async fn anonymous_memory_stays_bounded_with_a_huge_file_and_many_fetches() {
    let env = test_env("src-memory").await.expect("env");
    let server = GitServer::shared().expect("git server");
    let mut options = Options::local(env.plane.kubeconfig());
    options.source_flags = vec![format!("--watch-namespace={}", env.namespace)];
    let controllers = tokio::task::spawn_blocking(move || Controllers::start(&options))
        .await
        .expect("join")
        .expect("start the controller binaries");
    let pid = controllers.source_pid().expect("source-controller pid");
    let sampler = PeakRss::start(pid);

    // One file of zeros far larger than the memory bound.
    let size = faults::scaled(256 << 20, 1 << 30) as u64;
    let big = server
        .create_repo(&format!("huge-{}", std::process::id()), Auth::None)
        .expect("repo");
    big.commit(&[("deploy/cm.yaml", "kind: ConfigMap\n")], "manifests")
        .expect("commit");
    let huge_commit = big
        .commit_zeros("data/zeros.bin", size, "a huge file")
        .expect("commit the huge file");
    // Over --max-git-object-size (32 MiB by default) and stored whole in the pack: fetched,
    // indexed and archived as a stream.
    apply_repo(&env, repo_manifest("huge", big.http_url(), json!({}))).await;
    let api: kube::Api<mooring_api::GitRepository> =
        kube::Api::namespaced(env.client.clone(), &env.namespace);
    let started = std::time::Instant::now();
    // Longer than other waits: a debug build inflates, hashes and compresses the whole file.
    mooring_testkit::wait::wait_for(&api, "huge", "Ready", Duration::from_secs(300), |r| {
        r.is_some_and(|r| is_ready_at(r, &huge_commit))
    })
    .await
    .expect("the GitRepository exists");
    eprintln!(
        "the {} MiB file fetched and archived in {:.1} s",
        size >> 20,
        started.elapsed().as_secs_f64()
    );
    let after_huge = rss_anon_kib(pid).unwrap_or(0);

    // Many repositories at once, each its own URL, so each is fetched and archived.
    let count = faults::scaled(100, 300);
    let files: Vec<(String, String)> = (0..40)
        .map(|i| {
            (
                format!("deploy/cm-{i}.yaml"),
                format!(
                    "kind: ConfigMap\nmetadata: {{name: cm-{i}}}\ndata: {{k: \"{}\"}}\n",
                    "v".repeat(2000)
                ),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let mut commits = Vec::new();
    for i in 0..count {
        let repo = server
            .create_repo(&format!("many-{}-{i}", std::process::id()), Auth::None)
            .expect("repo");
        commits.push(repo.commit(&refs, "app").expect("commit"));
        apply_repo(
            &env,
            repo_manifest(&format!("many-{i}"), repo.http_url(), json!({})),
        )
        .await;
    }
    for (i, commit) in commits.iter().enumerate() {
        wait_for(&env, &format!("many-{i}"), "Ready", |r| {
            is_ready_at(r, commit)
        })
        .await;
    }

    let peak = sampler.finish();
    let peak_mib = peak as f64 / 1024.0;
    eprintln!(
        "source-controller RssAnon: {:.1} MiB after the {} MiB file, peak {peak_mib:.1} MiB over it and {count} fetches",
        after_huge as f64 / 1024.0,
        size >> 20
    );
    let passed = peak > 0 && peak < RSS_BOUND_KIB;
    faults::record(&Row {
        runs: 1,
        passed: u64::from(passed),
        peak_rss_mib: Some(peak_mib),
        ..Row::new(format!(
            "source-controller memory: a {} MiB file archived, then {count} GitRepositories fetching",
            size >> 20
        ))
    });
    assert!(
        passed,
        "peak anonymous RSS {peak_mib:.1} MiB, bound {} MiB",
        RSS_BOUND_KIB / 1024
    );
    drop(controllers);
}
