//! Source revisions: `[<named pointer>@]<algorithm>:<commit>`, for example
//! `main@sha1:<40 hex>`, `v1.2.3@sha1:<40 hex>`, `refs/heads/main@sha1:<40 hex>` or a bare
//! `sha1:<40 hex>`.

use std::fmt;
use std::str::FromStr;

/// Hash algorithm of a git object id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommitAlgorithm {
    /// SHA-1, 40 hex digits (the common git object format).
    Sha1,
    /// SHA-256, 64 hex digits (git's newer object format).
    Sha256,
}

impl CommitAlgorithm {
    /// The algorithm's name in a revision.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
        }
    }

    /// Number of hex digits of an object id.
    pub fn hex_len(self) -> usize {
        match self {
            Self::Sha1 => 40,
            Self::Sha256 => 64,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha1" => Some(Self::Sha1),
            "sha256" => Some(Self::Sha256),
            _ => None,
        }
    }

    fn from_hex_len(len: usize) -> Option<Self> {
        match len {
            40 => Some(Self::Sha1),
            64 => Some(Self::Sha256),
            _ => None,
        }
    }
}

/// Why a revision string or commit id was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevisionError {
    input: String,
    problem: &'static str,
}

impl fmt::Display for RevisionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid revision {:?}: {}", self.input, self.problem)
    }
}

impl std::error::Error for RevisionError {}

/// A commit, optionally named by the branch, tag or reference it was resolved from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Revision {
    name: Option<String>,
    algorithm: CommitAlgorithm,
    commit: String,
}

impl Revision {
    /// A revision for `commit` (40 or 64 hex digits, any case), named by `name` when given.
    pub fn new(name: Option<&str>, commit: &str) -> Result<Self, RevisionError> {
        let error = |problem| RevisionError {
            input: commit.to_owned(),
            problem,
        };
        let algorithm = CommitAlgorithm::from_hex_len(commit.len())
            .ok_or_else(|| error("a commit id has 40 (sha1) or 64 (sha256) hex digits"))?;
        let commit = normalize_hex(commit).ok_or_else(|| error("a commit id is hexadecimal"))?;
        let name = match name {
            Some("") => return Err(error("the name before '@' is empty")),
            Some(name) => Some(name.to_owned()),
            None => None,
        };
        Ok(Self {
            name,
            algorithm,
            commit,
        })
    }

    /// The branch, tag or reference name, if any (`main`, `v1.2.3`, `refs/heads/main`).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The commit id, in lower-case hex.
    pub fn commit(&self) -> &str {
        &self.commit
    }

    /// The hash algorithm of the commit id.
    pub fn algorithm(&self) -> CommitAlgorithm {
        self.algorithm
    }

    /// The first 7 hex digits of the commit, as `git log --oneline` shows it.
    pub fn short_commit(&self) -> &str {
        &self.commit[..7]
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.name {
            write!(f, "{name}@")?;
        }
        write!(f, "{}:{}", self.algorithm.as_str(), self.commit)
    }
}

impl FromStr for Revision {
    type Err = RevisionError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let error = |problem| RevisionError {
            input: input.to_owned(),
            problem,
        };
        // The hash part never contains '@', while a reference name may.
        let (name, hash) = match input.rsplit_once('@') {
            Some((name, hash)) => (Some(name), hash),
            None => (None, input),
        };
        if name == Some("") {
            return Err(error("the name before '@' is empty"));
        }
        let (algorithm, commit) = hash
            .split_once(':')
            .ok_or_else(|| error("expected <algorithm>:<commit>"))?;
        let algorithm = CommitAlgorithm::from_name(algorithm)
            .ok_or_else(|| error("the algorithm is sha1 or sha256"))?;
        if commit.len() != algorithm.hex_len() {
            return Err(error("the commit id length does not match the algorithm"));
        }
        let commit = normalize_hex(commit).ok_or_else(|| error("a commit id is hexadecimal"))?;
        Ok(Self {
            name: name.map(str::to_owned),
            algorithm,
            commit,
        })
    }
}

/// The commit id of a revision string, or `None` when it is not a valid revision.
pub fn commit_of(revision: &str) -> Option<String> {
    revision.parse::<Revision>().ok().map(|r| r.commit)
}

/// Lower-cases `hex`, or returns `None` when it holds a non-hex character.
pub(crate) fn normalize_hex(hex: &str) -> Option<String> {
    hex.bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then(|| hex.to_ascii_lowercase())
}
