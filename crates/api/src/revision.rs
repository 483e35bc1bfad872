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

#[cfg(test)]
mod tests {
    use super::*;

    const SHA1: &str = "0123456789abcdef0123456789abcdef01234567";
    const SHA256: &str = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

    fn parse(input: &str) -> Revision {
        input.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn parses_named_revisions() {
        for name in [
            "main",
            "v1.2.3",
            "refs/heads/main",
            "refs/pull/420/head",
            "feature/a@b",
        ] {
            let revision = parse(&format!("{name}@sha1:{SHA1}"));
            assert_eq!(revision.name(), Some(name));
            assert_eq!(revision.commit(), SHA1);
            assert_eq!(revision.algorithm(), CommitAlgorithm::Sha1);
        }
    }

    #[test]
    fn parses_bare_and_sha256_revisions() {
        let bare = parse(&format!("sha1:{SHA1}"));
        assert_eq!(bare.name(), None);
        assert_eq!(bare.commit(), SHA1);
        let sha256 = parse(&format!("main@sha256:{SHA256}"));
        assert_eq!(sha256.algorithm(), CommitAlgorithm::Sha256);
        assert_eq!(sha256.commit(), SHA256);
    }

    #[test]
    fn formats_back_to_the_same_text() {
        for text in [
            format!("main@sha1:{SHA1}"),
            format!("sha1:{SHA1}"),
            format!("v1@sha256:{SHA256}"),
        ] {
            assert_eq!(parse(&text).to_string(), text);
        }
    }

    #[test]
    fn builds_from_a_commit() {
        let revision = Revision::new(Some("main"), &SHA1.to_uppercase()).expect("valid");
        assert_eq!(revision.to_string(), format!("main@sha1:{SHA1}"));
        assert_eq!(revision.short_commit(), "0123456");
        let bare = Revision::new(None, SHA256).expect("valid");
        assert_eq!(bare.to_string(), format!("sha256:{SHA256}"));
        assert!(Revision::new(Some(""), SHA1).is_err());
        assert!(Revision::new(None, "abc").is_err());
        assert!(Revision::new(None, &"g".repeat(40)).is_err());
    }

    #[test]
    fn rejects_malformed_revisions() {
        for bad in [
            String::new(),
            SHA1.to_owned(),
            format!("main/{SHA1}"),
            format!("@sha1:{SHA1}"),
            format!("main@md5:{SHA1}"),
            format!("main@sha1:{}", &SHA1[..39]),
            format!("main@sha256:{SHA1}"),
            format!("main@sha1:{}z", &SHA1[..39]),
            "main@sha1:".to_owned(),
        ] {
            assert!(
                bad.parse::<Revision>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn extracts_the_commit() {
        assert_eq!(
            commit_of(&format!("refs/heads/main@sha1:{SHA1}")).as_deref(),
            Some(SHA1)
        );
        assert_eq!(commit_of("main"), None);
    }

    #[test]
    fn error_names_the_input() {
        let error = "main@sha1:xyz".parse::<Revision>().expect_err("invalid");
        assert!(error.to_string().contains("\"main@sha1:xyz\""), "{error}");
    }
}
