//! What one ref listing costs the source-controller: `listing_bench [count] [http|https]`.
//!
//! Starts the test git server in a child process (so that its CPU is not counted), creates one
//! repository there, then resolves branch `main` `count` times the way an idle interval pass
//! does, and prints this process's CPU time per listing (user + system, from /proc). Run it
//! under `perf record -g` to see where that time goes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use mooring_api::GitCheckout;
use mooring_source_controller::git::{Remote, resolve};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        return serve();
    }
    let count: usize = args.get(1).map(|c| c.parse()).transpose()?.unwrap_or(200);
    let scheme = args.get(2).cloned().unwrap_or_else(|| "http".into());
    let mut server = Command::new(std::env::current_exe()?)
        .arg("serve")
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(server.stdout.take().expect("piped")).lines();
    let http = lines.next().transpose()?.unwrap_or_default();
    let https = lines.next().transpose()?.unwrap_or_default();
    let ca = lines.next().transpose()?.unwrap_or_default();
    let mut remote = Remote::new(if scheme == "https" { https } else { http });
    if scheme == "https" {
        let pem = std::fs::read(&ca)?;
        remote.auth = mooring_source_controller::git::GitAuth::from_secret(
            &[("ca.crt".to_string(), pem)].into_iter().collect(),
            &remote.url,
        )?;
    }
    let checkout = GitCheckout::Branch("main".into());
    resolve(&remote, &checkout)?;
    let cpu_before = cpu_seconds()?;
    let started = Instant::now();
    for _ in 0..count {
        resolve(&remote, &checkout)?;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds()? - cpu_before;
    println!(
        "{count} listings over {scheme}: {:.3} ms CPU and {:.3} ms wall per listing",
        cpu * 1000.0 / count as f64,
        wall * 1000.0 / count as f64
    );
    server.kill()?;
    Ok(())
}

/// The child: a git server with one repository; prints its URLs and CA file, then waits.
fn serve() -> anyhow::Result<()> {
    let server = mooring_testkit::git::GitServer::start()?;
    let repo = server.create_repo("bench", mooring_testkit::git::Auth::None)?;
    repo.commit(&[("a.txt", "1")], "first")?;
    let ca = std::env::temp_dir().join(format!("listing-bench-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, server.ca_pem())?;
    println!(
        "{}\n{}\n{}",
        repo.http_url(),
        repo.https_url(),
        ca.display()
    );
    loop {
        std::thread::park();
    }
}

/// This process's user + system CPU time, in seconds.
fn cpu_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow::anyhow!("unexpected /proc/self/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}
