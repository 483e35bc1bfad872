//! Reading the commit's tree straight from git objects (no checkout): which entries go into
//! the artifact, after `.sourceignore`/`spec.ignore` and the sparse-checkout directories.

use gix::objs::tree::EntryKind;

use super::ArchiveError;
use super::entries::{Entries, Node, Source};
use super::ignore::{IgnoreRules, SOURCE_IGNORE_FILE};
use super::paths::{as_path, display, is_under, join, strictly_under};

/// Trees nested deeper than this are refused rather than recursed into.
const MAX_DEPTH: usize = 512;

/// Walks `tree` and fills `entries` with what the artifact keeps.
pub struct TreeWalk<'a> {
    repo: &'a gix::Repository,
    rules: IgnoreRules,
    /// Normalised sparse-checkout directories; empty means the whole tree.
    sparse: &'a [Vec<u8>],
    entries: &'a mut Entries,
}

impl<'a> TreeWalk<'a> {
    /// A walk of `repo`'s objects with these rules.
    pub fn new(
        repo: &'a gix::Repository,
        rules: IgnoreRules,
        sparse: &'a [Vec<u8>],
        entries: &'a mut Entries,
    ) -> Self {
        Self {
            repo,
            rules,
            sparse,
            entries,
        }
    }

    /// Checks that every sparse directory exists as a directory of `tree`.
    pub fn check_sparse_dirs(&self, tree: &gix::Tree<'_>) -> Result<(), ArchiveError> {
        for dir in self.sparse {
            let entry = tree.lookup_entry_by_path(as_path(dir)).map_err(|source| {
                ArchiveError::ReadObject {
                    id: tree.id.to_string(),
                    source,
                }
            })?;
            if !entry.is_some_and(|e| e.mode().is_tree()) {
                return Err(ArchiveError::SparseDirMissing { dir: display(dir) });
            }
        }
        Ok(())
    }

    /// Walks the tree from its root.
    pub fn walk(mut self, root: gix::ObjectId) -> Result<(), ArchiveError> {
        self.visit(root, &[], 0)
    }

    /// Whether files directly in `dir` belong in the artifact.
    fn keeps_files_of(&self, dir: &[u8]) -> bool {
        self.sparse.is_empty() || self.sparse.iter().any(|s| is_under(dir, s))
    }

    /// Whether the walk must enter the subdirectory `dir`: it is kept, or leads to a kept one.
    fn enters(&self, dir: &[u8]) -> bool {
        self.keeps_files_of(dir) || self.sparse.iter().any(|s| strictly_under(s, dir))
    }

    fn visit(&mut self, id: gix::ObjectId, dir: &[u8], depth: usize) -> Result<(), ArchiveError> {
        if depth > MAX_DEPTH {
            return Err(ArchiveError::TreeTooDeep {
                path: display(dir),
                limit: MAX_DEPTH,
            });
        }
        let tree = self
            .repo
            .find_tree(id)
            .map_err(|source| read_error(id, source))?;
        let decoded = tree.decode().map_err(|source| read_error(id, source))?;
        let keep_files = self.keeps_files_of(dir);

        let ignore_file = decoded
            .entries
            .iter()
            .find(|e| e.filename == SOURCE_IGNORE_FILE && matches!(e.mode.kind(), EntryKind::Blob));
        if let Some(file) = ignore_file {
            let content = self.read_blob(file.oid.to_owned())?;
            self.rules.enter(dir, &content)?;
        }

        for entry in &decoded.entries {
            let name: &[u8] = entry.filename.as_ref();
            let path = join(dir, name);
            if !valid_name(name) {
                return Err(ArchiveError::InvalidTreeEntry {
                    path: display(&path),
                });
            }
            // Never ship repository metadata, whatever the rules say: a consumer that runs git
            // in the extracted tree would obey it.
            if name.eq_ignore_ascii_case(b".git") {
                continue;
            }
            let oid = entry.oid.to_owned();
            match entry.mode.kind() {
                EntryKind::Tree => {
                    if !self.enters(&path) || self.rules.is_ignored(&path, true) {
                        continue;
                    }
                    self.entries.insert(path.clone(), Node::Dir);
                    self.visit(oid, &path, depth + 1)?;
                }
                EntryKind::Blob | EntryKind::BlobExecutable => {
                    if keep_files && !self.rules.is_ignored(&path, false) {
                        let executable = matches!(entry.mode.kind(), EntryKind::BlobExecutable);
                        let source = Source::Blob(oid);
                        self.entries.insert(path, Node::File { executable, source });
                    }
                }
                EntryKind::Link => {
                    if keep_files && !self.rules.is_ignored(&path, false) {
                        let target = self.read_blob(oid)?;
                        self.entries.insert(path, Node::Symlink { target });
                    }
                }
                // Submodules are not part of this repository's content.
                EntryKind::Commit => {}
            }
        }

        if ignore_file.is_some() {
            self.rules.leave();
        }
        Ok(())
    }

    fn read_blob(&self, id: gix::ObjectId) -> Result<Vec<u8>, ArchiveError> {
        let mut blob = self
            .repo
            .find_blob(id)
            .map_err(|source| read_error(id, source))?;
        Ok(blob.take_data())
    }
}

fn read_error(id: gix::ObjectId, source: gix::Error) -> ArchiveError {
    ArchiveError::ReadObject {
        id: id.to_string(),
        source,
    }
}

/// git itself refuses these names; a crafted tree could still carry them.
fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name != b"."
        && name != b".."
        && !name.iter().any(|b| *b == b'/' || *b == b'\\' || *b == 0)
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn tree_names_that_could_escape_are_invalid() {
        for bad in [&b""[..], b".", b"..", b"a/b", b"a\\b", b"a\0"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        assert!(valid_name(b"..."));
        assert!(valid_name(b".sourceignore"));
    }
}
