//! Runs `git http-backend` as a CGI program for one HTTP request.
//!
//! The real backend (rather than a reimplementation of the smart protocol) is what makes the
//! server a faithful stand-in for GitHub or Gitea: v0 and v2, shallow fetches, filters and
//! gzip request bodies all behave as git itself implements them.

use std::io;
use std::path::Path;
use std::process::Stdio;

use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::log::{RequestKind, classify_upload_pack_body};

/// The response body type of the server.
pub(crate) type Body = UnsyncBoxBody<Bytes, io::Error>;

/// Enough of an upload-pack request body to read its first pkt-line, even gzip-compressed.
const PEEK_BYTES: usize = 8192;

/// The CGI variables of one request.
pub(crate) struct CgiRequest<'a> {
    pub(crate) method: &'a str,
    pub(crate) path_info: &'a str,
    pub(crate) query: &'a str,
    pub(crate) content_type: Option<&'a str>,
    pub(crate) content_length: Option<&'a str>,
    pub(crate) content_encoding: Option<&'a str>,
    pub(crate) git_protocol: Option<&'a str>,
    pub(crate) remote_user: Option<&'a str>,
}

/// Where the backend runs: the repositories, an empty HOME and a log for its stderr.
pub(crate) struct Backend<'a> {
    pub(crate) program: &'a Path,
    pub(crate) project_root: &'a Path,
    pub(crate) home: &'a Path,
    pub(crate) stderr_log: &'a Path,
}

/// The backend's answer, and what the request body said it was for.
pub(crate) struct CgiResponse {
    pub(crate) response: Response<Body>,
    pub(crate) kind: Option<(RequestKind, Option<String>)>,
}

/// Runs the backend with `body` on its stdin; when `classify` is set the body's first bytes are
/// read first to tell `ls-refs` from `fetch`.
pub(crate) async fn run(
    backend: &Backend<'_>,
    request: &CgiRequest<'_>,
    mut body: Incoming,
    classify: bool,
) -> io::Result<CgiResponse> {
    let mut prefix = Vec::new();
    let mut body_done = false;
    if classify {
        while prefix.len() < PEEK_BYTES {
            match body.frame().await {
                Some(frame) => {
                    if let Ok(data) = frame.map_err(io::Error::other)?.into_data() {
                        prefix.extend_from_slice(&data);
                    }
                }
                None => {
                    body_done = true;
                    break;
                }
            }
        }
    }
    let kind = classify.then(|| {
        let gzip = request.content_encoding.is_some_and(|e| e.contains("gzip"));
        classify_upload_pack_body(&prefix, gzip)
    });

    let mut child = spawn(backend, request)?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| io::Error::other("backend stdin missing"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("backend stdout missing"))?;
    // Feeding stdin concurrently with reading stdout: the backend may answer before it has read
    // the whole body, and either pipe can fill up.
    tokio::spawn(feed_stdin(stdin, prefix, (!body_done).then_some(body)));

    let mut stdout = BufReader::new(stdout);
    let mut builder = Response::builder();
    let mut status = StatusCode::OK;
    let mut line = String::new();
    loop {
        line.clear();
        if stdout.read_line(&mut line).await? == 0 {
            return Err(io::Error::other(
                "git http-backend exited before its CGI headers",
            ));
        }
        let header = line.trim_end_matches(['\r', '\n']);
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("Status") {
            let code = value.split_whitespace().next().unwrap_or("500");
            status = code.parse().unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        } else if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            builder = builder.header(name, value);
        }
    }
    let response = builder
        .status(status)
        .body(stream_stdout(stdout, child))
        .map_err(io::Error::other)?;
    Ok(CgiResponse { response, kind })
}

fn spawn(backend: &Backend<'_>, request: &CgiRequest<'_>) -> io::Result<Child> {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(backend.stderr_log)?;
    let mut cmd = Command::new(backend.program);
    // A clean environment: the test process's GIT_* variables or the user's gitconfig must not
    // change what the server does.
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", backend.home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_PROJECT_ROOT", backend.project_root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("REQUEST_METHOD", request.method)
        .env("PATH_INFO", request.path_info)
        .env("QUERY_STRING", request.query)
        .env("REMOTE_ADDR", "127.0.0.1");
    let optional = [
        ("CONTENT_TYPE", request.content_type),
        ("CONTENT_LENGTH", request.content_length),
        ("HTTP_CONTENT_ENCODING", request.content_encoding),
        ("REMOTE_USER", request.remote_user),
        // http-backend passes HTTP_GIT_PROTOCOL on; GIT_PROTOCOL too, for older versions.
        ("HTTP_GIT_PROTOCOL", request.git_protocol),
        ("GIT_PROTOCOL", request.git_protocol),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            cmd.env(name, value);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        // A client that hangs up drops the response body, and with it the backend.
        .kill_on_drop(true)
        .spawn()
}

async fn feed_stdin(mut stdin: ChildStdin, prefix: Vec<u8>, body: Option<Incoming>) {
    if stdin.write_all(&prefix).await.is_err() {
        return;
    }
    if let Some(mut body) = body {
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data()
                && stdin.write_all(&data).await.is_err()
            {
                return;
            }
        }
    }
    // Dropping stdin closes it: the backend sees EOF, which ends a body without Content-Length.
}

/// The rest of the backend's stdout as the response body; the child is reaped at its end.
fn stream_stdout(stdout: BufReader<ChildStdout>, child: Child) -> Body {
    let chunks = futures::stream::unfold(Some((stdout, child)), |state| async move {
        let (mut stdout, mut child) = state?;
        let mut buf = vec![0u8; 32 * 1024];
        match stdout.read(&mut buf).await {
            Ok(0) => {
                let _ = child.wait().await;
                None
            }
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Frame::data(Bytes::from(buf))), Some((stdout, child))))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    StreamBody::new(chunks).boxed_unsync()
}
