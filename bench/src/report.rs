//! The results file and the Markdown table, with the machine and versions they were taken on.

use std::collections::BTreeMap;
use std::process::Command;

use serde::Serialize;

use crate::large::LargeResult;
use crate::latency::{CommitResult, DriftResult};
use crate::procs::Usage;
use crate::scale::ScaleResult;
use crate::stats::Summary;
use crate::steady::SteadyResult;

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    /// When the run started (UTC).
    pub started_at: String,
    /// The command line.
    pub command: String,
    /// The machine.
    pub machine: Machine,
    /// Versions of what was measured.
    pub versions: BTreeMap<String, String>,
    /// The settings that shape the figures.
    pub settings: BTreeMap<String, String>,
    /// P1 and P2.
    pub scale: Option<ScaleResult>,
    /// P3.
    pub steady: Option<SteadyResult>,
    /// P4.
    pub commits: Option<CommitResult>,
    /// P5.
    pub drift: Option<DriftResult>,
    /// P6.
    pub large: Option<LargeResult>,
    /// Scenarios that failed, with why.
    pub errors: Vec<String>,
}

/// The machine a run happened on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Cores available to this process (nproc).
    pub cores: usize,
    /// MemTotal from /proc/meminfo, MiB.
    pub memory_mib: u64,
    /// The CPU model.
    pub cpu: String,
    /// `uname -r`.
    pub kernel: String,
    /// /proc/loadavg when the run started: other work on the machine skews every figure.
    pub load_at_start: String,
    /// /proc/loadavg when the run ended.
    pub load_at_end: String,
}

impl Machine {
    /// Reads the machine's description from /proc.
    pub fn read() -> Machine {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_default();
        Machine {
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            memory_mib: memory_kib / 1024,
            cpu,
            kernel: output(Command::new("uname").arg("-r")),
            load_at_start: load_average(),
            load_at_end: String::new(),
        }
    }
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first line of a command's stdout ("" when it fails).
pub fn output(cmd: &mut Command) -> String {
    cmd.output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn secs(v: Option<f64>) -> String {
    v.map(|s| format!("{s:.2} s")).unwrap_or_else(|| "—".into())
}

fn dist(s: Option<&Summary>) -> String {
    s.map(|s| format!("p50 {:.3} s, p95 {:.3} s (n={})", s.p50, s.p95, s.count))
        .unwrap_or_else(|| "—".into())
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "missed",
        None => "—",
    }
}

fn usage_of<'a>(u: &'a BTreeMap<String, Usage>, name: &str) -> Option<&'a Usage> {
    u.get(name)
}

/// The Markdown table of a run: figure, value, target, verdict.
pub fn markdown(r: &Results) -> String {
    let mut rows: Vec<[String; 4]> = Vec::new();
    let mut row = |a: String, b: String, c: &str, d: &str| {
        rows.push([a, b, c.to_string(), d.to_string()]);
    };
    if let Some(s) = &r.scale {
        let target = if s.n == 1000 {
            "≤ 30 s at N=1000"
        } else {
            "(target is for N=1000)"
        };
        let met = (s.n == 1000).then(|| s.all_ready_seconds.is_some_and(|t| t <= 30.0));
        let shape = if r.settings.get("workloads").is_some_and(|w| w == "true") {
            " (apps with a Deployment rollout, on kwok's nodes)"
        } else {
            ""
        };
        row(
            format!("P1 cold start, N={}{shape}: CRs created → all Ready", s.n),
            format!("{} ({}/{} Ready)", secs(s.all_ready_seconds), s.ready, s.n),
            target,
            verdict(met),
        );
        row(
            "P1 … of which: creating the 2N CRs / last artifact".into(),
            format!(
                "{} / {}",
                secs(s.create_seconds),
                secs(s.all_artifacts_seconds)
            ),
            "",
            "",
        );
        row(
            "P1 per-Kustomization time to Ready".into(),
            dist(s.ready_at.as_ref()),
            "",
            "",
        );
        row(
            "P1 per-Kustomization time from its artifact to Ready".into(),
            dist(s.artifact_to_ready.as_ref()),
            "",
            "",
        );
        let src = usage_of(&s.usage, "source-controller");
        let ks = usage_of(&s.usage, "kustomize-controller");
        let total = src.zip(ks).map(|(a, b)| a.peak_rss_mib + b.peak_rss_mib);
        for (name, u) in [("source-controller", src), ("kustomize-controller", ks)] {
            if let Some(u) = u {
                row(
                    format!("P2 {name}: peak RSS (anonymous; at start) / CPU during P1"),
                    format!(
                        "{:.1} MiB ({:.1}; {:.1}) / {:.1} s (+{:.1} s in children)",
                        u.peak_rss_mib,
                        u.peak_anon_mib,
                        u.start_rss_mib,
                        u.cpu_seconds,
                        u.children_cpu_seconds
                    ),
                    "",
                    "",
                );
            }
        }
        row(
            "P2 peak RSS, both controllers".into(),
            total
                .map(|t| format!("{t:.1} MiB"))
                .unwrap_or_else(|| "—".into()),
            "≤ 64 MiB",
            verdict(total.map(|t| t <= 64.0)),
        );
        for name in ["kube-apiserver", "etcd", "harness (git server)"] {
            if let Some(u) = usage_of(&s.usage, name) {
                row(
                    format!("P2 {name}: CPU during P1"),
                    format!(
                        "{:.1} s (+{:.1} s in children)",
                        u.cpu_seconds, u.children_cpu_seconds
                    ),
                    "",
                    "",
                );
            }
        }
    }
    if let Some(s) = &r.steady {
        row(
            format!(
                "P3 steady state, {:.0} s window ({:.1} intervals): writes",
                s.window_seconds,
                s.window_seconds / s.interval_seconds
            ),
            format!("{}", s.writes),
            "0",
            verdict(Some(s.writes == 0.0)),
        );
        row(
            "P3 dry-run requests".into(),
            format!("{}", s.dry_runs),
            "",
            "",
        );
        row(
            "P3 per-object GETs".into(),
            format!("{}", s.per_object_gets),
            "0",
            verdict(Some(s.per_object_gets == 0.0)),
        );
        row(
            "P3 LISTs / WATCHes ended".into(),
            format!("{} / {}", s.lists, s.watches_ended),
            "",
            "",
        );
        let open: f64 = s.open_watches.values().sum();
        row(
            "P3 watches open at the end".into(),
            format!("{open}"),
            "",
            "",
        );
        row(
            "P3 git requests (of which fetches)".into(),
            format!("{} ({})", s.git_requests, s.git_fetches),
            "",
            "",
        );
        row(
            format!(
                "P3 ref listings per source interval ({:.0} s), fetches' own excepted",
                s.source_interval_seconds
            ),
            format!("{:.2}", s.listings_per_source_interval),
            "",
            "",
        );
        for name in ["source-controller", "kustomize-controller"] {
            if let Some(u) = usage_of(&s.usage, name) {
                row(
                    format!("P3 {name}: CPU in the window"),
                    format!(
                        "{:.2} s (+{:.2} s in children)",
                        u.cpu_seconds, u.children_cpu_seconds
                    ),
                    "",
                    "",
                );
            }
        }
    }
    if let Some(c) = &r.commits {
        let p50 = c.applied_after_detection.as_ref().map(|s| s.p50);
        row(
            format!(
                "P4 commit → applied, {} objects: after detection",
                c.objects
            ),
            dist(c.applied_after_detection.as_ref()),
            "p50 ≤ 1 s",
            verdict(p50.map(|p| p <= 1.0)),
        );
        row(
            format!("P4 detection (push + {} → artifact)", c.announced_by),
            dist(c.detection.as_ref()),
            "",
            "",
        );
        let p50 = c.push_to_applied.as_ref().map(|s| s.p50);
        row(
            format!("P4 push → applied, announced by {}", c.announced_by),
            dist(c.push_to_applied.as_ref()),
            "p50 ≤ 1 s",
            verdict(p50.map(|p| p <= 1.0)),
        );
        row(
            "P4 first apply (GitRepository created → Ready)".into(),
            format!("{:.2} s", c.first_apply_seconds),
            "",
            "",
        );
    }
    if let Some(d) = &r.drift {
        let max = d.restore.as_ref().map(|s| s.max);
        row(
            "P5 drift: changed by another manager → restored".into(),
            format!(
                "{}, max {}{}",
                dist(d.restore.as_ref()),
                secs(max),
                if d.timed_out > 0 {
                    format!(", {} timed out", d.timed_out)
                } else {
                    String::new()
                }
            ),
            "≤ 2 s",
            verdict(max.map(|m| m <= 2.0 && d.timed_out == 0)),
        );
    }
    if let Some(l) = &r.large {
        let baseline = l.clone_seconds + l.tar_seconds;
        row(
            format!(
                "P6 large repo ({} files, {} MiB): GitRepository → artifact",
                l.files,
                l.bytes >> 20
            ),
            secs(l.artifact_seconds),
            "≤ 1.5 × baseline",
            verdict(l.artifact_seconds.map(|t| t <= 1.5 * baseline)),
        );
        row(
            "P6 baseline: git clone --depth 1 + tar czf".into(),
            format!(
                "{:.2} s ({:.2} + {:.2})",
                baseline, l.clone_seconds, l.tar_seconds
            ),
            "",
            "",
        );
        row(
            "P6 source-controller peak RSS (anonymous only)".into(),
            format!(
                "{:.1} MiB ({:.1} MiB)",
                l.source_peak_rss_mib, l.source_peak_anon_mib
            ),
            "≤ 128 MiB",
            verdict(Some(l.source_peak_rss_mib <= 128.0)),
        );
    }
    let mut out = String::new();
    out.push_str(&format!(
        "Machine: {} cores, {} MiB, {}; load average {} at the start, {} at the end; {}\n\n",
        r.machine.cores,
        r.machine.memory_mib,
        r.machine.cpu,
        r.machine.load_at_start,
        r.machine.load_at_end,
        r.versions
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out.push_str("| Figure | Measured | Target | |\n|---|---|---|---|\n");
    for [a, b, c, d] in rows {
        out.push_str(&format!("| {a} | {b} | {c} | {d} |\n"));
    }
    if let Some(s) = r.scale.as_ref().filter(|s| !s.requests.is_empty()) {
        out.push_str(
            "\nP1 API requests, first create to last Ready (apiserver_request_total):\n\n",
        );
        request_table(&mut out, &s.requests, "Per Kustomization");
    }
    if let Some(s) = r.steady.as_ref().filter(|s| !s.rows.is_empty()) {
        out.push_str("\nP3 requests in the window (kube-apiserver's apiserver_request_total):\n\n");
        request_table(&mut out, &s.rows, "Per interval");
    }
    for e in &r.errors {
        out.push_str(&format!("\nFailed: {e}\n"));
    }
    out
}

fn request_table(out: &mut String, rows: &[crate::steady::RequestRow], per: &str) {
    out.push_str(&format!(
        "| Verb | Resource | Scope | Dry run | Count | {per} |\n|---|---|---|---|---|---|\n"
    ));
    {
        for row in rows {
            let resource = match (row.group.is_empty(), row.subresource.is_empty()) {
                (true, true) => row.resource.clone(),
                (true, false) => format!("{}/{}", row.resource, row.subresource),
                (false, true) => format!("{}.{}", row.resource, row.group),
                (false, false) => format!("{}.{}/{}", row.resource, row.group, row.subresource),
            };
            out.push_str(&format!(
                "| {} | {resource} | {} | {} | {} | {:.2} |\n",
                row.verb, row.scope, row.dry_run, row.count, row.per_interval
            ));
        }
    }
}
