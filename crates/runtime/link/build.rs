//! Build script of both controller binaries: link options for their release builds, each of
//! which keeps fewer of a binary's pages resident in every process that runs it.
//!
//! 1. The functions a controller runs are laid out first, together, and the rest after them
//!    (`--symbol-ordering-file`). The kernel maps a binary's code into a process 64 KiB at a
//!    time around each page executed, so code that runs (about a third of each binary) spread
//!    over the whole text kept nearly all of it resident (~9 MiB per controller). The list,
//!    `hot-text.txt` (one symbol per line, the most executed first), is written by
//!    `make hot-text`, which runs the benchmark under callgrind. A symbol that is not in the
//!    binary is skipped, so a stale list lays out less but never breaks a build. Symbols carry a
//!    hash of their crate's version, features and dependencies: after a version bump, a
//!    dependency update or a new toolchain, run `make hot-text` again.
//! 2. Relative relocations are packed (`-z pack-relative-relocs`; glibc 2.36 or newer runs
//!    them): the dynamic loader reads every one at start, ~0.5 MiB per binary unpacked.
//!
//! docs/benchmarks.md has the measurements. Only rust-lld, the default linker of
//! x86_64-unknown-linux-gnu since Rust 1.90, gets these options; a build with a linker chosen in
//! Cargo's configuration or in RUSTFLAGS, or with `MOORING_LINK_OPTIONS=0`, links as usual.

use std::path::Path;
use std::process::Command;

fn main() {
    let list = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../runtime/link/hot-text.txt")
        .canonicalize()
        .expect("crates/runtime/link/hot-text.txt is part of the workspace");
    println!("cargo::rerun-if-changed={}", list.display());
    println!("cargo::rerun-if-env-changed=MOORING_LINK_OPTIONS");
    if std::env::var("MOORING_LINK_OPTIONS").is_ok_and(|v| v == "0") || !links_with_rust_lld() {
        return;
    }
    println!(
        "cargo::rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
        list.display()
    );
    println!("cargo::rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
}

/// Whether this build links with rust-lld: a release build for x86_64-unknown-linux-gnu by Rust
/// 1.90 or newer, with no linker chosen in Cargo's configuration or in RUSTFLAGS.
fn links_with_rust_lld() -> bool {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("PROFILE") != "release" || var("TARGET") != "x86_64-unknown-linux-gnu" {
        return false;
    }
    // Cargo sets RUSTC_LINKER when its configuration names a linker for the target.
    if std::env::var_os("RUSTC_LINKER").is_some() {
        return false;
    }
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    if ["linker", "fuse-ld", "link-self-contained"]
        .iter()
        .any(|f| flags.contains(f))
    {
        return false;
    }
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("-vV").output() else {
        return false;
    };
    let minor = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("release: 1."))
        .and_then(|rest| rest.split('.').next()?.parse::<u32>().ok());
    minor.is_some_and(|m| m >= 90)
}
