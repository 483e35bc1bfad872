//! What the artifact property tests compare: an extracted tree read back from disk.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use proptest::prelude::*;

/// One entry of a tree: a directory, a file (content and execute bit) or a link (target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir,
    File { data: Vec<u8>, executable: bool },
    Link(String),
}

/// The tree on disk, relative to `root`; fails on a kind extraction must never create, and on
/// a writable file when `complete` (a failed extraction may leave the file it was writing).
pub fn read_tree(root: &Path, complete: bool) -> Result<BTreeMap<String, Node>, TestCaseError> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(root.join(&rel)).expect("read_dir") {
            let entry = entry.expect("entry");
            let rel = rel.join(entry.file_name());
            let key = rel.to_string_lossy().into_owned();
            let meta = std::fs::symlink_metadata(entry.path()).expect("metadata");
            let kind = meta.file_type();
            let node = if kind.is_dir() {
                stack.push(rel);
                Node::Dir
            } else if kind.is_symlink() {
                let target = std::fs::read_link(entry.path()).expect("read_link");
                Node::Link(target.to_string_lossy().into_owned())
            } else {
                prop_assert!(kind.is_file(), "{key}: a device file or FIFO was created");
                prop_assert_eq!(meta.nlink(), 1, "{}: a hard link was created", key);
                let mode = meta.permissions().mode();
                prop_assert!(!complete || mode & 0o222 == 0, "{key}: a file is writable");
                Node::File {
                    data: std::fs::read(entry.path()).expect("read"),
                    executable: mode & 0o111 != 0,
                }
            };
            out.insert(key, node);
        }
    }
    Ok(out)
}
