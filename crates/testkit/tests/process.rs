//! SIGTERM to a program that supervises children (as `mooring-dev` does) stops every child,
//! whether the signal goes to the program alone or to its whole process group (what `timeout`
//! and `kill -TERM -PGID` do, and what reaches the supervisors too).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use mooring_testkit::process::{Supervised, janitor, wait_until_gone};

/// Run in a child process by the tests below: starts three supervised programs and a janitor the
/// way the control plane and the controllers are started, prints their pids and the janitor's
/// directory, then waits on stdin until it is killed.
#[test]
#[ignore = "run only as a child process of the sigterm tests"]
fn child_supervises_and_waits() {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    let mut kept = Vec::new();
    for name in ["one", "two", "three"] {
        let sleeper = Supervised::spawn(
            name,
            Path::new("/bin/sleep"),
            &["3600".to_string()],
            &[],
            &dir.join(format!("{name}.log")),
            &dir,
        )
        .expect("spawn");
        kept.push(sleeper);
    }
    kept.push(janitor(&dir, &dir).expect("janitor"));
    // The supervisors record the pids asynchronously.
    let pids: Vec<String> = kept
        .iter()
        .map(|s| {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(pid) = s.pid() {
                    return pid.to_string();
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "no pid for {}",
                    s.name()
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        })
        .collect();
    println!("DIR={}", dir.display());
    println!("PIDS={}", pids.join(","));
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

#[test]
fn sigterm_to_the_process_group_stops_every_child() {
    sigterm_stops_every_child(true);
}

#[test]
fn sigterm_to_the_program_stops_every_child() {
    sigterm_stops_every_child(false);
}

fn sigterm_stops_every_child(whole_group: bool) {
    let mut child = Command::new(std::env::current_exe().expect("current exe"))
        .args([
            "--exact",
            "child_supervises_and_waits",
            "--ignored",
            "--nocapture",
        ])
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run the child test");
    let mut dir = None;
    let mut pids = Vec::new();
    for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
        let line = line.expect("read the child's output");
        if let Some(d) = line.strip_prefix("DIR=") {
            dir = Some(PathBuf::from(d));
        }
        if let Some(p) = line.strip_prefix("PIDS=") {
            pids = p
                .split(',')
                .map(|p| p.parse::<u32>().expect("pid"))
                .collect();
            break;
        }
    }
    let dir = dir.expect("the child printed its directory");
    assert_eq!(pids.len(), 4, "pids of the supervised programs: {pids:?}");
    assert!(
        pids.iter()
            .all(|p| mooring_testkit::process::is_running(*p)),
        "every program runs before the signal: {pids:?}"
    );

    let target = if whole_group {
        format!("-{}", child.id())
    } else {
        child.id().to_string()
    };
    let status = Command::new("kill")
        .args(["-TERM", "--", &target])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -TERM {target}");
    let exit = child.wait().expect("wait for the child");
    assert!(!exit.success(), "the child was terminated: {exit:?}");

    let left = wait_until_gone(&pids, Duration::from_secs(15));
    assert!(
        left.is_empty(),
        "processes left behind after SIGTERM (group: {whole_group}): {left:?}"
    );
    // The janitor ran its TERM handler rather than being killed outright.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while dir.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!dir.exists(), "the janitor removed {}", dir.display());
}
