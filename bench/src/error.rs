//! Why a benchmark could not run. Each variant names the operation that failed.

use std::time::Duration;

/// A failed benchmark step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The test control plane (etcd + kube-apiserver) did not start.
    #[error("starting the control plane: {0}")]
    ControlPlane(#[source] mooring_testkit::control_plane::Error),
    /// The git server did not start or a repository could not be changed.
    #[error("{what}: {source}")]
    Git {
        /// What was being done.
        what: String,
        /// The git server's error.
        source: mooring_testkit::git::Error,
    },
    /// A Kubernetes API call failed.
    #[error("{what}: {source}")]
    Kube {
        /// What was being done.
        what: String,
        /// The client's error.
        source: kube::Error,
    },
    /// A watch stream failed.
    #[error("watching {what}: {source}")]
    Watch {
        /// What was watched.
        what: String,
        /// The watcher's error.
        source: kube::runtime::watcher::Error,
    },
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A command ran but failed.
    #[error("{what} failed: {detail}")]
    Command {
        /// The command.
        what: String,
        /// Its exit status and stderr.
        detail: String,
    },
    /// Something did not happen in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long we waited.
        after: Duration,
    },
    /// A controller process exited or never became ready.
    #[error("controller {name}: {detail}")]
    Controller {
        /// Which controller.
        name: String,
        /// What happened, with the tail of its log.
        detail: String,
    },
    /// A flag or template was not usable.
    #[error("invalid setting: {0}")]
    Setting(String),
    /// The results could not be encoded.
    #[error("encoding the results: {0}")]
    Encode(#[source] serde_json::Error),
}

impl Error {
    /// A closure that wraps a `kube::Error` with what was being done.
    pub fn kube(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let what = what.into();
        move |source| Error::Kube { what, source }
    }

    /// A closure that wraps an I/O error with what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }

    /// A closure that wraps a git server error with what was being done.
    pub fn git(what: impl Into<String>) -> impl FnOnce(mooring_testkit::git::Error) -> Error {
        let what = what.into();
        move |source| Error::Git { what, source }
    }
}
