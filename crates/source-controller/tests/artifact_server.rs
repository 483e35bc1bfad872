//! The artifact server on 127.0.0.1, spoken to over raw HTTP/1.1 so that paths reach it
//! exactly as written (an HTTP client library would normalise `..` away).

use std::net::SocketAddr;
use std::path::Path;

use mooring_source_controller::server::{ServerLimits, serve_on};
use mooring_source_controller::storage::{Storage, StoredArtifact};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(root: &Path) -> Server {
        Self::start_with(root, ServerLimits::default()).await
    }

    async fn start_with(root: &Path, limits: ServerLimits) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(serve_on(listener, root.to_path_buf(), limits, shutdown));
        Server {
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.expect("join").expect("server ran cleanly");
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn request(addr: SocketAddr, method: &str, path: &str, extra: &[(&str, &str)]) -> Reply {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: artifacts\r\nConnection: close\r\n");
    for (name, value) in extra {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    stream.write_all(text.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("receive");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// Bytes that do not fit in one read chunk, so streaming is exercised.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn store(storage: &Storage, stem: &str, bytes: &[u8]) -> StoredArtifact {
    let (stored, ()) = storage
        .store("ns", "app", stem, |w| std::io::Write::write_all(w, bytes))
        .expect("store");
    stored
}

#[tokio::test]
async fn get_and_head_serve_the_file_with_length_and_etag() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = Storage::new(dir.path().join("data"));
    let bytes = payload(300 * 1024);
    let stored = store(&storage, "abc", &bytes);
    let hex = stored.digest.trim_start_matches("sha256:").to_string();
    let etag = format!("\"{hex}\"");
    let server = Server::start(storage.root()).await;
    let path = format!("/{}", stored.path);

    let get = request(server.addr, "GET", &path, &[]).await;
    assert_eq!(get.status, 200);
    assert_eq!(get.body, bytes);
    assert_eq!(
        get.header("content-length"),
        Some(bytes.len().to_string().as_str())
    );
    assert_eq!(get.header("etag"), Some(etag.as_str()));
    assert_eq!(get.header("content-type"), Some("application/gzip"));

    let head = request(server.addr, "HEAD", &path, &[]).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        Some(bytes.len().to_string().as_str())
    );
    assert_eq!(head.header("etag"), Some(etag.as_str()));

    let cached = request(server.addr, "GET", &path, &[("If-None-Match", &etag)]).await;
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());
    assert_eq!(cached.header("etag"), Some(etag.as_str()));
    let stale = request(server.addr, "GET", &path, &[("If-None-Match", "\"other\"")]).await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body, bytes);

    // The file replaced in place (not something storage does) gets a fresh ETag.
    let local = storage.local_path(&stored.path).expect("path");
    std::fs::write(&local, b"replaced").expect("write");
    let replaced = request(server.addr, "GET", &path, &[]).await;
    assert_eq!(replaced.body, b"replaced");
    let new_hex = mooring_source_controller::storage::sha256_hex(&b"replaced"[..]).expect("hash");
    assert_eq!(
        replaced.header("etag"),
        Some(format!("\"{new_hex}\"").as_str())
    );

    server.stop().await;
}

#[tokio::test]
async fn missing_files_directories_and_temp_files_are_404() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = Storage::new(dir.path().join("data"));
    store(&storage, "abc", b"x");
    std::fs::write(
        storage
            .root()
            .join("gitrepository/ns/app/.tmp-partial.tar.gz"),
        b"partial",
    )
    .expect("write");
    let server = Server::start(storage.root()).await;
    for path in [
        "/gitrepository/ns/app/missing.tar.gz",
        "/",
        "/gitrepository",
        "/gitrepository/",
        "/gitrepository/ns/app",
        "/gitrepository/ns/app/.tmp-partial.tar.gz",
        "/gitrepository/ns/app/abc.tar.gz/extra",
    ] {
        let reply = request(server.addr, "GET", path, &[]).await;
        assert_eq!(reply.status, 404, "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn traversal_attempts_never_reach_outside_the_root() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = "top secret content";
    std::fs::write(dir.path().join("secret"), secret).expect("write");
    std::fs::create_dir(dir.path().join("outside")).expect("mkdir");
    std::fs::write(dir.path().join("outside/secret"), secret).expect("write");
    let storage = Storage::new(dir.path().join("data"));
    store(&storage, "abc", b"x");
    let root = storage.root();
    std::os::unix::fs::symlink(
        "../../../../secret",
        root.join("gitrepository/ns/app/link.tar.gz"),
    )
    .expect("symlink");
    std::os::unix::fs::symlink(dir.path().join("outside"), root.join("escape")).expect("symlink");
    let server = Server::start(root).await;

    for path in [
        "/../secret",
        "/%2e%2e/secret",
        "/%2E%2E/secret",
        "/gitrepository/%2e%2e/%2e%2e/secret",
        "/gitrepository/..%2f..%2fsecret",
        "/gitrepository/ns/app/link.tar.gz",
        "/escape/secret",
        "/escape/",
        "//secret",
        "/%2fetc%2fpasswd",
        "/gitrepository/ns/app/..%5c..%5csecret",
        "/gitrepository/./ns/app/abc",
    ] {
        let reply = request(server.addr, "GET", path, &[]).await;
        assert!(
            reply.status == 400 || reply.status == 404,
            "{path}: status {}",
            reply.status
        );
        assert!(
            !String::from_utf8_lossy(&reply.body).contains(secret),
            "{path} leaked the secret"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn only_get_and_head_are_allowed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = Storage::new(dir.path().join("data"));
    let stored = store(&storage, "abc", b"x");
    let server = Server::start(storage.root()).await;
    let path = format!("/{}", stored.path);
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let reply = request(server.addr, method, &path, &[("Content-Length", "0")]).await;
        assert_eq!(reply.status, 405, "{method}");
        assert_eq!(reply.header("allow"), Some("GET, HEAD"));
    }
    assert!(storage.verify(&stored.path, &stored.digest));
    server.stop().await;
}

/// Reads until the server closes the connection; `None` if it is still open after `within`.
async fn closed_within(stream: &mut TcpStream, within: std::time::Duration) -> Option<Vec<u8>> {
    let mut raw = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut raw))
        .await
        .ok()
        .map(|read| {
            read.ok();
            raw
        })
}

#[tokio::test]
async fn silent_and_slow_clients_are_cut_off_and_cannot_crowd_out_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = Storage::new(dir.path().join("data"));
    let stored = store(&storage, "abc", b"artifact bytes");
    let limits = ServerLimits {
        max_connections: 2,
        header_timeout: std::time::Duration::from_millis(500),
        connection_timeout: std::time::Duration::from_secs(30),
    };
    let server = Server::start_with(storage.root(), limits).await;

    // Two clients connect and say nothing: they take both slots.
    let mut silent_a = TcpStream::connect(server.addr).await.expect("connect");
    let mut silent_b = TcpStream::connect(server.addr).await.expect("connect");
    silent_a
        .write_all(b"GET /")
        .await
        .expect("a partial request line");
    // A third is turned away at once rather than queued behind them.
    let mut third = TcpStream::connect(server.addr).await.expect("connect");
    let turned_away = closed_within(&mut third, std::time::Duration::from_secs(5))
        .await
        .expect("the connection over the limit is closed");
    assert!(turned_away.is_empty(), "no answer over the limit");

    // The silent ones are closed once the header timeout passes (without an answer, or
    // with a 408), which frees the slots for real requests.
    for silent in [&mut silent_a, &mut silent_b] {
        let answer = closed_within(silent, std::time::Duration::from_secs(10))
            .await
            .expect("a client that sends no complete request is disconnected");
        let text = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || text.starts_with("HTTP/1.1 408"),
            "{text}"
        );
    }
    let reply = request(server.addr, "GET", &format!("/{}", stored.path), &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, b"artifact bytes");
    server.stop().await;
}
