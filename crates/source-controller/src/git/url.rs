//! Repository URLs: which schemes are accepted, how a URL appears in messages (never with its
//! password), and the cache directory name derived from it.

use sha2::{Digest, Sha256};

use super::GitError;

/// The SSH user when the URL names none, as Flux does.
const DEFAULT_SSH_USER: &str = "git";

/// The transport a URL selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `http://`: no credentials may be sent.
    Http,
    /// `https://`.
    Https,
    /// `ssh://`, through the external OpenSSH client.
    Ssh,
}

impl Scheme {
    /// The scheme of `url`, when it is one Flux accepts (`^(http|https|ssh)://`); the scp form
    /// `user@host:path` is not accepted, as in Flux.
    pub fn of(url: &str) -> Option<Scheme> {
        if url.starts_with("https://") {
            Some(Scheme::Https)
        } else if url.starts_with("http://") {
            Some(Scheme::Http)
        } else if url.starts_with("ssh://") {
            Some(Scheme::Ssh)
        } else {
            None
        }
    }
}

/// A validated repository URL.
#[derive(Clone)]
pub(crate) struct RepoUrl {
    /// The URL as given, which may carry credentials: only for gix and the cache key.
    raw: String,
    scheme: Scheme,
    /// What gix connects to: for SSH, with the default user filled in.
    for_gix: gix::Url,
    /// The URL without a password, for messages.
    redacted: String,
    /// The credentials in the URL, as written and percent-decoded (see [`url_secrets`]).
    secrets: Vec<String>,
}

impl RepoUrl {
    /// Parses `url`; an unsupported scheme or a malformed URL is [`GitError::UrlInvalid`].
    pub(crate) fn parse(url: &str) -> Result<RepoUrl, GitError> {
        let redacted = redact(url);
        let secrets = url_secrets(url);
        // gix's parse errors quote the input, credentials included.
        let invalid = |why: String| {
            let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
            GitError::UrlInvalid {
                url: redacted.clone(),
                why: super::classify::scrub(&why.replace(url, &redacted), &secrets),
            }
        };
        let scheme = Scheme::of(url).ok_or_else(|| {
            invalid("the URL must start with http://, https:// or ssh://".to_owned())
        })?;
        let mut for_gix = gix::url::parse(url).map_err(|e| invalid(super::classify::chain(&e)))?;
        if for_gix.host().is_none_or(str::is_empty) {
            return Err(invalid("the URL has no host".to_owned()));
        }
        if scheme == Scheme::Ssh && for_gix.user().is_none() {
            for_gix.set_user(Some(DEFAULT_SSH_USER.to_owned()));
        }
        let mut secrets = secrets;
        let user = match scheme {
            Scheme::Http | Scheme::Https => for_gix.user(),
            Scheme::Ssh => None,
        };
        for parsed in user.into_iter().chain(for_gix.password()) {
            if !parsed.is_empty() && !secrets.iter().any(|s| s == parsed) {
                secrets.push(parsed.to_owned());
            }
        }
        Ok(RepoUrl {
            raw: url.to_owned(),
            scheme,
            for_gix,
            redacted,
            secrets,
        })
    }

    /// The transport.
    pub(crate) fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The URL to hand to gix.
    pub(crate) fn for_gix(&self) -> &gix::Url {
        &self.for_gix
    }

    /// Whether the URL itself carries a credential: a password (`https://user:pass@host/...`),
    /// or, over HTTP(S), a user alone, which is how tokens are often written
    /// (`https://TOKEN@host/...`).
    pub(crate) fn has_password(&self) -> bool {
        !self.secrets().is_empty()
    }

    /// The credentials in the URL, to scrub them from messages: its password and, over
    /// HTTP(S), its user, each as written in the URL and percent-decoded.
    pub(crate) fn secrets(&self) -> Vec<&str> {
        self.secrets.iter().map(String::as_str).collect()
    }

    /// The URL for messages: the password, if any, replaced.
    pub(crate) fn redacted(&self) -> &str {
        &self.redacted
    }

    /// The name of the URL's cache directory: the SHA-256 of the URL as given, so that
    /// credentials in a URL never become a path and two spellings never share a cache.
    pub(crate) fn cache_key(&self) -> String {
        cache_key(&self.raw)
    }
}

/// The cache directory name of `url`: hex SHA-256 of the exact string.
pub fn cache_key(url: &str) -> String {
    hex::encode(Sha256::digest(url.as_bytes()))
}

/// `url` with its credentials replaced by `***`: over HTTP(S) the whole userinfo (a user alone
/// is often a token), over SSH the password (the user, such as `git`, is kept). Works on
/// malformed input too, since it is used to report why a URL is invalid.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let authority_start = scheme_end + 3;
    let rest = &url[authority_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    let user = if !url.starts_with("ssh://") {
        "***".to_owned()
    } else {
        match userinfo.find(':') {
            Some(colon) => format!("{}:***", &userinfo[..colon]),
            None => userinfo.to_owned(),
        }
    };
    format!(
        "{}{user}{}",
        &url[..authority_start],
        &url[authority_start + at..]
    )
}

/// The credentials in `url` as [`redact`] finds them (over HTTP(S) the user and password,
/// over SSH the password), each as written and percent-decoded; empty ones are left out.
/// Works on malformed URLs too.
fn url_secrets(url: &str) -> Vec<String> {
    let Some(scheme_end) = url.find("://") else {
        return Vec::new();
    };
    let rest = &url[scheme_end + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let Some(at) = authority.rfind('@') else {
        return Vec::new();
    };
    let userinfo = &authority[..at];
    let (user, password) = match userinfo.split_once(':') {
        Some((user, password)) => (user, Some(password)),
        None => (userinfo, None),
    };
    let user = (!url.starts_with("ssh://")).then_some(user);
    let mut out: Vec<String> = Vec::new();
    for written in user.into_iter().chain(password) {
        for form in [written.to_owned(), percent_decode(written)] {
            if !form.is_empty() && !out.contains(&form) {
                out.push(form);
            }
        }
    }
    out
}

/// `%XX` sequences decoded (others kept as they are), then read as UTF-8, lossily.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_follow_flux_pattern() {
        assert_eq!(Scheme::of("https://h/r.git"), Some(Scheme::Https));
        assert_eq!(Scheme::of("http://h/r.git"), Some(Scheme::Http));
        assert_eq!(Scheme::of("ssh://git@h:22/r.git"), Some(Scheme::Ssh));
        assert_eq!(Scheme::of("git@github.com:org/repo.git"), None);
        assert_eq!(Scheme::of("file:///tmp/repo"), None);
        assert_eq!(Scheme::of("HTTPS://h/r"), None);
    }

    #[test]
    fn redaction_hides_every_credential() {
        assert_eq!(redact("https://h/r.git"), "https://h/r.git");
        assert_eq!(
            redact("https://user:s3cret@h:8443/r.git"),
            "https://***@h:8443/r.git"
        );
        assert_eq!(
            redact("https://ghp_T0KEN@github.com/o/r.git"),
            "https://***@github.com/o/r.git"
        );
        assert_eq!(redact("http://T0KEN@h/r.git"), "http://***@h/r.git");
        assert_eq!(redact("ssh://git@h/r.git"), "ssh://git@h/r.git");
        assert_eq!(redact("ssh://git:pw@h/r.git"), "ssh://git:***@h/r.git");
        assert_eq!(redact("https://u:p@ss@h/r?x=a@b"), "https://***@h/r?x=a@b");
        assert_eq!(redact("not a url"), "not a url");
    }

    #[test]
    fn cache_key_is_sha256_of_the_url() {
        let key = cache_key("https://example.com/repo.git");
        assert_eq!(key.len(), 64);
        assert!(key.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(key, cache_key("https://example.com/repo.git/"));
        assert!(!cache_key("https://u:secret@h/r").contains("secret"));
        assert_eq!(
            cache_key(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn ssh_urls_get_the_default_user() {
        let url = RepoUrl::parse("ssh://example.com:2222/org/repo.git").expect("valid");
        assert_eq!(url.for_gix().user(), Some("git"));
        let url = RepoUrl::parse("ssh://deploy@example.com/org/repo.git").expect("valid");
        assert_eq!(url.for_gix().user(), Some("deploy"));
    }

    #[test]
    fn invalid_urls_are_rejected_without_their_password() {
        let err = RepoUrl::parse("git@github.com:org/repo.git")
            .err()
            .expect("scp form");
        assert!(matches!(err, GitError::UrlInvalid { .. }), "{err}");
        let err = RepoUrl::parse("ftp://u:hunter2@h/r").err().expect("ftp");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        // gix quotes the whole input in its parse errors.
        let err = RepoUrl::parse("https://T0KEN@h:99999/r")
            .err()
            .expect("bad port");
        assert!(!err.to_string().contains("T0KEN"), "{err}");
        assert!(err.to_string().contains("***@h:99999"), "{err}");
        let url = RepoUrl::parse("https://u:p%40ssw0rd@h/r").expect("valid");
        let scrubbed = super::super::classify::scrub(
            "GET https://u:p%40ssw0rd@h/r as p@ssw0rd",
            &url.secrets(),
        );
        assert!(!scrubbed.contains("ssw0rd"), "{scrubbed}");
        assert!(
            RepoUrl::parse("https://u:p@h/r")
                .expect("valid")
                .has_password()
        );
    }
}
