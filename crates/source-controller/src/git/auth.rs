//! Credentials from a Secret, with Flux's keys (see `GitAuth::from_secret`).
//!
//! Parsing is pure and checks everything it can before a connection is made, so a broken
//! Secret is reported by key name. Values never appear in errors or `Debug` output.

use std::collections::BTreeMap;
use std::fmt;

use super::ssh_secret::ssh_from_secret;
use super::url::Scheme;
use mooring_api::conditions::reasons;

/// A value that is never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Sensitive<T>(T);

impl<T> Sensitive<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        Sensitive(value)
    }

    /// The wrapped value; do not log it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// HTTP credentials: basic auth or a bearer token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpCredentials {
    /// `username` / `password`, sent after the server asks (401).
    Basic {
        /// The user name.
        username: String,
        /// The password or access token.
        password: Sensitive<String>,
    },
    /// `Authorization: Bearer <token>` on every request.
    Bearer(Sensitive<String>),
}

/// A TLS client certificate and its key (`tls.crt` + `tls.key`), both PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCertificate {
    pub(crate) cert_pem: Vec<u8>,
    pub(crate) key_pem: Sensitive<Vec<u8>>,
}

/// SSH key material: the private key, the trusted host keys, and the key's passphrase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshCredentials {
    pub(crate) identity: Sensitive<Vec<u8>>,
    pub(crate) known_hosts: Vec<u8>,
    /// Set only when the key is encrypted.
    pub(crate) passphrase: Option<Sensitive<String>>,
}

/// How to authenticate to a git server (and whom to trust), parsed from a Secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct GitAuth {
    pub(crate) http: Option<HttpCredentials>,
    pub(crate) ca_pem: Option<Vec<u8>>,
    pub(crate) client_cert: Option<ClientCertificate>,
    pub(crate) ssh: Option<SshCredentials>,
}

/// What is configured, without any key material (certificates included: they are long).
impl fmt::Debug for GitAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let http = match &self.http {
            Some(HttpCredentials::Basic { username, .. }) => format!("basic({username})"),
            Some(HttpCredentials::Bearer(_)) => "bearer".to_owned(),
            None => "none".to_owned(),
        };
        let ssh = self.ssh.as_ref().map(|s| match s.passphrase {
            Some(_) => "encrypted key",
            None => "key",
        });
        f.debug_struct("GitAuth")
            .field("http", &http)
            .field("custom_ca", &self.ca_pem.is_some())
            .field("client_cert", &self.client_cert.is_some())
            .field("ssh", &ssh)
            .finish()
    }
}

/// A Secret that cannot be used; each variant names the key, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The URL has a scheme other than http, https or ssh.
    #[error("unsupported URL scheme: use http://, https:// or ssh://")]
    UnsupportedScheme,
    /// A text key holds bytes that are not UTF-8.
    #[error("Secret key '{key}' is not valid UTF-8")]
    NotUtf8 { key: &'static str },
    /// A key is present but empty.
    #[error("Secret key '{key}' is empty")]
    Empty { key: &'static str },
    /// A key's value cannot be used.
    #[error("Secret key '{key}' is invalid: {why}")]
    Invalid {
        key: &'static str,
        why: &'static str,
    },
    /// `password` without `username`.
    #[error("Secret key 'password' is set without 'username'")]
    PasswordWithoutUsername,
    /// `bearerToken` together with `username`/`password`.
    #[error("Secret keys 'username'/'password' and 'bearerToken' cannot be set at the same time")]
    BasicAndBearer,
    /// One key of a pair without the other (`tls.crt`/`tls.key`).
    #[error("Secret key '{missing}' is missing: '{present}' and '{missing}' must be set together")]
    IncompletePair {
        present: &'static str,
        missing: &'static str,
    },
    /// A key an ssh:// URL needs.
    #[error("Secret key '{key}' is missing: ssh:// URLs need 'identity' and 'known_hosts'")]
    MissingSshKey { key: &'static str },
    /// An ssh:// URL without any Secret.
    #[error("ssh:// URLs need a Secret with 'identity' and 'known_hosts' keys")]
    SshWithoutSecret,
    /// An encrypted `identity` without `password`.
    #[error(
        "Secret key 'identity' holds an encrypted SSH key, but the Secret has no 'password' key with its passphrase"
    )]
    EncryptedKeyWithoutPassword,
    /// Credentials (from the Secret or the URL) for a plain http:// URL.
    #[error("refusing to send credentials over plain http ({origin}): use an https:// URL")]
    CredentialsOverPlainHttp { origin: &'static str },
    /// A key of the proxy Secret is missing.
    #[error("proxy Secret key '{key}' is missing")]
    MissingProxyKey { key: &'static str },
    /// A proxy for an ssh:// URL.
    #[error("a proxy is not supported for ssh:// URLs")]
    ProxyWithSsh,
}

impl AuthError {
    /// The Flux condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::UnsupportedScheme => reasons::URL_INVALID,
            _ => reasons::AUTHENTICATION_FAILED,
        }
    }
}

pub(crate) type SecretData = BTreeMap<String, Vec<u8>>;

impl GitAuth {
    /// No credentials; only the system's TLS roots are trusted.
    pub fn none() -> GitAuth {
        GitAuth::default()
    }

    /// Parses Flux's Secret keys for `url`'s transport.
    ///
    /// HTTP(S): `username` + `password` (basic; password alone is an error), `bearerToken`
    /// (exclusive with basic), `ca.crt` (or the legacy `caFile`), `tls.crt` + `tls.key`.
    /// SSH: `identity` + `known_hosts` (both required), `password` as the key's passphrase.
    /// Keys of the other transport are ignored. Credentials for an http:// URL are refused.
    pub fn from_secret(data: &SecretData, url: &str) -> Result<GitAuth, AuthError> {
        match Scheme::of(url).ok_or(AuthError::UnsupportedScheme)? {
            Scheme::Ssh => Ok(GitAuth {
                ssh: Some(ssh_from_secret(data)?),
                ..GitAuth::default()
            }),
            scheme => http_from_secret(data, scheme),
        }
    }

    /// Whether anything is configured.
    pub fn is_empty(&self) -> bool {
        *self == GitAuth::default()
    }

    /// Checks that this configuration can be used with `url` (already validated by scheme):
    /// no credentials over http (from here or the URL), SSH key material for ssh://.
    pub(crate) fn check_for(
        &self,
        scheme: Scheme,
        url_has_password: bool,
    ) -> Result<(), AuthError> {
        match scheme {
            Scheme::Http if self.http.is_some() => Err(AuthError::CredentialsOverPlainHttp {
                origin: "Secret keys 'username'/'password' or 'bearerToken'",
            }),
            Scheme::Http if url_has_password => Err(AuthError::CredentialsOverPlainHttp {
                origin: "password in the URL",
            }),
            Scheme::Ssh if self.ssh.is_none() => Err(AuthError::SshWithoutSecret),
            _ => Ok(()),
        }
    }

    /// The secret strings, to scrub them from any message that might echo one.
    pub(crate) fn secret_strings(&self) -> Vec<&str> {
        let mut out = Vec::new();
        match &self.http {
            Some(HttpCredentials::Basic { password, .. }) => out.push(password.expose().as_str()),
            Some(HttpCredentials::Bearer(token)) => out.push(token.expose().as_str()),
            None => {}
        }
        if let Some(pass) = self.ssh.as_ref().and_then(|s| s.passphrase.as_ref()) {
            out.push(pass.expose().as_str());
        }
        out.retain(|s| !s.is_empty());
        out
    }
}

pub(crate) fn text<'a>(
    data: &'a SecretData,
    key: &'static str,
) -> Result<Option<&'a str>, AuthError> {
    data.get(key)
        .map(|v| std::str::from_utf8(v).map_err(|_| AuthError::NotUtf8 { key }))
        .transpose()
}

fn http_from_secret(data: &SecretData, scheme: Scheme) -> Result<GitAuth, AuthError> {
    let username = text(data, "username")?;
    let password = text(data, "password")?;
    let http = match text(data, "bearerToken")? {
        Some(_) if username.is_some() || password.is_some() => {
            return Err(AuthError::BasicAndBearer);
        }
        Some(token) => {
            let token = token.trim();
            if token.is_empty() {
                return Err(AuthError::Empty { key: "bearerToken" });
            }
            if token.chars().any(|c| c.is_control()) {
                let why = "it contains control characters";
                return Err(AuthError::Invalid {
                    key: "bearerToken",
                    why,
                });
            }
            Some(HttpCredentials::Bearer(Sensitive::new(token.to_owned())))
        }
        None => match (username, password) {
            (None, Some(_)) => return Err(AuthError::PasswordWithoutUsername),
            (Some(""), _) => return Err(AuthError::Empty { key: "username" }),
            (Some(username), password) => Some(HttpCredentials::Basic {
                username: username.to_owned(),
                password: Sensitive::new(password.unwrap_or_default().to_owned()),
            }),
            (None, None) => None,
        },
    };
    if scheme == Scheme::Http && http.is_some() {
        let origin = "Secret keys 'username'/'password' or 'bearerToken'";
        return Err(AuthError::CredentialsOverPlainHttp { origin });
    }
    let ca_key = if data.contains_key("ca.crt") {
        "ca.crt"
    } else {
        "caFile"
    };
    let ca_pem = match data.get(ca_key) {
        Some(pem) => {
            let certs =
                reqwest::Certificate::from_pem_bundle(pem).map_err(|_| invalid_pem(ca_key))?;
            if certs.is_empty() {
                return Err(invalid_pem(ca_key));
            }
            Some(pem.clone())
        }
        None => None,
    };
    let client_cert = match (data.get("tls.crt"), data.get("tls.key")) {
        (Some(cert), Some(key)) => {
            let mut both = cert.clone();
            both.push(b'\n');
            both.extend_from_slice(key);
            reqwest::Identity::from_pem(&both).map_err(|_| AuthError::Invalid {
                key: "tls.crt",
                why: "'tls.crt' and 'tls.key' are not a PEM certificate and its private key",
            })?;
            Some(ClientCertificate {
                cert_pem: cert.clone(),
                key_pem: Sensitive::new(key.clone()),
            })
        }
        (Some(_), None) => return Err(pair("tls.crt", "tls.key")),
        (None, Some(_)) => return Err(pair("tls.key", "tls.crt")),
        (None, None) => None,
    };
    Ok(GitAuth {
        http,
        ca_pem,
        client_cert,
        ssh: None,
    })
}

fn invalid_pem(key: &'static str) -> AuthError {
    AuthError::Invalid {
        key,
        why: "it holds no PEM certificate",
    }
}

fn pair(present: &'static str, missing: &'static str) -> AuthError {
    AuthError::IncompletePair { present, missing }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
