//! Property tests of the kustomize-controller's path checks (fault suite, issue 11 item 4):
//! `build::normalize_path` (`spec.path`), and the archive entry checks `safe_relative` and
//! `symlink_stays_inside`. None accepts an escaping path; each agrees with a small reference
//! model written here; normalizing is idempotent.
//!
//! Short form: `cargo test -p mooring-kustomize-controller --test faults_props_paths`.
//! Long form (part of `make faults`): the same with `MOORING_FAULTS_LONG=1`, which runs each
//! property for `mooring_testkit::props::LONG_SECONDS` of CPU time
//! (`MOORING_PROPTEST_SECONDS=N` sets another budget). Failing seeds are kept in
//! `proptest-regressions/faults_props_paths/`.

use std::path::{Path, PathBuf};

use mooring_kustomize_controller::artifact::{safe_relative, symlink_stays_inside};
use mooring_kustomize_controller::build::normalize_path;
use mooring_testkit::props::{Property, check};
use proptest::prelude::*;

fn path_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        6 => prop::sample::select(vec!["a", "bc", "/", "//", ".", "..", "...", ".a", "\\", "é"])
            .prop_map(str::to_owned),
        1 => "\\PC{0,3}",
    ];
    prop::collection::vec(piece, 0..10).prop_map(|p| p.concat())
}

/// Components as `/`-separated text, without empty and `.` ones.
fn parts(path: &str) -> Vec<&str> {
    path.split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect()
}

/// The model of `spec.path`: `..` pops, climbing above the root is refused, a leading `/` is
/// the artifact root.
fn spec_path_model(path: &str) -> Option<PathBuf> {
    let mut out: Vec<&str> = Vec::new();
    for part in parts(path) {
        if part == ".." {
            out.pop()?;
        } else {
            out.push(part);
        }
    }
    Some(out.iter().collect())
}

fn inside(path: &Path) -> bool {
    path.is_relative()
        && path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

#[test]
fn spec_path_never_escapes_and_matches_the_model() {
    check(
        &Property {
            scenario: "property: path checks, spec.path normalize_path",
            regressions: concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/proptest-regressions/faults_props_paths/spec_path.txt"
            ),
            short_cases: 2000,
        },
        path_text(),
        |path| {
            let got = normalize_path(&path);
            prop_assert_eq!(&got, &spec_path_model(&path));
            if let Some(normal) = got {
                prop_assert!(inside(&normal), "{}", normal.display());
                let again = normalize_path(&normal.to_string_lossy());
                prop_assert_eq!(again, Some(normal));
            }
            Ok(())
        },
    );
}

#[test]
fn entry_names_never_escape_and_match_the_model() {
    check(
        &Property {
            scenario: "property: path checks, archive entry safe_relative",
            regressions: concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/proptest-regressions/faults_props_paths/safe_relative.txt"
            ),
            short_cases: 2000,
        },
        path_text(),
        |path| {
            let got = safe_relative(Path::new(&path));
            let expected = (!path.starts_with('/') && !parts(&path).contains(&".."))
                .then(|| parts(&path).iter().collect::<PathBuf>());
            prop_assert_eq!(got.as_ref().ok(), expected.as_ref());
            if let Ok(normal) = got {
                prop_assert!(inside(&normal), "{}", normal.display());
                prop_assert_eq!(safe_relative(&normal), Ok(normal.clone()));
            }
            Ok(())
        },
    );
}

#[test]
fn link_targets_are_judged_like_the_model() {
    let link = prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..4)
        .prop_map(|p| p.join("/"));
    check(
        &Property {
            scenario: "property: path checks, symlink_stays_inside",
            regressions: concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/proptest-regressions/faults_props_paths/symlink_target.txt"
            ),
            short_cases: 2000,
        },
        (link, path_text()),
        |(link, target)| {
            // Depth below the root after following `target` from the link's directory.
            let mut depth = Some(link.split('/').count() as i64 - 1);
            if target.is_empty() || target.starts_with('/') {
                depth = None;
            }
            for part in parts(&target) {
                depth = depth
                    .map(|d| if part == ".." { d - 1 } else { d + 1 })
                    .filter(|d| *d >= 0);
            }
            let got = symlink_stays_inside(Path::new(&link), Path::new(&target));
            prop_assert_eq!(got, depth.is_some(), "{} -> {}", link, target);
            Ok(())
        },
    );
}
