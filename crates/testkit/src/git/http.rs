//! The HTTP and HTTPS front end and its test CA. It runs on one background thread with its own
//! tokio runtime, so the server outlives (and does not depend on) the runtime of whichever test
//! started it.

use std::convert::Infallible;
use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use super::cgi::{self, Backend, Body, CgiRequest};
use super::log::{Credential, Request, RequestKind, Transport, repo_name};
use super::{Auth, Error, State, lock};

/// The 401 challenge: it is what makes git and gix retry with credentials.
const CHALLENGE: &str = "Basic realm=\"mooring-test\"";

/// Listeners bound by the caller, so the ports accept connections as soon as `start` returns.
pub(crate) struct Listeners {
    pub(crate) http: std::net::TcpListener,
    pub(crate) https: std::net::TcpListener,
    pub(crate) tls: Arc<rustls::ServerConfig>,
}

/// Starts the server thread; dropping or sending on the returned sender stops it.
pub(crate) fn spawn(
    state: Arc<State>,
    listeners: Listeners,
) -> Result<(oneshot::Sender<()>, JoinHandle<()>), Error> {
    let (stop_tx, stop_rx) = oneshot::channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<()>>();
    let thread = std::thread::Builder::new()
        .name("git-server".to_string())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let runtime = match runtime {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            runtime.block_on(async move {
                let bound = TcpListener::from_std(listeners.http)
                    .and_then(|h| Ok((h, TcpListener::from_std(listeners.https)?)));
                match bound {
                    Ok((http, https)) => {
                        let _ = ready_tx.send(Ok(()));
                        serve(state, http, https, listeners.tls, stop_rx).await;
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            });
            // The runtime drops here, on its own thread, cancelling open connections (and so
            // killing their backends); dropping it inside a test's runtime would panic.
        })
        .map_err(Error::StartServerThread)?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok((stop_tx, thread)),
        Ok(Err(e)) => Err(Error::StartServerThread(e)),
        Err(_) => Err(Error::StartServerThread(io::Error::other(
            "server thread ended early",
        ))),
    }
}

async fn serve(
    state: Arc<State>,
    http: TcpListener,
    https: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    mut stop: oneshot::Receiver<()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let mut accepted = 0u64;
    loop {
        tokio::select! {
            _ = &mut stop => return,
            Ok((stream, _)) = http.accept() => {
                accepted += 1;
                tokio::spawn(serve_connection(state.clone(), (Transport::Http, accepted), stream));
            }
            Ok((stream, _)) = https.accept() => {
                accepted += 1;
                let (state, acceptor) = (state.clone(), acceptor.clone());
                tokio::spawn(async move {
                    // A failed handshake (an untrusted CA on the client) is the client's error
                    // to report; the server has nothing to log.
                    if let Ok(stream) = acceptor.accept(stream).await {
                        serve_connection(state, (Transport::Https, accepted), stream).await;
                    }
                });
            }
        }
    }
}

/// Serves one connection, the `connection`-th accepted.
async fn serve_connection<S>(state: Arc<State>, connection: (Transport, u64), stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(handle(&state, connection, request).await) }
    });
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// The path prefix under which every repository is also found, answered with a redirect to the
/// same path without it (as a host does for a renamed repository).
pub(crate) const MOVED_PREFIX: &str = "/moved";

async fn handle(
    state: &State,
    (transport, connection): (Transport, u64),
    request: hyper::Request<Incoming>,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    if let Some(moved) = path
        .strip_prefix(MOVED_PREFIX)
        .filter(|p| p.starts_with('/'))
    {
        let location = match query.as_str() {
            "" => moved.to_owned(),
            query => format!("{moved}?{query}"),
        };
        let mut response = plain(StatusCode::MOVED_PERMANENTLY, "moved\n");
        if let Ok(value) = hyper::header::HeaderValue::from_str(&location) {
            response
                .headers_mut()
                .insert(hyper::header::LOCATION, value);
        }
        lock(&state.log).push(Request {
            transport,
            method: parts.method.to_string(),
            repo: repo_name(moved),
            path: path.clone(),
            service: service_of(moved, &query),
            kind: RequestKind::Other,
            command: None,
            credential: Credential::None,
            status: 301,
            connection,
        });
        return response;
    }
    let service = service_of(&path, &query);
    let kind = if path.ends_with("/info/refs") {
        RequestKind::RefAdvertisement
    } else if service.as_deref() == Some("git-receive-pack") {
        RequestKind::Push
    } else {
        RequestKind::Other
    };
    let mut entry = Request {
        transport,
        method: parts.method.to_string(),
        repo: repo_name(&path),
        path: path.clone(),
        service: service.clone(),
        kind,
        command: None,
        credential: Credential::None,
        status: 0,
        connection,
    };

    let auth = lock(&state.auth).get(&entry.repo).cloned();
    let response = match auth {
        None => plain(StatusCode::NOT_FOUND, "no such repository\n"),
        Some(auth) => match authenticate(&auth, &parts.headers) {
            None => unauthorized(),
            Some(credential) => {
                let remote_user = match &credential {
                    Credential::Basic { username } => Some(username.as_str()),
                    _ => None,
                };
                let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
                let cgi_request = CgiRequest {
                    method: parts.method.as_str(),
                    path_info: &path,
                    query: &query,
                    content_type: header(CONTENT_TYPE),
                    content_length: header(CONTENT_LENGTH),
                    content_encoding: header(CONTENT_ENCODING),
                    git_protocol: header(hyper::header::HeaderName::from_static("git-protocol")),
                    remote_user,
                };
                let classify =
                    parts.method == "POST" && service.as_deref() == Some("git-upload-pack");
                let backend = Backend {
                    program: &state.http_backend,
                    project_root: &state.root,
                    home: &state.home,
                    stderr_log: &state.backend_log,
                };
                entry.credential = credential.clone();
                match cgi::run(&backend, &cgi_request, body, classify).await {
                    Ok(answer) => {
                        if let Some((kind, command)) = answer.kind {
                            entry.kind = kind;
                            entry.command = command;
                        }
                        answer.response
                    }
                    Err(e) => plain(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e}\n")),
                }
            }
        },
    };
    entry.status = response.status().as_u16();
    lock(&state.log).push(entry);
    response
}

/// `git-upload-pack` from `?service=git-upload-pack` or a `/git-upload-pack` path.
fn service_of(path: &str, query: &str) -> Option<String> {
    let from_query = query.split('&').find_map(|kv| kv.strip_prefix("service="));
    let from_path = path.rsplit('/').next().filter(|s| s.starts_with("git-"));
    from_query.or(from_path).map(str::to_string)
}

/// The credential that satisfies `auth`, or `None` when the request must be challenged.
fn authenticate(auth: &Auth, headers: &HeaderMap) -> Option<Credential> {
    let header = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    match auth {
        Auth::None => Some(Credential::None),
        Auth::Basic { username, password } => {
            let encoded = header?.strip_prefix("Basic ")?;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()?;
            let (user, pass) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
            (user == username && pass == password).then(|| Credential::Basic {
                username: user.to_string(),
            })
        }
        Auth::Bearer { token } => {
            let presented = header?.strip_prefix("Bearer ")?;
            (presented.trim() == token).then_some(Credential::Bearer)
        }
    }
}

fn unauthorized() -> Response<Body> {
    let mut response = plain(StatusCode::UNAUTHORIZED, "authentication required\n");
    response.headers_mut().insert(
        hyper::header::WWW_AUTHENTICATE,
        hyper::header::HeaderValue::from_static(CHALLENGE),
    );
    response
}

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut response = Response::new(
        Full::new(Bytes::from(text.to_string()))
            .map_err(|e| match e {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
}

/// A CA and the rustls configuration of a server whose certificate it signed.
pub(crate) struct Tls {
    pub(crate) ca_pem: String,
    pub(crate) server_config: Arc<rustls::ServerConfig>,
}

/// Generates a fresh CA and a server certificate for `127.0.0.1` and `localhost`.
///
/// A private CA (rather than a self-signed leaf) is what clients are configured with in real
/// clusters (`http.sslCAInfo`, a `caFile` in a Secret), so tests exercise that same path.
pub(crate) fn generate_tls() -> Result<Tls, Error> {
    let ca = crate::certs::TestCa::new("Mooring test CA").map_err(Error::GenerateCertificate)?;
    let server = ca
        .server_cert("127.0.0.1")
        .map_err(Error::GenerateCertificate)?;

    // An explicit provider: the process-wide default may be unset or ambiguous in a test binary
    // that links both rustls providers.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server.key_der));
    let chain = vec![
        CertificateDer::from(server.cert_der),
        CertificateDer::from(ca.cert_der().to_vec()),
    ];
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::ConfigureTls)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(Error::ConfigureTls)?;
    // The server speaks HTTP/1.1 only; announcing it keeps clients from trying h2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];

    Ok(Tls {
        ca_pem: ca.cert_pem().to_string(),
        server_config: Arc::new(config),
    })
}
