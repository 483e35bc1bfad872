//! P1 (cold start at scale) and P2 (memory and CPU during it).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use kube::api::PostParams;
use kube::runtime::watcher::Config;
use mooring_testkit::git::Auth;
use serde::Serialize;

use crate::env::Bench;
use crate::error::Error;
use crate::objects::{self, applied, has_artifact};
use crate::procs::{Meter, Usage};
use crate::stats::{Summary, summarize};
use crate::watch::DynWatch;

/// The namespace of P1's objects.
pub const NAMESPACE: &str = "bench-scale";
/// Requests in flight at once while creating the custom resources.
const CREATE_CONCURRENCY: usize = 16;

/// What P1 and P2 measured.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleResult {
    /// GitRepositories and Kustomizations.
    pub n: usize,
    /// Seconds to create the N repositories on the git server (not timed as part of P1).
    pub repo_setup_seconds: f64,
    /// Seconds to create the 2N custom resources (part of the P1 time).
    pub create_seconds: Option<f64>,
    /// Seconds from the first create to the last artifact.
    pub all_artifacts_seconds: Option<f64>,
    /// Seconds from the first create to the last Kustomization Ready: the P1 figure.
    pub all_ready_seconds: Option<f64>,
    /// When each Kustomization became Ready, from the first create.
    pub ready_at: Option<Summary>,
    /// Each Kustomization's time from its GitRepository's artifact (as the harness's watch saw
    /// it) to Ready: the kustomize-controller's share, apart from when the source got to it.
    pub artifact_to_ready: Option<Summary>,
    /// Kustomizations Ready when P1 ended (N unless it timed out).
    pub ready: usize,
    /// API requests during P1 (first create to last Ready); `per_interval` is per Kustomization.
    pub requests: Vec<crate::steady::RequestRow>,
    /// P2: usage of each process (controllers, kube-apiserver, etcd) during P1.
    pub usage: BTreeMap<String, Usage>,
}

/// Runs P1: N repositories of 4 objects each, timed from creating the CRs to all Ready (with
/// `--workloads`, Ready includes each app's Deployment rollout).
pub async fn run(bench: &Bench) -> Result<ScaleResult, Error> {
    let args = &bench.args;
    let n = args.n;
    bench.namespace(NAMESPACE).await?;

    eprintln!("[p1] creating {n} repositories ...");
    let started = Instant::now();
    let shas = if args.one_url {
        create_monorepo(bench, n, args.workloads).await?
    } else {
        create_repos(bench, n, args.workloads).await?
    };
    let repo_setup_seconds = started.elapsed().as_secs_f64();
    eprintln!("[p1] repositories ready in {repo_setup_seconds:.1}s");

    let repos = bench.gitrepos(NAMESPACE);
    let kss = bench.kustomizations(NAMESPACE);
    let (mut repo_watch, _) =
        DynWatch::open("GitRepositories", repos.clone(), Config::default()).await?;
    let (mut ks_watch, _) =
        DynWatch::open("Kustomizations", kss.clone(), Config::default()).await?;
    let requests_before = crate::steady::request_counts(bench).await?;
    let meter = Meter::start(bench.metered());

    eprintln!("[p1] creating {n} GitRepositories and {n} Kustomizations ...");
    let t0 = Instant::now();
    let created = futures::stream::iter(0..n)
        .map(|i| {
            let (repos, kss) = (repos.clone(), kss.clone());
            async move {
                let name = app_name(i);
                let (url, path) = if args.one_url {
                    (bench.git_url(MONOREPO), format!("./{name}/deploy"))
                } else {
                    (bench.git_url(&name), "./deploy".to_string())
                };
                let repo = objects::git_repository(
                    &bench.gitrepo,
                    &name,
                    &url,
                    &args.source_interval,
                    "60s",
                )
                .map_err(Error::Encode)?;
                repos
                    .create(&PostParams::default(), &repo)
                    .await
                    .map_err(Error::kube(format!("creating GitRepository {name}")))?;
                let ks = objects::kustomization(
                    &bench.kustomization,
                    &name,
                    &name,
                    &path,
                    NAMESPACE,
                    &args.interval,
                )
                .map_err(Error::Encode)?;
                kss.create(&PostParams::default(), &ks)
                    .await
                    .map_err(Error::kube(format!("creating Kustomization {name}")))?;
                Ok::<_, Error>(())
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY);
    let mut creating = Box::pin(created.try_for_each(|()| futures::future::ok(())));
    let mut create_seconds = None;

    let deadline = Duration::from_secs(args.p1_timeout_secs());
    let mut artifact_at: HashMap<String, f64> = HashMap::new();
    let mut ready_at: HashMap<String, f64> = HashMap::new();
    let sha_of = |name: &str| {
        name.strip_prefix("app-")
            .and_then(|i| i.parse::<usize>().ok())
            .and_then(|i| shas.get(i))
    };
    let mut last_report = Instant::now();
    // Creating and watching run together, so a Kustomization Ready before the last create is
    // timed when it happened.
    let waited = tokio::time::timeout(deadline, async {
        while ready_at.len() < n || create_seconds.is_none() {
            tokio::select! {
                done = &mut creating, if create_seconds.is_none() => {
                    done?;
                    let secs = t0.elapsed().as_secs_f64();
                    eprintln!("[p1] created in {secs:.1}s; waiting for Ready ...");
                    create_seconds = Some(secs);
                }
                obj = repo_watch.next() => {
                    let obj = obj?;
                    let name = obj.metadata.name.clone().unwrap_or_default();
                    if sha_of(&name).is_some_and(|sha| has_artifact(&obj, sha)) {
                        artifact_at.entry(name).or_insert(t0.elapsed().as_secs_f64());
                    }
                }
                obj = ks_watch.next() => {
                    let obj = obj?;
                    let name = obj.metadata.name.clone().unwrap_or_default();
                    if sha_of(&name).is_some_and(|sha| applied(&obj, sha)) {
                        ready_at.entry(name).or_insert(t0.elapsed().as_secs_f64());
                    }
                }
            }
            if last_report.elapsed() > Duration::from_secs(10) {
                last_report = Instant::now();
                bench.check_controllers()?;
                eprintln!(
                    "[p1] {:.0}s: {} artifacts, {} Ready of {n}",
                    t0.elapsed().as_secs_f64(),
                    artifact_at.len(),
                    ready_at.len()
                );
            }
        }
        Ok::<_, Error>(())
    })
    .await;
    let usage = meter.finish().await;
    let requests_after = crate::steady::request_counts(bench).await?;
    let requests = crate::steady::request_rows(&requests_before, &requests_after, n as f64);
    let complete = match waited {
        Ok(result) => {
            result?;
            true
        }
        Err(_) => {
            eprintln!(
                "[p1] timed out after {deadline:?}: {} of {n} Ready",
                ready_at.len()
            );
            false
        }
    };
    let max = |m: &HashMap<String, f64>| m.values().copied().fold(0.0, f64::max);
    let times: Vec<f64> = ready_at.values().copied().collect();
    let mut lagging: Vec<(f64, &String, f64)> = ready_at
        .iter()
        .filter_map(|(name, ready)| {
            let artifact = *artifact_at.get(name)?;
            Some((ready - artifact, name, artifact))
        })
        .collect();
    lagging.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (lag, name, artifact) in lagging.iter().take(5) {
        eprintln!(
            "[p1] slow after its artifact: {name}, artifact at {artifact:.1}s, Ready {lag:.1}s later"
        );
    }
    let lags: Vec<f64> = lagging.iter().map(|(lag, _, _)| *lag).collect();
    if let Some(path) = &args.timeline {
        write_timeline(path, &artifact_at, &ready_at)?;
    }
    let result = ScaleResult {
        n,
        repo_setup_seconds,
        create_seconds,
        all_artifacts_seconds: (artifact_at.len() == n).then(|| max(&artifact_at)),
        all_ready_seconds: complete.then(|| max(&ready_at)),
        ready_at: summarize(&times),
        artifact_to_ready: summarize(&lags),
        ready: ready_at.len(),
        requests,
        usage,
    };
    eprintln!(
        "[p1] all Ready: {:?}s (artifacts: {:?}s)",
        result.all_ready_seconds, result.all_artifacts_seconds
    );
    Ok(result)
}

/// Writes `app,artifact,ready` rows (seconds from the first create; empty when not seen),
/// ordered by the time of the artifact.
fn write_timeline(
    path: &std::path::Path,
    artifact_at: &HashMap<String, f64>,
    ready_at: &HashMap<String, f64>,
) -> Result<(), Error> {
    let mut names: Vec<&String> = artifact_at.keys().chain(ready_at.keys()).collect();
    names.sort();
    names.dedup();
    names.sort_by(|a, b| {
        let at = |n: &String| artifact_at.get(n).copied().unwrap_or(f64::INFINITY);
        at(a).total_cmp(&at(b))
    });
    let cell = |t: Option<&f64>| t.map(|t| format!("{t:.3}")).unwrap_or_default();
    let mut csv = String::from("app,artifact,ready\n");
    for name in names {
        let (artifact, ready) = (cell(artifact_at.get(name)), cell(ready_at.get(name)));
        csv.push_str(&format!("{name},{artifact},{ready}\n"));
    }
    std::fs::write(path, csv).map_err(|source| Error::Io {
        what: format!("writing {}", path.display()),
        source,
    })
}

/// The name of app `i`: repository, GitRepository and Kustomization alike.
pub fn app_name(i: usize) -> String {
    format!("app-{i}")
}

/// The repository of every app with `--one-url`.
const MONOREPO: &str = "monorepo";

/// The files of app `name` (4 objects; with `workloads`, one of them a Deployment) under
/// `deploy/`.
fn files_of(name: &str, workloads: bool) -> Vec<(String, String)> {
    if workloads {
        objects::workload_app_files(name)
    } else {
        objects::app_files(name, 4, &[])
    }
}

/// Creates one repository holding all N apps, app `i` under `app-<i>/deploy`, in one commit;
/// returns its SHA once per app.
async fn create_monorepo(bench: &Bench, n: usize, workloads: bool) -> Result<Vec<String>, Error> {
    let git = bench.git.clone();
    tokio::task::spawn_blocking(move || {
        let files: Vec<(String, String)> = (0..n)
            .flat_map(|i| {
                let name = app_name(i);
                files_of(&name, workloads)
                    .into_iter()
                    .map(move |(path, text)| (format!("{name}/{path}"), text))
            })
            .collect();
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str()))
            .collect();
        let repo = git
            .empty_repo(MONOREPO, Auth::None)
            .map_err(Error::git("creating the monorepo"))?;
        let sha = repo
            .commit(&refs, "every app")
            .map_err(Error::git("committing to the monorepo"))?;
        Ok(vec![sha; n])
    })
    .await
    .map_err(|e| Error::Setting(format!("repository thread: {e}")))?
}

/// Creates the N repositories, each with a 4-object app (with `workloads`, one holding a
/// Deployment), on two threads; returns their SHAs.
async fn create_repos(bench: &Bench, n: usize, workloads: bool) -> Result<Vec<String>, Error> {
    let git = bench.git.clone();
    tokio::task::spawn_blocking(move || {
        let threads = 2;
        let results: Vec<Result<Vec<(usize, String)>, Error>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let git = &git;
                    s.spawn(move || {
                        (t..n)
                            .step_by(threads)
                            .map(|i| {
                                let name = app_name(i);
                                let repo = git
                                    .empty_repo(&name, Auth::None)
                                    .map_err(Error::git(format!("creating repository {name}")))?;
                                let files = files_of(&name, workloads);
                                let refs: Vec<(&str, &str)> = files
                                    .iter()
                                    .map(|(p, c)| (p.as_str(), c.as_str()))
                                    .collect();
                                let sha = repo
                                    .commit(&refs, "app")
                                    .map_err(Error::git(format!("committing to {name}")))?;
                                Ok((i, sha))
                            })
                            .collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::Setting("a repo thread panicked".into())))
                })
                .collect()
        });
        let mut shas = vec![String::new(); n];
        for part in results {
            for (i, sha) in part? {
                shas[i] = sha;
            }
        }
        Ok(shas)
    })
    .await
    .map_err(|e| Error::Setting(format!("repository thread: {e}")))?
}
