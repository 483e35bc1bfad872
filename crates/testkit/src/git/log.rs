//! The request log: what every HTTP request and SSH command asked of the server.
//!
//! Tests assert "nothing was fetched" from it, so it tells a ref listing (GET `info/refs`, a
//! protocol v2 `ls-refs` command) apart from a pack fetch (a v2 `fetch` command, a v0 POST with
//! `want` lines) by reading the first pkt-line of each upload-pack request.

use std::io::Read;
use std::path::{Path, PathBuf};

/// How a request reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
    /// A command run by sshd.
    Ssh,
}

/// What a request did, as far as fetching is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// GET `info/refs`: the v0 ref advertisement, or the v2 capability advertisement.
    RefAdvertisement,
    /// A protocol v2 `ls-refs` command: refs listed, no objects sent.
    LsRefs,
    /// A pack negotiation that can send objects: v2 `fetch`, or a v0 request with `want` lines.
    Fetch,
    /// `git-receive-pack`.
    Push,
    /// Anything else (an unauthenticated POST whose body was not read, an unknown path).
    Other,
}

impl RequestKind {
    /// Whether the request listed refs without fetching objects.
    pub fn is_ref_listing(self) -> bool {
        matches!(self, RequestKind::RefAdvertisement | RequestKind::LsRefs)
    }
}

/// The credential a request was accepted with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// None needed (the repository is public), or the request was rejected.
    None,
    /// HTTP basic auth with this user name.
    Basic { username: String },
    /// An HTTP bearer token.
    Bearer,
    /// An SSH key, by the name the server gave it (`user` or `encrypted`).
    SshKey { key: String },
}

/// One recorded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// How it arrived.
    pub transport: Transport,
    /// The HTTP method, or `exec` for an SSH command.
    pub method: String,
    /// The repository name (without `.git`); empty when the path names none.
    pub repo: String,
    /// The URL path, or the path argument of the SSH command.
    pub path: String,
    /// `git-upload-pack` or `git-receive-pack`, when the request names one.
    pub service: Option<String>,
    /// What the request did.
    pub kind: RequestKind,
    /// The protocol v2 command (`ls-refs`, `fetch`), when the request sent one.
    pub command: Option<String>,
    /// The credential the request was accepted with.
    pub credential: Credential,
    /// The HTTP status; for SSH, the exit code of the git command.
    pub status: u16,
    /// Which connection carried it: HTTP(S) connections are numbered as the server accepts
    /// them, from 1; 0 for SSH (one connection per command).
    pub connection: u64,
}

impl Request {
    /// Whether the server answered successfully (HTTP 2xx, or SSH exit code 0).
    pub fn succeeded(&self) -> bool {
        match self.transport {
            Transport::Ssh => self.status == 0,
            Transport::Http | Transport::Https => (200..300).contains(&self.status),
        }
    }

    /// A pack negotiation: an upload-pack POST, or an SSH upload-pack invocation.
    pub fn is_upload_pack(&self) -> bool {
        self.service.as_deref() == Some("git-upload-pack")
            && (self.method == "POST" || self.transport == Transport::Ssh)
    }
}

/// The log shared by the HTTP handlers; SSH entries are read from the wrapper's file on demand.
#[derive(Debug)]
pub(crate) struct RequestLog {
    entries: Vec<Request>,
    ssh_log: PathBuf,
    ssh_offset: usize,
    repo_root: PathBuf,
}

impl RequestLog {
    pub(crate) fn new(ssh_log: PathBuf, repo_root: PathBuf) -> Self {
        Self {
            entries: Vec::new(),
            ssh_log,
            ssh_offset: 0,
            repo_root,
        }
    }

    pub(crate) fn push(&mut self, request: Request) {
        self.entries.push(request);
    }

    /// All entries, after taking in the SSH commands that finished since the last call.
    pub(crate) fn entries(&mut self) -> &[Request] {
        self.read_ssh_log();
        &self.entries
    }

    /// Drops the entries `remove` selects.
    pub(crate) fn clear(&mut self, remove: impl Fn(&Request) -> bool) {
        self.read_ssh_log();
        self.entries.retain(|r| !remove(r));
    }

    fn read_ssh_log(&mut self) {
        let Ok(text) = std::fs::read_to_string(&self.ssh_log) else {
            return;
        };
        let Some(new) = text.get(self.ssh_offset..) else {
            return;
        };
        // Only whole lines: the wrapper may be halfway through appending one.
        let Some(end) = new.rfind('\n') else { return };
        for line in new[..=end].lines() {
            if let Some(request) = parse_ssh_line(line, &self.repo_root) {
                self.entries.push(request);
            }
        }
        self.ssh_offset += end + 1;
    }
}

/// Parses a wrapper line: `key \t exit code \t packet trace file \t original command`.
fn parse_ssh_line(line: &str, repo_root: &Path) -> Option<Request> {
    let mut fields = line.splitn(4, '\t');
    let key = fields.next()?.to_string();
    let status = fields.next()?.parse().ok()?;
    let trace = std::fs::read_to_string(fields.next()?).unwrap_or_default();
    let command = fields.next()?;
    let (service, arg) = command.split_once(' ').unwrap_or((command, ""));
    let path = arg
        .trim()
        .trim_matches(|c| c == '\'' || c == '"')
        .to_string();
    let repo = repo_name(path.strip_prefix(repo_root.to_str()?).unwrap_or(&path));
    let (kind, v2_command) = match service {
        "git-upload-pack" => classify_ssh_trace(&trace),
        "git-receive-pack" => (RequestKind::Push, None),
        _ => (RequestKind::Other, None),
    };
    Some(Request {
        transport: Transport::Ssh,
        method: "exec".to_string(),
        repo,
        path,
        service: Some(service.to_string()),
        kind,
        command: v2_command,
        credential: Credential::SshKey { key },
        status,
        connection: 0,
    })
}

/// Classifies an SSH upload-pack session from its `GIT_TRACE_PACKET` output: one session holds
/// the whole conversation, so any `fetch` or `want` in it makes it a fetch.
fn classify_ssh_trace(trace: &str) -> (RequestKind, Option<String>) {
    let received: Vec<&str> = trace
        .lines()
        .filter_map(|l| l.split_once("upload-pack< ").map(|(_, p)| p))
        .collect();
    if received.contains(&"command=fetch") {
        (RequestKind::Fetch, Some("fetch".to_string()))
    } else if received.iter().any(|p| p.starts_with("want ")) {
        (RequestKind::Fetch, None)
    } else if received.contains(&"command=ls-refs") {
        (RequestKind::LsRefs, Some("ls-refs".to_string()))
    } else {
        (RequestKind::RefAdvertisement, None)
    }
}

/// The repository name in a path such as `/team/app.git/info/refs`: everything up to the first
/// segment ending in `.git`, without that suffix.
pub(crate) fn repo_name(path: &str) -> String {
    let mut name = Vec::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        if let Some(last) = segment.strip_suffix(".git") {
            name.push(last);
            return name.join("/");
        }
        name.push(segment);
    }
    String::new()
}

/// Classifies an upload-pack POST body from its first bytes (`gzip` when Content-Encoding says so).
pub(crate) fn classify_upload_pack_body(
    prefix: &[u8],
    gzip: bool,
) -> (RequestKind, Option<String>) {
    let mut decoded = Vec::new();
    let body = if gzip {
        // A truncated gzip stream decodes up to the cut and then errors; the prefix is enough.
        let mut decoder = flate2::read::GzDecoder::new(prefix);
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = decoder.read(&mut buf) {
            decoded.extend_from_slice(&buf[..n]);
        }
        &decoded[..]
    } else {
        prefix
    };
    let Some(payload) = first_pkt_line(body) else {
        return (RequestKind::Other, None);
    };
    let payload = payload.strip_suffix(b"\n").unwrap_or(payload);
    if let Some(command) = payload.strip_prefix(b"command=") {
        let command = String::from_utf8_lossy(command).into_owned();
        let kind = match command.as_str() {
            "fetch" => RequestKind::Fetch,
            "ls-refs" => RequestKind::LsRefs,
            _ => RequestKind::Other,
        };
        (kind, Some(command))
    } else if payload.starts_with(b"want ") {
        (RequestKind::Fetch, None)
    } else {
        (RequestKind::Other, None)
    }
}

/// The payload of the first pkt-line, or `None` for a flush packet or a short/invalid buffer.
fn first_pkt_line(buf: &[u8]) -> Option<&[u8]> {
    let len = usize::from_str_radix(std::str::from_utf8(buf.get(..4)?).ok()?, 16).ok()?;
    if len < 4 {
        return None;
    }
    buf.get(4..len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn classifies_v2_commands_and_v0_wants() {
        let ls_refs = b"0014command=ls-refs\n0014agent=git/2.39.50001000bpeel\n0000";
        assert_eq!(
            classify_upload_pack_body(ls_refs, false).0,
            RequestKind::LsRefs
        );
        let fetch = b"0012command=fetch\n0001";
        let (kind, command) = classify_upload_pack_body(fetch, false);
        assert_eq!(
            (kind, command.as_deref()),
            (RequestKind::Fetch, Some("fetch"))
        );
        let want = b"0032want 0123456789012345678901234567890123456789\n";
        assert_eq!(classify_upload_pack_body(want, false).0, RequestKind::Fetch);
        assert_eq!(
            classify_upload_pack_body(b"0000", false).0,
            RequestKind::Other
        );
        assert_eq!(
            classify_upload_pack_body(b"00", false).0,
            RequestKind::Other
        );
    }

    #[test]
    fn classifies_a_truncated_gzip_body() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(b"0012command=fetch\n").expect("gzip");
        encoder
            .write_all(&b"0032want 0123456789012345678901234567890123456789\n".repeat(500))
            .expect("gzip");
        let gz = encoder.finish().expect("gzip");
        assert_eq!(
            classify_upload_pack_body(&gz[..gz.len() / 2], true).0,
            RequestKind::Fetch
        );
    }

    #[test]
    fn names_repositories_in_paths() {
        assert_eq!(repo_name("/app.git/info/refs"), "app");
        assert_eq!(repo_name("/team/app.git/git-upload-pack"), "team/app");
        assert_eq!(repo_name("/nothing/here"), "");
    }

    #[test]
    fn classifies_ssh_traces() {
        let v2 = "packet:  upload-pack< command=ls-refs\npacket:  upload-pack< command=fetch\n";
        assert_eq!(classify_ssh_trace(v2).0, RequestKind::Fetch);
        let ls = "packet:  upload-pack> version 2\npacket:  upload-pack< command=ls-refs\n";
        assert_eq!(classify_ssh_trace(ls).0, RequestKind::LsRefs);
        assert_eq!(classify_ssh_trace("").0, RequestKind::RefAdvertisement);
    }
}
