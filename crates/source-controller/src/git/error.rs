//! What can go wrong while resolving or fetching, with the Flux condition reason of each.

use std::path::PathBuf;
use std::time::Duration;

use mooring_api::conditions::reasons;

use super::auth::AuthError;

/// A failed git operation. Messages carry the URL without its password and never a secret.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The Secret or proxy Secret cannot be used for this URL.
    #[error("{0}")]
    Auth(#[from] AuthError),
    /// The URL is not an http, https or ssh URL, or is malformed.
    #[error("invalid repository URL {url:?}: {why}")]
    UrlInvalid { url: String, why: String },
    /// The server rejected the credentials (HTTP 401/403, SSH "Permission denied").
    #[error("authentication to {url} failed: {detail}")]
    AuthenticationFailed { url: String, detail: String },
    /// The SSH server's host key is not in `known_hosts`.
    #[error(
        "the SSH host key of {host} is not in known_hosts (Secret key 'known_hosts'): {detail}"
    )]
    HostKeyUnknown { host: String, detail: String },
    /// The SSH server's host key differs from the one in `known_hosts`.
    #[error(
        "the SSH host key of {host} does not match the one in known_hosts (Secret key 'known_hosts'): it changed, or someone is intercepting the connection"
    )]
    HostKeyChanged { host: String },
    /// The TLS handshake failed (untrusted or invalid certificate).
    #[error("TLS connection to {url} failed: {detail}")]
    Tls { url: String, detail: String },
    /// The server could not be reached.
    #[error("cannot reach {url}: {detail}")]
    Unreachable { url: String, detail: String },
    /// The server answered that there is no such repository.
    #[error("repository {url} not found")]
    RepositoryNotFound { url: String },
    /// The operation took longer than the timeout.
    #[error("{operation} of {url} timed out after {after:?} ({setting})")]
    Timeout {
        operation: &'static str,
        url: String,
        after: Duration,
        /// The setting that gave the limit.
        setting: &'static str,
    },
    /// The caller cancelled the operation.
    #[error("{operation} of {url} was cancelled")]
    Cancelled {
        operation: &'static str,
        url: String,
    },
    /// The remote has no refs at all.
    #[error("repository {url} is empty: it has no branches or tags")]
    EmptyRepository { url: String },
    /// The branch, tag or reference does not exist on the remote.
    #[error("{kind} '{name}' not found in {url}{hint}")]
    RefNotFound {
        kind: &'static str,
        name: String,
        url: String,
        /// Extra help, such as the remote's default branch; empty or starting with "; ".
        hint: String,
    },
    /// The semver range is not valid.
    #[error("invalid semver range '{range}': {why}")]
    InvalidSemverRange { range: String, why: String },
    /// No tag matches the semver range.
    #[error("no tag in {url} matches semver range '{range}' ({tags_seen} tags seen{newest})")]
    NoSemverMatch {
        range: String,
        url: String,
        tags_seen: usize,
        /// ", the newest version is <tag>" or empty.
        newest: String,
    },
    /// `ref.commit` is not a full SHA-1.
    #[error("invalid commit '{commit}': a commit is 40 hexadecimal digits")]
    InvalidCommit { commit: String },
    /// The commit does not exist on the remote.
    #[error("commit {commit} not found in {url}")]
    CommitNotFound { commit: String, url: String },
    /// Any other failure while listing refs or fetching.
    #[error("{operation} of {url} failed: {detail}")]
    Remote {
        operation: &'static str,
        url: String,
        detail: String,
    },
    /// The repository holds a file (a git object) larger than the controller reads into
    /// memory.
    #[error(
        "{operation} of {url} failed: the repository holds a git object larger than {limit} bytes, the most this controller reads into memory (--max-git-object-size)"
    )]
    ObjectTooLarge {
        operation: &'static str,
        url: String,
        limit: u64,
    },
    /// The local cache repository could not be created, opened, locked or read.
    #[error("git cache {path}: {detail}")]
    Cache { path: PathBuf, detail: String },
    /// The fetched commit could not be read.
    #[error("reading commit {commit}: {detail}")]
    ReadCommit { commit: String, detail: String },
    /// The private files for the SSH client could not be written.
    #[error("preparing the SSH client: {0}")]
    SshSetup(#[source] std::io::Error),
}

impl GitError {
    /// The Flux condition reason (`AuthenticationFailed`, `GitOperationFailed`,
    /// `EmptyGitRepository`, `URLInvalid`).
    pub fn reason(&self) -> &'static str {
        match self {
            GitError::Auth(e) => e.reason(),
            GitError::UrlInvalid { .. } => reasons::URL_INVALID,
            GitError::AuthenticationFailed { .. }
            | GitError::HostKeyUnknown { .. }
            | GitError::HostKeyChanged { .. } => reasons::AUTHENTICATION_FAILED,
            GitError::EmptyRepository { .. } => reasons::EMPTY_GIT_REPOSITORY,
            _ => reasons::GIT_OPERATION_FAILED,
        }
    }

    /// A stable short name of the variant, for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            GitError::Auth(_) => "invalid_auth",
            GitError::UrlInvalid { .. } => "url_invalid",
            GitError::AuthenticationFailed { .. } => "authentication_failed",
            GitError::HostKeyUnknown { .. } => "host_key_unknown",
            GitError::HostKeyChanged { .. } => "host_key_changed",
            GitError::Tls { .. } => "tls",
            GitError::Unreachable { .. } => "unreachable",
            GitError::RepositoryNotFound { .. } => "repository_not_found",
            GitError::Timeout { .. } => "timeout",
            GitError::Cancelled { .. } => "cancelled",
            GitError::EmptyRepository { .. } => "empty_repository",
            GitError::RefNotFound { .. } => "ref_not_found",
            GitError::InvalidSemverRange { .. } => "invalid_semver_range",
            GitError::NoSemverMatch { .. } => "no_semver_match",
            GitError::InvalidCommit { .. } => "invalid_commit",
            GitError::CommitNotFound { .. } => "commit_not_found",
            GitError::Remote { .. } => "remote",
            GitError::ObjectTooLarge { .. } => "object_too_large",
            GitError::Cache { .. } => "cache",
            GitError::ReadCommit { .. } => "read_commit",
            GitError::SshSetup(_) => "ssh_setup",
        }
    }

    /// Whether retrying without a change to the spec or Secret cannot help (invalid URL,
    /// Secret, range or commit): the caller may mark the object Stalled.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            GitError::Auth(_)
                | GitError::UrlInvalid { .. }
                | GitError::InvalidSemverRange { .. }
                | GitError::InvalidCommit { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_a_flux_reason() {
        let url = || "https://h/r.git".to_owned();
        let cases = [
            (
                GitError::Auth(AuthError::BasicAndBearer),
                "AuthenticationFailed",
            ),
            (GitError::Auth(AuthError::UnsupportedScheme), "URLInvalid"),
            (
                GitError::UrlInvalid {
                    url: url(),
                    why: "x".into(),
                },
                "URLInvalid",
            ),
            (
                GitError::AuthenticationFailed {
                    url: url(),
                    detail: "401".into(),
                },
                "AuthenticationFailed",
            ),
            (
                GitError::HostKeyUnknown {
                    host: "h".into(),
                    detail: String::new(),
                },
                "AuthenticationFailed",
            ),
            (
                GitError::HostKeyChanged { host: "h".into() },
                "AuthenticationFailed",
            ),
            (
                GitError::EmptyRepository { url: url() },
                "EmptyGitRepository",
            ),
            (
                GitError::Unreachable {
                    url: url(),
                    detail: "refused".into(),
                },
                "GitOperationFailed",
            ),
            (
                GitError::NoSemverMatch {
                    range: "1".into(),
                    url: url(),
                    tags_seen: 0,
                    newest: String::new(),
                },
                "GitOperationFailed",
            ),
            (
                GitError::Cache {
                    path: "/c".into(),
                    detail: "x".into(),
                },
                "GitOperationFailed",
            ),
        ];
        for (err, reason) in cases {
            assert_eq!(err.reason(), reason, "{err}");
            assert!(!err.label().is_empty());
        }
    }

    #[test]
    fn messages_name_what_is_missing() {
        let err = GitError::RefNotFound {
            kind: "branch",
            name: "master".into(),
            url: "https://h/r.git".into(),
            hint: "; the remote's default branch is 'main'".into(),
        };
        assert_eq!(
            err.to_string(),
            "branch 'master' not found in https://h/r.git; the remote's default branch is 'main'"
        );
        let err = GitError::HostKeyUnknown {
            host: "[h]:22".into(),
            detail: "x".into(),
        };
        assert!(err.to_string().contains("not in known_hosts"));
    }
}
