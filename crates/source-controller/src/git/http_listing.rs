//! Ref listings over HTTP(S) on shared, kept-alive connections.
//!
//! gix's blocking transport builds a new HTTP client for every listing, with a thread of its
//! own and a runtime thread inside the client, then asks for the server's capabilities before
//! it sends `ls-refs`. At one listing per GitRepository per interval that was most of an idle
//! source-controller's CPU. Here an async client per TLS configuration keeps its connections
//! open between listings; the protocol v2 `ls-refs` command is sent as one POST, and the
//! capability advertisement it depends on is asked for once per URL and remembered. A server
//! that answers it in another protocol is left to gix for a while.
//!
//! Two ways in: [`list_async`], on the controller's runtime, for a pass that needs nothing
//! else blocking (the common idle pass: no thread but the pass's own worker takes part), and
//! [`list`], from a blocking thread, on a small runtime that thread drives itself (a listing on
//! a kept connection wakes no other thread).
//!
//! Only the plain case is taken here: HTTP(S) without a proxy (in a Secret or the environment)
//! and without credentials in the URL. Anything else, and any failure or answer that is not
//! what protocol v2 says (an HTTP error, a redirect, a v0 server, a malformed line), gives
//! `None`: the caller then lists through gix, so its error messages and their classification
//! stay the ones users see.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::Remote;
use super::auth::{GitAuth, HttpCredentials};
use super::refs::RemoteRef;
use super::transport::Session;
use super::url::{RepoUrl, Scheme};

/// Sent as `User-Agent`; git servers expect it to start with `git/`.
pub(super) const USER_AGENT: &str = concat!("git/mooring-", env!("CARGO_PKG_VERSION"));
/// A larger answer is not read here (gix then lists instead).
const MAX_BODY: usize = 8 << 20;
/// The URLs whose capabilities are remembered; the memory is emptied when it has this many.
const MAX_SERVERS: usize = 4096;
/// The clients kept (each holds its TLS material and idle connections); the set is emptied
/// when it has this many, so rotated Secrets do not pile up.
const MAX_CLIENTS: usize = 64;
/// The proxy variables reqwest and gix would honour; when one is set, gix lists.
const PROXY_VARIABLES: [&str; 6] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// What a server's capability advertisement said about `ls-refs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Capabilities {
    /// `ls-refs=unborn`: an unborn HEAD is listed (how an empty repository shows).
    unborn: bool,
}

/// A runtime to run listings on, with the clients made on it. The calling (blocking) thread
/// drives it itself while it lists: a listing on a kept connection wakes no other thread (a
/// new connection's name lookup runs on the runtime's blocking thread). Between listings it
/// waits in [`IDLE`] with its kept connections; nothing watches them there, so a connection
/// the server closed meanwhile fails the first request, which is then sent once more.
struct Local {
    runtime: tokio::runtime::Runtime,
    /// One client per TLS configuration (the Secret's CA and client certificate).
    clients: HashMap<[u8; 32], reqwest::Client>,
}

/// Runtimes not in use; at most [`MAX_IDLE_RUNTIMES`] are kept.
static IDLE: Mutex<Vec<Local>> = Mutex::new(Vec::new());
/// More runtimes than this are only made when more listings run at once, and dropped after.
const MAX_IDLE_RUNTIMES: usize = 4;

/// What is known of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    /// Its protocol v2 capability advertisement.
    V2(Capabilities),
    /// When it answered the capability request with something else (protocol v0, another
    /// object format): gix lists it until [`RECHECK_UNSUPPORTED`] has passed.
    Unsupported(Instant),
}

/// How long a server that does not speak protocol v2 as used here is left to gix.
const RECHECK_UNSUPPORTED: Duration = Duration::from_secs(600);
/// How often a listing under way looks at the caller's cancel flag.
const CANCEL_POLL: Duration = Duration::from_millis(50);

/// Per (TLS configuration, URL): what the server advertised.
type Servers = HashMap<([u8; 32], String), Server>;

fn servers() -> std::sync::MutexGuard<'static, Servers> {
    static SERVERS: OnceLock<Mutex<Servers>> = OnceLock::new();
    SERVERS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Lists the refs under `prefixes` (each a `ref-prefix` argument) on the session's server, or
/// `None` when this path does not apply or did not get a well-formed answer. Blocking: call it
/// from a blocking thread (`spawn_blocking`), never from an async task.
pub(crate) fn list(session: &Session<'_>, prefixes: &[String]) -> Option<Vec<RemoteRef>> {
    let remote = session.remote;
    let target = Target::of(remote, &session.url)?;
    let mut lease = Lease::take()?;
    // A runtime runs one listing at a time: one kept connection per host is enough.
    let outcome = lease.client(target.tls, &remote.auth).and_then(|client| {
        let listing = target.list(&client, remote.auth.http.as_ref(), prefixes);
        // The timers are made inside: they need the runtime's context.
        lease.block_on(async {
            tokio::select! {
                outcome = tokio::time::timeout(session.remaining(), listing) => outcome.ok().flatten(),
                () = cancelled(&remote.cancel) => None,
            }
        })
    });
    drop(lease);
    target.remember(outcome)
}

/// One of the [`IDLE`] runtimes (or a new one), for the blocking thread that holds it to drive;
/// put back when dropped.
pub(super) struct Lease(Option<Local>);

impl Lease {
    /// `None` only when no runtime could be made.
    pub(super) fn take() -> Option<Lease> {
        let idle = IDLE.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let local = match idle {
            Some(local) => local,
            None => Local {
                runtime: tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?,
                clients: HashMap::new(),
            },
        };
        Some(Lease(Some(local)))
    }

    /// The runtime's client for the TLS configuration `key` of `auth`, with one kept connection
    /// per host (a runtime runs one request at a time).
    pub(super) fn client(&mut self, key: [u8; 32], auth: &GitAuth) -> Option<reqwest::Client> {
        client_in(&mut self.0.as_mut()?.clients, key, auth, 1)
    }

    /// Runs `future` to its end on this thread.
    pub(super) fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        let local = self
            .0
            .as_ref()
            .expect("a lease holds its runtime until dropped");
        local.runtime.block_on(future)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(local) = self.0.take() else { return };
        let mut idle = IDLE.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE_RUNTIMES {
            idle.push(local);
        }
    }
}

/// The clients of listings made on the controller's own runtime ([`list_async`]), one per TLS
/// configuration. Their connections belong to the runtime they were made on: keep one set per
/// runtime (the controller's context holds it).
#[derive(Default)]
pub struct AsyncClients(Mutex<HashMap<[u8; 32], reqwest::Client>>);

impl std::fmt::Debug for AsyncClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncClients").finish_non_exhaustive()
    }
}

/// [`list`] for an async caller, on the caller's runtime: a listing on a kept connection is one
/// write and one read on the thread that runs the pass. No time limit of its own (the caller
/// sets one), and no cancel flag (dropping the future cancels it).
pub(crate) async fn list_async(
    remote: &Remote,
    url: &RepoUrl,
    prefixes: &[String],
    clients: &AsyncClients,
) -> Option<Vec<RemoteRef>> {
    let target = Target::of(remote, url)?;
    // Listings of many objects may run at once on this runtime.
    let client = client_in(
        &mut clients.0.lock().unwrap_or_else(PoisonError::into_inner),
        target.tls,
        &remote.auth,
        4,
    )?;
    let outcome = target
        .list(&client, remote.auth.http.as_ref(), prefixes)
        .await;
    target.remember(outcome)
}

/// Remembers what gix's handshake with the server of `remote` said of `ls-refs`, as an answer to
/// this module's own capability request would have: a fetch of a new URL then spares the next
/// listing here that request.
pub(crate) fn remember_handshake(
    remote: &Remote,
    url: &RepoUrl,
    handshake: &gix::protocol::Handshake,
) {
    let Some(target) = Target::of(remote, url) else {
        return;
    };
    if target.known.is_some()
        || handshake.server_protocol_version != gix::protocol::transport::Protocol::V2
    {
        return;
    }
    let capabilities = &handshake.capabilities;
    let sha1 = capabilities
        .capability("object-format")
        .and_then(|c| c.value().map(|v| v == "sha1"))
        .unwrap_or(true);
    let Some(ls_refs) = capabilities.capability("ls-refs").filter(|_| sha1) else {
        return;
    };
    let unborn = ls_refs.supports("unborn").unwrap_or(false);
    let mut servers = servers();
    if servers.len() >= MAX_SERVERS {
        servers.clear();
    }
    servers.insert(
        (target.tls, target.base),
        Server::V2(Capabilities { unborn }),
    );
}

/// The key of `remote`'s TLS configuration ([`tls_key`]) when requests to it may be sent on this
/// module's clients: HTTP(S) without a proxy (in the Secret or the environment), without
/// credentials in the URL, and not cancelled.
pub(super) fn plain_tls_key(remote: &Remote, url: &RepoUrl) -> Option<[u8; 32]> {
    // `has_password` also counts a user alone, as an HTTP(S) URL's token.
    let plain = url.scheme() != Scheme::Ssh
        && remote.proxy.is_none()
        && !url.has_password()
        && !PROXY_VARIABLES
            .iter()
            .any(|v| std::env::var_os(v).is_some());
    (plain && !remote.cancel.load(Ordering::Relaxed)).then(|| tls_key(&remote.auth))
}

/// Where a listing here goes, when this path applies.
pub(super) struct Target {
    /// The URL without a trailing `/`.
    pub(super) base: String,
    /// The TLS configuration's key ([`tls_key`]).
    pub(super) tls: [u8; 32],
    /// The server's capabilities, when already known.
    pub(super) known: Option<Capabilities>,
}

impl Target {
    /// `None` when gix must list: SSH, a proxy (in the Secret or the environment), credentials
    /// in the URL, a cancelled operation, or a server recently found not to speak protocol v2.
    pub(super) fn of(remote: &Remote, url: &RepoUrl) -> Option<Target> {
        let tls = plain_tls_key(remote, url)?;
        let base = remote.url.trim_end_matches('/').to_owned();
        let known = match servers().get(&(tls, base.clone())) {
            Some(Server::Unsupported(at)) if at.elapsed() < RECHECK_UNSUPPORTED => return None,
            Some(Server::V2(capabilities)) => Some(*capabilities),
            _ => None,
        };
        Some(Target { base, tls, known })
    }

    /// Asks for the capabilities when they are not known yet, then sends `ls-refs`.
    async fn list(
        &self,
        client: &reqwest::Client,
        auth: Option<&HttpCredentials>,
        prefixes: &[String],
    ) -> Option<Listed> {
        let capabilities = match self.known {
            Some(capabilities) => capabilities,
            None => match advertised(client, &self.base, auth).await? {
                Some(capabilities) => capabilities,
                None => return Some(Listed::Unsupported),
            },
        };
        let refs = ls_refs(client, &self.base, auth, capabilities, prefixes, true).await?;
        Some(Listed::Refs(capabilities, refs))
    }

    /// Remembers what the listing showed of the server, and gives its refs.
    fn remember(self, outcome: Option<Listed>) -> Option<Vec<RemoteRef>> {
        let mut servers = servers();
        if servers.len() >= MAX_SERVERS {
            servers.clear();
        }
        let key = (self.tls, self.base);
        match outcome {
            Some(Listed::Refs(capabilities, refs)) => {
                servers.insert(key, Server::V2(capabilities));
                Some(refs)
            }
            Some(Listed::Unsupported) => {
                servers.insert(key, Server::Unsupported(Instant::now()));
                None
            }
            // Whatever changed on the server is found out anew next time.
            None => {
                servers.remove(&key);
                None
            }
        }
    }
}

/// What a listing here came to (`None` when it failed).
enum Listed {
    Refs(Capabilities, Vec<RemoteRef>),
    /// The server answered the capability request, but not in protocol v2 with `ls-refs`.
    Unsupported,
}

/// Ends when `cancel` is set.
pub(super) async fn cancelled(cancel: &AtomicBool) {
    while !cancel.load(Ordering::Relaxed) {
        tokio::time::sleep(CANCEL_POLL).await;
    }
}

/// Sends `request`, and once more when that fails: a kept connection the server closed while
/// its runtime was parked fails the first send. Both requests here only read.
pub(super) async fn send(request: reqwest::RequestBuilder) -> Option<reqwest::Response> {
    let again = request.try_clone();
    match request.send().await {
        Ok(response) => Some(response),
        Err(_) => again?.send().await.ok(),
    }
}

/// The client in `clients` for the TLS configuration `key` of `auth`, made on first use with at
/// most `idle_per_host` kept connections per host.
pub(super) fn client_in(
    clients: &mut HashMap<[u8; 32], reqwest::Client>,
    key: [u8; 32],
    auth: &GitAuth,
    idle_per_host: usize,
) -> Option<reqwest::Client> {
    if let Some(client) = clients.get(&key) {
        return Some(client.clone());
    }
    let tls = super::tls::client_config(auth.ca_pem.as_deref(), auth.client_cert.as_ref()).ok()?;
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(idle_per_host)
        .pool_idle_timeout(Duration::from_secs(30))
        .user_agent(USER_AGENT)
        .build()
        .ok()?;
    if clients.len() >= MAX_CLIENTS {
        clients.clear();
    }
    clients.insert(key, client.clone());
    Some(client)
}

/// What tells TLS configurations apart: the Secret's CA and client certificate and key.
fn tls_key(auth: &GitAuth) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in [
        auth.ca_pem.as_deref(),
        auth.client_cert.as_ref().map(|c| c.cert_pem.as_slice()),
        auth.client_cert
            .as_ref()
            .map(|c| c.key_pem.expose().as_slice()),
    ] {
        match part {
            Some(bytes) => {
                hasher.update((bytes.len() as u64 + 1).to_be_bytes());
                hasher.update(bytes);
            }
            None => hasher.update(0u64.to_be_bytes()),
        }
    }
    hasher.finalize().into()
}

/// The request with the credentials of `auth` and the protocol v2 header.
pub(super) fn authorized(
    request: reqwest::RequestBuilder,
    auth: Option<&HttpCredentials>,
) -> reqwest::RequestBuilder {
    with_credentials(request.header("Git-Protocol", "version=2"), auth)
}

/// The request with the credentials of `auth`.
pub(super) fn with_credentials(
    request: reqwest::RequestBuilder,
    auth: Option<&HttpCredentials>,
) -> reqwest::RequestBuilder {
    match auth {
        Some(HttpCredentials::Basic { username, password }) => {
            request.basic_auth(username, Some(password.expose()))
        }
        Some(HttpCredentials::Bearer(token)) => request.bearer_auth(token.expose()),
        None => request,
    }
}

/// The body of a 200 answer of content type `content_type`, at most [`MAX_BODY`] bytes.
async fn body_of(response: reqwest::Response, content_type: &str) -> Option<Vec<u8>> {
    if response.status() != reqwest::StatusCode::OK {
        return None;
    }
    if !has_type(&response, content_type)
        || response
            .content_length()
            .is_some_and(|l| l > MAX_BODY as u64)
    {
        return None;
    }
    let mut response = response;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.ok()? {
        if body.len() + chunk.len() > MAX_BODY {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

/// Whether `response` is of `content_type` (parameters such as `charset` aside).
pub(super) fn has_type(response: &reqwest::Response, content_type: &str) -> bool {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim() == content_type)
}

/// Asks `base` for its capability advertisement: `None` when that failed, `Some(None)` when
/// the server answered but not in protocol v2 with `ls-refs` over SHA-1.
pub(super) async fn advertised(
    client: &reqwest::Client,
    base: &str,
    auth: Option<&HttpCredentials>,
) -> Option<Option<Capabilities>> {
    let url = format!("{base}/info/refs?service=git-upload-pack");
    let response = send(authorized(client.get(url), auth)).await?;
    let body = body_of(response, "application/x-git-upload-pack-advertisement").await?;
    Some(parse_advertisement(&body))
}

/// Sends `ls-refs` for `prefixes` to `base`; `peel`: a tag's commit instead of its object.
pub(super) async fn ls_refs(
    client: &reqwest::Client,
    base: &str,
    auth: Option<&HttpCredentials>,
    capabilities: Capabilities,
    prefixes: &[String],
    peel: bool,
) -> Option<Vec<RemoteRef>> {
    let url = format!("{base}/git-upload-pack");
    let request = client
        .post(url)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-git-upload-pack-request",
        )
        .header(
            reqwest::header::ACCEPT,
            "application/x-git-upload-pack-result",
        )
        .body(ls_refs_request(capabilities, prefixes, peel));
    let response = send(authorized(request, auth)).await?;
    let body = body_of(response, "application/x-git-upload-pack-result").await?;
    parse_refs(&body)
}

/// One pkt-line.
#[derive(Debug, PartialEq, Eq)]
enum Pkt<'a> {
    Data(&'a [u8]),
    Flush,
    Delim,
    ResponseEnd,
}

/// Splits `body` into pkt-lines; `None` when it is not a sequence of them.
fn pkt_lines(mut body: &[u8]) -> Option<Vec<Pkt<'_>>> {
    let mut lines = Vec::new();
    while !body.is_empty() {
        let length = pkt_length(body.get(..4)?)?;
        lines.push(match length {
            0 => Pkt::Flush,
            1 => Pkt::Delim,
            2 => Pkt::ResponseEnd,
            3 => return None,
            n => Pkt::Data(body.get(4..n)?),
        });
        body = &body[length.max(4)..];
    }
    Some(lines)
}

/// The length a pkt-line's four hex digits give (0 to 3 are the special lines); `None` for
/// anything else.
pub(super) fn pkt_length(digits: &[u8]) -> Option<usize> {
    if digits.len() != 4 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    usize::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// Appends `text` to `out` as one pkt-line.
pub(super) fn push_pkt(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(format!("{:04x}", text.len() + 4).as_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// The text of a data line without its line feed.
pub(super) fn text(line: &[u8]) -> Option<&str> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    std::str::from_utf8(line).ok()
}

/// Reads a protocol v2 capability advertisement (with or without the `# service=` preamble
/// some servers send first); `None` for any other answer, a server without `ls-refs`, or one
/// whose objects are not named by SHA-1.
fn parse_advertisement(body: &[u8]) -> Option<Capabilities> {
    let lines = pkt_lines(body)?;
    let mut lines = lines.iter().peekable();
    if let Some(Pkt::Data(first)) = lines.peek()
        && text(first)?.starts_with("# service=")
    {
        lines.next();
        if lines.next() != Some(&Pkt::Flush) {
            return None;
        }
    }
    match lines.next() {
        Some(Pkt::Data(line)) if text(line)? == "version 2" => {}
        _ => return None,
    }
    let mut found = None;
    for line in lines {
        match line {
            Pkt::Data(line) => {
                let line = text(line)?;
                let (key, value) = line.split_once('=').unwrap_or((line, ""));
                match key {
                    "ls-refs" => {
                        found = Some(Capabilities {
                            unborn: value.split(' ').any(|f| f == "unborn"),
                        });
                    }
                    "object-format" if value != "sha1" => return None,
                    _ => {}
                }
            }
            Pkt::Flush => return found,
            Pkt::Delim | Pkt::ResponseEnd => return None,
        }
    }
    None
}

/// The `ls-refs` command for `prefixes`, asking for symbolic refs' targets and (`peel`) peeled
/// tags.
fn ls_refs_request(capabilities: Capabilities, prefixes: &[String], peel: bool) -> Vec<u8> {
    let mut body = Vec::new();
    push_pkt(&mut body, "command=ls-refs\n");
    body.extend_from_slice(b"0001");
    if peel {
        push_pkt(&mut body, "peel\n");
    }
    push_pkt(&mut body, "symrefs\n");
    if capabilities.unborn {
        push_pkt(&mut body, "unborn\n");
    }
    for prefix in prefixes {
        push_pkt(&mut body, &format!("ref-prefix {prefix}\n"));
    }
    body.extend_from_slice(b"0000");
    body
}

/// Reads an `ls-refs` answer: `<oid|unborn> <name>[ symref-target:<ref>][ peeled:<oid>]` lines
/// up to a flush. `None` for anything else (an `ERR` line, a malformed one).
fn parse_refs(body: &[u8]) -> Option<Vec<RemoteRef>> {
    let lines = pkt_lines(body)?;
    let mut refs = Vec::new();
    let mut lines = lines.into_iter();
    let mut ended = false;
    for line in lines.by_ref() {
        let line = match line {
            Pkt::Data(line) => text(line)?,
            Pkt::Flush => {
                ended = true;
                break;
            }
            Pkt::Delim | Pkt::ResponseEnd => return None,
        };
        let mut fields = line.split(' ');
        let object = fields.next()?;
        let name = fields.next().filter(|n| !n.is_empty())?;
        let object = match object {
            "unborn" => None,
            oid if is_sha1(oid) => Some(oid.to_owned()),
            _ => return None,
        };
        let mut remote_ref = RemoteRef {
            name: name.to_owned(),
            commit: object,
            symref_target: None,
        };
        for attribute in fields {
            if let Some(target) = attribute.strip_prefix("symref-target:") {
                remote_ref.symref_target = Some(target.to_owned());
            } else if let Some(peeled) = attribute.strip_prefix("peeled:") {
                if !is_sha1(peeled) {
                    return None;
                }
                remote_ref.commit = Some(peeled.to_owned());
            }
        }
        refs.push(remote_ref);
    }
    // A listing ends with a flush, and nothing follows it.
    if !ended || lines.next().is_some() {
        return None;
    }
    Some(refs)
}

/// 40 lower-case hex digits.
pub(super) fn is_sha1(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkts(lines: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for line in lines {
            match *line {
                "0000" | "0001" => out.extend_from_slice(line.as_bytes()),
                text => push_pkt(&mut out, text),
            }
        }
        out
    }

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";

    #[test]
    fn a_v2_advertisement_is_read_with_or_without_the_service_preamble() {
        let v2 = [
            "version 2\n",
            "agent=git/2.47.0\n",
            "ls-refs=unborn\n",
            "fetch=shallow wait-for-done\n",
            "object-format=sha1\n",
            "0000",
        ];
        assert_eq!(
            parse_advertisement(&pkts(&v2)),
            Some(Capabilities { unborn: true })
        );
        let mut preamble = vec!["# service=git-upload-pack\n", "0000"];
        preamble.extend(v2);
        assert_eq!(
            parse_advertisement(&pkts(&preamble)),
            Some(Capabilities { unborn: true })
        );
        let plain = ["version 2\n", "ls-refs\n", "fetch\n", "0000"];
        assert_eq!(
            parse_advertisement(&pkts(&plain)),
            Some(Capabilities { unborn: false })
        );
    }

    #[test]
    fn other_advertisements_are_left_to_gix() {
        // A v0 server lists its refs in the advertisement itself.
        let v0 = [
            "# service=git-upload-pack\n",
            "0000",
            &format!("{A} HEAD\0multi_ack symref=HEAD:refs/heads/main\n"),
            &format!("{A} refs/heads/main\n"),
            "0000",
        ];
        assert_eq!(parse_advertisement(&pkts(&v0)), None);
        // v2 without ls-refs, a truncated answer, an HTML page.
        assert_eq!(
            parse_advertisement(&pkts(&["version 2\n", "fetch\n", "0000"])),
            None
        );
        assert_eq!(
            parse_advertisement(&pkts(&["version 2\n", "ls-refs\n"])),
            None
        );
        assert_eq!(
            parse_advertisement(&pkts(&["version 2\n", "ls-refs-x\n", "0000"])),
            None
        );
        let sha256 = ["version 2\n", "ls-refs\n", "object-format=sha256\n", "0000"];
        assert_eq!(parse_advertisement(&pkts(&sha256)), None);
        assert_eq!(parse_advertisement(b"<html>sign in</html>"), None);
    }

    #[test]
    fn the_request_asks_for_peeled_tags_symrefs_and_the_prefixes() {
        let body = ls_refs_request(
            Capabilities { unborn: true },
            &["refs/heads/main".to_owned(), "HEAD".to_owned()],
            true,
        );
        assert_eq!(
            String::from_utf8(body).expect("text"),
            "0014command=ls-refs\n00010009peel\n000csymrefs\n000bunborn\n\
             001fref-prefix refs/heads/main\n0014ref-prefix HEAD\n0000"
        );
        let body = ls_refs_request(Capabilities { unborn: false }, &["HEAD".to_owned()], true);
        assert!(!String::from_utf8(body).expect("text").contains("unborn"));
        // Unpeeled: an annotated tag is listed by its own object.
        let body = ls_refs_request(Capabilities { unborn: false }, &["HEAD".to_owned()], false);
        assert!(!String::from_utf8(body).expect("text").contains("peel"));
    }

    #[test]
    fn refs_are_read_with_peeled_tags_symrefs_and_unborn_heads() {
        let body = pkts(&[
            &format!("{A} HEAD symref-target:refs/heads/main\n"),
            &format!("{A} refs/heads/main\n"),
            &format!("{B} refs/tags/v1.0.0 peeled:{A}\n"),
            "0000",
        ]);
        let refs = parse_refs(&body).expect("refs");
        assert_eq!(
            refs,
            [
                RemoteRef {
                    name: "HEAD".into(),
                    commit: Some(A.into()),
                    symref_target: Some("refs/heads/main".into()),
                },
                RemoteRef {
                    name: "refs/heads/main".into(),
                    commit: Some(A.into()),
                    symref_target: None,
                },
                RemoteRef {
                    name: "refs/tags/v1.0.0".into(),
                    commit: Some(A.into()),
                    symref_target: None,
                },
            ]
        );
        let empty = pkts(&["unborn HEAD symref-target:refs/heads/main\n", "0000"]);
        assert_eq!(
            parse_refs(&empty).expect("refs"),
            [RemoteRef {
                name: "HEAD".into(),
                commit: None,
                symref_target: Some("refs/heads/main".into()),
            }]
        );
        assert_eq!(parse_refs(b"0000").expect("no refs"), []);
    }

    #[test]
    fn malformed_listings_are_left_to_gix() {
        for body in [
            pkts(&["ERR access denied\n", "0000"]),
            pkts(&[&format!("{A} refs/heads/main\n")]),
            // Cut off after a line whose text happens to end like a flush.
            pkts(&[&format!("{A} refs/heads/x0000")]),
            pkts(&["xyz refs/heads/main\n", "0000"]),
            pkts(&[&format!("{B} refs/tags/v1 peeled:nothex\n"), "0000"]),
            pkts(&[&format!("{A}\n"), "0000"]),
            pkts(&["0000", &format!("{A} refs/heads/main\n")]),
            b"0003".to_vec(),
            // A length must be four hex digits: `+000` is no flush.
            b"+000".to_vec(),
            b"00".to_vec(),
            b"zzzz".to_vec(),
            b"0010short".to_vec(),
        ] {
            assert_eq!(
                parse_refs(&body),
                None,
                "{:?}",
                String::from_utf8_lossy(&body)
            );
        }
    }

    #[test]
    fn tls_configurations_are_told_apart_by_every_part() {
        let none = GitAuth::none();
        let with_ca = GitAuth {
            ca_pem: Some(b"ca".to_vec()),
            ..GitAuth::none()
        };
        let with_other_ca = GitAuth {
            ca_pem: Some(b"cb".to_vec()),
            ..GitAuth::none()
        };
        assert_eq!(tls_key(&none), tls_key(&GitAuth::none()));
        assert_ne!(tls_key(&none), tls_key(&with_ca));
        assert_ne!(tls_key(&with_ca), tls_key(&with_other_ca));
    }
}
