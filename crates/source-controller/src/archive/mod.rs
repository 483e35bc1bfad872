//! The artifact: a deterministic `.tar.gz` of one commit's tree, read from git objects.
//!
//! Steps: check the options; walk the commit's tree with the ignore rules and sparse
//! directories ([`tree`]); place included artifacts over it ([`include`]); drop symlinks that
//! leave the tree ([`entries`]); write in byte order of the path ([`writer`]).
//!
//! Same commit and same options give byte-identical output, so the digest is stable across
//! runs, clones and restarts. Modes follow git, not Flux: directories and executables 0755,
//! other files 0644 (Flux writes 0750/0700/0600); consumers extract as their own user, and git
//! records no other modes. Symlinks that stay inside the tree are kept as symlink entries
//! (Flux drops all of them); the others are dropped and reported.

mod entries;
mod ignore;
mod include;
mod paths;
pub mod shared;
mod tree;
mod writer;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub use self::ignore::{DEFAULT_PATTERNS, SOURCE_IGNORE_FILE, VCS_PATTERNS};
pub use self::paths::{PathProblem, normalize_relative};
pub use self::writer::{COMPRESSION_LEVEL, DIR_MODE, EXECUTABLE_MODE, FILE_MODE, SYMLINK_MODE};

use self::entries::Entries;
use self::ignore::IgnoreRules;
use self::include::{IncludeLoader, IncludePaths};
use self::tree::TreeWalk;

/// What goes into the artifact besides the commit itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ArchiveOptions {
    /// `spec.ignore`: gitignore-syntax rules. When set, they replace Flux's default exclusions
    /// (the VCS files stay excluded unless re-included); `.sourceignore` files apply either way.
    pub ignore: Option<String>,
    /// `spec.sparseCheckout`: only these directories (a leading `./` is ignored) are archived,
    /// with their parent directories as entries; `.sourceignore` files of those parents still
    /// apply. Each must exist in the commit.
    pub sparse_checkout: Vec<String>,
    /// `spec.include`: other artifacts placed into this one, later ones over earlier ones.
    pub includes: Vec<IncludeSource>,
    /// Largest allowed artifact, in compressed bytes.
    pub max_size: Option<u64>,
    /// Largest total of file bytes extracted from all included artifacts.
    pub max_include_size: Option<u64>,
    /// Largest single file (git blob) read into memory. A larger one is copied as a stream
    /// when a pack stores it whole, and fails the archive, naming the file, otherwise.
    pub max_file_size: Option<u64>,
}

/// One included artifact.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IncludeSource {
    /// The included GitRepository's stored `.tar.gz`.
    pub archive: PathBuf,
    /// Only this path of the included artifact (default: all of it).
    pub from_path: Option<String>,
    /// Where it goes in this artifact; relative, inside the tree (`.` is the root).
    pub to_path: String,
}

/// What was archived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveSummary {
    /// `sha256:<hex>` of the compressed bytes.
    pub digest: String,
    /// Number of compressed bytes.
    pub size: u64,
    /// Number of regular files in the archive.
    pub files: u64,
    /// Symlinks left out because their target leaves the tree, sorted.
    pub dropped_symlinks: Vec<String>,
}

/// Why an artifact could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A sparse-checkout directory is absolute or escapes with `..`.
    #[error("invalid sparse checkout directory {path:?}: {reason}")]
    InvalidSparseDir { path: String, reason: &'static str },
    /// An include's `fromPath` or `toPath` is absolute or escapes with `..`.
    #[error("illegal include path {path:?}: {reason}")]
    IllegalPath { path: String, reason: &'static str },
    /// A rule of `spec.ignore` or of a `.sourceignore` file does not compile.
    #[error("invalid ignore pattern in {origin} line {line}: {message}")]
    InvalidIgnorePattern {
        origin: String,
        line: usize,
        message: String,
    },
    /// The git repository could not be opened.
    #[error("open git repository {path}: {source}")]
    OpenRepository { path: PathBuf, source: gix::Error },
    /// The commit is not a full hex object id.
    #[error("invalid commit id {commit:?}: expected a full hex SHA")]
    InvalidCommit { commit: String },
    /// The commit is not in the repository.
    #[error("resolve commit {commit:?}: {source}")]
    ResolveCommit { commit: String, source: gix::Error },
    /// A tree or blob could not be read.
    #[error("read git object {id}: {source}")]
    ReadObject { id: String, source: gix::Error },
    /// A blob stored whole in a pack could not be read from it as a stream.
    #[error("read {path:?} (git object {id}) from its pack: {source}")]
    ReadPackedObject {
        path: String,
        id: String,
        source: io::Error,
    },
    /// The tree has a name git would refuse (`..`, a slash, NUL).
    #[error("the commit's tree has an invalid entry name at {path:?}")]
    InvalidTreeEntry { path: String },
    /// Trees nest deeper than the walk allows.
    #[error("the commit's tree is nested deeper than {limit} directories at {path:?}")]
    TreeTooDeep { path: String, limit: usize },
    /// A sparse-checkout directory does not exist in the commit.
    #[error("sparse checkout directory {dir:?} does not exist in the commit")]
    SparseDirMissing { dir: String },
    /// The scratch directory for included files could not be created or written.
    #[error("write included files to a scratch directory: {0}")]
    CreateScratch(io::Error),
    /// An extracted included file could not be read back.
    #[error("read an included file from the scratch directory: {0}")]
    ReadScratch(io::Error),
    /// An included artifact could not be read.
    #[error("read included artifact {archive}: {source}")]
    ReadInclude { archive: PathBuf, source: io::Error },
    /// An included artifact has an entry that cannot be placed.
    #[error("included artifact {archive} has an unusable entry {entry:?}: {reason}")]
    IncludeEntry {
        archive: PathBuf,
        entry: String,
        reason: &'static str,
    },
    /// An include's `fromPath` is not in the included artifact.
    #[error("included artifact {archive} has no path {from_path:?}")]
    IncludeFromPathMissing { archive: PathBuf, from_path: String },
    /// The included artifacts hold more file bytes than allowed.
    #[error("included artifacts exceed the limit of {limit} extracted bytes")]
    IncludeTooLarge { limit: u64 },
    /// A file is larger than `max_file_size` and not stored whole in a pack.
    #[error(
        "file {path:?} is {size} bytes, more than the {limit} bytes this controller reads into memory (--max-git-object-size)"
    )]
    FileTooLarge { path: String, size: u64, limit: u64 },
    /// The artifact grew past `max_size`.
    #[error("the artifact is too large: it exceeds the size limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// Writing the archive failed.
    #[error("write archive: {0}")]
    Write(io::Error),
}

impl ArchiveError {
    /// A stable short name of the failure, for metrics and event reasons.
    pub fn label(&self) -> &'static str {
        match self {
            Self::InvalidSparseDir { .. } => "InvalidSparseDir",
            Self::IllegalPath { .. } => "IllegalPath",
            Self::InvalidIgnorePattern { .. } => "InvalidIgnorePattern",
            Self::OpenRepository { .. } => "OpenRepository",
            Self::InvalidCommit { .. } => "InvalidCommit",
            Self::ResolveCommit { .. } => "ResolveCommit",
            Self::ReadObject { .. } | Self::ReadPackedObject { .. } => "ReadObject",
            Self::InvalidTreeEntry { .. } => "InvalidTreeEntry",
            Self::TreeTooDeep { .. } => "TreeTooDeep",
            Self::SparseDirMissing { .. } => "SparseDirMissing",
            Self::CreateScratch(_) => "CreateScratch",
            Self::ReadScratch(_) => "ReadScratch",
            Self::ReadInclude { .. } => "ReadInclude",
            Self::IncludeEntry { .. } => "IncludeEntry",
            Self::IncludeFromPathMissing { .. } => "IncludeFromPathMissing",
            Self::IncludeTooLarge { .. } => "IncludeTooLarge",
            Self::FileTooLarge { .. } => "FileTooLarge",
            Self::TooLarge { .. } => "TooLarge",
            Self::Write(_) => "Write",
        }
    }
}

/// Archives `commit` (a full hex SHA) of the git repository at
/// `repo_path` (bare or not; nothing is checked out) into `out`.
///
/// Blocking: run it on a blocking thread. Blobs are read one at a time and streamed through
/// the compressor; only paths and object ids are held for the whole tree.
pub fn build_archive(
    repo_path: &Path,
    commit: &str,
    options: &ArchiveOptions,
    out: &mut impl Write,
) -> Result<ArchiveSummary, ArchiveError> {
    let sparse = sparse_dirs(&options.sparse_checkout)?;
    let include_paths = options
        .includes
        .iter()
        .map(IncludePaths::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let rules = IgnoreRules::new(options.ignore.as_deref())?;

    // Isolated: no user or system git config, no environment; only the repository's objects.
    let overrides = options
        .max_file_size
        .map(crate::git::alloc_limit_override)
        .into_iter();
    let open = gix::open::Options::isolated().config_overrides(overrides);
    let repo = gix::open_opts(repo_path, open).map_err(|source| ArchiveError::OpenRepository {
        path: repo_path.to_path_buf(),
        source,
    })?;
    let resolve_error = |source| ArchiveError::ResolveCommit {
        commit: commit.to_string(),
        source,
    };
    let id =
        gix::ObjectId::from_hex(commit.as_bytes()).map_err(|_| ArchiveError::InvalidCommit {
            commit: commit.to_string(),
        })?;
    let tree = repo
        .find_commit(id)
        .map_err(resolve_error)?
        .tree()
        .map_err(resolve_error)?;

    let mut entries = Entries::default();
    let walk = TreeWalk::new(&repo, rules, &sparse, &mut entries);
    walk.check_sparse_dirs(&tree)?;
    walk.walk(tree.id)?;

    // The loader owns the scratch directory: it must outlive the writing below.
    let mut loader = IncludeLoader::new(options.max_include_size);
    for (include, paths) in options.includes.iter().zip(&include_paths) {
        loader.load(include, paths, &mut entries)?;
    }
    let dropped_symlinks = entries.drop_escaping_symlinks();

    let written = writer::write_archive(
        &repo,
        &entries,
        out,
        options.max_size,
        options.max_file_size,
    )?;
    Ok(ArchiveSummary {
        digest: written.digest,
        size: written.size,
        files: written.files,
        dropped_symlinks,
    })
}

/// Normalised sparse-checkout directories; the root (`.` or empty) means the whole tree.
fn sparse_dirs(dirs: &[String]) -> Result<Vec<Vec<u8>>, ArchiveError> {
    let mut out = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let normalized =
            normalize_relative(dir.as_bytes()).map_err(|p| ArchiveError::InvalidSparseDir {
                path: dir.clone(),
                reason: p.describe(),
            })?;
        if normalized.is_empty() {
            return Ok(Vec::new());
        }
        out.push(normalized);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_dirs_strip_dot_slash_and_refuse_escapes() {
        let dirs = sparse_dirs(&["./apps/".into(), "infra".into()]).expect("valid");
        assert_eq!(dirs, vec![b"apps".to_vec(), b"infra".to_vec()]);
        assert!(
            sparse_dirs(&["./".into(), "x".into()])
                .expect("valid")
                .is_empty()
        );
        let err = sparse_dirs(&["../up".into()]).expect_err("escapes");
        assert_eq!(err.label(), "InvalidSparseDir");
    }

    #[test]
    fn too_large_names_the_limit() {
        let text = ArchiveError::TooLarge { limit: 1024 }.to_string();
        assert!(
            text.contains("1024") && text.contains("too large"),
            "{text}"
        );
    }
}
