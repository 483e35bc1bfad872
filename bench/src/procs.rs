//! The controllers as processes, and what they cost: resident memory from /proc/<pid>/status
//! (VmHWM, VmRSS) and CPU time from /proc/<pid>/stat.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mooring_testkit::process::{Supervised, log_tail};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use crate::error::Error;

/// How often RSS is sampled while a scenario runs (VmHWM catches peaks between samples).
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// A controller process started from a command template.
pub struct ControllerProcess {
    /// Its name, e.g. `source-controller`.
    pub name: String,
    /// Its pid (the command is exec'd by `sh`, so this is the controller itself).
    pub pid: u32,
    log: PathBuf,
    _process: Supervised,
}

impl ControllerProcess {
    /// Runs `command` (placeholders already filled) with KUBECONFIG set, logging to
    /// `<work>/<name>.log`, and waits for its pid.
    pub fn spawn(name: &str, command: &str, kubeconfig: &Path, work: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(work).map_err(Error::io(format!("creating {}", work.display())))?;
        let log = work.join(format!("{name}.log"));
        let args = vec!["-c".to_string(), format!("exec {command}")];
        let envs = vec![("KUBECONFIG".to_string(), kubeconfig.display().to_string())];
        let process = Supervised::spawn(name, Path::new("/bin/sh"), &args, &envs, &log, work)
            .map_err(Error::io(format!("starting {name}")))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid = loop {
            if let Some(pid) = process.pid() {
                break pid;
            }
            if Instant::now() > deadline {
                return Err(Error::Controller {
                    name: name.to_string(),
                    detail: "no pid after 10s".to_string(),
                });
            }
            // The supervisor writes the pid file right after forking; nothing to watch.
            std::thread::sleep(Duration::from_millis(10));
        };
        Ok(Self {
            name: name.to_string(),
            pid,
            log,
            _process: process,
        })
    }

    /// Whether the process is still running.
    pub fn alive(&self) -> bool {
        Path::new(&format!("/proc/{}", self.pid)).exists()
    }

    /// The last lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }

    /// Polls `http://127.0.0.1:<port><path>` until it answers 200 (the controller has started
    /// its watches), or fails when the process exits or `within` passes.
    pub async fn wait_ready(&self, port: u16, path: &str, within: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + within;
        loop {
            if !self.alive() {
                return Err(Error::Controller {
                    name: self.name.clone(),
                    detail: format!("exited; its log:\n{}", self.log_tail(30)),
                });
            }
            if http_ok(port, path).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::Controller {
                    name: self.name.clone(),
                    detail: format!(
                        "not ready after {within:?}; its log:\n{}",
                        self.log_tail(30)
                    ),
                });
            }
            // A readiness endpoint offers nothing to wait on but polling.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Whether a plain HTTP GET answers with status 200.
async fn http_ok(port: u16, path: &str) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    match tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut head)).await {
        Ok(Ok(_)) => head.starts_with(b"HTTP/1.") && &head[9..12] == b"200",
        _ => false,
    }
}

/// One reading of a process's counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcReading {
    /// Resident set size now, KiB.
    pub rss_kib: u64,
    /// Peak resident set size since start (or the last reset), KiB.
    pub hwm_kib: u64,
    /// Anonymous resident memory now (heap, stacks; not mapped files), KiB.
    pub anon_kib: u64,
    /// User + system CPU time, clock ticks.
    pub cpu_ticks: u64,
    /// User + system CPU time of waited-for children (e.g. kustomize), clock ticks.
    pub child_ticks: u64,
}

/// Reads /proc/<pid>/status and /proc/<pid>/stat (None once the process is gone).
pub fn read(pid: u32) -> Option<ProcReading> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may contain spaces, start at field 3 (state).
    let fields: Vec<u64> = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let field = |n: usize| fields.get(n - 3).copied().unwrap_or(0);
    Some(ProcReading {
        rss_kib: kib("VmRSS:"),
        hwm_kib: kib("VmHWM:"),
        anon_kib: kib("RssAnon:"),
        cpu_ticks: field(14) + field(15),
        child_ticks: field(16) + field(17),
    })
}

/// Resets the peak RSS (VmHWM) of `pid` to its current RSS, so a scenario sees its own peak.
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Clock ticks per second for /proc/<pid>/stat times.
pub fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// What one process cost during a scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    /// Resident memory at the start, MiB.
    pub start_rss_mib: f64,
    /// Peak resident memory, MiB (the larger of VmHWM and the sampled VmRSS).
    pub peak_rss_mib: f64,
    /// Peak anonymous resident memory (sampled every 100 ms), MiB: the part that is not file
    /// pages mapped from disk (packs, artifacts), which the kernel can drop.
    pub peak_anon_mib: f64,
    /// Resident memory at the end, MiB.
    pub end_rss_mib: f64,
    /// CPU seconds (user + system) of the process itself.
    pub cpu_seconds: f64,
    /// CPU seconds of the children it waited for (kustomize builds, git).
    pub children_cpu_seconds: f64,
}

/// Samples a set of processes from `start` to `finish`.
pub struct Meter {
    pids: Vec<(String, u32)>,
    start: Vec<Option<ProcReading>>,
    stop: oneshot::Sender<()>,
    sampler: tokio::task::JoinHandle<Vec<(u64, u64)>>,
}

impl Meter {
    /// Resets the peaks of `pids` and starts sampling them.
    pub fn start(pids: Vec<(String, u32)>) -> Meter {
        for (_, pid) in &pids {
            reset_peak(*pid);
        }
        let start = pids.iter().map(|(_, pid)| read(*pid)).collect();
        let (stop, mut stopped) = oneshot::channel();
        let watched: Vec<u32> = pids.iter().map(|(_, pid)| *pid).collect();
        let sampler = tokio::spawn(async move {
            let mut peaks = vec![(0u64, 0u64); watched.len()];
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => {}
                }
                for (peak, pid) in peaks.iter_mut().zip(&watched) {
                    if let Some(r) = read(*pid) {
                        peak.0 = peak.0.max(r.rss_kib).max(r.hwm_kib);
                        peak.1 = peak.1.max(r.anon_kib);
                    }
                }
            }
            peaks
        });
        Meter {
            pids,
            start,
            stop,
            sampler,
        }
    }

    /// Stops sampling and returns each process's usage since `start`, by name.
    pub async fn finish(self) -> BTreeMap<String, Usage> {
        let _ = self.stop.send(());
        let peaks = self.sampler.await.unwrap_or_default();
        let ticks = clock_ticks() as f64;
        let mib = |kib: u64| kib as f64 / 1024.0;
        let mut out = BTreeMap::new();
        for (i, (name, pid)) in self.pids.iter().enumerate() {
            let end = read(*pid).unwrap_or_default();
            let start = self.start.get(i).copied().flatten().unwrap_or_default();
            let (peak, anon) = peaks.get(i).copied().unwrap_or_default();
            let peak = peak.max(end.hwm_kib);
            let anon = anon.max(end.anon_kib);
            out.insert(
                name.clone(),
                Usage {
                    start_rss_mib: mib(start.rss_kib),
                    peak_rss_mib: mib(peak),
                    peak_anon_mib: mib(anon),
                    end_rss_mib: mib(end.rss_kib),
                    cpu_seconds: end.cpu_ticks.saturating_sub(start.cpu_ticks) as f64 / ticks,
                    children_cpu_seconds: end.child_ticks.saturating_sub(start.child_ticks) as f64
                        / ticks,
                },
            );
        }
        out
    }
}
