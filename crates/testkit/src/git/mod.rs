//! A git server for tests: bare repositories in a temp dir, served by the real
//! `git http-backend` over HTTP and HTTPS (with per-repository basic or bearer auth) and by a
//! real sshd, with a log of every request so tests can assert what a client fetched.
//!
//! ```no_run
//! use mooring_testkit::git::{Auth, GitServer};
//! let server = GitServer::shared()?; // or GitServer::start()? for a private one
//! let repo = server.create_repo("my-test-app", Auth::None)?;
//! let sha = repo.commit(&[("deploy/app.yaml", "kind: ConfigMap\n")], "add app")?;
//! // ... point the code under test at repo.http_url() ...
//! assert_eq!(server.fetch_count(repo.name()), 1);
//! # Ok::<(), mooring_testkit::git::Error>(())
//! ```

mod cgi;
mod damage;
mod http;
mod log;
mod repo;
mod server;
mod signing;
mod ssh;

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};

pub use damage::damage_object_in_pack;
pub use log::{Credential, Request, RequestKind, Transport};
pub use repo::Repo;
pub use server::GitServer;
pub use signing::{GpgKey, Signer, SshKey};

use crate::process::Supervised;

/// What went wrong while starting the server or changing a repository.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("creating the server's temp dir: {0}")]
    CreateTempDir(#[source] io::Error),
    #[error("reading {path}: {source}")]
    ReadFile { path: PathBuf, source: io::Error },
    #[error("writing {path}: {source}")]
    WriteFile { path: PathBuf, source: io::Error },
    #[error("binding the {what} listener: {source}")]
    BindListener {
        what: &'static str,
        source: io::Error,
    },
    #[error("starting the server thread: {0}")]
    StartServerThread(#[source] io::Error),
    #[error("generating the test certificates: {0}")]
    GenerateCertificate(#[source] rcgen::Error),
    #[error("configuring TLS: {0}")]
    ConfigureTls(#[source] rustls::Error),
    #[error("running `{command}`: {source}")]
    RunCommand { command: String, source: io::Error },
    #[error("`{command}` failed ({status}): {stderr}")]
    CommandFailed {
        command: String,
        status: ExitStatus,
        stderr: String,
    },
    #[error("{path} not found: install git")]
    HttpBackendMissing { path: PathBuf },
    #[error("{path} not found: install openssh-server")]
    SshdMissing { path: PathBuf },
    #[error("starting sshd: {0}")]
    StartSshd(#[source] io::Error),
    #[error("sshd did not become ready on port {port}; its log:\n{log}")]
    SshdNotReady { port: u16, log: String },
    #[error("invalid repository name {0:?}: use [A-Za-z0-9._-] segments separated by '/'")]
    InvalidRepoName(String),
    #[error("invalid path {0:?}: use a relative path without '..'")]
    InvalidPath(String),
    #[error("repository {0:?} already exists")]
    RepoExists(String),
    #[error("no repository {0:?}")]
    UnknownRepo(String),
    #[error("starting the temp dir janitor: {0}")]
    StartJanitor(#[source] io::Error),
}

/// Who may read a repository over HTTP(S). SSH always takes the server's user keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Anyone.
    None,
    /// HTTP basic auth with exactly these credentials.
    Basic { username: String, password: String },
    /// `Authorization: Bearer <token>`.
    Bearer { token: String },
}

impl Auth {
    /// `Auth::Basic` from string slices.
    pub fn basic(username: &str, password: &str) -> Auth {
        Auth::Basic {
            username: username.to_string(),
            password: password.to_string(),
        }
    }

    /// `Auth::Bearer` from a string slice.
    pub fn bearer(token: &str) -> Auth {
        Auth::Bearer {
            token: token.to_string(),
        }
    }
}

/// What the request handlers share with the server handle.
pub(crate) struct State {
    root: PathBuf,
    home: PathBuf,
    http_backend: PathBuf,
    backend_log: PathBuf,
    auth: Mutex<HashMap<String, Auth>>,
    log: Mutex<log::RequestLog>,
}

impl State {
    /// The request log, locked.
    fn log(&self) -> MutexGuard<'_, log::RequestLog> {
        lock(&self.log)
    }
}

/// Locks `mutex`, ignoring poisoning: a test that panicked while holding it must not turn every
/// later request into a panic too.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `cmd` to completion and returns its stdout, or an error carrying its stderr.
pub(crate) fn output(cmd: &mut Command) -> Result<String, Error> {
    let command = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::RunCommand {
            command: command.clone(),
            source,
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(Error::CommandFailed {
            command,
            status: out.status,
            stderr,
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn write_file(path: &Path, content: &str) -> Result<(), Error> {
    std::fs::write(path, content).map_err(|source| Error::WriteFile {
        path: path.to_path_buf(),
        source,
    })
}

/// A listener on a free port below the kernel's ephemeral range, so that no `bind` to port 0
/// and no outgoing connection of another test can take the port while the server is stopped
/// ([`GitServer::stop_serving`](server::GitServer::stop_serving)); a port from the ephemeral
/// range when none of those is free.
pub(crate) fn bind(what: &'static str) -> Result<TcpListener, Error> {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    const FIRST: u16 = 10_000;
    if low > FIRST + 1000 {
        for _ in 0..64 {
            let port = rand::random_range(FIRST..low);
            if let Ok(listener) = bind_port(what, port) {
                return Ok(listener);
            }
        }
    }
    bind_port(what, 0)
}

/// A non-blocking listener on 127.0.0.1:`port` (0: a free one).
pub(crate) fn bind_port(what: &'static str, port: u16) -> Result<TcpListener, Error> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .map_err(|source| Error::BindListener { what, source })?;
    // tokio takes over the listener on the server thread, and requires non-blocking mode.
    listener
        .set_nonblocking(true)
        .map_err(|source| Error::BindListener { what, source })?;
    Ok(listener)
}

pub(crate) fn port_of(listener: &TcpListener, what: &'static str) -> Result<u16, Error> {
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|source| Error::BindListener { what, source })
}

/// A process that removes `dir` when the test binary exits: the supervisor's TERM at exit runs
/// the trap.
pub(crate) fn janitor(dir: &Path) -> Result<Supervised, Error> {
    crate::process::janitor(dir, &dir.join("logs")).map_err(Error::StartJanitor)
}
