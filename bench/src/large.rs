//! P6: a large generated repository (about 100k files, 1 GiB), from GitRepository creation to
//! artifact, beside `git clone --depth 1` + `tar czf` of the same repository in the same run.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kube::api::{DeleteParams, PostParams};
use mooring_testkit::git::Auth;
use serde::Serialize;

use crate::env::Bench;
use crate::error::Error;
use crate::objects::{self, has_artifact};
use crate::procs::Meter;
use crate::watch::DynWatch;

const NAMESPACE: &str = "bench-large";
const REPO: &str = "large";
/// Files per generated directory.
const FILES_PER_DIR: usize = 100;

/// What P6 measured.
#[derive(Debug, Clone, Serialize)]
pub struct LargeResult {
    /// Files in the repository.
    pub files: usize,
    /// Bytes of file content.
    pub bytes: u64,
    /// Seconds to generate the repository with git fast-import (not timed as part of P6).
    pub generate_seconds: f64,
    /// Seconds from creating the GitRepository to its artifact.
    pub artifact_seconds: Option<f64>,
    /// Peak RSS of the source-controller meanwhile, MiB.
    pub source_peak_rss_mib: f64,
    /// Peak anonymous RSS of the source-controller meanwhile (mapped pack files left out), MiB.
    pub source_peak_anon_mib: f64,
    /// CPU seconds of the source-controller meanwhile.
    pub source_cpu_seconds: f64,
    /// status.artifact.size, bytes.
    pub artifact_bytes: Option<u64>,
    /// Seconds of `git clone --depth 1`.
    pub clone_seconds: f64,
    /// Seconds of `tar czf` of the clone (without .git).
    pub tar_seconds: f64,
    /// Peak RSS of the clone and of tar (MiB, from /usr/bin/time when present).
    pub baseline_peak_rss_mib: Option<f64>,
    /// Size of the baseline tar.gz, bytes.
    pub baseline_tar_bytes: u64,
}

/// Runs P6.
pub async fn run(bench: &Bench) -> Result<LargeResult, Error> {
    let args = &bench.args;
    let (files, bytes) = (args.large_files, args.large_bytes);
    bench.namespace(NAMESPACE).await?;
    eprintln!("[p6] generating {files} files, {bytes} bytes with git fast-import ...");
    let started = Instant::now();
    let git = bench.git.clone();
    let sha = tokio::task::spawn_blocking(move || {
        let repo = git
            .empty_repo(REPO, Auth::None)
            .map_err(Error::git("creating the large repository"))?;
        generate(repo.path(), files, bytes)
    })
    .await
    .map_err(|e| Error::Setting(format!("generator thread: {e}")))??;
    let generate_seconds = started.elapsed().as_secs_f64();
    eprintln!("[p6] generated in {generate_seconds:.1}s");

    let api = bench.gitrepos(NAMESPACE);
    let (mut watch, _) = DynWatch::one("the large GitRepository", api.clone(), REPO).await?;
    let meter = Meter::start(vec![(bench.source.name.clone(), bench.source.pid)]);
    let source = objects::git_repository(&bench.gitrepo, REPO, &bench.git_url(REPO), "1h", "30m")
        .map_err(Error::Encode)?;
    let created = Instant::now();
    api.create(&PostParams::default(), &source)
        .await
        .map_err(Error::kube("creating the large GitRepository"))?;
    let within = Duration::from_secs(args.large_timeout);
    let mut artifact_bytes = None;
    let artifact_seconds = match watch.until(within, |r| has_artifact(r, &sha)).await {
        Ok(at) => Some(at.duration_since(created).as_secs_f64()),
        Err(Error::Timeout { .. }) => None,
        Err(e) => return Err(e),
    };
    let usage = meter.finish().await;
    if let Ok(obj) = api.get(REPO).await {
        artifact_bytes = obj.data["status"]["artifact"]["size"].as_u64();
    }
    let source_usage = usage.get(&bench.source.name);
    eprintln!("[p6] artifact after {artifact_seconds:?}s; running the baseline ...");
    bench.check_controllers()?;
    let _ = api.delete(REPO, &DeleteParams::default()).await;

    let scratch = bench.work.join("large-baseline");
    let baseline = baseline(&bench.git_url(REPO), &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    let baseline = baseline?;
    Ok(LargeResult {
        files,
        bytes,
        generate_seconds,
        artifact_seconds,
        source_peak_rss_mib: source_usage.map(|u| u.peak_rss_mib).unwrap_or_default(),
        source_peak_anon_mib: source_usage.map(|u| u.peak_anon_mib).unwrap_or_default(),
        source_cpu_seconds: source_usage.map(|u| u.cpu_seconds).unwrap_or_default(),
        artifact_bytes,
        clone_seconds: baseline.clone_seconds,
        tar_seconds: baseline.tar_seconds,
        baseline_peak_rss_mib: baseline.peak_rss_mib,
        baseline_tar_bytes: baseline.tar_bytes,
    })
}

struct Baseline {
    clone_seconds: f64,
    tar_seconds: f64,
    peak_rss_mib: Option<f64>,
    tar_bytes: u64,
}

/// `git clone --depth 1` and `tar czf` without `.git`, each under /usr/bin/time when present.
fn baseline(url: &str, scratch: &Path) -> Result<Baseline, Error> {
    std::fs::create_dir_all(scratch).map_err(Error::io("creating the baseline directory"))?;
    let clone_dir = scratch.join("clone");
    let tarball = scratch.join("out.tar.gz");
    let clone_dir_s = clone_dir.display().to_string();
    let tarball_s = tarball.display().to_string();
    let (clone_seconds, clone_rss) = timed(
        scratch,
        "clone",
        &[
            "git",
            "clone",
            "-q",
            "--depth",
            "1",
            "--single-branch",
            "-b",
            "main",
            url,
            &clone_dir_s,
        ],
    )?;
    let (tar_seconds, tar_rss) = timed(
        scratch,
        "tar",
        &[
            "tar",
            "czf",
            &tarball_s,
            "--exclude=.git",
            "-C",
            &clone_dir_s,
            ".",
        ],
    )?;
    let tar_bytes = std::fs::metadata(&tarball).map(|m| m.len()).unwrap_or(0);
    let peak_rss_mib = match (clone_rss, tar_rss) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    };
    Ok(Baseline {
        clone_seconds,
        tar_seconds,
        peak_rss_mib,
        tar_bytes,
    })
}

/// Runs `argv`, returning its wall time and (with /usr/bin/time) its peak RSS in MiB.
fn timed(scratch: &Path, label: &str, argv: &[&str]) -> Result<(f64, Option<f64>), Error> {
    let gnu_time = Path::new("/usr/bin/time");
    let rss_file = scratch.join(format!("{label}.rss"));
    let mut cmd = if gnu_time.exists() {
        let mut c = Command::new(gnu_time);
        c.arg("-f").arg("%M").arg("-o").arg(&rss_file).args(argv);
        c
    } else {
        let mut c = Command::new(argv[0]);
        c.args(&argv[1..]);
        c
    };
    let started = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(Error::io(format!("running {label}")))?;
    let seconds = started.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(Error::Command {
            what: argv.join(" "),
            detail: format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr)),
        });
    }
    let rss = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|s| s.lines().last()?.trim().parse::<f64>().ok())
        .map(|kib| kib / 1024.0);
    Ok((seconds, rss))
}

/// Writes one commit of `files` files totalling about `bytes` bytes into the bare repository at
/// `bare` with `git fast-import`; returns its SHA. The same arguments give the same SHA.
pub fn generate(bare: &Path, files: usize, bytes: u64) -> Result<String, Error> {
    let mut child = Command::new("git")
        .arg("--git-dir")
        .arg(bare)
        .args(["fast-import", "--quiet", "--done"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(Error::io("starting git fast-import"))?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| Error::Setting("git fast-import has no stdin".into()))?;
    let written = write_stream(
        std::io::BufWriter::with_capacity(1 << 20, stdin),
        files,
        bytes,
    );
    let out = child
        .wait_with_output()
        .map_err(Error::io("waiting for git fast-import"))?;
    written.map_err(Error::io("writing the fast-import stream"))?;
    if !out.status.success() {
        return Err(Error::Command {
            what: "git fast-import".into(),
            detail: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(bare)
        .args(["rev-parse", "refs/heads/main"])
        .output()
        .map_err(Error::io("reading the generated commit"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The fast-import stream: one commit whose files are lines of pseudo-random words (text that
/// compresses like source code, about 3-4x), from a fixed seed.
fn write_stream(mut w: impl Write, files: usize, bytes: u64) -> std::io::Result<()> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let words: Vec<String> = (0..512)
        .map(|_| {
            let len = 2 + (rng.next() % 9) as usize;
            (0..len)
                .map(|_| char::from(b'a' + (rng.next() % 26) as u8))
                .collect()
        })
        .collect();
    let average = (bytes / files.max(1) as u64).max(1);
    let message = "generated large repository\n";
    writeln!(w, "commit refs/heads/main")?;
    writeln!(
        w,
        "committer Mooring Bench <bench@mooring.invalid> 1700000000 +0000"
    )?;
    write!(w, "data {}\n{message}", message.len())?;
    let mut content = Vec::with_capacity(average as usize * 2);
    for i in 0..files {
        let size = average / 2 + rng.next() % average.max(1);
        content.clear();
        while (content.len() as u64) < size {
            let line_words = 4 + rng.next() % 10;
            for j in 0..line_words {
                if j > 0 {
                    content.push(b' ');
                }
                content.extend_from_slice(words[(rng.next() % 512) as usize].as_bytes());
            }
            content.push(b'\n');
        }
        content.truncate(size as usize);
        let path = format!("d{:04}/f{:03}.txt", i / FILES_PER_DIR, i % FILES_PER_DIR);
        writeln!(w, "M 100644 inline {path}")?;
        writeln!(w, "data {}", content.len())?;
        w.write_all(&content)?;
        writeln!(w)?;
    }
    writeln!(w)?;
    writeln!(w, "done")?;
    w.flush()
}

/// xorshift64*: deterministic and fast; quality is irrelevant here.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_deterministic_and_sized() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        write_stream(&mut a, 50, 100_000).expect("stream");
        write_stream(&mut b, 50, 100_000).expect("stream");
        assert_eq!(a, b);
        let text = String::from_utf8_lossy(&a);
        assert_eq!(text.matches("M 100644 inline").count(), 50);
        // File sizes average bytes/files: the stream is within a third of the total.
        assert!(a.len() > 66_000 && a.len() < 140_000, "{}", a.len());
    }
}
