//! A fetch whose pack goes to disk as it arrives and is indexed with bounded memory, for a
//! repository that holds a file larger than `--max-git-object-size`.
//!
//! gix inflates every object of a received pack whole while it indexes it, so a fetch through
//! gix refuses such a repository rather than grow the process by the file's size. Files that
//! large are stored whole in a pack (git deltifies nothing above `core.bigFileThreshold`), and
//! whole objects can be hashed while they are inflated: [`super::pack::index_pack`] does so,
//! and the archive later reads them as a stream ([`super::pack::packed_blob`]).
//!
//! This path is taken only after gix refused a repository for an object's size. It fetches one
//! object at depth 1 with no haves, so every delta's base is in the pack. Where the ref
//! listings of [`super::http_listing`] apply (HTTP(S) without a proxy or credentials in the
//! URL) the request is one protocol v2 `fetch` sent here with the Secret's credentials and TLS
//! settings; elsewhere (SSH, a proxy) gix's transport and handshake carry it, with the
//! negotiation and the pack's reception done here.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::Ordering;

use super::GitError;
use super::http_listing::{
    Target, advertised, authorized, cancelled, client_in, has_type, is_sha1, ls_refs, pkt_length,
    push_pkt, send, text,
};
use super::pack::{self, PackError};
use super::transport::Session;

/// The content type of a protocol v2 command's answer.
const RESULT_TYPE: &str = "application/x-git-upload-pack-result";

/// Fetches the object `ref_name` names on the server now (or `commit`) at depth 1 into the
/// cache repository `repo`, indexes the pack with at most `limit` bytes of one object in
/// memory, records the shallow boundary the server sent, and points `local_ref` at the object.
/// Returns how many objects the pack held, or `Ok(None)` when this path does not apply.
/// Blocking.
///
/// Over HTTP(S) without a proxy or credentials in the URL the request is this module's own;
/// anywhere else (SSH, a proxy) it goes through gix's transport and handshake, and needs
/// `commit` (`Ok(None)` when it is not known). Either way an annotated tag's ref keeps its
/// tag object.
pub(crate) fn fetch(
    session: &Session<'_>,
    repo: &gix::Repository,
    ref_name: Option<&str>,
    commit: &str,
    local_ref: &str,
    limit: u64,
) -> Result<Option<u64>, GitError> {
    let target = Target::of(session.remote, &session.url);
    if target.is_none() && !is_sha1(commit) {
        return Ok(None);
    }
    let pack_dir = repo.objects.store_ref().path().join("pack");
    std::fs::create_dir_all(&pack_dir)
        .map_err(|e| cache_error(&pack_dir, "creating the pack directory", e))?;
    let mut received = tempfile::Builder::new()
        // The cache's sweep removes `.tmp*` files a killed fetch leaves here.
        .prefix(".tmp-streamed-")
        .suffix(".pack")
        .tempfile_in(&pack_dir)
        .map_err(|e| cache_error(&pack_dir, "creating a file for the received pack", e))?;
    let (want, shallow, unshallow) = match target {
        Some(target) => {
            let (want, answer) =
                receive_over_http(session, &target, ref_name, commit, received.as_file_mut())?;
            (want, answer.shallow, answer.unshallow)
        }
        None => receive_through_gix(session, repo, ref_name, commit, received.as_file_mut())?,
    };
    received
        .as_file_mut()
        .sync_all()
        .map_err(|e| cache_error(&pack_dir, "writing the received pack", e))?;

    let temp_idx = received.path().with_extension("idx");
    let indexed = pack::index_pack(received.path(), &temp_idx, limit, session.interrupt())
        .map_err(|e| {
            let _ = std::fs::remove_file(&temp_idx);
            match e {
                PackError::ObjectTooLarge { .. } => GitError::ObjectTooLarge {
                    operation: session.operation,
                    url: session.url.redacted().to_owned(),
                    limit,
                },
                PackError::Interrupted => out_of_time(session),
                other => failed(session, format!("the received pack: {other}")),
            }
        })?;
    let id = gix::ObjectId::from_hex(want.as_bytes())
        .map_err(|e| failed(session, format!("the server named object {want:?}: {e}")))?;
    // A pack without the object asked for would leave the ref pointing at nothing.
    let refused = match gix::odb::pack::index::File::at(&temp_idx, gix::hash::Kind::Sha1) {
        Ok(index) if index.lookup(id).is_some() => None,
        Ok(_) => Some(failed(
            session,
            format!("the server's pack does not hold the object asked for ({want})"),
        )),
        Err(e) => Some(cache_error(
            &temp_idx,
            "reading the received pack's index",
            std::io::Error::other(e),
        )),
    };
    if let Some(e) = refused {
        let _ = std::fs::remove_file(&temp_idx);
        return Err(e);
    }
    let name = pack_dir.join(format!("pack-{}", indexed.checksum.to_hex()));
    // The pack first, then its index: an index is what makes a pack visible to readers.
    received
        .persist(name.with_extension("pack"))
        .map_err(|e| cache_error(&pack_dir, "keeping the received pack", e.error))?;
    if let Err(e) = std::fs::rename(&temp_idx, name.with_extension("idx")) {
        // A pack without its index is never read, and nothing would remove it.
        let _ = std::fs::remove_file(name.with_extension("pack"));
        let _ = std::fs::remove_file(&temp_idx);
        return Err(cache_error(
            &pack_dir,
            "keeping the received pack's index",
            e,
        ));
    }
    // Only once the commits are in the cache.
    update_shallow(repo.git_dir(), &shallow, &unshallow)?;

    repo.reference(
        local_ref,
        id,
        gix::refs::transaction::PreviousValue::Any,
        "fetch of a repository with a large file",
    )
    .map_err(|e| GitError::Cache {
        path: repo.git_dir().to_owned(),
        detail: format!("updating {local_ref}: {}", super::classify::chain(&e)),
    })?;
    Ok(Some(indexed.objects))
}

fn failed(session: &Session<'_>, detail: String) -> GitError {
    GitError::Remote {
        operation: session.operation,
        url: session.url.redacted().to_owned(),
        detail,
    }
}

/// Lists `ref_name` unpeeled (or takes `commit`) and fetches it over HTTP(S), writing the pack
/// to `pack`; returns the object fetched and the answer's shallow lines.
fn receive_over_http(
    session: &Session<'_>,
    target: &Target,
    ref_name: Option<&str>,
    commit: &str,
    pack: &mut File,
) -> Result<(String, Answer), GitError> {
    let remote = session.remote;
    let failed = |detail: String| failed(session, detail);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| failed(format!("starting the HTTP client: {e}")))?;
    let client = client_in(&mut HashMap::new(), target.tls, &remote.auth, 1)
        .ok_or_else(|| failed("building the HTTP client failed".to_owned()))?;
    let auth = remote.auth.http.as_ref();
    let work = async {
        let capabilities = match target.known {
            Some(capabilities) => capabilities,
            None => advertised(&client, &target.base, auth)
                .await
                .flatten()
                .ok_or_else(|| {
                    failed("the server's protocol v2 capabilities could not be read".to_owned())
                })?,
        };
        let want = match ref_name {
            Some(name) => {
                let refs = ls_refs(
                    &client,
                    &target.base,
                    auth,
                    capabilities,
                    &[name.to_owned()],
                    false,
                )
                .await
                .ok_or_else(|| failed(format!("listing {name} failed")))?;
                refs.into_iter()
                    .find(|r| r.name == name)
                    .and_then(|r| r.commit)
                    .ok_or_else(|| failed(format!("{name} is no longer on the server")))?
            }
            None => commit.to_owned(),
        };
        let request = client
            .post(format!("{}/git-upload-pack", target.base))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-git-upload-pack-request",
            )
            .header(reqwest::header::ACCEPT, RESULT_TYPE)
            .body(fetch_request(&want));
        let mut response = send(authorized(request, auth))
            .await
            .ok_or_else(|| failed("sending the fetch request failed".to_owned()))?;
        let status = response.status();
        if status != reqwest::StatusCode::OK || !has_type(&response, RESULT_TYPE) {
            return Err(failed(format!(
                "the server answered the fetch request with HTTP {status}"
            )));
        }
        let mut answer = Answer::default();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| failed(format!("receiving the pack: {e}")))?
        {
            answer
                .feed(&chunk, pack)
                .map_err(|e| failed(format!("receiving the pack: {e}")))?;
        }
        if !answer.ended {
            return Err(failed(
                "the server's answer ended before the pack did".to_owned(),
            ));
        }
        Ok((want, answer))
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = tokio::time::timeout(session.remaining(), work) => outcome.ok(),
            () = cancelled(&remote.cancel) => None,
        }
    });
    outcome.unwrap_or_else(|| Err(out_of_time(session)))
}

/// Fetches at depth 1 through gix's transport (its SSH command or HTTP client with the
/// session's settings), negotiating here: one want, no haves. The want is the tag object when
/// `ref_name` is an annotated tag that still leads to `commit`, else `commit`. The pack goes
/// to `pack`; returns the object fetched and the shallow boundary the server sent (and no
/// unshallowed commits: nothing was offered).
fn receive_through_gix(
    session: &Session<'_>,
    repo: &gix::Repository,
    ref_name: Option<&str>,
    commit: &str,
    pack: &mut File,
) -> Result<(String, Vec<String>, Vec<String>), GitError> {
    use gix::protocol::fetch as proto;
    let classify = |e: gix::Error| session.classify(&e, None);
    let commit_id = gix::ObjectId::from_hex(commit.as_bytes())
        .map_err(|e| failed(session, format!("object {commit:?}: {e}")))?;
    let remote = session.gix_remote(repo, &[])?;
    let mut conn = session.connect(repo, &remote)?;
    let transport = conn.transport_mut();
    // gix hands the connection's options (proxy, CA, client certificate, timeout, bearer
    // header) to its transport only in its own operations; this handshake is ours.
    if session.url.scheme() != super::url::Scheme::Ssh {
        let options = session.http_options(repo)?;
        transport
            .configure(&*options)
            .map_err(|e| failed(session, format!("configuring the HTTP client: {e}")))?;
    }
    let mut handshake = gix::protocol::handshake(
        &mut *transport,
        gix::protocol::transport::Service::UploadPack,
        session.authenticate(),
        Vec::new(),
        &mut gix::progress::Discard,
    )
    .map_err(classify)?;
    let agent = ("agent", Some(super::http_listing::USER_AGENT.into()));
    let tag = match ref_name.filter(|name| name.starts_with("refs/tags/")) {
        Some(name) => {
            let refs = match handshake.refs.take() {
                Some(refs) => refs,
                None => {
                    let mut prefixes = gix::protocol::ls_refs::RefPrefixes::new();
                    prefixes.extend([gix::bstr::BString::from(name)]);
                    gix::protocol::LsRefsCommand::new(
                        Some(prefixes),
                        &handshake.capabilities,
                        agent.clone(),
                    )
                    .invoke_blocking(&mut *transport, &mut gix::progress::Discard, false)
                    .map_err(classify)?
                }
            };
            refs.into_iter().find_map(|r| match r {
                gix::protocol::handshake::Ref::Peeled {
                    full_ref_name,
                    tag,
                    object,
                } if full_ref_name == name && object == commit_id => Some(tag),
                _ => None,
            })
        }
        None => None,
    };
    let want = tag.unwrap_or(commit_id);
    let interrupt = session.interrupt();
    let depth = gix::protocol::fetch::Shallow::DepthAtRemote(std::num::NonZeroU32::MIN);
    // gix writes the boundary to a file of its own here, merged into the cache's `shallow`
    // once the pack is kept (and gix, finding no shallow file, sends no `shallow` lines: with
    // no haves it has none to send).
    let boundary = repo.git_dir().join("shallow.streamed");
    remove_if_present(&boundary)?;
    let mut copied: Result<(), std::io::Error> = Ok(());
    gix::protocol::fetch(
        &mut OneWant(want),
        |reader, _, interrupt| {
            copied = copy_pack(reader, pack, interrupt);
            Ok(copied.is_ok())
        },
        gix::progress::Discard,
        interrupt,
        proto::Context {
            handshake: &mut handshake,
            transport: &mut *transport,
            user_agent: agent,
            trace_packetlines: false,
        },
        proto::Options {
            shallow_file: boundary.clone(),
            shallow: &depth,
            tags: proto::Tags::None,
            reject_shallow_remote: false,
        },
    )
    .map_err(classify)?;
    if handshake.server_protocol_version == gix::protocol::transport::Protocol::V2 {
        let _ = gix::protocol::indicate_end_of_interaction(&mut *transport, false);
    }
    copied.map_err(|e| {
        if interrupt.load(Ordering::Relaxed) {
            out_of_time(session)
        } else {
            failed(session, format!("receiving the pack: {e}"))
        }
    })?;
    let shallow: Vec<String> = match std::fs::read_to_string(&boundary) {
        Ok(text) => text.lines().map(str::to_owned).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(cache_error(&boundary, "reading the shallow boundary", e)),
    };
    remove_if_present(&boundary)?;
    if shallow.len() > MAX_SHALLOW_LINES {
        return Err(failed(session, too_many_shallow_lines()));
    }
    for id in &shallow {
        sha1(id).map_err(|why| failed(session, why))?;
    }
    Ok((want.to_hex().to_string(), shallow, Vec::new()))
}

fn remove_if_present(path: &Path) -> Result<(), GitError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(cache_error(path, "removing", e)),
    }
}

/// Copies the pack from `reader` to `pack` through gix's buffer, looking at `interrupt` between
/// reads.
fn copy_pack(
    reader: &mut dyn std::io::BufRead,
    pack: &mut File,
    interrupt: &std::sync::atomic::AtomicBool,
) -> std::io::Result<()> {
    loop {
        if interrupt.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("interrupted"));
        }
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok(());
        }
        pack.write_all(chunk)?;
        let n = chunk.len();
        reader.consume(n);
    }
}

/// The negotiation of a fetch into an empty repository: one object wanted, nothing to offer.
struct OneWant(gix::ObjectId);

impl gix::protocol::fetch::Negotiate for OneWant {
    fn mark_complete_and_common_ref(
        &mut self,
    ) -> Result<gix::protocol::fetch::negotiate::Action, gix::Error> {
        Ok(gix::protocol::fetch::negotiate::Action::MustNegotiate {
            remote_ref_target_known: vec![false],
        })
    }

    fn add_wants(
        &mut self,
        arguments: &mut gix::protocol::fetch::Arguments,
        _remote_ref_target_known: &[bool],
    ) -> bool {
        arguments.want(self.0);
        true
    }

    fn one_round(
        &mut self,
        _state: &mut gix::protocol::fetch::negotiate::one_round::State,
        _arguments: &mut gix::protocol::fetch::Arguments,
        _previous_response: Option<&gix::protocol::fetch::Response>,
    ) -> Result<(gix::protocol::fetch::negotiate::Round, bool), gix::Error> {
        let round = gix::protocol::fetch::negotiate::Round {
            haves_sent: 0,
            in_vain: 0,
            haves_to_send: 0,
            previous_response_had_at_least_one_in_common: false,
        };
        Ok((round, true))
    }
}

/// The protocol v2 `fetch` of `want` at depth 1: no haves (the pack then needs nothing of the
/// cache), no `thin-pack`, no progress messages.
fn fetch_request(want: &str) -> Vec<u8> {
    let mut body = Vec::new();
    push_pkt(&mut body, "command=fetch\n");
    body.extend_from_slice(b"0001");
    for argument in ["no-progress", "ofs-delta", "deepen 1"] {
        push_pkt(&mut body, &format!("{argument}\n"));
    }
    push_pkt(&mut body, &format!("want {want}\n"));
    push_pkt(&mut body, "done\n");
    body.extend_from_slice(b"0000");
    body
}

/// The answer to [`fetch_request`], read as it arrives: the `shallow-info` section's lines, then
/// the `packfile` section, whose side-band 1 is the pack (written out as it comes), side-band 2
/// progress and side-band 3 the server's fatal error.
#[derive(Default)]
struct Answer {
    /// Bytes of a pkt-line not complete yet.
    pending: Vec<u8>,
    in_pack: bool,
    /// The flush that ends the pack arrived.
    ended: bool,
    shallow: Vec<String>,
    unshallow: Vec<String>,
}

impl Answer {
    fn feed(&mut self, chunk: &[u8], pack: &mut File) -> Result<(), String> {
        self.pending.extend_from_slice(chunk);
        let mut at = 0;
        while let Some(length) = self.pending.get(at..at + 4) {
            if self.ended {
                return Err("data after the end of the pack".to_owned());
            }
            let length = pkt_length(length).ok_or("a malformed pkt-line")?;
            match length {
                0 if self.in_pack => {
                    self.ended = true;
                    at += 4;
                    continue;
                }
                0 | 2 => return Err("the answer ended without a pack".to_owned()),
                // Section delimiter.
                1 => {
                    at += 4;
                    continue;
                }
                3 => return Err("a malformed pkt-line".to_owned()),
                _ => {}
            }
            let Some(data) = self.pending.get(at + 4..at + length) else {
                break;
            };
            if self.in_pack {
                match data.split_first() {
                    Some((1, bytes)) => pack
                        .write_all(bytes)
                        .map_err(|e| format!("writing the pack: {e}"))?,
                    Some((2, _)) => {}
                    Some((3, message)) => {
                        return Err(format!(
                            "the server said: {}",
                            String::from_utf8_lossy(message).trim()
                        ));
                    }
                    _ => return Err("a pkt-line outside the side-bands".to_owned()),
                }
            } else {
                let line = text(data).ok_or("a line that is not text")?;
                if line == "packfile" {
                    self.in_pack = true;
                } else if let Some(message) = line.strip_prefix("ERR ") {
                    return Err(format!("the server said: {}", message.trim()));
                } else if let Some(id) = line.strip_prefix("shallow ") {
                    self.shallow.push(sha1(id)?);
                } else if let Some(id) = line.strip_prefix("unshallow ") {
                    self.unshallow.push(sha1(id)?);
                }
                if self.shallow.len() + self.unshallow.len() > MAX_SHALLOW_LINES {
                    return Err(too_many_shallow_lines());
                }
                // Section names (`shallow-info`, `acknowledgments`) and acknowledgments
                // carry nothing this fetch needs.
            }
            at += length;
        }
        self.pending.drain(..at);
        Ok(())
    }
}

/// The most `shallow` and `unshallow` lines taken from a server. A fetch of one object at depth
/// 1 makes one boundary commit (a few more for a server that counts depth otherwise), and no
/// `shallow` lines are sent, so nothing can be unshallowed.
const MAX_SHALLOW_LINES: usize = 64;

fn too_many_shallow_lines() -> String {
    format!(
        "the server sent more than {MAX_SHALLOW_LINES} shallow lines for a fetch of one object \
         at depth 1"
    )
}

fn sha1(id: &str) -> Result<String, String> {
    if is_sha1(id) {
        Ok(id.to_owned())
    } else {
        Err(format!("a malformed object id {id:?}"))
    }
}

/// Adds `shallow` to the commits the cache's `shallow` file lists (their parents were not
/// fetched) and removes `unshallow`, as a fetch through gix would.
fn update_shallow(
    git_dir: &Path,
    shallow: &[String],
    unshallow: &[String],
) -> Result<(), GitError> {
    if shallow.is_empty() && unshallow.is_empty() {
        return Ok(());
    }
    let path = git_dir.join("shallow");
    let existing = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(cache_error(&path, "reading the shallow file", e)),
    };
    let unshallow: std::collections::HashSet<&str> = unshallow.iter().map(String::as_str).collect();
    let mut ids: Vec<&str> = existing
        .lines()
        .chain(shallow.iter().map(String::as_str))
        .filter(|id| !unshallow.contains(id))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        // No boundary left: git and gix read an empty shallow file as a broken one.
        return remove_if_present(&path);
    }
    let mut text = ids.join("\n");
    text.push('\n');
    // Named as git names its lock files: one a killed fetch leaves is removed by the next.
    let temp = git_dir.join("shallow.lock");
    File::create(&temp)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temp, &path))
        .map_err(|e| cache_error(&path, "writing the shallow file", e))
}

fn cache_error(path: &Path, what: &str, e: std::io::Error) -> GitError {
    GitError::Cache {
        path: path.to_owned(),
        detail: format!("{what}: {e}"),
    }
}

fn out_of_time(session: &Session<'_>) -> GitError {
    let url = session.url.redacted().to_owned();
    if session.remote.cancel.load(Ordering::Relaxed) {
        GitError::Cancelled {
            operation: session.operation,
            url,
        }
    } else {
        GitError::Timeout {
            operation: session.operation,
            url,
            after: session.remote.timeout,
            setting: session.remote.timeout_setting,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(data: &[u8]) -> Vec<u8> {
        let mut out = format!("{:04x}", data.len() + 4).into_bytes();
        out.extend_from_slice(data);
        out
    }

    const A: &str = "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3";

    fn answer(pack_bytes: &[u8]) -> Vec<u8> {
        let mut body = pkt(b"shallow-info\n");
        body.extend(pkt(format!("shallow {A}\n").as_bytes()));
        body.extend_from_slice(b"0001");
        body.extend(pkt(b"packfile\n"));
        body.extend(pkt(b"\x02Counting objects\n"));
        for part in pack_bytes.chunks(5) {
            let mut line = vec![1];
            line.extend_from_slice(part);
            body.extend(pkt(&line));
        }
        body.extend_from_slice(b"0000");
        body
    }

    fn read_all(body: &[u8], split: usize) -> (Result<(), String>, Answer, Vec<u8>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pack");
        let mut file = File::create(&path).expect("file");
        let mut answer = Answer::default();
        let mut result = Ok(());
        for chunk in body.chunks(split) {
            result = answer.feed(chunk, &mut file);
            if result.is_err() {
                break;
            }
        }
        drop(file);
        (result, answer, std::fs::read(&path).expect("read"))
    }

    #[test]
    fn the_request_wants_one_object_at_depth_one_without_a_thin_pack() {
        let body = String::from_utf8(fetch_request(A)).expect("text");
        assert_eq!(
            body,
            format!(
                "0012command=fetch\n00010010no-progress\n000eofs-delta\n000ddeepen 1\n\
                 0032want {A}\n0009done\n0000"
            )
        );
        assert!(!body.contains("thin-pack"));
    }

    #[test]
    fn the_pack_is_taken_from_side_band_one_however_the_answer_is_cut() {
        let pack_bytes = b"PACK and some bytes that stand for a pack".to_vec();
        for split in [1, 3, 7, 64, 4096] {
            let (result, answer, written) = read_all(&answer(&pack_bytes), split);
            assert_eq!(result, Ok(()), "split {split}");
            assert!(answer.ended);
            assert_eq!(answer.shallow, vec![A.to_owned()]);
            assert_eq!(written, pack_bytes, "split {split}");
        }
    }

    #[test]
    fn errors_and_truncated_answers_are_reported() {
        let (result, _, _) = read_all(&pkt(b"ERR upload-pack: not our ref\n"), 16);
        assert_eq!(
            result,
            Err("the server said: upload-pack: not our ref".to_owned())
        );
        let mut body = pkt(b"packfile\n");
        body.extend(pkt(b"\x03fatal: out of memory\n"));
        let (result, _, _) = read_all(&body, 16);
        assert_eq!(
            result,
            Err("the server said: fatal: out of memory".to_owned())
        );
        let full = answer(b"PACK....");
        let (result, answer, _) = read_all(&full[..full.len() - 4], 16);
        assert_eq!(result, Ok(()));
        assert!(
            !answer.ended,
            "no flush yet: the caller reports an early end"
        );
        let mut after = full.clone();
        after.extend(pkt(b"\x01more"));
        let (result, _, _) = read_all(&after, 4096);
        assert!(result.is_err());
        let (result, _, _) = read_all(b"zzzz", 16);
        assert!(result.is_err());
        let (result, _, _) = read_all(&pkt(b"shallow nothex\n"), 16);
        assert!(result.is_err());
        // A flood of boundary lines is refused before it is held.
        let mut flood = pkt(b"shallow-info\n");
        for _ in 0..=MAX_SHALLOW_LINES {
            flood.extend(pkt(format!("unshallow {A}\n").as_bytes()));
        }
        let (result, answer, _) = read_all(&flood, 4096);
        assert_eq!(result, Err(too_many_shallow_lines()));
        assert!(answer.unshallow.len() <= MAX_SHALLOW_LINES + 1);
    }

    #[test]
    fn the_shallow_file_gains_and_loses_commits_sorted_and_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = "b".repeat(40);
        let c = "c".repeat(40);
        std::fs::write(dir.path().join("shallow"), format!("{c}\n{b}\n")).expect("write");
        update_shallow(
            dir.path(),
            &[A.to_owned(), b.clone()],
            std::slice::from_ref(&c),
        )
        .expect("update");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("shallow")).expect("read"),
            format!("{A}\n{b}\n")
        );
        // Every commit unshallowed: no file, rather than an empty one.
        update_shallow(dir.path(), &[], &[A.to_owned(), b.clone()]).expect("update");
        assert!(!dir.path().join("shallow").exists());
        assert!(!dir.path().join("shallow.lock").exists());
    }
}
