//! `spec.include`: the files of other artifacts, placed under a path of this one.
//!
//! Included files are copied out of their `.tar.gz` into a scratch directory (one file at a
//! time, with a byte budget), so the archive can be written in sorted order without holding
//! any content in memory. They are taken as they are: they already went through their own
//! repository's ignore rules, and this repository's rules do not apply to them.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use tar::EntryType;

use super::entries::{Entries, Node, Source};
use super::paths::{display, join, normalize_relative, strictly_under};
use super::{ArchiveError, IncludeSource};

/// Normalised `from_path` and `to_path` of an include, checked before any work is done.
#[derive(Debug, Clone)]
pub struct IncludePaths {
    from: Vec<u8>,
    to: Vec<u8>,
}

impl IncludePaths {
    /// Checks the paths: both must be relative and stay inside their tree.
    pub fn parse(include: &IncludeSource) -> Result<Self, ArchiveError> {
        let illegal = |path: &str, reason: &'static str| ArchiveError::IllegalPath {
            path: path.to_string(),
            reason,
        };
        let from = match &include.from_path {
            Some(from) => {
                normalize_relative(from.as_bytes()).map_err(|p| illegal(from, p.describe()))?
            }
            None => Vec::new(),
        };
        let to = normalize_relative(include.to_path.as_bytes())
            .map_err(|p| illegal(&include.to_path, p.describe()))?;
        Ok(Self { from, to })
    }

    /// Where an entry at `path` in the included artifact goes, if it is selected.
    fn destination(&self, path: &[u8]) -> Option<Vec<u8>> {
        let rest = if self.from.is_empty() {
            path
        } else if path == self.from.as_slice() {
            &[]
        } else if strictly_under(path, &self.from) {
            &path[self.from.len() + 1..]
        } else {
            return None;
        };
        Some(if rest.is_empty() {
            self.to.clone()
        } else {
            join(&self.to, rest)
        })
    }
}

/// Extracts included artifacts into a scratch directory that lives as long as the loader.
pub struct IncludeLoader {
    scratch: Option<tempfile::TempDir>,
    limit: Option<u64>,
    extracted: u64,
    files: u64,
}

impl IncludeLoader {
    /// A loader that extracts at most `limit` bytes of file content over all includes.
    pub fn new(limit: Option<u64>) -> Self {
        Self {
            scratch: None,
            limit,
            extracted: 0,
            files: 0,
        }
    }

    /// Places the selected entries of `include` into `entries`, over what is there.
    pub fn load(
        &mut self,
        include: &IncludeSource,
        paths: &IncludePaths,
        entries: &mut Entries,
    ) -> Result<(), ArchiveError> {
        let archive_path = include.archive.as_path();
        let read_error = |source: io::Error| ArchiveError::ReadInclude {
            archive: archive_path.to_path_buf(),
            source,
        };
        let file = File::open(archive_path).map_err(read_error)?;
        let mut archive = tar::Archive::new(GzDecoder::new(BufReader::new(file)));
        let mut found = paths.from.is_empty();
        for entry in archive.entries().map_err(read_error)? {
            let mut entry = entry.map_err(read_error)?;
            let raw = entry.path_bytes().into_owned();
            let bad_entry = |reason: &'static str| ArchiveError::IncludeEntry {
                archive: archive_path.to_path_buf(),
                entry: display(&raw),
                reason,
            };
            let path = normalize_relative(&raw).map_err(|p| bad_entry(p.describe()))?;
            let has_git_dir = path
                .split(|b| *b == b'/')
                .any(|c| c.eq_ignore_ascii_case(b".git"));
            if path.is_empty() || has_git_dir {
                continue;
            }
            let Some(destination) = paths.destination(&path) else {
                continue;
            };
            found = true;
            let node = match entry.header().entry_type() {
                EntryType::Directory => Node::Dir,
                EntryType::Regular | EntryType::Continuous => {
                    let mode = entry.header().mode().map_err(read_error)?;
                    let scratch = self.extract(&mut entry, archive_path)?;
                    Node::File {
                        executable: mode & 0o111 != 0,
                        source: Source::Scratch(scratch),
                    }
                }
                EntryType::Symlink => {
                    let target = entry
                        .link_name_bytes()
                        .ok_or_else(|| bad_entry("a symlink without a target"))?;
                    Node::Symlink {
                        target: target.into_owned(),
                    }
                }
                _ => return Err(bad_entry("not a file, directory or symlink")),
            };
            if destination.is_empty() {
                if node == Node::Dir {
                    continue;
                }
                return Err(ArchiveError::IllegalPath {
                    path: include.to_path.clone(),
                    reason: "a single file cannot replace the artifact root",
                });
            }
            entries.place(destination, node);
        }
        if !found {
            return Err(ArchiveError::IncludeFromPathMissing {
                archive: archive_path.to_path_buf(),
                from_path: display(&paths.from),
            });
        }
        Ok(())
    }

    /// Copies one entry's content to a new scratch file, within the byte budget.
    fn extract(&mut self, entry: &mut impl Read, archive: &Path) -> Result<PathBuf, ArchiveError> {
        let scratch = match &self.scratch {
            Some(dir) => dir,
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("mooring-include-")
                    .tempdir()
                    .map_err(ArchiveError::CreateScratch)?;
                self.scratch.insert(dir)
            }
        };
        let path = scratch.path().join(self.files.to_string());
        self.files += 1;
        let mut out = File::create(&path).map_err(ArchiveError::CreateScratch)?;
        let remaining = self.limit.map(|l| l.saturating_sub(self.extracted));
        // One byte over the budget is enough to know it is exceeded.
        let allowed = remaining.map_or(u64::MAX, |r| r.saturating_add(1));
        let copied = io::copy(&mut entry.take(allowed), &mut out).map_err(|source| {
            ArchiveError::ReadInclude {
                archive: archive.to_path_buf(),
                source,
            }
        })?;
        if let (Some(limit), Some(remaining)) = (self.limit, remaining)
            && copied > remaining
        {
            return Err(ArchiveError::IncludeTooLarge { limit });
        }
        self.extracted += copied;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn include(from: Option<&str>, to: &str) -> IncludeSource {
        IncludeSource {
            archive: PathBuf::from("/unused.tar.gz"),
            from_path: from.map(str::to_string),
            to_path: to.to_string(),
        }
    }

    fn dest(paths: &IncludePaths, path: &str) -> Option<String> {
        paths.destination(path.as_bytes()).map(|d| display(&d))
    }

    #[test]
    fn from_and_to_paths_map_entries() {
        let paths = IncludePaths::parse(&include(Some("./deploy/"), "vendor/a")).expect("legal");
        assert_eq!(
            dest(&paths, "deploy/app.yaml").as_deref(),
            Some("vendor/a/app.yaml")
        );
        assert_eq!(dest(&paths, "deploy").as_deref(), Some("vendor/a"));
        assert_eq!(dest(&paths, "deployment/x"), None);
        assert_eq!(dest(&paths, "other.yaml"), None);

        let whole = IncludePaths::parse(&include(None, "lib")).expect("legal");
        assert_eq!(dest(&whole, "a/b").as_deref(), Some("lib/a/b"));
        let root = IncludePaths::parse(&include(None, ".")).expect("legal");
        assert_eq!(dest(&root, "a/b").as_deref(), Some("a/b"));
    }

    #[test]
    fn escaping_paths_are_illegal() {
        for (from, to) in [
            (None, "../x"),
            (None, "/abs"),
            (None, "a/../../x"),
            (Some("../up"), "x"),
            (Some("/etc"), "x"),
        ] {
            let err = IncludePaths::parse(&include(from, to)).expect_err("illegal");
            assert_eq!(err.label(), "IllegalPath", "{from:?} {to:?}");
        }
    }
}
