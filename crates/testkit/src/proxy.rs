//! A forward HTTP proxy on 127.0.0.1 for tests of clients that go through one: `CONNECT`
//! tunnels (what an HTTPS request through a proxy is) and absolute-form requests (`GET
//! http://host/path`, what a plain HTTP request through a proxy is), optionally behind Basic
//! credentials. It records each request it is asked to carry.
//!
//! Each request is carried on a connection of its own: the proxy sends it to the origin with
//! `Connection: close`, so every request a client makes shows up in [`ForwardProxy::requests`].
//! A tunnel lasts as long as both ends keep it open. Interim `1xx` responses (a client's
//! `Expect: 100-continue`) are not handled: the clients tested here do not ask for them.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine;

/// The longest request head the proxy reads; a longer one is refused.
const MAX_HEAD: usize = 64 * 1024;
/// How long a client may take to send a request head.
const IDLE: Duration = Duration::from_secs(30);

/// One request the proxy was asked to carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxiedRequest {
    /// `CONNECT`, `GET`, `POST`, ...
    pub method: String,
    /// `host:port` for `CONNECT`, the absolute URL otherwise.
    pub target: String,
    /// Whether the request carried the proxy's credentials (always true without credentials).
    pub authorized: bool,
}

/// A running proxy; it stops when dropped (tunnels already open run to their end).
pub struct ForwardProxy {
    address: SocketAddr,
    seen: Arc<Mutex<Vec<ProxiedRequest>>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl ForwardProxy {
    /// Starts a proxy on a free port of 127.0.0.1. With `credentials`, a request without a
    /// matching `Proxy-Authorization: Basic` header is answered `407` and not carried.
    pub fn start(credentials: Option<(&str, &str)>) -> io::Result<ForwardProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        let expected = credentials.map(|(user, password)| {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            format!("Basic {token}")
        });
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::Builder::new()
                .name("test-proxy".into())
                .spawn(move || {
                    for client in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(client) = client else { continue };
                        let (seen, expected) = (seen.clone(), expected.clone());
                        let _ = std::thread::Builder::new()
                            .name("test-proxy-conn".into())
                            .spawn(move || {
                                if let Err(e) = carry(client, expected.as_deref(), &seen) {
                                    tracing::debug!("test proxy: {e}");
                                }
                            });
                    }
                })?
        };
        Ok(ForwardProxy {
            address,
            seen,
            stop,
            acceptor: Some(acceptor),
        })
    }

    /// `http://127.0.0.1:<port>`: the proxy's address as a client is given it.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Every request asked of the proxy so far, in order of arrival.
    pub fn requests(&self) -> Vec<ProxiedRequest> {
        self.seen.lock().expect("proxy log").clone()
    }

    /// Forgets the requests recorded so far.
    pub fn clear(&self) {
        self.seen.lock().expect("proxy log").clear();
    }
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the acceptor, which then sees `stop`.
        let _ = TcpStream::connect(self.address);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// The request line and headers of one request.
struct Head {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_head(reader: &mut BufReader<TcpStream>) -> io::Result<Head> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_owned());
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line)?;
        total += n;
        if n == 0 || total > MAX_HEAD {
            return Err(bad("the request head ended early or is too long"));
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    let mut request_line = lines
        .first()
        .ok_or_else(|| bad("no request line"))?
        .split(' ');
    let (Some(method), Some(target)) = (request_line.next(), request_line.next()) else {
        return Err(bad("a request line without a target"));
    };
    let headers = lines[1..]
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(Head {
        method: method.to_owned(),
        target: target.to_owned(),
        headers,
    })
}

/// Reads one request from `client` and carries it: through a tunnel for `CONNECT`, to the
/// origin of its absolute URL otherwise.
fn carry(
    client: TcpStream,
    expected: Option<&str>,
    seen: &Mutex<Vec<ProxiedRequest>>,
) -> io::Result<()> {
    client.set_read_timeout(Some(IDLE))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let head = read_head(&mut reader)?;
    // Waiting for a request head has a time limit; a tunnel or a response may take longer.
    client.set_read_timeout(None)?;
    let authorized = expected.is_none_or(|want| head.header("proxy-authorization") == Some(want));
    seen.lock().expect("proxy log").push(ProxiedRequest {
        method: head.method.clone(),
        target: head.target.clone(),
        authorized,
    });
    let mut answer = client.try_clone()?;
    if !authorized {
        answer.write_all(
            b"HTTP/1.1 407 Proxy Authentication Required\r\n\
              Proxy-Authenticate: Basic realm=\"mooring-testkit\"\r\n\
              Content-Length: 0\r\nConnection: close\r\n\r\n",
        )?;
        return Ok(());
    }
    if head.method.eq_ignore_ascii_case("CONNECT") {
        let upstream = TcpStream::connect(&head.target)?;
        answer.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
        return pipe(reader, answer, upstream, false);
    }
    let Some(rest) = head.target.strip_prefix("http://") else {
        answer.write_all(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?;
        return Ok(());
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut upstream = TcpStream::connect(authority)?;
    let mut forwarded = format!("{} {path} HTTP/1.1\r\n", head.method);
    let hop_by_hop = [
        "proxy-authorization",
        "proxy-connection",
        "connection",
        "keep-alive",
    ];
    for (name, value) in &head.headers {
        if !hop_by_hop.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            forwarded.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    upstream.write_all(forwarded.as_bytes())?;
    pipe(reader, answer, upstream, true)
}

/// Copies bytes both ways between the client (what `reader` has buffered first) and the
/// upstream until either side is done, then closes both. With `close`, the response head is
/// rewritten to say `Connection: close`, so that the client sends its next request on a new
/// connection (and the proxy sees it).
fn pipe(
    mut reader: BufReader<TcpStream>,
    mut client: TcpStream,
    upstream: TcpStream,
    close: bool,
) -> io::Result<()> {
    let buffered = reader.buffer().to_vec();
    reader.consume(buffered.len());
    let mut to_upstream = upstream.try_clone()?;
    to_upstream.write_all(&buffered)?;
    let outbound = std::thread::Builder::new()
        .name("test-proxy-out".into())
        .spawn(move || {
            let _ = io::copy(&mut reader, &mut to_upstream);
            let _ = to_upstream.shutdown(Shutdown::Write);
        })?;
    let mut from_upstream = BufReader::new(upstream.try_clone()?);
    let result = (|| -> io::Result<()> {
        if close {
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if from_upstream.read_line(&mut line)? == 0 || head.len() > MAX_HEAD {
                    return Ok(());
                }
                if line == "\r\n" || line == "\n" {
                    break;
                }
                let name = line.split(':').next().unwrap_or_default().trim();
                if !["connection", "keep-alive"]
                    .iter()
                    .any(|h| name.eq_ignore_ascii_case(h))
                {
                    head.push_str(&line);
                }
            }
            head.push_str("Connection: close\r\n\r\n");
            client.write_all(head.as_bytes())?;
        }
        io::copy(&mut from_upstream, &mut client)?;
        Ok(())
    })();
    let _ = client.shutdown(Shutdown::Both);
    let _ = upstream.shutdown(Shutdown::Both);
    let _ = outbound.join();
    result
}
