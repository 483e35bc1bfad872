//! The server handle: starting everything, creating repositories, and reading the log.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::log::{Request, RequestKind, RequestLog};
use super::repo::{Repo, RepoPlace, validate_repo_name};
use super::{
    Auth, Error, State, bind, bind_port, http, janitor, lock, output, port_of, ssh, write_file,
};
use crate::process::Supervised;

/// A running git server; everything it started stops, and its files go, when it is dropped.
pub struct GitServer {
    state: Arc<State>,
    http_port: u16,
    https_port: u16,
    ca_pem: String,
    ca_file: PathBuf,
    tls: Arc<rustls::ServerConfig>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    // Dropped after the server thread has stopped and before the temp dir is removed.
    sshd: ssh::Sshd,
    dir: tempfile::TempDir,
    /// Only for the shared server, which is never dropped: removes `dir` at exit.
    janitor: Option<Supervised>,
}

impl std::fmt::Debug for GitServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitServer")
            .field("root", &self.state.root)
            .field("http_port", &self.http_port)
            .field("https_port", &self.https_port)
            .field("ssh_port", &self.sshd.port)
            .finish_non_exhaustive()
    }
}

impl GitServer {
    /// Starts HTTP, HTTPS and SSH on free ports of 127.0.0.1; all accept connections on return.
    ///
    /// Blocking (it runs ssh-keygen and waits for sshd), but independent of any tokio runtime:
    /// the HTTP side runs on its own thread, so the server may live in a `static`.
    pub fn start() -> Result<GitServer, Error> {
        let exec_path = output(Command::new("git").arg("--exec-path"))?;
        let http_backend = Path::new(exec_path.trim()).join("git-http-backend");
        if !http_backend.exists() {
            return Err(Error::HttpBackendMissing { path: http_backend });
        }
        let dir = tempfile::Builder::new()
            .prefix("mooring-git-")
            .tempdir()
            .map_err(Error::CreateTempDir)?;
        for sub in ["repos", "work", "home", "ssh", "logs"] {
            let path = dir.path().join(sub);
            std::fs::create_dir(&path).map_err(|source| Error::WriteFile { path, source })?;
        }
        let root = dir.path().join("repos");
        let home = dir.path().join("home");
        let ssh_log = dir.path().join("logs/ssh-commands.log");

        let tls = http::generate_tls()?;
        let ca_file = dir.path().join("ca.pem");
        write_file(&ca_file, &tls.ca_pem)?;
        let http = bind("http")?;
        let https = bind("https")?;
        let http_port = port_of(&http, "http")?;
        let https_port = port_of(&https, "https")?;

        let sshd = ssh::start(&dir.path().join("ssh"), &home, &ssh_log)?;
        let state = Arc::new(State {
            log: Mutex::new(RequestLog::new(ssh_log, root.clone())),
            root,
            home,
            http_backend,
            backend_log: dir.path().join("logs/http-backend.log"),
            auth: Mutex::new(HashMap::new()),
        });
        let listeners = http::Listeners {
            http,
            https,
            tls: tls.server_config.clone(),
        };
        let (stop, thread) = http::spawn(state.clone(), listeners)?;
        Ok(GitServer {
            state,
            http_port,
            https_port,
            ca_pem: tls.ca_pem,
            ca_file,
            tls: tls.server_config,
            stop: Some(stop),
            thread: Some(thread),
            sshd,
            dir,
            janitor: None,
        })
    }

    /// One server for the whole test binary, started on first use.
    ///
    /// Statics are never dropped: its sshd dies with the test binary (see
    /// [`crate::process`]), and so does a janitor that then removes its temp dir. Tests sharing
    /// it should use repository names of their own.
    pub fn shared() -> Result<&'static GitServer, Error> {
        static SHARED: OnceLock<GitServer> = OnceLock::new();
        static STARTING: Mutex<()> = Mutex::new(());
        if let Some(server) = SHARED.get() {
            return Ok(server);
        }
        let _starting = lock(&STARTING);
        if let Some(server) = SHARED.get() {
            return Ok(server);
        }
        let mut server = GitServer::start()?;
        server.janitor = Some(janitor(server.dir.path())?);
        Ok(SHARED.get_or_init(|| server))
    }

    /// Creates `<name>.git` with one commit (`README.md`) on `main`.
    pub fn create_repo(&self, name: &str, auth: Auth) -> Result<Repo, Error> {
        let repo = self.empty_repo(name, auth)?;
        repo.commit(&[("README.md", &format!("# {name}\n"))], "initial commit")?;
        Ok(repo)
    }

    /// Creates `<name>.git` with no commits (HEAD is the unborn `main`).
    pub fn empty_repo(&self, name: &str, auth: Auth) -> Result<Repo, Error> {
        validate_repo_name(name)?;
        {
            let mut repos = lock(&self.state.auth);
            if repos.contains_key(name) {
                return Err(Error::RepoExists(name.to_string()));
            }
            // Reserved now so two tests cannot create the same name at once.
            repos.insert(name.to_string(), auth);
        }
        let place = RepoPlace {
            name: name.to_string(),
            bare: self.state.root.join(format!("{name}.git")),
            // A suffix, so the work clone of `team` cannot contain the one of `team/app`.
            work: self.dir.path().join("work").join(format!("{name}.work")),
            home: self.state.home.clone(),
            http_url: format!("http://127.0.0.1:{}/{name}.git", self.http_port),
            https_url: format!("https://127.0.0.1:{}/{name}.git", self.https_port),
            ssh_url: self.ssh_url(name),
        };
        Repo::init(place).inspect_err(|_| {
            lock(&self.state.auth).remove(name);
        })
    }

    /// Changes who may read `name` over HTTP(S), e.g. to test rotated credentials.
    pub fn set_auth(&self, name: &str, auth: Auth) -> Result<(), Error> {
        match lock(&self.state.auth).get_mut(name) {
            Some(current) => {
                *current = auth;
                Ok(())
            }
            None => Err(Error::UnknownRepo(name.to_string())),
        }
    }

    /// Stops serving HTTP and HTTPS, as a git host that is down: connections are refused and
    /// open ones are cut. Repositories, credentials and the request log are kept, and SSH is
    /// untouched. [`GitServer::serve_again`] brings it back on the same ports.
    pub fn stop_serving(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Serves HTTP and HTTPS again on the ports they had, after [`GitServer::stop_serving`];
    /// both accept connections on return.
    pub fn serve_again(&mut self) -> Result<(), Error> {
        if self.thread.is_some() {
            return Ok(());
        }
        let listeners = http::Listeners {
            http: bind_port("http", self.http_port)?,
            https: bind_port("https", self.https_port)?,
            tls: self.tls.clone(),
        };
        let (stop, thread) = http::spawn(self.state.clone(), listeners)?;
        self.stop = Some(stop);
        self.thread = Some(thread);
        Ok(())
    }

    /// Whether HTTP and HTTPS are being served (not stopped by [`GitServer::stop_serving`]).
    pub fn is_serving(&self) -> bool {
        self.thread.is_some()
    }

    /// The directory holding the bare repositories (`<name>.git`).
    pub fn root(&self) -> &Path {
        &self.state.root
    }

    /// The plain HTTP port.
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The HTTPS port.
    pub fn https_port(&self) -> u16 {
        self.https_port
    }

    /// The SSH port.
    pub fn ssh_port(&self) -> u16 {
        self.sshd.port
    }

    /// The SSH login user: the user running the tests.
    pub fn ssh_user(&self) -> &str {
        &self.sshd.user
    }

    /// `ssh://<user>@127.0.0.1:<port><root>/<name>.git`.
    pub fn ssh_url(&self, name: &str) -> String {
        let root = self.state.root.display();
        format!(
            "ssh://{}@127.0.0.1:{}{root}/{name}.git",
            self.sshd.user, self.sshd.port
        )
    }

    /// The PEM of the CA that signed the HTTPS certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A file holding [`GitServer::ca_pem`], for `http.sslCAInfo`.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The private key (OpenSSH PEM, mode 0600) that sshd accepts.
    pub fn user_key_file(&self) -> &Path {
        &self.sshd.user_key_file
    }

    /// The contents of [`GitServer::user_key_file`], as an `identity` in a Secret would be.
    pub fn user_key_pem(&self) -> &str {
        &self.sshd.user_key_pem
    }

    /// A second accepted key, encrypted with [`GitServer::user_key_passphrase`].
    pub fn encrypted_user_key_file(&self) -> &Path {
        &self.sshd.encrypted_key_file
    }

    /// The contents of [`GitServer::encrypted_user_key_file`].
    pub fn encrypted_user_key_pem(&self) -> &str {
        &self.sshd.encrypted_key_pem
    }

    /// The passphrase of the encrypted key.
    pub fn user_key_passphrase(&self) -> &str {
        ssh::PASSPHRASE
    }

    /// The known_hosts line of the server: `[127.0.0.1]:<port> ssh-ed25519 AAAA...`.
    pub fn known_hosts(&self) -> &str {
        &self.sshd.known_hosts
    }

    /// A file holding [`GitServer::known_hosts`], for `-o UserKnownHostsFile=`.
    pub fn known_hosts_file(&self) -> &Path {
        &self.sshd.known_hosts_file
    }

    /// Every request for `repo` (HTTP, HTTPS and SSH), oldest first.
    pub fn requests(&self, repo: &str) -> Vec<Request> {
        self.state
            .log()
            .entries()
            .iter()
            .filter(|r| r.repo == repo)
            .cloned()
            .collect()
    }

    /// Every request, for any repository.
    pub fn all_requests(&self) -> Vec<Request> {
        self.state.log().entries().to_vec()
    }

    /// Successful pack negotiations on `repo`: upload-pack POSTs (v2 `ls-refs` included) and
    /// SSH upload-pack sessions.
    pub fn upload_pack_count(&self, repo: &str) -> usize {
        self.count(repo, |r| r.is_upload_pack())
    }

    /// Successful requests on `repo` that could send objects (v2 `fetch`, v0 `want`).
    pub fn fetch_count(&self, repo: &str) -> usize {
        self.count(repo, |r| r.kind == RequestKind::Fetch)
    }

    /// Successful requests on `repo` that listed refs without fetching.
    pub fn ref_listing_count(&self, repo: &str) -> usize {
        self.count(repo, |r| r.kind.is_ref_listing())
    }

    /// Forgets every recorded request (of all repositories: with a shared server prefer
    /// [`GitServer::clear_requests`]).
    pub fn clear_log(&self) {
        self.state.log().clear(|_| true);
    }

    /// Forgets the recorded requests of `repo`.
    pub fn clear_requests(&self, repo: &str) {
        self.state.log().clear(|r| r.repo == repo);
    }

    /// The sshd and http-backend logs, for a failing test's message.
    pub fn logs(&self) -> String {
        let sshd = self.sshd.process.log_tail(50);
        let backend = crate::process::log_tail(&self.state.backend_log, 50);
        format!("--- sshd ---\n{sshd}\n--- git http-backend ---\n{backend}")
    }

    fn count(&self, repo: &str, matches: impl Fn(&Request) -> bool) -> usize {
        self.state
            .log()
            .entries()
            .iter()
            .filter(|r| r.repo == repo && r.succeeded() && matches(r))
            .count()
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
