//! Property tests of the source-controller's path checks (fault suite, issue 11 item 4):
//! `archive::normalize_relative` (spec.sparseCheckout, include paths), `Storage::local_path`
//! (artifact paths from status and the artifact server's URLs) and `Storage::artifact_dir`
//! (namespace and name as directory names). None accepts an escaping path; each agrees with a
//! small reference model written here; normalizing is idempotent.
//!
//! Short form: `cargo test -p mooring-source-controller --test faults_props_paths`.
//! Long form (part of `make faults`): the same with `MOORING_FAULTS_LONG=1`, which runs each
//! property for `mooring_testkit::props::LONG_SECONDS` of CPU time
//! (`MOORING_PROPTEST_SECONDS=N` sets another budget). Failing seeds are kept in
//! `proptest-regressions/faults_props_paths/`.

use std::path::{Component, Path, PathBuf};

use mooring_source_controller::archive::{PathProblem, normalize_relative};
use mooring_source_controller::storage::Storage;
use mooring_testkit::props::{Property, check};
use proptest::prelude::*;

/// Paths made of the pieces that matter (separators, dots, backslashes, NUL) and other bytes.
fn path_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => prop::sample::select(vec![
            &b"a"[..], b"bc", b"/", b"//", b".", b"..", b"...", b".a", b"\\", b"\0", b"\xff",
        ])
        .prop_map(<[u8]>::to_vec),
        1 => prop::collection::vec(any::<u8>(), 0..4),
    ];
    prop::collection::vec(piece, 0..10).prop_map(|p| p.concat())
}

fn path_text() -> impl Strategy<Value = String> {
    path_bytes().prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// The model: what `normalize_relative` must return.
fn normalize_model(path: &[u8]) -> Result<Vec<u8>, PathProblem> {
    if path.starts_with(b"/") {
        return Err(PathProblem::Absolute);
    }
    if path.contains(&0) || path.contains(&b'\\') {
        return Err(PathProblem::ForbiddenByte);
    }
    let mut kept: Vec<&[u8]> = Vec::new();
    for part in path.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(PathProblem::ParentComponent),
            name => kept.push(name),
        }
    }
    Ok(kept.join(&b'/'))
}

#[test]
fn normalize_relative_never_escapes_and_matches_the_model() {
    check(
        &Property {
            scenario: "property: path checks, archive normalize_relative",
            regressions: concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/proptest-regressions/faults_props_paths/normalize_relative.txt"
            ),
            short_cases: 2000,
        },
        path_bytes(),
        |path| {
            let got = normalize_relative(&path);
            prop_assert_eq!(&got, &normalize_model(&path));
            if let Ok(normal) = got {
                prop_assert!(!normal.starts_with(b"/") && !normal.ends_with(b"/"));
                for part in normal.split(|b| *b == b'/') {
                    prop_assert!(!normal.is_empty() || part.is_empty());
                    prop_assert!(normal.is_empty() || !matches!(part, b"" | b"." | b".."));
                }
                prop_assert_eq!(normalize_relative(&normal), Ok(normal.clone()));
            }
            Ok(())
        },
    );
}

/// The model of `local_path`: a non-empty relative path without `..`, `\`, or a leading `.`
/// component (`std::path` drops a `.` anywhere else, so `a/./b` is `a/b`).
fn local_path_accepts(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && parts[0] != "."
        && !parts.contains(&"..")
}

/// `path` with `.` and `..` applied lexically; `None` when `..` climbs above the start.
fn lexical(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out)
}

#[test]
fn storage_local_path_stays_under_the_root() {
    let storage = Storage::new("/var/lib/mooring/storage");
    check(
        &Property {
            scenario: "property: path checks, storage local_path",
            regressions: concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/proptest-regressions/faults_props_paths/local_path.txt"
            ),
            short_cases: 2000,
        },
        path_text(),
        |path| {
            let got = storage.local_path(&path);
            prop_assert_eq!(got.is_ok(), local_path_accepts(&path), "{:?}", got);
            if let Ok(file) = got {
                let resolved = lexical(&file).expect("absolute");
                prop_assert!(
                    resolved.starts_with(storage.root()) && resolved != storage.root(),
                    "{} leaves the root",
                    file.display()
                );
                prop_assert_eq!(storage.local_path(&path).ok(), Some(file));
            }
            Ok(())
        },
    );
}

/// A Kubernetes-ish name: mostly valid characters, sometimes not.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9._-]{0,12}",
        1 => prop::sample::select(vec![".", "..", "a/b", "a\\b", "", "é", ".hidden", "a b"])
            .prop_map(str::to_owned),
        1 => (250usize..256).prop_map(|n| "x".repeat(n)),
        1 => any::<String>(),
    ]
}

fn segment_valid(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

#[test]
fn artifact_dirs_are_single_safe_components() {
    let storage = Storage::new("/var/lib/mooring/storage");
    check(
        &Property {
            scenario: "property: path checks, storage artifact_dir",
            regressions: concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/proptest-regressions/faults_props_paths/artifact_dir.txt"
            ),
            short_cases: 2000,
        },
        (segment(), segment()),
        |(namespace, name)| {
            let got = storage.artifact_dir(&namespace, &name);
            prop_assert_eq!(
                got.is_ok(),
                segment_valid(&namespace) && segment_valid(&name),
                "{:?}",
                got
            );
            if let Ok(dir) = got {
                let parts: Vec<&str> = dir.split('/').collect();
                prop_assert_eq!(parts.len(), 3, "{}", dir);
                prop_assert_eq!(parts[1], namespace.as_str());
                prop_assert_eq!(parts[2], name.as_str());
                prop_assert!(storage.local_path(&dir).is_ok(), "{}", dir);
            }
            Ok(())
        },
    );
}
