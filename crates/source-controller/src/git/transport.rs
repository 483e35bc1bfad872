//! One operation's connection setup: URL and credential checks, the SSH files, the reqwest
//! client options, the credentials callback, the timeout watchdog, and error classification.

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use gix::credentials::helper::Action;
use gix::credentials::protocol::Outcome;
use gix::protocol::transport::client::blocking_io::{Transport, http};
use gix::remote::Direction;

use super::auth::{AuthError, HttpCredentials};
use super::classify::{Context, classify};
use super::refs::RemoteRef;
use super::ssh::SshFiles;
use super::url::{RepoUrl, Scheme};
use super::{GitError, Remote};

/// A connection to the remote, as gix's blocking client gives it.
pub(crate) type Connection<'remote, 'repo> =
    gix::remote::Connection<'remote, 'static, 'repo, Box<dyn Transport + Send>>;

/// What one [`super::resolve`] or [`super::fetch`] needs to talk to the server.
pub(crate) struct Session<'a> {
    pub(crate) remote: &'a Remote,
    pub(crate) url: RepoUrl,
    pub(crate) operation: &'static str,
    pub(crate) deadline: Instant,
    ssh: Option<SshFiles>,
    /// Started by the first operation that needs it (a fetch); a listing does not.
    watchdog: OnceLock<Watchdog>,
}

/// Checks the URL and that the credentials fit it; no I/O.
pub(crate) fn validate(remote: &Remote) -> Result<RepoUrl, GitError> {
    let url = RepoUrl::parse(&remote.url)?;
    remote.auth.check_for(url.scheme(), url.has_password())?;
    if url.scheme() == Scheme::Ssh && remote.proxy.is_some() {
        return Err(AuthError::ProxyWithSsh.into());
    }
    Ok(url)
}

impl<'a> Session<'a> {
    /// Validates, writes the SSH files if needed, and starts the clock.
    pub(crate) fn start(
        remote: &'a Remote,
        operation: &'static str,
    ) -> Result<Session<'a>, GitError> {
        let url = validate(remote)?;
        if remote.cancel.load(Ordering::Relaxed) {
            return Err(GitError::Cancelled {
                operation,
                url: url.redacted().to_owned(),
            });
        }
        let deadline = Instant::now() + remote.timeout;
        let ssh = match (&remote.auth.ssh, url.scheme()) {
            (Some(creds), Scheme::Ssh) => {
                Some(SshFiles::write(creds, remote.timeout).map_err(GitError::SshSetup)?)
            }
            _ => None,
        };
        Ok(Session {
            remote,
            url,
            operation,
            deadline,
            ssh,
            watchdog: OnceLock::new(),
        })
    }

    /// Open options for any repository this operation uses: isolated from the machine's git
    /// configuration, with the SSH command when needed.
    pub(crate) fn open_options(&self) -> gix::open::Options {
        let mut overrides = Vec::new();
        if let Some(limit) = self.remote.object_size_limit {
            overrides.push(alloc_limit_override(limit));
        }
        if let Some(ssh) = &self.ssh {
            overrides.push(format!("core.sshCommand={}", ssh.command()));
            // Without it gix probes a non-`ssh` command with `-G` and may pick a variant that
            // cannot pass a port.
            overrides.push("ssh.variant=ssh".to_owned());
        }
        gix::open::Options::isolated().config_overrides(overrides)
    }

    /// The flag gix checks between reads: set on timeout or cancellation (by the process's
    /// watchdog thread, from the first call on).
    pub(crate) fn interrupt(&self) -> &AtomicBool {
        &self
            .watchdog
            .get_or_init(|| Watchdog::start(self.deadline, self.remote.cancel.clone()))
            .state
            .interrupt
    }

    /// Time left until the deadline.
    pub(crate) fn remaining(&self) -> Duration {
        self.deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    }

    /// A gix remote for the URL with exactly `refspecs` and no tag following.
    pub(crate) fn gix_remote<'r>(
        &self,
        repo: &'r gix::Repository,
        refspecs: &[String],
    ) -> Result<gix::Remote<'r>, GitError> {
        repo.remote_at_without_url_rewrite(self.url.for_gix().clone())
            .and_then(|r| r.with_refspecs(refspecs.iter().map(String::as_str), Direction::Fetch))
            .map(|r| r.with_fetch_tags(gix::remote::fetch::Tags::None))
            .map_err(|e| self.classify(&e, None))
    }

    /// gix's credentials callback: the Secret's basic credentials, and never a credential
    /// helper or a prompt.
    pub(crate) fn authenticate(
        &self,
    ) -> impl FnMut(Action) -> Result<Option<Outcome>, gix::Error> + use<> {
        let basic = match &self.remote.auth.http {
            Some(HttpCredentials::Basic { username, password }) => {
                Some((username.clone(), password.expose().clone()))
            }
            _ => None,
        };
        move |action| match action {
            Action::Get(ctx) => Ok(basic.as_ref().map(|(username, password)| Outcome {
                identity: gix::sec::identity::Account {
                    username: username.clone(),
                    password: password.clone(),
                    oauth_refresh_token: None,
                },
                next: ctx.into(),
            })),
            Action::Store(_) | Action::Erase(_) => Ok(None),
        }
    }

    /// Connects `remote` with our credentials callback and, for HTTP(S), our client options.
    pub(crate) fn connect<'x, 'r>(
        &self,
        repo: &'r gix::Repository,
        remote: &'x gix::Remote<'r>,
    ) -> Result<Connection<'x, 'r>, GitError> {
        let mut conn = remote
            .connect(Direction::Fetch)
            .map_err(|e| self.classify(&e, None))?;
        // Always set: without a callback gix would run credential helpers or prompt.
        conn.set_credentials(self.authenticate());
        if self.url.scheme() != Scheme::Ssh {
            conn.set_transport_options(self.http_options(repo)?);
        }
        Ok(conn)
    }

    /// [`Self::connect`] for a fetch: over HTTP(S) without a proxy, gix's requests go on this
    /// process's kept connections ([`super::http_fetch`]) instead of gix's own client.
    pub(crate) fn connect_for_fetch<'x, 'r>(
        &self,
        repo: &'r gix::Repository,
        remote: &'x gix::Remote<'r>,
    ) -> Result<Connection<'x, 'r>, GitError> {
        let Some(backend) = super::http_fetch::backend(self) else {
            return self.connect(repo, remote);
        };
        let (url, version) = remote
            .sanitized_url_and_version(Direction::Fetch)
            .map_err(|e| self.classify(&e, None))?;
        let transport: Box<dyn Transport + Send> =
            Box::new(http::Transport::new_http(backend, url, version, false));
        let mut conn = remote.to_connection_with_transport(transport);
        // Always set: without a callback gix would run credential helpers or prompt.
        conn.set_credentials(self.authenticate());
        Ok(conn)
    }

    /// Lists the remote's refs matching `refspecs` (only their prefixes, unless
    /// `prefix_filter` is false): a handshake and `ls-refs`, no objects.
    pub(crate) fn list_refs(
        &self,
        repo: &gix::Repository,
        refspecs: &[String],
        prefix_filter: bool,
    ) -> Result<Vec<RemoteRef>, GitError> {
        let remote = self.gix_remote(repo, refspecs)?;
        let conn = self.connect(repo, &remote)?;
        let options = gix::remote::ref_map::Options {
            prefix_from_spec_as_filter_on_remote: prefix_filter,
            ..Default::default()
        };
        let (map, _handshake) = conn
            .ref_map(gix::progress::Discard, options)
            .map_err(|e| self.classify(&e, None))?;
        Ok(map.remote_refs.iter().map(RemoteRef::from_gix).collect())
    }

    /// The reqwest backend's options: timeout, CA, client certificate, proxy; and the bearer
    /// header (gix's `http.extraHeader`, which also makes gix refuse redirects).
    pub(crate) fn http_options(&self, repo: &gix::Repository) -> Result<Box<dyn Any>, GitError> {
        let auth = &self.remote.auth;
        let url = self.url.for_gix().to_bstring();
        let mut options = repo
            .transport_options(url.as_slice(), None)
            .ok()
            .flatten()
            .and_then(|o| o.downcast::<http::Options>().ok())
            .map(|o| *o)
            .unwrap_or_default();
        if let Some(HttpCredentials::Bearer(token)) = &auth.http {
            options
                .extra_headers
                .push(format!("Authorization: Bearer {}", token.expose()));
        }
        // Made without reading the disk (the system's anchors are read once per process).
        let tls = super::tls::client_config(auth.ca_pem.as_deref(), auth.client_cert.as_ref())
            .map_err(GitError::Auth)?;
        let invalid = |key, why| GitError::Auth(AuthError::Invalid { key, why });
        let proxy = match &self.remote.proxy {
            Some(p) => Some(
                p.to_reqwest()
                    .map_err(|_| invalid("address", "not a proxy URL"))?,
            ),
            None => None,
        };
        let timeout = self.remaining();
        let configure = move |mut builder: reqwest::blocking::ClientBuilder| {
            builder = builder
                .timeout(timeout)
                .connect_timeout(timeout.min(Duration::from_secs(20)));
            builder = builder.tls_backend_preconfigured(tls.clone());
            if let Some(proxy) = &proxy {
                builder = builder.proxy(proxy.clone());
            }
            Ok(builder)
        };
        let backend = http::reqwest::Options {
            configure_client: Some(Box::new(configure)),
            ..Default::default()
        };
        options.backend = Some(Arc::new(Mutex::new(backend)));
        Ok(Box::new(options))
    }

    /// The [`GitError`] for a gix error of this operation; `commit` when fetching by SHA.
    pub(crate) fn classify(&self, err: &gix::Error, commit: Option<&str>) -> GitError {
        let auth = &self.remote.auth;
        let mut secrets = auth.secret_strings();
        secrets.extend(self.url.secrets());
        if let Some(p) = self.remote.proxy.as_ref().and_then(|p| p.password.as_ref()) {
            secrets.push(p.expose());
        }
        let url = self.url.for_gix();
        let host = match (url.host(), url.port) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => String::new(),
        };
        let ctx = Context {
            operation: self.operation,
            url: self.url.redacted(),
            host,
            secrets,
            has_credentials: auth.http.is_some() || self.url.has_password(),
            timeout: self.remote.timeout,
            timeout_setting: self.remote.timeout_setting,
            timed_out: match self.watchdog.get() {
                Some(watchdog) => watchdog.state.timed_out.load(Ordering::Relaxed),
                None => Instant::now() >= self.deadline,
            },
            cancelled: self.remote.cancel.load(Ordering::Relaxed),
            ssh_log: self.ssh.as_ref().map(SshFiles::log),
            commit,
            object_size_limit: self.remote.object_size_limit,
        };
        classify(err, &ctx)
    }
}

/// The gix setting that makes reading or receiving an object larger than `limit` bytes fail
/// before the memory is taken.
pub fn alloc_limit_override(limit: u64) -> String {
    format!("gitoxide.objects.allocLimit={}", limit.max(1))
}

struct WatchState {
    interrupt: AtomicBool,
    timed_out: AtomicBool,
}

/// Sets the interrupt flag of its operation at the deadline or when the caller cancels, because
/// gix checks a flag rather than a clock. One thread of the process watches every operation
/// under way ([`watch`]); an operation stops being watched when its `Watchdog` is dropped.
struct Watchdog {
    state: Arc<WatchState>,
}

/// An operation as the watching thread sees it.
struct Watched {
    state: Weak<WatchState>,
    deadline: Instant,
    cancel: Arc<AtomicBool>,
}

/// The operations under way.
static WATCHED: Mutex<Vec<Watched>> = Mutex::new(Vec::new());
/// How often the watching thread looks at the cancel flags while operations are under way.
const CANCEL_POLL: Duration = Duration::from_millis(50);

impl Watchdog {
    fn start(deadline: Instant, cancel: Arc<AtomicBool>) -> Watchdog {
        let state = Arc::new(WatchState {
            interrupt: AtomicBool::new(false),
            timed_out: AtomicBool::new(false),
        });
        let watched = Watched {
            state: Arc::downgrade(&state),
            deadline,
            cancel,
        };
        WATCHED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(watched);
        // Without the thread (it could not be started), the operation is bounded only by its
        // transport's own timeouts, and the next operation tries to start it again.
        if let Some(thread) = watcher() {
            thread.unpark();
        }
        Watchdog { state }
    }
}

/// The watching thread, started on first use (and again after a failed start).
fn watcher() -> Option<std::thread::Thread> {
    static THREAD: Mutex<Option<std::thread::Thread>> = Mutex::new(None);
    let mut thread = THREAD.lock().unwrap_or_else(PoisonError::into_inner);
    if thread.is_none() {
        *thread = std::thread::Builder::new()
            .name("git-watchdog".to_owned())
            .spawn(watch)
            .ok()
            .map(|handle| handle.thread().clone());
    }
    thread.clone()
}

/// Interrupts each watched operation at its deadline or when it is cancelled, and forgets the
/// ones that ended; sleeps while none is under way.
fn watch() {
    loop {
        let now = Instant::now();
        let next = {
            let mut watched = WATCHED.lock().unwrap_or_else(PoisonError::into_inner);
            watched.retain(|w| {
                let Some(state) = w.state.upgrade() else {
                    return false;
                };
                let timed_out = now >= w.deadline;
                if timed_out {
                    state.timed_out.store(true, Ordering::Relaxed);
                }
                if timed_out || w.cancel.load(Ordering::Relaxed) {
                    state.interrupt.store(true, Ordering::Relaxed);
                    return false;
                }
                true
            });
            watched.iter().map(|w| w.deadline).min()
        };
        match next {
            Some(deadline) => {
                std::thread::park_timeout(deadline.saturating_duration_since(now).min(CANCEL_POLL))
            }
            None => std::thread::park(),
        }
    }
}
