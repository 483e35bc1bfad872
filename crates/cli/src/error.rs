//! What can go wrong in a command, and the exit code each case gives.

/// A command's failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line asks for something that cannot be done (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// No usable kubeconfig or context.
    #[error("loading the kubeconfig: {0}")]
    Config(String),
    /// An API request failed.
    #[error("{what}: {source}")]
    Api {
        /// The request, naming the object.
        what: String,
        /// The API error.
        source: Box<kube::Error>,
    },
    /// The object does not exist.
    #[error("{kind} {namespace}/{name} not found")]
    NotFound {
        /// Its kind.
        kind: String,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// What the command asked for did not succeed: a failed reconciliation, a timeout, an object
    /// that no Kustomization manages.
    #[error("{0}")]
    Failed(String),
    /// Writing the output failed.
    #[error("writing the output: {0}")]
    Output(String),
}

impl Error {
    /// The process exit code for this error: 2 for usage errors, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            _ => 1,
        }
    }

    /// An [`Error::Api`] for the request `what`; a 404 becomes [`Error::NotFound`] when the
    /// object is known.
    pub fn api(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let what = what.into();
        move |source| Error::Api {
            what,
            source: Box::new(source),
        }
    }
}

/// Whether `error` is the API server's 404.
pub fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}
