//! Property test of the artifact round trip (fault suite, issue 11 item 4): arbitrary trees
//! (odd names, long names, executables, links, also links that leave the tree) committed to
//! git and archived by the source-controller's `build_archive` extract, with the
//! kustomize-controller's extraction, to identical content (less the links the
//! source-controller drops for leaving the tree); a name the source-controller refuses fails
//! the archive with an error naming it.
//!
//! Short form: `cargo test -p mooring-kustomize-controller --test faults_props_roundtrip`.
//! Long form (part of `make faults`): the same with `MOORING_FAULTS_LONG=1`, which runs the
//! property for `mooring_testkit::props::LONG_SECONDS` of CPU time (`git` included;
//! `MOORING_PROPTEST_SECONDS=N` sets another budget). Failing seeds are kept in
//! `proptest-regressions/faults_props_roundtrip/`.

mod props_tree;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use mooring_kustomize_controller::artifact::{Limits, extract_archive as extract};
use mooring_source_controller::archive::{ArchiveOptions, build_archive};
use mooring_testkit::props::{Property, check};
use proptest::prelude::*;

use props_tree::{Node, read_tree};

/// A tree for git: file contents (some executable) and links, by path.
#[derive(Debug, Clone)]
enum GitNode {
    File(Vec<u8>, bool),
    Link(String),
}

fn git_tree() -> impl Strategy<Value = BTreeMap<String, GitNode>> {
    let name = prop::collection::vec(
        prop_oneof![
            6 => prop::sample::select(vec!["a", "b", "base", "app.yaml", ".hidden", "ü"])
                .prop_map(str::to_owned),
            1 => prop::sample::select(vec![
                "quo\"te", "back\\slash", "tab\tx", "new\nline", "*", "-dash", "%41", "..a",
            ])
            .prop_map(str::to_owned),
            1 => "[a-z0-9 _.-]{1,12}".prop_filter("not a dot name", |s| s != "." && s != ".."),
            1 => (100usize..140).prop_map(|n| "n".repeat(n)),
        ],
        1..4,
    )
    .prop_map(|parts| parts.join("/"))
    .prop_filter("VCS files are never archived", |p| {
        !p.split('/').any(|c| c.starts_with(".git"))
    });
    let node = prop_oneof![
        5 => (prop::collection::vec(any::<u8>(), 0..200), any::<bool>())
            .prop_map(|(data, x)| GitNode::File(data, x)),
        1 => prop::collection::vec(prop::sample::select(vec!["a", "b", ".."]), 1..3)
            .prop_map(|p| GitNode::Link(p.join("/"))),
    ];
    prop::collection::btree_map(name, node, 1..12).prop_map(|mut map| {
        // A path cannot be both a file and a directory.
        let keys: Vec<String> = map.keys().cloned().collect();
        for key in &keys {
            if keys.iter().any(|k| k.starts_with(&format!("{key}/"))) {
                map.remove(key);
            }
        }
        map
    })
}

/// Commits `tree` into a new bare repository with `git fast-import`; returns the commit.
fn commit_tree(repo: &Path, tree: &BTreeMap<String, GitNode>) -> String {
    let git = |args: &[&str]| {
        let mut cmd = Command::new("git");
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", repo)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .arg("-C")
            .arg(repo)
            .args(args);
        cmd
    };
    let status = git(&["init", "-q", "--bare", "-b", "main"])
        .status()
        .expect("git init");
    assert!(status.success());
    let mut stream = Vec::new();
    stream.extend_from_slice(
        b"commit refs/heads/main\ncommitter T <t@mooring.invalid> 1700000000 +0000\ndata 1\nx\n",
    );
    for (path, node) in tree {
        let (mode, data) = match node {
            GitNode::File(data, true) => ("100755", data.as_slice()),
            GitNode::File(data, false) => ("100644", data.as_slice()),
            GitNode::Link(target) => ("120000", target.as_bytes()),
        };
        stream.extend_from_slice(format!("M {mode} inline \"{}\"\n", quote(path)).as_bytes());
        stream.extend_from_slice(format!("data {}\n", data.len()).as_bytes());
        stream.extend_from_slice(data);
        stream.push(b'\n');
    }
    let mut child = git(&["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("fast-import");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&stream)
        .expect("write");
    assert!(child.wait().expect("wait").success(), "fast-import failed");
    let out = git(&["rev-parse", "main"]).output().expect("rev-parse");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// fast-import's C-style quoting.
fn quote(path: &str) -> String {
    path.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .replace('\t', "\\t")
}

/// What the extracted tree must hold: the files and links, and their directories; links the
/// source-controller drops for leaving the tree are absent.
fn expected_tree(tree: &BTreeMap<String, GitNode>, dropped: &[String]) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    for (path, node) in tree {
        // The directories of a dropped link stay.
        let parts: Vec<&str> = path.split('/').collect();
        for i in 1..parts.len() {
            out.insert(parts[..i].join("/"), Node::Dir);
        }
        if dropped.contains(path) {
            continue;
        }
        let node = match node {
            GitNode::File(data, executable) => Node::File {
                data: data.clone(),
                executable: *executable,
            },
            GitNode::Link(target) => Node::Link(target.clone()),
        };
        out.insert(path.clone(), node);
    }
    out
}

fn round_trip(tree: BTreeMap<String, GitNode>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("repo.git");
    std::fs::create_dir(&repo).expect("repo dir");
    let commit = commit_tree(&repo, &tree);
    let options = ArchiveOptions {
        // Nothing ignored: every committed file must come back.
        ignore: Some(String::new()),
        ..ArchiveOptions::default()
    };
    let mut bytes = Vec::new();
    let built = build_archive(&repo, &commit, &options, &mut bytes);
    // The source-controller refuses a name with a backslash (a separator for Windows
    // consumers), although git allows it: the whole artifact fails, with the name.
    let refused: Vec<String> = tree
        .keys()
        .filter(|p| p.contains('\\'))
        .map(|p| {
            // The path down to the first component with a backslash.
            let first = p.split('/').take_while(|c| !c.contains('\\')).count();
            p.split('/').take(first + 1).collect::<Vec<_>>().join("/")
        })
        .collect();
    if !refused.is_empty() {
        let err = built
            .err()
            .ok_or_else(|| TestCaseError::fail("a backslash name was archived"))?;
        prop_assert_eq!(err.label(), "InvalidTreeEntry");
        let message = err.to_string();
        prop_assert!(
            refused.iter().any(|p| message.contains(&format!("{p:?}"))),
            "{message}"
        );
        return Ok(());
    }
    let summary = built.map_err(|e| TestCaseError::fail(format!("build_archive: {e}")))?;
    let file = dir.path().join("a.tar.gz");
    std::fs::write(&file, &bytes).expect("write");
    let dest = dir.path().join("dest");
    std::fs::create_dir(&dest).expect("dest");
    extract(&file, &dest, &Limits::default())
        .map_err(|e| TestCaseError::fail(format!("extracting the archive failed: {e}")))?;
    let extracted = read_tree(&dest, true)?;
    prop_assert_eq!(extracted, expected_tree(&tree, &summary.dropped_symlinks));
    Ok(())
}

#[test]
fn archives_of_arbitrary_trees_extract_to_identical_content() {
    check(
        &Property {
            scenario: "property: artifact round trip, source archive to extracted tree",
            regressions: concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/proptest-regressions/faults_props_roundtrip/round_trip.txt"
            ),
            short_cases: 40,
        },
        git_tree(),
        round_trip,
    );
}
