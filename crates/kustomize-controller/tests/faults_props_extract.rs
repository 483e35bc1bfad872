//! Property tests of artifact extraction (part of the fault suite, issue 11 item 4).
//!
//! Hostile archives: arbitrary entries (`..`, absolute names aimed at a real directory next to
//! the destination, symbolic and hard links pointing out, links through links, long names,
//! device files, FIFOs, duplicates, sizes over the limits, truncated or corrupted gzip).
//! Extraction never writes outside the destination, leaves no link that resolves outside it
//! (checked by the kernel, `canonicalize`), respects the limits, and either succeeds with
//! exactly the tree a reference model predicts or fails with a clear error. (The round trip
//! from the source-controller's archives is in `faults_props_roundtrip.rs`.)
//!
//! Short form: `cargo test -p mooring-kustomize-controller --test faults_props_extract`.
//! Long form (part of `make faults`): `MOORING_FAULTS_LONG=1 cargo test -p
//! mooring-kustomize-controller --test faults_props_extract` runs each property for
//! `mooring_testkit::props::LONG_SECONDS` of CPU time; `MOORING_PROPTEST_SECONDS=N` sets
//! another budget. Failing seeds are kept in `proptest-regressions/faults_props_extract/`.

mod props_tree;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use mooring_kustomize_controller::artifact::{ArtifactError, Limits, extract_archive as extract};
use mooring_testkit::props::{Property, check};
use proptest::prelude::*;
use tar::{EntryType, Header};

use props_tree::{Node, read_tree};

/// Stands for the absolute path of a directory next to the destination, so that absolute
/// names and link targets aim at something real.
const OUTSIDE: &str = "@OUT";

#[derive(Debug, Clone)]
enum Kind {
    File { data: Vec<u8>, executable: bool },
    Dir,
    Symlink(String),
    Hardlink(String),
    Char,
    Block,
    Fifo,
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Damage {
    None,
    /// Keep this per-mille of the compressed bytes.
    Truncate(u16),
    /// XOR the byte at this per-mille position.
    Flip(u16, u8),
}

#[derive(Debug, Clone)]
struct Case {
    entries: Vec<Entry>,
    max_files: u64,
    max_bytes: u64,
    damage: Damage,
}

fn component() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(vec!["a", "b", "c"]).prop_map(str::to_owned),
        2 => Just("..".to_owned()),
        1 => Just(".".to_owned()),
        1 => Just(String::new()),
        1 => (90usize..160).prop_map(|n| "l".repeat(n)),
        1 => Just("é ü".to_owned()),
    ]
}

fn entry_name() -> impl Strategy<Value = String> {
    let relative = (
        prop::collection::vec(component(), 1..4),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(parts, dot, slash)| {
            let mut name = parts.join("/");
            if dot {
                name.insert_str(0, "./");
            }
            if slash {
                name.push('/');
            }
            name
        });
    prop_oneof![
        12 => relative,
        1 => Just(format!("{OUTSIDE}/pwned")),
        1 => Just("/etc/mooring-pwned".to_owned()),
    ]
}

fn link_target() -> impl Strategy<Value = String> {
    let relative =
        prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "..", "."]), 1..5)
            .prop_map(|parts| parts.join("/"));
    prop_oneof![
        10 => relative,
        1 => Just(OUTSIDE.to_owned()),
        1 => Just(String::new()),
    ]
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        6 => (prop::collection::vec(any::<u8>(), 0..120), any::<bool>())
            .prop_map(|(data, executable)| Kind::File { data, executable }),
        3 => Just(Kind::Dir),
        4 => link_target().prop_map(Kind::Symlink),
        1 => link_target().prop_map(Kind::Hardlink),
        1 => prop_oneof![Just(Kind::Char), Just(Kind::Block), Just(Kind::Fifo)],
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let entries = prop::collection::vec(
        (entry_name(), kind()).prop_map(|(name, kind)| Entry { name, kind }),
        0..10,
    );
    let damage = prop_oneof![
        8 => Just(Damage::None),
        1 => (0u16..1000).prop_map(Damage::Truncate),
        1 => (0u16..1000, 1u8..=255).prop_map(|(at, x)| Damage::Flip(at, x)),
    ];
    (entries, 1u64..14, 0u64..400, damage).prop_map(|(entries, max_files, max_bytes, damage)| {
        Case {
            entries,
            max_files,
            max_bytes,
            damage,
        }
    })
}

/// A raw name field; names over 100 bytes get a GNU long-name record first, as GNU tar writes.
fn append_raw(
    builder: &mut tar::Builder<impl Write>,
    name: &str,
    link: Option<&str>,
    kind: EntryType,
    mode: u32,
    data: &[u8],
) {
    for (value, record_kind) in [(Some(name), b'L'), (link, b'K')] {
        if let Some(value) = value.filter(|v| v.len() > 100) {
            let mut long = Header::new_gnu();
            set_field(&mut long.as_old_mut().name, "././@LongLink");
            long.set_entry_type(EntryType::new(record_kind));
            long.set_size(value.len() as u64 + 1);
            long.set_mode(0o644);
            long.set_cksum();
            let mut bytes = value.as_bytes().to_vec();
            bytes.push(0);
            builder.append(&long, bytes.as_slice()).expect("long name");
        }
    }
    let mut header = Header::new_gnu();
    set_field(&mut header.as_old_mut().name, name);
    if let Some(link) = link {
        set_field(&mut header.as_old_mut().linkname, link);
    }
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(data.len() as u64);
    header.set_cksum();
    builder.append(&header, data).expect("append");
}

/// Copies up to the field's size (the long-name record carries the rest).
fn set_field(field: &mut [u8], value: &str) {
    field.fill(0);
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value.as_bytes()[..n]);
}

fn archive(case: &Case, outside: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for entry in &case.entries {
        let name = entry.name.replace(OUTSIDE, outside);
        let (kind, data, link, mode): (EntryType, &[u8], Option<String>, u32) = match &entry.kind {
            Kind::File { data, executable } => (
                EntryType::Regular,
                data,
                None,
                if *executable { 0o755 } else { 0o644 },
            ),
            Kind::Dir => (EntryType::Directory, b"", None, 0o755),
            Kind::Symlink(t) => (
                EntryType::Symlink,
                b"",
                Some(t.replace(OUTSIDE, outside)),
                0o777,
            ),
            Kind::Hardlink(t) => (
                EntryType::Link,
                b"",
                Some(t.replace(OUTSIDE, outside)),
                0o644,
            ),
            Kind::Char => (EntryType::Char, b"", None, 0o644),
            Kind::Block => (EntryType::Block, b"", None, 0o644),
            Kind::Fifo => (EntryType::Fifo, b"", None, 0o644),
        };
        append_raw(&mut builder, &name, link.as_deref(), kind, mode, data);
    }
    let mut bytes = builder.into_inner().expect("tar").finish().expect("gzip");
    let at = |per_mille: u16| bytes.len() * usize::from(per_mille) / 1000;
    match case.damage {
        Damage::None => {}
        Damage::Truncate(keep) => bytes.truncate(at(keep)),
        Damage::Flip(position, x) => {
            let i = at(position).min(bytes.len() - 1);
            bytes[i] ^= x;
        }
    }
    bytes
}

/// Follows `target` from the directory of `link` through the model's links, as the kernel
/// would; `false` when it leaves the root (also through a missing component), is absolute,
/// or loops.
fn resolves_inside(tree: &BTreeMap<String, Node>, link: &str, target: &str) -> bool {
    let mut current: Vec<String> = link.split('/').map(str::to_owned).collect();
    current.pop();
    let mut pending: Vec<String> = Vec::new();
    let push = |pending: &mut Vec<String>, target: &str| {
        if target.is_empty() || target.starts_with('/') {
            return false;
        }
        pending.extend(target.split('/').rev().map(str::to_owned));
        true
    };
    if !push(&mut pending, target) {
        return false;
    }
    let mut hops = 0;
    while let Some(c) = pending.pop() {
        match c.as_str() {
            "" | "." => {}
            ".." => {
                if current.pop().is_none() {
                    return false;
                }
            }
            _ => {
                current.push(c);
                if let Some(Node::Link(next)) = tree.get(&current.join("/")) {
                    hops += 1;
                    current.pop();
                    if hops > 40 || !push(&mut pending, next) {
                        return false;
                    }
                }
            }
        }
    }
    true
}

/// What extraction must produce: the tree, or `None` for "refused".
fn model(case: &Case) -> Option<BTreeMap<String, Node>> {
    let mut tree = BTreeMap::new();
    let mut count = 0u64;
    let mut bytes = 0u64;
    for entry in &case.entries {
        if entry.name.starts_with('/') || entry.name.starts_with(OUTSIDE) {
            return None;
        }
        let parts: Vec<&str> = entry
            .name
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        if parts.contains(&"..") {
            return None;
        }
        if parts.is_empty() {
            continue;
        }
        count += 1;
        if count > case.max_files {
            return None;
        }
        // Implied directories count as entries too.
        for i in 1..parts.len() {
            match tree.get(&parts[..i].join("/")) {
                Some(Node::Dir) => {}
                Some(_) => return None,
                None => {
                    count += 1;
                    tree.insert(parts[..i].join("/"), Node::Dir);
                }
            }
        }
        if count > case.max_files {
            return None;
        }
        let path = parts.join("/");
        let existing = tree.get(&path);
        match &entry.kind {
            Kind::File { data, executable } => {
                bytes += data.len() as u64;
                if bytes > case.max_bytes || existing == Some(&Node::Dir) {
                    return None;
                }
                let node = Node::File {
                    data: data.clone(),
                    executable: *executable,
                };
                tree.insert(path, node);
            }
            Kind::Dir => match existing {
                Some(Node::Dir) => {}
                Some(_) => return None,
                None => {
                    tree.insert(path, Node::Dir);
                }
            },
            Kind::Symlink(target) => {
                // Lexically inside (as written), and not replacing a directory.
                let lexical = BTreeMap::new();
                let target = &target.replace(OUTSIDE, "/outside");
                if !resolves_inside(&lexical, &path, target) || existing == Some(&Node::Dir) {
                    return None;
                }
                tree.insert(path, Node::Link(target.clone()));
            }
            Kind::Hardlink(_) | Kind::Char | Kind::Block | Kind::Fifo => return None,
        }
    }
    // Through each other, the links must still stay inside.
    let links: Vec<(String, String)> = tree
        .iter()
        .filter_map(|(p, n)| match n {
            Node::Link(t) => Some((p.clone(), t.clone())),
            _ => None,
        })
        .collect();
    if links.iter().any(|(p, t)| !resolves_inside(&tree, p, t)) {
        return None;
    }
    Some(tree)
}

/// Everything under `dir` as sorted relative names (no link is followed).
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(dir.join(&rel)).expect("read_dir") {
            let entry = entry.expect("entry");
            let rel = rel.join(entry.file_name());
            if entry.file_type().expect("type").is_dir() {
                stack.push(rel.clone());
            }
            out.push(rel.to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

const LABELS: [&str; 4] = [
    "UnsafeArchiveEntry",
    "ArtifactTooLarge",
    "InvalidArchive",
    "ArtifactStorage",
];

fn hostile(case: Case) -> Result<(), TestCaseError> {
    let sandbox = tempfile::tempdir().expect("sandbox");
    let outside = sandbox.path().join("outside");
    std::fs::create_dir(&outside).expect("outside");
    std::fs::write(outside.join("secret"), "keep").expect("secret");
    let dest = sandbox.path().join("dest");
    std::fs::create_dir(&dest).expect("dest");
    let file = sandbox.path().join("a.tar.gz");
    std::fs::write(&file, archive(&case, &outside.to_string_lossy())).expect("archive");
    let limits = Limits {
        max_download_bytes: u64::MAX,
        max_extracted_bytes: case.max_bytes,
        max_files: case.max_files,
    };
    let result = extract(&file, &dest, &limits);

    // Whatever happened: nothing outside `dest` changed...
    prop_assert_eq!(
        listing(sandbox.path())
            .into_iter()
            .filter(|p| !p.starts_with("dest/"))
            .collect::<Vec<_>>(),
        vec!["a.tar.gz", "dest", "outside", "outside/secret"]
    );
    prop_assert_eq!(
        std::fs::read_to_string(outside.join("secret")).expect("secret"),
        "keep"
    );
    // ...no link that resolves leads out (the kernel decides)...
    let tree = read_tree(&dest, result.is_ok())?;
    let real_dest = dest.canonicalize().expect("dest");
    for (path, node) in &tree {
        if let Node::Link(target) = node
            && let Ok(resolved) = dest.join(path).canonicalize()
        {
            prop_assert!(
                resolved.starts_with(&real_dest),
                "link {path} -> {target} resolves to {} (result {result:?})",
                resolved.display()
            );
        }
    }
    // ...and the limits hold.
    let written: u64 = tree
        .values()
        .map(|n| match n {
            Node::File { data, .. } => data.len() as u64,
            _ => 0,
        })
        .sum();
    prop_assert!(written <= case.max_bytes, "{written} bytes written");
    prop_assert!(
        tree.len() as u64 <= case.max_files,
        "{} entries",
        tree.len()
    );

    if let Err(e) = &result {
        let message = e.to_string();
        prop_assert!(LABELS.contains(&e.label()), "unexpected error {e:?}");
        prop_assert!(!message.trim().is_empty());
        // A flipped byte can rename an entry: the error then rightly names it as the damaged
        // archive holds it, so the names are compared only for undamaged archives.
        if let ArtifactError::UnsafeEntry { entry, .. } = e
            && matches!(case.damage, Damage::None)
        {
            prop_assert!(
                case.entries.iter().any(|x| x.name.replace(OUTSIDE, "")
                    == entry.replace(&*outside.to_string_lossy(), "")),
                "the error names no entry of the archive: {message}"
            );
        }
    }
    if matches!(case.damage, Damage::None) {
        match (model(&case), result) {
            (Some(expected), Ok(())) => prop_assert_eq!(tree, expected),
            (None, Err(_)) => {}
            (Some(expected), Err(e)) => {
                prop_assert!(false, "refused ({e}) but the model expects {expected:?}")
            }
            (None, Ok(())) => prop_assert!(false, "accepted, the model refuses: {tree:?}"),
        }
    }
    Ok(())
}

#[test]
fn hostile_archives_never_escape_and_match_the_model() {
    check(
        &Property {
            scenario: "property: artifact extraction, hostile archives",
            regressions: concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/proptest-regressions/faults_props_extract/hostile.txt"
            ),
            short_cases: 400,
        },
        case(),
        hostile,
    );
}
