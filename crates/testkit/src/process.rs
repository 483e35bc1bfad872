//! Child processes that cannot outlive the test binary that started them.
//!
//! Test control planes and git servers live in `static`s shared by every test of a binary, and
//! statics are never dropped. So each server runs under a tiny `sh` supervisor whose stdin is a
//! pipe held by this process: when the test binary exits for any reason (success, panic, SIGKILL)
//! the kernel closes the pipe, the supervisor reads EOF and kills its child's process group.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A process started under the supervisor; killed on drop or when this process exits.
#[derive(Debug)]
pub struct Supervised {
    name: String,
    supervisor: Child,
    log: PathBuf,
    pid_file: PathBuf,
}

/// The supervisor: starts "$@" in its own process group with output to $LOG, records its pid, then
/// waits on stdin; EOF (the parent is gone or dropped us) kills the group.
///
/// It ignores SIGINT and SIGHUP (and so does its `cat`): Ctrl-C in a terminal signals the whole
/// foreground process group, and a supervisor killed by it would leave its child running. The
/// parent handles Ctrl-C and closes the pipe, or dies and the kernel closes it.
///
/// SIGTERM, on the other hand, stops the supervisor *and* its child: `timeout`, a service manager
/// or `kill -TERM -PGID` signal the parent's whole process group, supervisors included, while the
/// children sit in their own sessions and would never see it. So the `cat` runs in the
/// background (stdin passed on through fd 3, as a background job's own stdin is /dev/null) and
/// the shell waits for it, which a trapped TERM interrupts; either way the shell goes on to the
/// kill.
const SUPERVISOR: &str = r#"
trap '' INT HUP
trap 'term=1' TERM
log="$1"; pidfile="$2"; shift 2
setsid "$@" >>"$log" 2>&1 </dev/null &
child=$!
echo "$child" >"$pidfile"
exec 3<&0
cat <&3 >/dev/null &
reader=$!
[ -n "$term" ] || wait "$reader"
kill "$reader" 2>/dev/null
kill -TERM -"$child" 2>/dev/null || kill -TERM "$child" 2>/dev/null
i=0
while kill -0 "$child" 2>/dev/null && [ $i -lt 50 ]; do i=$((i+1)); sleep 0.1; done
kill -KILL -"$child" 2>/dev/null || kill -KILL "$child" 2>/dev/null
wait "$child" 2>/dev/null
"#;

impl Supervised {
    /// Starts `program args..` with stdout and stderr appended to `log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        envs: &[(String, String)],
        log: &Path,
        work_dir: &Path,
    ) -> std::io::Result<Self> {
        let pid_file = work_dir.join(format!("{name}.pid"));
        // A program started again under the same name must not be judged by its
        // predecessor's pid.
        let _ = std::fs::remove_file(&pid_file);
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(SUPERVISOR)
            .arg("supervisor")
            .arg(log)
            .arg(&pid_file)
            .arg(program)
            .args(args)
            .current_dir(work_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let supervisor = cmd.spawn()?;
        Ok(Self {
            name: name.to_string(),
            supervisor,
            log: log.to_path_buf(),
            pid_file,
        })
    }

    /// The name given at spawn time.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pid of the supervised program, once the supervisor has recorded it.
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(&self.pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Whether the supervised program has exited (or never started).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.supervisor.try_wait(), Ok(Some(_)))
            || self
                .pid()
                .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
    }

    /// The last `lines` lines of the program's log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }

    /// Kills the program at once with SIGKILL, as a crash would, then lets the supervisor reap
    /// it.
    pub fn kill(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        self.stop();
    }

    /// Stops the program and waits for the supervisor to finish.
    pub fn stop(&mut self) {
        // Closing stdin is the stop signal.
        drop(self.supervisor.stdin.take());
        let _ = self.supervisor.wait();
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A process whose only task is to remove `dir` when this process exits (or drops it): for the
/// temp dirs of servers kept in statics, which are never dropped. Its log and pid file go into
/// `work_dir` (which may be inside `dir`: the supervisor does not read them after the kill).
///
/// Returns once the janitor's TERM handler is set (it says so in its log): a TERM that came
/// before would end the shell without removing anything.
pub fn janitor(dir: &Path, work_dir: &Path) -> std::io::Result<Supervised> {
    const ARMED: &str = "janitor armed";
    let script = format!(
        "trap 'rm -rf \"$0\"; exit 0' TERM; echo '{ARMED}'; while :; do sleep 3600 & wait $!; done"
    );
    let args = ["-c".to_string(), script, dir.display().to_string()];
    let log = work_dir.join("janitor.log");
    // The log is appended to: an earlier janitor's line must not count.
    let _ = std::fs::remove_file(&log);
    let janitor = Supervised::spawn("janitor", Path::new("/bin/sh"), &args, &[], &log, work_dir)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log).is_ok_and(|text| text.contains(ARMED)) {
        if std::time::Instant::now() >= deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the janitor did not start within 10 s; its log: {}",
                    log.display()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(janitor)
}

/// The last `lines` lines of a log file ("" when it cannot be read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Whether `pid` is a live process (it exists and is not a zombie waiting to be reaped).
pub fn is_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may contain any byte.
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Waits until none of `pids` is running or `timeout` has passed; returns those still running.
pub fn wait_until_gone(pids: &[u32], timeout: std::time::Duration) -> Vec<u32> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|p| is_running(*p)).collect();
        if left.is_empty() || std::time::Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
