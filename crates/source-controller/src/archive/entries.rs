//! The artifact's content before it is written: a sorted map from path to entry, the merge
//! rules for included artifacts, and the symlink containment check.

use std::collections::BTreeMap;
use std::path::PathBuf;

use mooring_runtime::links::link_stays_inside;

use super::paths::{ancestors, display};

/// Where a file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A blob of the archived commit.
    Blob(gix::ObjectId),
    /// A file extracted from an included artifact into the scratch directory.
    Scratch(PathBuf),
}

/// One entry of the artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A directory.
    Dir,
    /// A regular file.
    File {
        /// Whether any execute bit is set.
        executable: bool,
        /// Where the content is read from when the entry is written.
        source: Source,
    },
    /// A symbolic link, with its target exactly as stored.
    Symlink {
        /// The link target.
        target: Vec<u8>,
    },
}

/// Entries keyed by path; iteration is in byte order, which is the archive order.
#[derive(Debug, Default)]
pub struct Entries {
    map: BTreeMap<Vec<u8>, Node>,
}

impl Entries {
    /// Adds an entry from the walk of the commit (paths are unique there).
    pub fn insert(&mut self, path: Vec<u8>, node: Node) {
        self.map.insert(path, node);
    }

    /// Places an included entry, which wins over whatever is there: a file replaces a
    /// directory (and everything under it) or a file at the same path, and a file or link in
    /// the way of a directory becomes that directory. Missing parent directories are added.
    pub fn place(&mut self, path: Vec<u8>, node: Node) {
        for ancestor in ancestors(&path) {
            if self.map.get(ancestor) != Some(&Node::Dir) {
                self.map.insert(ancestor.to_vec(), Node::Dir);
            }
        }
        if node == Node::Dir {
            if self.map.get(&path) != Some(&Node::Dir) {
                self.map.insert(path, Node::Dir);
            }
            return;
        }
        // Everything below `path` sorts between `path/` and `path0` ('0' follows '/').
        let mut lower = path.clone();
        lower.push(b'/');
        let mut upper = path.clone();
        upper.push(b'/' + 1);
        let below: Vec<Vec<u8>> = self
            .map
            .range(lower..upper)
            .map(|(k, _)| k.clone())
            .collect();
        for key in below {
            self.map.remove(&key);
        }
        self.map.insert(path, node);
    }

    /// Removes the symlinks whose target leaves the tree; returns their paths, sorted.
    pub fn drop_escaping_symlinks(&mut self) -> Vec<String> {
        let escaping: Vec<Vec<u8>> = self
            .map
            .iter()
            .filter_map(|(path, node)| match node {
                Node::Symlink { target } if !self.stays_inside(path, target) => Some(path.clone()),
                _ => None,
            })
            .collect();
        for path in &escaping {
            self.map.remove(path);
        }
        escaping.iter().map(|p| display(p)).collect()
    }

    /// Whether following the link at `link` to `target` ends inside the tree, through the
    /// artifact's own links (see [`mooring_runtime::links::link_stays_inside`]).
    fn stays_inside(&self, link: &[u8], target: &[u8]) -> bool {
        link_stays_inside(link, target, |path| match self.map.get(path) {
            Some(Node::Symlink { target }) => Some(target.clone()),
            _ => None,
        })
    }

    /// The number of entries.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// The entries in archive order.
    pub fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &Node)> {
        self.map.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Node {
        Node::File {
            executable: false,
            source: Source::Scratch(PathBuf::from("/scratch/0")),
        }
    }

    fn link(target: &str) -> Node {
        Node::Symlink {
            target: target.as_bytes().to_vec(),
        }
    }

    fn tree(items: &[(&str, Node)]) -> Entries {
        let mut entries = Entries::default();
        for (path, node) in items {
            entries.insert(path.as_bytes().to_vec(), node.clone());
        }
        entries
    }

    fn paths(entries: &Entries) -> Vec<String> {
        entries.iter().map(|(p, _)| display(p)).collect()
    }

    #[test]
    fn iteration_is_byte_order_not_tree_order() {
        let entries = tree(&[
            ("a", Node::Dir),
            ("a/b", file()),
            ("a.txt", file()),
            ("B", file()),
            ("a-z", file()),
        ]);
        assert_eq!(paths(&entries), ["B", "a", "a-z", "a.txt", "a/b"]);
    }

    #[test]
    fn links_inside_the_tree_are_kept() {
        let mut entries = tree(&[
            ("v2", Node::Dir),
            ("v2/app.yaml", file()),
            ("current", link("v2")),
            ("sub", Node::Dir),
            ("sub/up", link("../v2/app.yaml")),
            ("sub/root", link("..")),
            ("sub/dangling", link("missing/file")),
            ("chain", link("current/app.yaml")),
        ]);
        assert!(entries.drop_escaping_symlinks().is_empty());
        assert_eq!(entries.len(), 8);
    }

    #[test]
    fn links_leaving_the_tree_are_dropped_and_listed() {
        let mut entries = tree(&[
            ("abs", link("/etc/passwd")),
            ("up", link("../outside")),
            ("sub", Node::Dir),
            ("sub/deep", link("../../x")),
            ("sub/sneaky", link("a/../../../x")),
            ("empty", link("")),
            ("keep", link("sub")),
        ]);
        let dropped = entries.drop_escaping_symlinks();
        assert_eq!(dropped, ["abs", "empty", "sub/deep", "sub/sneaky", "up"]);
        assert_eq!(paths(&entries), ["keep", "sub"]);
    }

    #[test]
    fn links_are_expanded_before_dot_dot() {
        // `here -> .` then `out -> here/..` is the parent of the root once `here` is followed.
        let mut entries = tree(&[
            ("here", link(".")),
            ("out", link("here/..")),
            ("d", Node::Dir),
            ("d/self", link(".")),
            ("d/out", link("self/../..")),
            ("d/in", link("self/..")),
        ]);
        let dropped = entries.drop_escaping_symlinks();
        assert_eq!(dropped, ["d/out", "out"]);
    }

    #[test]
    fn links_through_escaping_links_and_loops_are_dropped() {
        let mut entries = tree(&[
            ("bad", link("/etc")),
            ("via", link("bad/passwd")),
            ("loop1", link("loop2")),
            ("loop2", link("loop1")),
            ("self", link("self")),
        ]);
        let dropped = entries.drop_escaping_symlinks();
        assert_eq!(dropped, ["bad", "loop1", "loop2", "self", "via"]);
    }

    #[test]
    fn placed_file_replaces_directory_subtree() {
        let mut entries = tree(&[
            ("vendor", Node::Dir),
            ("vendor/a", Node::Dir),
            ("vendor/a/x.yaml", file()),
            ("vendor/a-b", file()),
        ]);
        entries.place(b"vendor/a".to_vec(), file());
        assert_eq!(paths(&entries), ["vendor", "vendor/a", "vendor/a-b"]);
        assert_eq!(entries.map.get(&b"vendor/a"[..]), Some(&file()));
    }

    #[test]
    fn placed_file_replaces_subtree_without_an_entry_of_its_own() {
        let mut entries = tree(&[("a/x", file()), ("a-b", file()), ("a0", file())]);
        entries.place(b"a".to_vec(), file());
        assert_eq!(paths(&entries), ["a", "a-b", "a0"]);
    }

    #[test]
    fn placed_entry_turns_blocking_file_into_directory() {
        let mut entries = tree(&[("vendor", file()), ("z", file())]);
        entries.place(b"vendor/lib/x.yaml".to_vec(), file());
        assert_eq!(
            paths(&entries),
            ["vendor", "vendor/lib", "vendor/lib/x.yaml", "z"]
        );
        assert_eq!(entries.map.get(&b"vendor"[..]), Some(&Node::Dir));
    }

    #[test]
    fn placed_directory_keeps_existing_content() {
        let mut entries = tree(&[("d", Node::Dir), ("d/x", file())]);
        entries.place(b"d".to_vec(), Node::Dir);
        assert_eq!(paths(&entries), ["d", "d/x"]);
    }
}
