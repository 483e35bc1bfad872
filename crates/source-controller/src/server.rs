//! The artifact HTTP server: the storage root, read-only.
//!
//! GET and HEAD only. Every response for a file carries `Content-Length` and
//! `ETag: "<sha256 hex>"` (the same hex as the artifact's digest), and `If-None-Match` gives
//! 304. There are no directory listings, hidden files (temp files being written) are never
//! served, and a path with `..` or `.` (also percent-encoded) or with a NUL or backslash is a
//! 400. Every component under the root is checked with `lstat`: a symlink anywhere is a 404,
//! and the opened file must be the inode that was checked. Files are streamed.
//!
//! The digest is computed once per file and cached by path, keyed on (device, inode, size,
//! mtime), so a replaced file is hashed again. Storage writes new names for new content, so
//! in practice each file is hashed once.

use std::collections::HashMap;
use std::fs::{self, File};
use std::future::Future;
use std::io::{self, Seek, SeekFrom};
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::io::ReaderStream;

use crate::storage::{FileStamp, sha256_hex};

/// The digest cache is emptied when it grows past this many files (GC'd files linger there).
const DIGEST_CACHE_LIMIT: usize = 4096;
/// Read size when streaming a file.
const CHUNK: usize = 64 * 1024;

#[derive(Clone)]
struct Served {
    root: Arc<PathBuf>,
    digests: Arc<Mutex<HashMap<PathBuf, Cached>>>,
}

struct Cached {
    version: FileStamp,
    hex: String,
}

/// The router serving `storage_root` read-only.
pub fn router(storage_root: impl Into<PathBuf>) -> Router {
    let served = Served {
        root: Arc::new(storage_root.into()),
        digests: Arc::default(),
    };
    Router::new().fallback(handle).with_state(served)
}

/// What one client may hold of the artifact server. A client that opens connections and
/// never sends a request, or sends it a byte at a time, or never reads the answer, would
/// otherwise hold a socket and a task each, for ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Connections served at once; further ones are closed at once without an answer.
    pub max_connections: usize,
    /// Time for a request's headers to arrive, counted from the connection's start or from
    /// the end of the previous response on a kept-alive connection.
    pub header_timeout: Duration,
    /// The longest a connection lives, its downloads included.
    pub connection_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
            connection_timeout: Duration::from_secs(600),
        }
    }
}

/// Serves `root` on `addr` until `shutdown` completes.
pub async fn serve(
    addr: SocketAddr,
    root: PathBuf,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    serve_on(listener, root, limits, shutdown).await
}

/// Serves `root` on an already bound listener until `shutdown` completes, within `limits`.
/// On shutdown no new connection is accepted, and those open get the rest of
/// `limits.header_timeout` to finish.
pub async fn serve_on(
    listener: TcpListener,
    root: PathBuf,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_router_on(listener, router(root), limits, "artifact server", shutdown).await
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes; `what` names the
/// server in logs. Shared by the artifact and the receiver servers.
pub async fn serve_router_on(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    what: &'static str,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let service = TowerToHyperService::new(router);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: the listener itself is fine.
                Err(error) => {
                    tracing::warn!(%error, "{what}: accept");
                    continue;
                }
            },
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!(%peer, "{what}: connection limit reached, closing");
            drop(stream);
            continue;
        };
        let service = service.clone();
        connections.spawn(async move {
            let _slot = slot;
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(limits.connection_timeout, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::debug!(%peer, %error, "{what}: connection"),
                Err(_) => tracing::debug!(%peer, "{what}: connection lived too long"),
            }
        });
        // Finished connections are reaped as we go, so the set stays as small as the
        // number of open ones.
        while connections.try_join_next().is_some() {}
    }
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(limits.header_timeout, drain)
        .await
        .is_err()
    {
        tracing::debug!("{what}: closing connections still open at shutdown");
    }
    Ok(())
}

/// A request path that is not served.
#[derive(Debug, PartialEq, Eq)]
enum Refused {
    /// Malformed or trying to leave the root: 400.
    BadRequest,
    /// Nothing to serve there: 404.
    NotFound,
}

async fn handle(
    State(served): State<Served>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        let allow = [(header::ALLOW, "GET, HEAD")];
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            allow,
            "method not allowed\n",
        )
            .into_response();
    }
    let segments = match request_segments(uri.path()) {
        Ok(segments) => segments,
        Err(refused) => return refusal(refused),
    };
    let root = Arc::clone(&served.root);
    let digests = Arc::clone(&served.digests);
    let opened = tokio::task::spawn_blocking(move || open_with_digest(&root, &segments, &digests));
    let (file, version, hex) = match opened.await {
        Ok(Ok(found)) => found,
        Ok(Err(OpenError::NotFound)) => return refusal(Refused::NotFound),
        Ok(Err(OpenError::Io(error))) => {
            tracing::warn!(path = uri.path(), %error, "serve artifact");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        Err(error) => {
            tracing::warn!(path = uri.path(), %error, "serve artifact task");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };

    let etag = format!("\"{hex}\"");
    let etag_value = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""));
    if if_none_match(&headers, &etag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response();
    }
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        let stream = ReaderStream::with_capacity(tokio::fs::File::from_std(file), CHUNK);
        Body::from_stream(stream)
    };
    let content_type = if uri.path().ends_with(".tar.gz") {
        "application/gzip"
    } else {
        "application/octet-stream"
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_LENGTH, HeaderValue::from(version.len)),
            (header::ETAG, etag_value),
        ],
        body,
    )
        .into_response()
}

fn refusal(refused: Refused) -> Response {
    match refused {
        Refused::BadRequest => (StatusCode::BAD_REQUEST, "bad request\n").into_response(),
        Refused::NotFound => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

/// The decoded path segments of a request, or why it is refused.
fn request_segments(raw: &str) -> Result<Vec<String>, Refused> {
    let Some(rest) = raw.strip_prefix('/') else {
        return Err(Refused::BadRequest);
    };
    let mut segments = Vec::new();
    for raw_segment in rest.split('/') {
        let decoded = percent_decode(raw_segment).ok_or(Refused::BadRequest)?;
        let segment = String::from_utf8(decoded).map_err(|_| Refused::BadRequest)?;
        if segment == "." || segment == ".." || segment.contains(['/', '\\', '\0']) {
            return Err(Refused::BadRequest);
        }
        // Empty: the root, a directory (trailing slash) or `//`; hidden: temp files.
        if segment.is_empty() || segment.starts_with('.') {
            return Err(Refused::NotFound);
        }
        segments.push(segment);
    }
    Ok(segments)
}

/// Strict percent-decoding: a `%` must be followed by two hex digits.
fn percent_decode(segment: &str) -> Option<Vec<u8>> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let text = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(text, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Whether `If-None-Match` names `etag` (weak comparison, `*` matches any file).
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

enum OpenError {
    NotFound,
    Io(io::Error),
}

impl From<io::Error> for OpenError {
    fn from(error: io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::NotFound
            | io::ErrorKind::NotADirectory
            | io::ErrorKind::PermissionDenied => Self::NotFound,
            _ => Self::Io(error),
        }
    }
}

/// Opens the file and finds its digest (cached, or hashed now). Blocking.
fn open_with_digest(
    root: &Path,
    segments: &[String],
    digests: &Mutex<HashMap<PathBuf, Cached>>,
) -> Result<(File, FileStamp, String), OpenError> {
    let (path, mut file, version) = open_checked(root, segments)?;
    let lock = || digests.lock().unwrap_or_else(PoisonError::into_inner);
    let cached = lock()
        .get(&path)
        .filter(|c| c.version == version)
        .map(|c| c.hex.clone());
    let hex = match cached {
        Some(hex) => hex,
        None => {
            let hex = sha256_hex(&mut file)?;
            file.seek(SeekFrom::Start(0))?;
            let mut cache = lock();
            if cache.len() >= DIGEST_CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(
                path,
                Cached {
                    version,
                    hex: hex.clone(),
                },
            );
            hex
        }
    };
    Ok((file, version, hex))
}

/// Opens `root/segments...` when every component is a real directory and the last a regular
/// file, none of them a symlink; the opened file must be the one that was checked.
fn open_checked(root: &Path, segments: &[String]) -> Result<(PathBuf, File, FileStamp), OpenError> {
    let mut path = root.to_path_buf();
    let mut checked = None;
    for (index, segment) in segments.iter().enumerate() {
        path.push(segment);
        let meta = fs::symlink_metadata(&path)?;
        let last = index + 1 == segments.len();
        let kind = meta.file_type();
        let fits = if last { kind.is_file() } else { kind.is_dir() };
        if kind.is_symlink() || !fits {
            return Err(OpenError::NotFound);
        }
        checked = Some(meta);
    }
    let Some(checked) = checked else {
        return Err(OpenError::NotFound);
    };
    let file = File::open(&path)?;
    let meta = file.metadata()?;
    // Swapped for something else (a symlink) between the check and the open.
    if meta.dev() != checked.dev() || meta.ino() != checked.ino() {
        return Err(OpenError::NotFound);
    }
    Ok((path, file, FileStamp::of(&meta)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_are_split_into_segments() {
        assert_eq!(
            request_segments("/gitrepository/ns/app/abc-123.tar.gz"),
            Ok(vec![
                "gitrepository".to_string(),
                "ns".into(),
                "app".into(),
                "abc-123.tar.gz".into()
            ])
        );
        assert_eq!(request_segments("/a%2Db"), Ok(vec!["a-b".to_string()]));
    }

    #[test]
    fn traversal_attempts_are_bad_requests() {
        for path in [
            "/../etc/passwd",
            "/a/../../etc",
            "/%2e%2e/etc",
            "/%2E%2E/etc",
            "/a/..%2f..%2fetc",
            "/a%2fb",
            "/a%5cb",
            "/a%00b",
            "/./a",
            "/a/%2e",
            "/a%zz",
            "/a%2",
            "relative",
        ] {
            assert_eq!(request_segments(path), Err(Refused::BadRequest), "{path}");
        }
    }

    #[test]
    fn directories_and_hidden_files_are_not_found() {
        for path in [
            "/",
            "/gitrepository/",
            "//etc/passwd",
            "/a//b",
            "/ns/.tmp-x.tar.gz",
        ] {
            assert_eq!(request_segments(path), Err(Refused::NotFound), "{path}");
        }
    }

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_star() {
        let mut headers = HeaderMap::new();
        let etag = "\"abc\"";
        assert!(!if_none_match(&headers, etag));
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"x\", W/\"abc\""),
        );
        assert!(if_none_match(&headers, etag));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(if_none_match(&headers, etag));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"abcd\""));
        assert!(!if_none_match(&headers, etag));
    }
}
