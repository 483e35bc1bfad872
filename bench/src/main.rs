//! `make bench`: measures the controllers on a real control plane and git server, writes
//! `bench/results/<timestamp>.json` and prints a Markdown table.

mod cli;
mod env;
mod error;
mod large;
mod latency;
mod objects;
mod procs;
mod report;
mod scale;
mod stats;
mod steady;
mod watch;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use clap::Parser;

use crate::cli::Args;
use crate::env::Bench;
use crate::error::Error;
use crate::report::{Machine, Results, output};

/// The workspace this harness was built from (crds/, bench/results/).
pub fn workspace_root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    root.canonicalize().unwrap_or(root)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mooring-bench: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mooring-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Error> {
    let now = jiff::Timestamp::now();
    let stamp = now.strftime("%Y%m%dT%H%M%SZ").to_string();
    let work = tempfile::Builder::new()
        .prefix("mooring-bench-")
        .tempdir()
        .map_err(Error::io("creating the scratch directory"))?;
    eprintln!("[bench] scratch directory: {}", work.path().display());
    let mut results = Results {
        started_at: now.to_string(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine: Machine::read(),
        versions: BTreeMap::new(),
        settings: settings(&args),
        scale: None,
        steady: None,
        commits: None,
        drift: None,
        large: None,
        errors: Vec::new(),
    };
    let bench = Bench::start(args.clone(), work.path()).await?;
    results.versions = versions(&bench).await;

    if args.runs("p1") {
        match scale::run(&bench).await {
            Ok(r) => results.scale = Some(r),
            Err(e) => results.errors.push(format!("P1: {e}")),
        }
    }
    let p1_complete = results
        .scale
        .as_ref()
        .is_some_and(|s| s.all_ready_seconds.is_some());
    if args.runs("p3") {
        if p1_complete {
            match steady::run(&bench).await {
                Ok(r) => results.steady = Some(r),
                Err(e) => results.errors.push(format!("P3: {e}")),
            }
        } else {
            results
                .errors
                .push("P3: skipped, it needs a completed P1".into());
        }
    }
    bench.git.clear_log();
    if args.runs("p4") || args.runs("p5") {
        match latency::set_up(&bench).await {
            Ok(mut app) => {
                if args.runs("p4") {
                    match latency::commits(&bench, &mut app).await {
                        Ok(r) => results.commits = Some(r),
                        Err(e) => results.errors.push(format!("P4: {e}")),
                    }
                }
                if args.runs("p5") {
                    match latency::drift(&bench, &app).await {
                        Ok(r) => results.drift = Some(r),
                        Err(e) => results.errors.push(format!("P5: {e}")),
                    }
                }
            }
            Err(e) => results.errors.push(format!("P4/P5 set-up: {e}")),
        }
    }
    bench.git.clear_log();
    if args.runs("p6") {
        match large::run(&bench).await {
            Ok(r) => results.large = Some(r),
            Err(e) => results.errors.push(format!("P6: {e}")),
        }
    }

    results.machine.load_at_end = report::load_average();
    let out_dir = args
        .out_dir
        .clone()
        .unwrap_or_else(|| workspace_root().join("bench/results"));
    std::fs::create_dir_all(&out_dir)
        .map_err(Error::io(format!("creating {}", out_dir.display())))?;
    let file = out_dir.join(format!("{stamp}.json"));
    let json = serde_json::to_string_pretty(&results).map_err(Error::Encode)?;
    std::fs::write(&file, json + "\n").map_err(Error::io(format!("writing {}", file.display())))?;
    println!("{}", report::markdown(&results));
    println!("Results: {}", file.display());
    drop(bench);
    if args.keep {
        let kept = work.keep();
        eprintln!("[bench] kept {}", kept.display());
    }
    Ok(())
}

fn settings(args: &Args) -> BTreeMap<String, String> {
    [
        ("n", args.n.to_string()),
        ("workloads", args.workloads.to_string()),
        ("interval", args.interval.clone()),
        ("source_interval", args.source_interval.clone()),
        ("steady_window", args.steady_window.to_string()),
        ("commits", args.commits.to_string()),
        ("app_objects", args.app_objects.to_string()),
        ("drift_trials", args.drift_trials.to_string()),
        ("source_group", args.source_group.clone()),
        ("kustomize_group", args.kustomize_group.clone()),
        ("source_cmd", args.source_cmd.clone()),
        ("kustomize_cmd", args.kustomize_cmd.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

async fn versions(bench: &Bench) -> BTreeMap<String, String> {
    let root = workspace_root();
    let git = |args: &[&str]| output(Command::new("git").arg("-C").arg(&root).args(args));
    let mut v = BTreeMap::new();
    v.insert(
        "mooring".to_string(),
        git(&["describe", "--always", "--dirty", "--tags"]),
    );
    v.insert("commit".to_string(), git(&["rev-parse", "HEAD"]));
    // The tools are built from pinned Go modules without version stamps: the pin names them.
    let pins = std::fs::read_to_string(root.join("hack/tool-versions.env")).unwrap_or_default();
    let pinned = pins
        .lines()
        .find_map(|l| l.strip_prefix("KUBERNETES_VERSION="))
        .map(str::to_string);
    if let Ok(info) = bench.client.apiserver_version().await {
        let version = match pinned {
            Some(pin) if info.git_version.starts_with("v0.0.0") => pin,
            _ => info.git_version,
        };
        v.insert("kube-apiserver".to_string(), version);
    }
    if let Ok(kustomize) = mooring_testkit::tools::tool("kustomize") {
        v.insert(
            "kustomize".to_string(),
            output(Command::new(kustomize).arg("version")),
        );
    }
    v.insert(
        "git".to_string(),
        output(Command::new("git").arg("--version")),
    );
    v
}
