//! How glibc's allocator is set up: how many arenas, and from which size an allocation gets
//! pages of its own.
//!
//! glibc gives threads that allocate at the same time arenas of their own, up to 8 per core.
//! A controller's threads (async workers, the blocking pool's git, archive and file work, the
//! HTTP clients' threads) take many of them, and each arena keeps its freed memory for itself.
//! At 1,000 GitRepositories the source-controller's anonymous memory peaked at 33-37 MiB with
//! glibc's default and at 20-21 MiB with two arenas, with no CPU cost the benchmark could show
//! (docs/benchmarks.md, issue 17). Measured on 2026-12-04, before the git cache stopped
//! creating 28 inodes per repository, the same limit had made no difference.
//!
//! glibc serves an allocation of 128 KiB or more with pages of its own, given back when it is
//! freed, but raises that threshold (up to 32 MiB) each time such an allocation is freed: after
//! the first fetch buffers and archives, they come from the heap and their pages stay there
//! between live objects. Pinning it at 128 KiB took 2-4 MiB off the source-controller's
//! anonymous peak at 1,000 GitRepositories, with no CPU cost the benchmark could show
//! (docs/benchmarks.md, issue 17); the kustomize-controller's did not move.
//!
//! glibc reads both (`glibc.malloc.arena_max` and `glibc.malloc.mmap_threshold` in
//! `GLIBC_TUNABLES`) only when a process starts, and setting them from inside (`mallopt`) would
//! take `unsafe` code, which the workspace forbids; so the binary starts itself again, once,
//! with the tunables added.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;

/// The arena limit's tunable, and what the environment variable of the same setting is called.
const ARENA_MAX: (&str, &str) = ("glibc.malloc.arena_max", "MALLOC_ARENA_MAX");

/// The mmap threshold's tunable, and its environment variable.
const MMAP_THRESHOLD: (&str, &str) = ("glibc.malloc.mmap_threshold", "MALLOC_MMAP_THRESHOLD_");

/// Arenas allowed unless the environment says otherwise.
pub const DEFAULT_ARENAS: u32 = 2;

/// Bytes from which an allocation gets pages of its own, unless the environment says otherwise
/// (glibc's initial value, kept from rising).
pub const DEFAULT_MMAP_THRESHOLD: u32 = 128 * 1024;

/// What `GLIBC_TUNABLES` should be for a process that found `current` there, given which of
/// the settings' environment variables are set (`is_set`), or `None` when every setting is
/// already chosen (by the operator, or by our own start before this one) or `current` cannot
/// be read.
pub fn tunables_with_defaults(
    current: Option<OsString>,
    is_set: impl Fn(&str) -> bool,
    defaults: &[(&str, &str, u32)],
) -> Option<String> {
    let current = match current {
        Some(value) => value.into_string().ok()?,
        None => String::new(),
    };
    let mut tunables: Vec<String> = current
        .split(':')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    let chosen = tunables.len();
    for (tunable, variable, value) in defaults {
        let named = |t: &String| t.split_once('=').is_some_and(|(name, _)| name == *tunable);
        if !is_set(variable) && !tunables.iter().any(named) {
            tunables.push(format!("{tunable}={value}"));
        }
    }
    (tunables.len() > chosen).then(|| tunables.join(":"))
}

/// Limits the process to [`DEFAULT_ARENAS`] malloc arenas and pins the mmap threshold at
/// [`DEFAULT_MMAP_THRESHOLD`], by executing the running binary again with the tunables set,
/// unless the environment already sets them. Call it first in `main`, before any thread
/// starts. Returns only when no re-execution was needed or it failed (then the process goes on
/// with glibc's defaults, and says so on stderr).
pub fn tune_allocator() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return;
    }
    let Some(tunables) = tunables_with_defaults(
        std::env::var_os("GLIBC_TUNABLES"),
        |variable| std::env::var_os(variable).is_some(),
        &[
            (ARENA_MAX.0, ARENA_MAX.1, DEFAULT_ARENAS),
            (MMAP_THRESHOLD.0, MMAP_THRESHOLD.1, DEFAULT_MMAP_THRESHOLD),
        ],
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

    const DEFAULTS: &[(&str, &str, u32)] = &[
        (ARENA_MAX.0, ARENA_MAX.1, 2),
        (MMAP_THRESHOLD.0, MMAP_THRESHOLD.1, 131072),
    ];

    fn with(current: Option<&str>, set: &[&str]) -> Option<String> {
        tunables_with_defaults(current.map(OsString::from), |v| set.contains(&v), DEFAULTS)
    }

    #[test]
    fn the_defaults_are_added_once_and_never_override_the_operator() {
        assert_eq!(
            with(None, &[]).as_deref(),
            Some("glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=131072")
        );
        assert_eq!(
            with(Some("glibc.malloc.trim_threshold=1"), &[]).as_deref(),
            Some(
                "glibc.malloc.trim_threshold=1:glibc.malloc.arena_max=2:\
                 glibc.malloc.mmap_threshold=131072"
            )
        );
        assert_eq!(
            with(Some("glibc.malloc.arena_max=4"), &[]).as_deref(),
            Some("glibc.malloc.arena_max=4:glibc.malloc.mmap_threshold=131072"),
            "the operator's arena limit stays, the other default is added"
        );
        assert_eq!(
            with(
                Some("glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=131072"),
                &[]
            ),
            None,
            "both set (by our first start): no second re-execution"
        );
        assert_eq!(
            with(None, &["MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_"]),
            None,
            "the environment variables are the operator's choice too"
        );
        assert_eq!(
            with(
                Some("glibc.malloc.mmap_threshold_x=1"),
                &["MALLOC_ARENA_MAX"]
            )
            .as_deref(),
            Some("glibc.malloc.mmap_threshold_x=1:glibc.malloc.mmap_threshold=131072"),
            "a tunable is matched by its whole name"
        );
    }
}
