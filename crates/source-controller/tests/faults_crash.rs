//! Crash points of the source-controller: the real binary is SIGKILLed at random points while it
//! fetches a repository of a few thousand files and archives it, and started again each time.
//!
//! No torn artifact may ever be served: every artifact `status.artifact` names (watched) is
//! downloaded and must hash to its digest and read as a complete tar.gz; after every kill, each
//! artifact file under a served name must hash to the digest its name carries, and temp files
//! left by a killed write must not be served. At the end the artifact is the last revision's.
//!
//! A kill point comes a random delay after a new commit is announced, drawn from the measured
//! time of one uninterrupted fetch and archive; a temp file in storage at the kill says it
//! landed in the archive step. `MOORING_FAULTS_SEED=<seed>` replays a run (the seed is
//! printed); `MOORING_FAULTS_LONG=1` runs the long form.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flate2::read::GzDecoder;
use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use kube::runtime::{WatchStreamExt, watcher};
use mooring_api::GitRepository;
use mooring_testkit::controllers::{Controllers, Options};
use mooring_testkit::faults::{self, Dice, Row};
use mooring_testkit::git::{Auth, GitServer, Repo};
use support::{apply_repo, download, download_whole, is_ready_at, repo_manifest, sha256_hex};

const SCENARIO: &str = "source-controller SIGKILL while fetching/archiving";
/// Files in the repository, and bytes of each.
const FILES: usize = 800;
const FILE_SIZE: usize = 4 * 1024;
/// Files rewritten by each new revision (new blobs to fetch).
const CHANGED_PER_REVISION: usize = 100;
/// Prefix of the files storage writes before renaming them into place.
const TEMP_PREFIX: &str = ".tmp-";
/// How long the last revision may take to be served after the last restart.
const CONVERGE: Duration = Duration::from_secs(120);
/// At most this many kill points are added when none of the drawn ones hit an archive.
const MAX_ADDED_POINTS: usize = 20;

/// Text of file `i` as of revision `version`: hex of a hash chain, so it compresses like
/// ordinary text and no two files share a blob.
fn blob(i: usize, version: usize) -> String {
    let mut out = String::with_capacity(FILE_SIZE + 64);
    let mut k = 0;
    while out.len() < FILE_SIZE {
        out.push_str(&sha256_hex(format!("{i}/{version}/{k}").as_bytes()));
        if k % 2 == 1 {
            out.push('\n');
        }
        k += 1;
    }
    out
}

/// The files revision `r` changes (all of them for revision 0).
fn revision_files(r: usize) -> Vec<(String, String)> {
    let changed: Vec<usize> = if r == 0 {
        (0..FILES).collect()
    } else {
        (0..CHANGED_PER_REVISION)
            .map(|k| (r * CHANGED_PER_REVISION + k) % FILES)
            .collect()
    };
    let mut files: Vec<(String, String)> = changed
        .into_iter()
        .map(|i| (format!("data/{:02}/f{i}.txt", i % 50), blob(i, r)))
        .collect();
    files.push(("rev.txt".to_string(), format!("{r}\n")));
    files
}

fn commit_revision(repo: &Repo, r: usize) -> String {
    let files = revision_files(r);
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    repo.commit(&refs, &format!("revision {r}"))
        .expect("commit")
}

/// Why an artifact is not acceptable, or None.
fn torn(bytes: &[u8], digest: &str) -> Option<String> {
    let hex = sha256_hex(bytes);
    if digest.strip_prefix("sha256:") != Some(hex.as_str()) {
        return Some(format!(
            "{} bytes hash to sha256:{hex}, not {digest}",
            bytes.len()
        ));
    }
    complete_tar_gz(bytes).err()
}

/// Reads every entry of a tar.gz to its end; the revision file must be there.
fn complete_tar_gz(bytes: &[u8]) -> Result<(), String> {
    let mut archive = tar::Archive::new(GzDecoder::new(bytes));
    let mut files = 0;
    let mut has_rev = false;
    for entry in archive.entries().map_err(|e| format!("tar: {e}"))? {
        let mut entry = entry.map_err(|e| format!("tar entry {files}: {e}"))?;
        has_rev |= entry.path_bytes().as_ref() == b"rev.txt";
        std::io::copy(&mut entry, &mut std::io::sink())
            .map_err(|e| format!("tar entry {files}: {e}"))?;
        files += 1;
    }
    // The gzip stream must end where the file does.
    let mut rest = Vec::new();
    archive
        .into_inner()
        .read_to_end(&mut rest)
        .map_err(|e| format!("gzip: {e}"))?;
    if !has_rev || files < FILES {
        return Err(format!("{files} entries, rev.txt: {has_rev}"));
    }
    Ok(())
}

/// What the watch of status.artifact found.
#[derive(Debug, Default)]
struct Served {
    /// Artifacts downloaded and found whole.
    verified: usize,
    /// Artifacts removed (GC) before they could be downloaded.
    gone: usize,
    /// Torn artifacts: (url, why).
    torn: Vec<(String, String)>,
    /// Artifacts not reachable yet (the server was down): (url, digest).
    pending: Vec<(String, String)>,
    /// Downloads that failed to connect or broke off (the server was killed), then retried.
    interrupted: usize,
}

/// Downloads and checks `(url, digest)`; keeps it pending while the server is down, or when
/// the transfer broke off before its announced length (the server was killed mid-download:
/// the client sees an incomplete transfer, not a complete wrong file).
async fn verify(served: &Mutex<Served>, url: String, digest: String) {
    let Some((code, body)) = download_whole(&url).await else {
        let mut s = served.lock().expect("lock");
        s.interrupted += 1;
        s.pending.push((url, digest));
        return;
    };
    let checked = {
        let digest = digest.clone();
        tokio::task::spawn_blocking(move || (code == 200).then(|| torn(&body, &digest)))
            .await
            .expect("verify task")
    };
    let mut s = served.lock().expect("lock");
    match (code, checked) {
        (200, Some(None)) => s.verified += 1,
        (200, Some(Some(why))) => s.torn.push((url, why)),
        (404, _) => s.gone += 1,
        (other, _) => s.torn.push((url, format!("HTTP {other}"))),
    }
}

/// Watches the GitRepository and verifies every artifact it announces; retries the pending
/// ones each time `restarts` moves (the artifact server is back).
fn watch_artifacts(
    api: Api<GitRepository>,
    name: &str,
    mut restarts: tokio::sync::watch::Receiver<usize>,
) -> (Arc<Mutex<Served>>, tokio::task::JoinHandle<()>) {
    let served = Arc::new(Mutex::new(Served::default()));
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let task = tokio::spawn({
        let served = served.clone();
        async move {
            let mut objects = watcher(api, config)
                .default_backoff()
                .applied_objects()
                .boxed();
            let mut last: Option<String> = None;
            loop {
                tokio::select! {
                    next = objects.next() => {
                        let repo = match next {
                            Some(Ok(repo)) => repo,
                            Some(Err(_)) => continue,
                            None => return,
                        };
                        let Some(artifact) = repo.status.and_then(|s| s.artifact) else { continue };
                        let digest = artifact.digest.unwrap_or_default();
                        if last.as_deref() == Some(digest.as_str()) {
                            continue;
                        }
                        last = Some(digest.clone());
                        verify(&served, artifact.url, digest).await;
                    }
                    changed = restarts.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        let pending = std::mem::take(&mut served.lock().expect("lock").pending);
                        for (url, digest) in pending {
                            verify(&served, url, digest).await;
                        }
                    }
                }
            }
        }
    });
    (served, task)
}

/// Files of one GitRepository's artifact directory, as found after a kill.
#[derive(Debug, Default)]
struct OnDisk {
    temps: Vec<PathBuf>,
    /// Files under a final name whose content does not match it: (name, why).
    torn: Vec<(String, String)>,
}

/// Checks every file in `dir`: artifact names carry the first 12 hex digits of their content's
/// sha256 (see storage.rs), so a torn file under a final name shows. `seen` caches files already
/// checked, by (name, inode, size, mtime).
fn scan(dir: &Path, seen: &mut BTreeSet<(String, u64, u64, i64)>) -> OnDisk {
    let mut found = OnDisk::default();
    let Ok(listing) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in listing.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(TEMP_PREFIX) {
            found.temps.push(entry.path());
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let id = (name.clone(), meta.ino(), meta.len(), meta.mtime_nsec());
        if seen.contains(&id) {
            continue;
        }
        let bytes = std::fs::read(entry.path()).expect("read artifact");
        let prefix = name
            .strip_suffix(".tar.gz")
            .and_then(|stem| stem.rsplit('-').next())
            .unwrap_or_default()
            .to_string();
        let hex = sha256_hex(&bytes);
        if !hex.starts_with(&prefix) || prefix.len() != 12 {
            found
                .torn
                .push((name, format!("content hashes to {hex}, name says {prefix}")));
        } else if let Err(why) = complete_tar_gz(&bytes) {
            found.torn.push((name, why));
        } else {
            seen.insert(id);
        }
    }
    found
}

/// Where a kill landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Before the archive: start-up, ref listing, fetch.
    Fetch,
    /// A new temp file was being written.
    Archive,
    /// The artifact was already announced.
    Done,
}

/// When the source-controller's log (with `mooring_source_controller::git=debug`) first says
/// a fetch finished, after `after`.
fn fetched_at(log: &Path, after: jiff::Timestamp) -> Option<jiff::Timestamp> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .filter(|l| l.contains(" fetched ") && l.contains("elapsed_ms="))
        .filter_map(|l| l.split_whitespace().next()?.parse::<jiff::Timestamp>().ok())
        .find(|t| *t >= after)
}

async fn poke(api: &Api<GitRepository>, name: &str, token: &str) {
    let patch = serde_json::json!({"metadata": {"annotations": {"reconcile.mooring.dev/requestedAt": token}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("annotate");
}

async fn announced(api: &Api<GitRepository>, name: &str, commit: &str) -> bool {
    let repo = api.get(name).await.expect("get");
    repo.status
        .and_then(|s| s.artifact)
        .is_some_and(|a| a.revision.ends_with(commit))
}

/// Waits until the GitRepository is Ready with an artifact of `commit`.
async fn ready_at(api: &Api<GitRepository>, name: &str, commit: &str, within: Duration) -> bool {
    let ready = await_condition(api.clone(), name, |g: Option<&GitRepository>| {
        g.is_some_and(|g| is_ready_at(g, commit))
    });
    matches!(tokio::time::timeout(within, ready).await, Ok(Ok(_)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_while_fetching_and_archiving_never_serves_a_torn_artifact() {
    let started = Instant::now();
    let kill_points = faults::scaled(30, 100);
    let mut dice = Dice::new(SCENARIO);
    let env = mooring_testkit::test_env("faults-src").await.expect("env");
    let name = "big";
    let repo = GitServer::shared()
        .expect("git server")
        .create_repo(
            &format!("faults-src-{}-{}", std::process::id(), dice.below(1 << 30)),
            Auth::None,
        )
        .expect("repo");
    let mut r = 0;
    let mut commit = tokio::task::block_in_place(|| commit_revision(&repo, r));
    let kubeconfig = env.plane.kubeconfig().to_path_buf();
    // The fetch step logs when it is done: that splits a revision into fetch and archive.
    let options = Options {
        log_level: "info,mooring_source_controller::git=debug".to_string(),
        ..Options::local(&kubeconfig)
    };
    let mut controllers =
        tokio::task::block_in_place(|| Controllers::start(&options).expect("controllers"));
    let api: Api<GitRepository> = Api::namespaced(env.client.clone(), &env.namespace);
    let (restarted, restarts) = tokio::sync::watch::channel(0usize);
    let (served, watching) = watch_artifacts(api.clone(), name, restarts);
    let clone_started = Instant::now();
    apply_repo(
        &env,
        repo_manifest(name, repo.http_url(), serde_json::json!({})),
    )
    .await;
    assert!(
        ready_at(&api, name, &commit, CONVERGE).await,
        "the first revision is served\n{}",
        controllers.log_tails()
    );
    eprintln!("first clone and archive: {:?}", clone_started.elapsed());

    // One uninterrupted fetch and archive, to draw kill delays from.
    r += 1;
    commit = tokio::task::block_in_place(|| commit_revision(&repo, r));
    let poked = Instant::now();
    let poked_at = jiff::Timestamp::now();
    poke(&api, name, &format!("r{r}")).await;
    assert!(ready_at(&api, name, &commit, CONVERGE).await, "revision 1");
    let one_revision = poked.elapsed();
    let log = controllers.log_file(mooring_testkit::controllers::SOURCE_CONTROLLER);
    let fetch_window: Duration = fetched_at(&log, poked_at)
        .and_then(|t| t.duration_since(poked_at).try_into().ok())
        .unwrap_or_else(|| panic!("no `fetched` line after the poke in {}", log.display()));
    eprintln!(
        "one fetch and archive, uninterrupted: {one_revision:?}, of which until fetched: \
         {fetch_window:?}"
    );

    let dir = controllers
        .storage_dir()
        .join("gitrepository")
        .join(&env.namespace)
        .join(name);
    let mut seen = BTreeSet::new();
    let mut torn_on_disk: Vec<String> = Vec::new();
    let mut served_temps: Vec<String> = Vec::new();
    let mut phases: BTreeMap<Phase, usize> = BTreeMap::new();
    let mut peak_rss: Option<f64> = None;
    let mut from = Instant::now();
    // Past `kill_points`, points are added only while none has landed in the archive: on a
    // loaded machine a restarted controller can take longer than the window measured above,
    // and the test is only worth its name once a kill has hit an archive being written. Each
    // added point aims over a longer stretch of the revision.
    let mut point: usize = 0;
    while point < kill_points
        || (!phases.contains_key(&Phase::Archive) && point < kill_points + MAX_ADDED_POINTS)
    {
        point += 1;
        let added = point.saturating_sub(kill_points);
        let temps_before: BTreeSet<PathBuf> = scan(&dir, &mut seen).temps.into_iter().collect();
        if added > 0 || dice.chance(0.8) {
            r += 1;
            commit = tokio::task::block_in_place(|| commit_revision(&repo, r));
            from = Instant::now();
            poke(&api, name, &format!("r{r}")).await;
        }
        // Half of the kill points fall in the fetch, half in the archive (and a little after).
        let delay = if added > 0 {
            let stretch = 1.5f64
                .powi(i32::try_from(added).unwrap_or(i32::MAX))
                .min(8.0);
            one_revision.mul_f64(1.1 * stretch * dice.fraction())
        } else if dice.chance(0.5) {
            fetch_window.mul_f64(dice.fraction())
        } else {
            fetch_window + (one_revision.mul_f64(1.1) - fetch_window).mul_f64(dice.fraction())
        };
        // The kill point itself, not a wait for a condition.
        tokio::time::sleep_until((from + delay).into()).await;
        if let Some(mib) = controllers.source_pid().and_then(faults::peak_rss_mib) {
            peak_rss = Some(peak_rss.map_or(mib, |p: f64| p.max(mib)));
        }
        tokio::task::block_in_place(|| controllers.kill_source());
        let disk = tokio::task::block_in_place(|| scan(&dir, &mut seen));
        let landed = if disk.temps.iter().any(|t| !temps_before.contains(t)) {
            Phase::Archive
        } else if announced(&api, name, &commit).await {
            Phase::Done
        } else {
            Phase::Fetch
        };
        *phases.entry(landed).or_default() += 1;
        eprintln!(
            "kill point {point}/{kill_points}: revision {r}, {delay:?} after the poke, {landed:?}, {} temp file(s)",
            disk.temps.len()
        );
        torn_on_disk.extend(disk.torn.into_iter().map(|(n, why)| format!("{n}: {why}")));
        tokio::task::block_in_place(|| controllers.restart_source())
            .expect("restart the source-controller");
        from = Instant::now();
        restarted.send_modify(|n| *n += 1);
        // A temp file left by the kill is never served.
        for temp in &disk.temps {
            let relative = temp
                .strip_prefix(controllers.storage_dir())
                .expect("under storage")
                .display()
                .to_string();
            let url = format!("{}/{relative}", controllers.artifact_base_url());
            let (code, _) = download(&url).await;
            if code != 404 && code != 0 {
                served_temps.push(format!("{relative}: HTTP {code}"));
            }
        }
    }

    // The last revision is served, whole, and it is the last revision's content.
    let converged = ready_at(&api, name, &commit, CONVERGE).await;
    let last = api.get(name).await.expect("get");
    let artifact = last.status.and_then(|s| s.artifact);
    let mut final_problems: Vec<String> = Vec::new();
    if !converged {
        final_problems.push(format!("not Ready at revision {r} within {CONVERGE:?}"));
    }
    match &artifact {
        Some(a) => {
            let (code, body) = download(&a.url).await;
            if code != 200 {
                final_problems.push(format!("final artifact: HTTP {code}"));
            } else if let Some(why) = torn(&body, a.digest.as_deref().unwrap_or_default()) {
                final_problems.push(format!("final artifact torn: {why}"));
            } else {
                let mut archive = tar::Archive::new(GzDecoder::new(body.as_slice()));
                let rev = archive
                    .entries()
                    .expect("entries")
                    .filter_map(Result::ok)
                    .find(|e| e.path_bytes().as_ref() == b"rev.txt")
                    .map(|mut e| {
                        let mut s = String::new();
                        e.read_to_string(&mut s).expect("rev.txt");
                        s
                    });
                if rev.as_deref() != Some(format!("{r}\n").as_str()) {
                    final_problems.push(format!("final artifact has rev.txt {rev:?}, not {r}"));
                }
            }
        }
        None => final_problems.push("no artifact at the end".to_string()),
    }
    let disk = scan(&dir, &mut seen);
    torn_on_disk.extend(disk.torn.into_iter().map(|(n, why)| format!("{n}: {why}")));
    // The final artifact was checked above; what the watch could not reach while the server
    // was down is checked now that it is up.
    watching.abort();
    let _ = watching.await;
    let pending = std::mem::take(&mut served.lock().expect("lock").pending);
    for (url, digest) in pending {
        verify(&served, url, digest).await;
    }
    let served = std::mem::take(&mut *served.lock().expect("lock"));
    drop(restarted);
    let elapsed = started.elapsed();
    eprintln!(
        "{point} kill points over {r} revisions in {elapsed:?} (seed {}): {phases:?}; \
         artifacts verified {}, gone before download {}, downloads broken off by a kill {}, \
         pending {}; temp files left {}",
        dice.seed(),
        served.verified,
        served.gone,
        served.interrupted,
        served.pending.len(),
        disk.temps.len()
    );
    if !served.pending.is_empty() {
        final_problems.push(format!("never downloadable: {:?}", served.pending));
    }
    let ok = final_problems.is_empty()
        && served.torn.is_empty()
        && torn_on_disk.is_empty()
        && served_temps.is_empty();
    faults::record(&Row {
        runs: point as u64,
        passed: if ok { point as u64 } else { 0 },
        peak_rss_mib: peak_rss,
        ..Row::new(SCENARIO)
    });
    assert!(
        ok,
        "seed {}: final {final_problems:?}; served torn {:?}; torn on disk {torn_on_disk:?}; \
         temp files served {served_temps:?}\n{}",
        dice.seed(),
        served.torn,
        controllers.log_tails()
    );
    assert!(
        served.verified >= 2,
        "the watch verified {} artifacts",
        served.verified
    );
    assert!(
        disk.temps.is_empty(),
        "temp files of killed writes are left in storage: {:?}",
        disk.temps
    );
    assert!(
        phases.get(&Phase::Fetch).is_some_and(|n| *n > 0)
            && phases.get(&Phase::Archive).is_some_and(|n| *n > 0),
        "the kill points must land in the fetch and the archive: {phases:?} (seed {})",
        dice.seed()
    );
    tokio::task::block_in_place(move || drop(controllers));
}
