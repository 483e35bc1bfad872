//! Turning gix's errors into [`GitError`] variants a user can act on, without leaking secrets.

use std::time::Duration;

use super::GitError;
use super::auth::AuthError;
use gix::protocol::transport::client::AuthenticationRequired;

/// What is known about the failed operation, besides the error.
pub(crate) struct Context<'a> {
    /// "listing refs", "fetch".
    pub(crate) operation: &'static str,
    /// The URL for messages (redacted).
    pub(crate) url: &'a str,
    /// `host[:port]`, for host key messages.
    pub(crate) host: String,
    /// Values to scrub from any text that reaches a message.
    pub(crate) secrets: Vec<&'a str>,
    /// Whether credentials were configured (401 wording).
    pub(crate) has_credentials: bool,
    pub(crate) timeout: Duration,
    /// The setting that gave `timeout`.
    pub(crate) timeout_setting: &'static str,
    pub(crate) timed_out: bool,
    pub(crate) cancelled: bool,
    /// ssh's log, for SSH.
    pub(crate) ssh_log: Option<String>,
    /// The commit being fetched by SHA, if any.
    pub(crate) commit: Option<&'a str>,
    /// The largest git object read into memory, if limited.
    pub(crate) object_size_limit: Option<u64>,
}

/// All messages of an error chain joined by ": ", skipping repeats.
pub(crate) fn chain(err: &gix::Error) -> String {
    join(err.iter_errors().map(|e| e.to_string()))
}

/// The messages of a std error chain, joined by ": ".
fn std_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut messages = vec![err.to_string()];
    let mut source = err.source();
    while let Some(e) = source {
        messages.push(e.to_string());
        source = e.source();
    }
    join(messages.into_iter())
}

fn join(messages: impl Iterator<Item = String>) -> String {
    let mut out: Vec<String> = Vec::new();
    for message in messages {
        let message = message.trim().to_owned();
        if message.is_empty() || out.iter().any(|m| m.contains(&message)) {
            continue;
        }
        out.push(message);
    }
    out.join(": ")
}

/// Credentials shorter than this cannot be replaced in a message without mangling it (a
/// one-letter password is in most words), so a message that may hold one is withheld.
const SHORTEST_SCRUBBED: usize = 4;

/// `text` with every secret replaced by `***`; withheld whole when a secret is too short to be
/// told apart from the rest of the text.
///
/// Every byte any occurrence of any secret covers is masked, and each run of masked bytes
/// becomes one `***`: replacing secrets one after the other would leave the rest of a secret
/// that contains or overlaps one replaced before (`my***` for `mytoken` when `token` is also a
/// secret).
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    let secrets: Vec<&str> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
    if secrets.iter().any(|s| s.len() < SHORTEST_SCRUBBED) {
        return "(details withheld: a credential is too short to be removed from them)".to_owned();
    }
    let mut masked = vec![false; text.len()];
    for secret in &secrets {
        // Every start, overlapping ones included (`match_indices` skips those).
        let mut from = 0;
        while let Some(found) = text[from..].find(secret) {
            let start = from + found;
            masked[start..start + secret.len()].fill(true);
            from = start + text[start..].chars().next().map_or(1, char::len_utf8);
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut in_mask = false;
    for (i, c) in text.char_indices() {
        // A secret starts and ends on character boundaries, so a character is masked whole.
        if masked[i] {
            if !in_mask {
                out.push_str("***");
            }
            in_mask = true;
        } else {
            out.push(c);
            in_mask = false;
        }
    }
    out
}

/// The most specific [`GitError`] for `err`.
pub(crate) fn classify(err: &gix::Error, ctx: &Context<'_>) -> GitError {
    let url = ctx.url.to_owned();
    if ctx.cancelled {
        return GitError::Cancelled {
            operation: ctx.operation,
            url,
        };
    }
    if ctx.timed_out {
        return timeout(ctx);
    }
    if let Some(explained) = ctx
        .ssh_log
        .as_deref()
        .and_then(|log| super::ssh::explain(log, &ctx.host, ctx.url))
    {
        return explained;
    }
    for e in err.iter_errors() {
        if let Some(found) = classify_one(e, ctx) {
            return found;
        }
    }
    if err.classify().is_unauthenticated() {
        let detail = credentials_detail(ctx).to_owned();
        return GitError::AuthenticationFailed { url, detail };
    }
    let detail = scrub(&chain(err), &ctx.secrets);
    let lower = detail.to_lowercase();
    if let Some(limit) = ctx.object_size_limit
        && lower.contains("too large to fit in memory")
    {
        return GitError::ObjectTooLarge {
            operation: ctx.operation,
            url,
            limit,
        };
    }
    if let Some(commit) = ctx.commit
        && (lower.contains("not our ref") || lower.contains("upload-pack: not"))
    {
        let commit = commit.to_owned();
        return GitError::CommitNotFound { commit, url };
    }
    if lower.contains("received http status 404")
        || lower.contains("does not appear to be a git repository")
        || lower.contains("repository not found")
    {
        return GitError::RepositoryNotFound { url };
    }
    GitError::Remote {
        operation: ctx.operation,
        url,
        detail,
    }
}

/// Why the server answered 401, from whether credentials were sent.
fn credentials_detail(ctx: &Context<'_>) -> &'static str {
    if ctx.has_credentials {
        "the server rejected the credentials (HTTP 401)"
    } else {
        "the server requires credentials (HTTP 401); reference a Secret with them"
    }
}

fn timeout(ctx: &Context<'_>) -> GitError {
    GitError::Timeout {
        operation: ctx.operation,
        url: ctx.url.to_owned(),
        after: ctx.timeout,
        setting: ctx.timeout_setting,
    }
}

fn classify_one(e: &(dyn std::error::Error + 'static), ctx: &Context<'_>) -> Option<GitError> {
    let url = ctx.url.to_owned();
    if let Some(e) = e.downcast_ref::<reqwest::Error>() {
        return Some(classify_reqwest(e, ctx));
    }
    let is_401 = |e: &(dyn std::error::Error + 'static)| {
        e.downcast_ref::<AuthenticationRequired>().is_some()
    };
    let inner_401 = e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        .is_some_and(|inner| is_401(inner));
    if is_401(e) || inner_401 {
        let detail = credentials_detail(ctx).to_owned();
        return Some(GitError::AuthenticationFailed { url, detail });
    }
    if let Some(gix::protocol::transport::client::Error::AuthenticationRefused(_)) =
        e.downcast_ref::<gix::protocol::transport::client::Error>()
    {
        let origin = "password in the URL";
        return Some(GitError::Auth(AuthError::CredentialsOverPlainHttp {
            origin,
        }));
    }
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        use std::io::ErrorKind::*;
        let detail = scrub(&io.to_string(), &ctx.secrets);
        return match io.kind() {
            PermissionDenied => Some(GitError::AuthenticationFailed { url, detail }),
            TimedOut => Some(timeout(ctx)),
            ConnectionRefused | HostUnreachable | NetworkUnreachable => {
                Some(GitError::Unreachable { url, detail })
            }
            _ => None,
        };
    }
    None
}

fn classify_reqwest(e: &reqwest::Error, ctx: &Context<'_>) -> GitError {
    let url = ctx.url.to_owned();
    if e.is_timeout() {
        return timeout(ctx);
    }
    match e.status().map(|s| s.as_u16()) {
        Some(401 | 403) => {
            let status = e.status().map(|s| s.to_string()).unwrap_or_default();
            let detail = format!("the server refused access (HTTP {status})");
            return GitError::AuthenticationFailed { url, detail };
        }
        Some(404) => return GitError::RepositoryNotFound { url },
        _ => {}
    }
    // reqwest's own message names the URL, which may carry credentials: keep the causes only.
    let causes = std::error::Error::source(e)
        .map(std_chain)
        .unwrap_or_else(|| e.to_string());
    let detail = scrub(&causes, &ctx.secrets);
    let lower = detail.to_lowercase();
    if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        return GitError::Tls { url, detail };
    }
    if e.is_connect() {
        return GitError::Unreachable { url, detail };
    }
    GitError::Remote {
        operation: ctx.operation,
        url,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_scrubbed() {
        assert_eq!(
            scrub("token abc123 and abc123", &["abc123"]),
            "token *** and ***"
        );
        assert_eq!(scrub("nothing", &[""]), "nothing");
    }

    #[test]
    fn a_secret_inside_another_leaves_nothing_of_either() {
        assert_eq!(
            scrub("user token password mytoken123", &["token", "mytoken123"]),
            "user *** password ***"
        );
        assert_eq!(scrub("abcdef", &["abcd", "cdef"]), "***");
    }

    #[test]
    fn a_message_that_may_hold_a_short_secret_is_withheld() {
        let scrubbed = scrub("remote said: bad password ab for user x", &["ab"]);
        assert!(!scrubbed.contains("ab "), "{scrubbed}");
        assert!(scrubbed.contains("withheld"), "{scrubbed}");
    }

    #[test]
    fn chains_skip_repeated_messages() {
        let joined = join(
            [
                "outer: inner".to_owned(),
                "inner".to_owned(),
                " ".to_owned(),
                "root".to_owned(),
            ]
            .into_iter(),
        );
        assert_eq!(joined, "outer: inner: root");
    }
}
