//! How many malloc arenas the process may use.
//!
//! glibc gives threads that allocate at the same time arenas of their own, up to 8 per core.
//! A controller's threads (async workers, the blocking pool's git, archive and file work, the
//! HTTP clients' threads) take many of them, and each arena keeps its freed memory for itself.
//! At 1,000 GitRepositories the source-controller's anonymous memory peaked at 33-37 MiB with
//! glibc's default and at 20-21 MiB with two arenas, with no CPU cost the benchmark could show
//! (docs/benchmarks.md, issue 17). Measured on 2026-12-04, before the git cache stopped
//! creating 28 inodes per repository, the same limit had made no difference.
//!
//! glibc reads the limit (`glibc.malloc.arena_max` in `GLIBC_TUNABLES`) only when a process
//! starts, and setting it from inside (`mallopt`) would take `unsafe` code, which the workspace
//! forbids; so the binary starts itself again, once, with the tunable added.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;

/// The glibc tunable.
const ARENA_MAX: &str = "glibc.malloc.arena_max";

/// Arenas allowed unless the environment says otherwise.
pub const DEFAULT_ARENAS: u32 = 2;

/// What `GLIBC_TUNABLES` should be for a process that found `current` there and in
/// `MALLOC_ARENA_MAX` (`arena_max`), or `None` when it already limits the arenas (the operator's
/// choice, or our own start before this one) or cannot be read.
pub fn tunables_with_arena_limit(
    current: Option<OsString>,
    arena_max: Option<OsString>,
    arenas: u32,
) -> Option<String> {
    if arena_max.is_some() {
        return None;
    }
    let current = match current {
        Some(value) => value.into_string().ok()?,
        None => String::new(),
    };
    if current.split(':').any(|t| t.starts_with(ARENA_MAX)) {
        return None;
    }
    let limit = format!("{ARENA_MAX}={arenas}");
    Some(if current.is_empty() {
        limit
    } else {
        format!("{current}:{limit}")
    })
}

/// Limits the process to [`DEFAULT_ARENAS`] malloc arenas, by executing the running binary
/// again with the tunable set, unless the environment already sets a limit. Call it first in
/// `main`, before any thread starts. Returns only when no re-execution was needed or it failed
/// (then the process goes on with glibc's default, and says so on stderr).
pub fn limit_arenas() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return;
    }
    let Some(tunables) = tunables_with_arena_limit(
        std::env::var_os("GLIBC_TUNABLES"),
        std::env::var_os("MALLOC_ARENA_MAX"),
        DEFAULT_ARENAS,
    ) else {
        return;
    };
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(exe);
    if let Some(name) = args.next() {
        command.arg0(name);
    }
    let error = command.args(args).env("GLIBC_TUNABLES", &tunables).exec();
    eprintln!("starting again with GLIBC_TUNABLES={tunables} failed ({error}); going on without");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_added_once_and_never_overrides_the_operator() {
        assert_eq!(
            tunables_with_arena_limit(None, None, 2).as_deref(),
            Some("glibc.malloc.arena_max=2")
        );
        assert_eq!(
            tunables_with_arena_limit(Some("glibc.malloc.trim_threshold=1".into()), None, 2)
                .as_deref(),
            Some("glibc.malloc.trim_threshold=1:glibc.malloc.arena_max=2")
        );
        assert_eq!(
            tunables_with_arena_limit(Some("glibc.malloc.arena_max=4".into()), None, 2),
            None,
            "already set (by the operator, or by our first start)"
        );
        assert_eq!(
            tunables_with_arena_limit(None, Some("8".into()), 2),
            None,
            "MALLOC_ARENA_MAX is the operator's choice too"
        );
    }
}
