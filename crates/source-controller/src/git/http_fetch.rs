//! gix's HTTP requests for a fetch, sent on the kept connections of [`super::http_listing`].
//!
//! gix's own blocking HTTP backend starts a thread per operation and, inside it, a reqwest
//! blocking client with a runtime thread of its own; every request, header block and body chunk
//! crosses both threads through rendezvous channels that spin before they sleep. At a cold start
//! of a thousand GitRepositories that was most of the source-controller's ~590,000 context
//! switches. Here the fetching (blocking) thread drives one of the listings' small runtimes
//! itself, with that runtime's client: no thread is started, and a connection kept from an
//! earlier request to the server is used again.
//!
//! gix still speaks the protocol (handshake, negotiation, the pack); this module only carries
//! its requests. It is taken where the listings are: HTTP(S) without a proxy and without
//! credentials in the URL. The Secret's credentials go with every request, as in the listings,
//! so a server that wants them does not answer 401 first. As with gix, the first request (the
//! capability advertisement) may be redirected to the same path under another base URL, and
//! the requests after it go to that base; a redirect from HTTPS to HTTP, or to another host
//! while credentials are configured, is refused.

use std::io::{self, BufRead, Read, Write};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use gix::protocol::transport::client::AuthenticationRequired;
use gix::protocol::transport::client::blocking_io::http::{
    self, GetResponse, PostBodyDataKind, PostResponse,
};
use hyper::body::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::auth::HttpCredentials;
use super::http_listing::{Lease, cancelled, plain_tls_key, with_credentials};
use super::transport::Session;

/// The most redirects the first request follows.
const MAX_REDIRECTS: usize = 10;

/// gix's transport over [`Backend`], for `session`'s URL; `None` where gix's own backend
/// carries the fetch (SSH, a proxy, credentials in the URL).
pub(crate) fn backend(session: &Session<'_>) -> Option<Backend> {
    let remote = session.remote;
    let tls = plain_tls_key(remote, &session.url)?;
    let mut lease = Lease::take()?;
    let client = lease.client(tls, &remote.auth)?;
    Some(Backend {
        driver: Arc::new(Driver {
            lease,
            deadline: session.deadline,
            cancel: remote.cancel.clone(),
        }),
        client,
        credentials: remote.auth.http.clone(),
        redirected: Arc::new(Mutex::new(None)),
        sent: false,
    })
}

/// gix's [`http::Http`] on a leased runtime: each request is sent when gix starts reading its
/// answer (a POST's body is written in full before that).
pub(crate) struct Backend {
    driver: Arc<Driver>,
    client: reqwest::Client,
    credentials: Option<HttpCredentials>,
    /// The base URL the first request was redirected to.
    redirected: Arc<Mutex<Option<String>>>,
    /// Whether a request was made already: only the first may be redirected.
    sent: bool,
}

/// The runtime the fetching thread drives, and the limits of the operation.
struct Driver {
    lease: Lease,
    deadline: Instant,
    cancel: Arc<AtomicBool>,
}

impl Driver {
    /// Runs `work` on this thread until it ends, the deadline passes or the caller cancels.
    fn run<T>(&self, work: impl Future<Output = io::Result<T>>) -> io::Result<T> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        self.lease.block_on(async {
            tokio::select! {
                outcome = tokio::time::timeout(left, work) => outcome.unwrap_or_else(|_| {
                    Err(io::Error::new(io::ErrorKind::TimedOut, "the HTTP request timed out"))
                }),
                () = cancelled(&self.cancel) => {
                    Err(io::Error::new(io::ErrorKind::Interrupted, "the fetch was cancelled"))
                }
            }
        })
    }
}

impl Backend {
    fn exchange(
        &mut self,
        url: &str,
        base_url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
        body: Option<Vec<u8>>,
    ) -> Arc<Exchange> {
        let tail = url.strip_prefix(base_url).unwrap_or_default().to_owned();
        let base = self
            .redirected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| base_url.to_owned());
        let mut header_map = HeaderMap::new();
        for line in headers {
            let Some((name, value)) = line.as_ref().split_once(':') else {
                continue;
            };
            let name = name.trim();
            // Ours: the listings' agent, and the Secret's credentials on every request.
            if name.eq_ignore_ascii_case("user-agent")
                || (self.credentials.is_some() && name.eq_ignore_ascii_case("authorization"))
            {
                continue;
            }
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value.trim()),
            ) {
                header_map.append(name, value);
            }
        }
        let request = Request {
            client: self.client.clone(),
            credentials: self.credentials.clone(),
            base,
            tail,
            headers: header_map,
            body,
            redirected: (!self.sent).then(|| self.redirected.clone()),
        };
        self.sent = true;
        Arc::new(Exchange {
            driver: self.driver.clone(),
            state: Mutex::new(State::Pending(Box::new(request))),
        })
    }
}

impl http::Http for Backend {
    type Headers = Headers;
    type ResponseBody = Body;
    type PostBody = PostBody;

    fn get(
        &mut self,
        url: &str,
        base_url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> gix::Result<GetResponse<Headers, Body>> {
        let exchange = self.exchange(url, base_url, headers, None);
        Ok(GetResponse {
            headers: Headers::of(&exchange),
            body: Body::of(exchange),
        })
    }

    fn post(
        &mut self,
        url: &str,
        base_url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
        _body: PostBodyDataKind,
    ) -> gix::Result<PostResponse<Headers, Body, PostBody>> {
        // A fetch's requests are want and have lines: written in full, then sent.
        let exchange = self.exchange(url, base_url, headers, Some(Vec::new()));
        Ok(PostResponse {
            post_body: PostBody(exchange.clone()),
            headers: Headers::of(&exchange),
            body: Body::of(exchange),
        })
    }

    fn configure(&mut self, _config: &dyn std::any::Any) -> gix::Result {
        // Timeout, TLS and credentials come from the Secret through the session, not from
        // gix's options.
        Ok(())
    }
}

/// One request before it is sent.
struct Request {
    client: reqwest::Client,
    credentials: Option<HttpCredentials>,
    /// The base URL the request goes to (after a redirect of the first request, the new one).
    base: String,
    /// The part of gix's URL after its base URL (`/info/refs?service=git-upload-pack`).
    tail: String,
    headers: HeaderMap,
    /// A POST's body; `None` for a GET.
    body: Option<Vec<u8>>,
    /// For the first request only: where to note the base it was redirected to.
    redirected: Option<Arc<Mutex<Option<String>>>>,
}

/// One request and its answer, shared by the writer of its body and the readers of its answer.
struct Exchange {
    driver: Arc<Driver>,
    state: Mutex<State>,
}

enum State {
    /// Not sent yet (a POST's body is being written).
    Pending(Box<Request>),
    /// Sent and answered; the response until the body reader takes it.
    Answered(Option<reqwest::Response>),
    /// Sending failed (the error went to the first reader).
    Failed,
}

impl Exchange {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends the request if it was not sent yet, and runs `with` on its answer.
    fn answered<T>(&self, with: impl FnOnce(&mut Option<reqwest::Response>) -> T) -> io::Result<T> {
        let mut state = self.state();
        // Failed until the request is answered, also when sending it fails.
        *state = match std::mem::replace(&mut *state, State::Failed) {
            State::Pending(request) => State::Answered(Some(self.driver.run(send(*request))?)),
            sent => sent,
        };
        match &mut *state {
            State::Answered(response) => Ok(with(response)),
            _ => Err(io::Error::other("the HTTP request failed before")),
        }
    }
}

/// Sends `request`, following redirects of a first request, and gives the answer when it is a
/// success; any other status is an error in the form gix's callers expect.
async fn send(request: Request) -> io::Result<reqwest::Response> {
    let Request {
        client,
        credentials,
        base,
        tail,
        headers,
        body,
        redirected,
    } = request;
    let mut url = format!("{base}{tail}");
    let mut hops = 0;
    loop {
        let builder = match &body {
            Some(body) => client.post(&url).body(body.clone()),
            None => client.get(&url),
        };
        let builder = with_credentials(builder.headers(headers.clone()), credentials.as_ref());
        let response = send_once(builder).await?;
        let status = response.status();
        if status.is_success() {
            if let Some(redirected) = redirected.filter(|_| hops > 0)
                && let Some(new_base) = url.strip_suffix(&tail)
            {
                *redirected.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(new_base.to_owned());
            }
            return Ok(response);
        }
        if status.is_redirection() && redirected.is_some() && hops < MAX_REDIRECTS {
            url = redirect_target(&url, &response, &tail, credentials.is_some())?;
            hops += 1;
            continue;
        }
        return Err(status_error(response));
    }
}

/// Sends a request once more when sending it failed other than by a timeout: a kept connection
/// the server closed while the runtime was parked fails the first send. A fetch's requests only
/// read.
async fn send_once(builder: reqwest::RequestBuilder) -> io::Result<reqwest::Response> {
    let again = builder.try_clone();
    match builder.send().await {
        Ok(response) => Ok(response),
        Err(e) if e.is_timeout() => Err(transfer_error(e)),
        Err(e) => match again {
            Some(again) => again.send().await.map_err(transfer_error),
            None => Err(transfer_error(e)),
        },
    }
}

/// Where a redirect of the request to `from` leads, when it may be followed: to a URL that ends
/// in the same `tail` (so the new base is known), not from HTTPS to HTTP, and with
/// `credentials` only on the same host and port.
fn redirect_target(
    from: &str,
    response: &reqwest::Response,
    tail: &str,
    credentials: bool,
) -> io::Result<String> {
    let refused = |why: String| {
        io::Error::other(format!(
            "Received HTTP status {}: the redirect is not followed: {why}",
            response.status().as_u16()
        ))
    };
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| refused("it names no location".to_owned()))?;
    let from = reqwest::Url::parse(from).map_err(|e| refused(e.to_string()))?;
    let to = from.join(location).map_err(|e| refused(e.to_string()))?;
    if !matches!(to.scheme(), "http" | "https") {
        return Err(refused(format!("it leads to a {} URL", to.scheme())));
    }
    if from.scheme() == "https" && to.scheme() != "https" {
        return Err(refused(format!("it leads from HTTPS to {}", to.scheme())));
    }
    let same_origin = from.host_str() == to.host_str()
        && from.port_or_known_default() == to.port_or_known_default();
    if credentials && !same_origin {
        return Err(refused(format!(
            "it leads to another host ({}), and the credentials are not sent there",
            to.host_str().unwrap_or_default()
        )));
    }
    if !to.as_str().ends_with(tail) {
        return Err(refused(format!(
            "its location does not end in {tail:?}, so the repository's new URL is not known"
        )));
    }
    Ok(to.into())
}

/// A failed request's error, with the reqwest error as its source (what the classification of
/// [`super::classify`] reads).
fn transfer_error(e: reqwest::Error) -> io::Error {
    let kind = if e.is_timeout() {
        io::ErrorKind::TimedOut
    } else {
        io::ErrorKind::Other
    };
    io::Error::new(
        kind,
        Failed {
            status: None,
            source: Some(e),
        },
    )
}

/// The error for an answer that is not a success: for 401 the one gix's backends give (gix
/// answers it with the credentials callback), else "Received HTTP status N".
fn status_error(response: reqwest::Response) -> io::Error {
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        let www_authenticate = response
            .headers()
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .map(|v| v.as_bytes().into())
            .collect();
        return io::Error::new(
            io::ErrorKind::PermissionDenied,
            AuthenticationRequired { www_authenticate },
        );
    }
    io::Error::other(Failed {
        status: Some(status.as_u16()),
        source: response.error_for_status().err(),
    })
}

/// A request that failed, by status or in transfer.
#[derive(Debug)]
struct Failed {
    status: Option<u16>,
    source: Option<reqwest::Error>,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(status) => write!(f, "Received HTTP status {status}"),
            None => f.write_str("the HTTP request failed"),
        }
    }
}

impl std::error::Error for Failed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// `Read::read` of a reader that buffers: what `fill_buf` has, as much as fits in `buf`.
fn read_buffered(reader: &mut impl BufRead, buf: &mut [u8]) -> io::Result<usize> {
    let available = reader.fill_buf()?;
    let n = available.len().min(buf.len());
    buf[..n].copy_from_slice(&available[..n]);
    reader.consume(n);
    Ok(n)
}

/// The body of a POST, kept until the answer is read.
pub(crate) struct PostBody(Arc<Exchange>);

impl Write for PostBody {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut *self.0.state() {
            State::Pending(request) => {
                request.body.get_or_insert_default().extend_from_slice(buf);
                Ok(buf.len())
            }
            _ => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the request was sent already",
            )),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The answer's headers as `name:value` lines; reading them sends the request.
pub(crate) struct Headers {
    exchange: Arc<Exchange>,
    text: Option<io::Cursor<Vec<u8>>>,
}

impl Headers {
    fn of(exchange: &Arc<Exchange>) -> Headers {
        Headers {
            exchange: exchange.clone(),
            text: None,
        }
    }
}

impl Read for Headers {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_buffered(self, buf)
    }
}

impl BufRead for Headers {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.text.is_none() {
            let text = self.exchange.answered(|response| {
                let mut text = Vec::new();
                for (name, value) in response.iter().flat_map(|r| r.headers()) {
                    text.extend_from_slice(name.as_str().as_bytes());
                    text.push(b':');
                    text.extend_from_slice(value.as_bytes());
                    text.push(b'\n');
                }
                text
            })?;
            self.text = Some(io::Cursor::new(text));
        }
        self.text.as_mut().map_or(Ok(&[][..]), |t| t.fill_buf())
    }

    fn consume(&mut self, amount: usize) {
        if let Some(text) = &mut self.text {
            text.consume(amount);
        }
    }
}

/// The answer's body, read chunk by chunk as it arrives; reading it sends the request.
pub(crate) struct Body {
    exchange: Arc<Exchange>,
    response: Option<reqwest::Response>,
    chunk: Bytes,
    position: usize,
    ended: bool,
}

impl Body {
    fn of(exchange: Arc<Exchange>) -> Body {
        Body {
            exchange,
            response: None,
            chunk: Bytes::new(),
            position: 0,
            ended: false,
        }
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_buffered(self, buf)
    }
}

impl BufRead for Body {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.position == self.chunk.len() && !self.ended {
            if self.response.is_none() {
                self.response = self.exchange.answered(Option::take)?;
            }
            let Some(response) = self.response.as_mut() else {
                self.ended = true;
                break;
            };
            let driver = &self.exchange.driver;
            match driver.run(async { response.chunk().await.map_err(transfer_error) })? {
                Some(chunk) => {
                    self.chunk = chunk;
                    self.position = 0;
                }
                None => {
                    self.ended = true;
                    self.response = None;
                }
            }
        }
        Ok(&self.chunk[self.position..])
    }

    fn consume(&mut self, amount: usize) {
        self.position = (self.position + amount).min(self.chunk.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAIL: &str = "/info/refs?service=git-upload-pack";

    fn moved_to(location: &str) -> reqwest::Response {
        let answer = ::http::Response::builder()
            .status(301)
            .header("location", location)
            .body("")
            .expect("a response");
        reqwest::Response::from(answer)
    }

    fn follow(from: &str, location: &str, credentials: bool) -> Result<String, String> {
        redirect_target(from, &moved_to(location), TAIL, credentials).map_err(|e| e.to_string())
    }

    #[test]
    fn a_redirect_to_the_same_path_under_another_base_is_followed() {
        let from = format!("https://git.example/old/app.git{TAIL}");
        assert_eq!(
            follow(&from, &format!("/new/app.git{TAIL}"), true),
            Ok(format!("https://git.example/new/app.git{TAIL}"))
        );
        // Without credentials another host is fine.
        assert_eq!(
            follow(
                &from,
                &format!("https://mirror.example/app.git{TAIL}"),
                false
            ),
            Ok(format!("https://mirror.example/app.git{TAIL}"))
        );
    }

    #[test]
    fn redirects_that_would_lose_trust_or_the_path_are_refused() {
        let from = format!("https://git.example/app.git{TAIL}");
        for (location, credentials, why) in [
            (
                format!("http://git.example/app.git{TAIL}"),
                false,
                "from HTTPS to http",
            ),
            (
                format!("https://other.example/app.git{TAIL}"),
                true,
                "another host",
            ),
            (
                format!("https://git.example:8443/app.git{TAIL}"),
                true,
                "another host",
            ),
            (
                "https://git.example/login".to_owned(),
                false,
                "does not end in",
            ),
            (format!("file:///srv/app.git{TAIL}"), false, "a file URL"),
        ] {
            let refused = follow(&from, &location, credentials).expect_err(&location);
            assert!(refused.contains(why), "{location}: {refused}");
            assert!(refused.starts_with("Received HTTP status 301"), "{refused}");
        }
    }

    #[test]
    fn a_failed_status_reads_as_gix_reports_it_with_reqwests_error_beneath() {
        let answer = ::http::Response::builder()
            .status(404)
            .body("")
            .expect("a response");
        let error = status_error(reqwest::Response::from(answer));
        assert_eq!(error.to_string(), "Received HTTP status 404");
        let source = std::error::Error::source(&error).expect("the reqwest error");
        let reqwest = source.downcast_ref::<reqwest::Error>().expect("reqwest");
        assert_eq!(reqwest.status().map(|s| s.as_u16()), Some(404));

        let answer = ::http::Response::builder()
            .status(401)
            .header("www-authenticate", "Basic realm=\"git\"")
            .body("")
            .expect("a response");
        let error = status_error(reqwest::Response::from(answer));
        assert_eq!(error.kind(), io::ErrorKind::PermissionDenied);
        let required = error
            .get_ref()
            .and_then(|e| e.downcast_ref::<AuthenticationRequired>())
            .expect("gix's 401");
        assert_eq!(required.www_authenticate, ["Basic realm=\"git\""]);
    }
}
