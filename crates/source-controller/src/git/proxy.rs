//! The proxy Secret: `address`, `username`, `password`.

use std::fmt;

use super::auth::{AuthError, SecretData, Sensitive, text};
use super::url::redact;

/// An HTTP(S) or SOCKS5 proxy for every request to the git server, from a proxy Secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    pub(crate) address: Sensitive<String>,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<Sensitive<String>>,
}

impl fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyConfig")
            .field("address", &redact(self.address.expose()))
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

impl ProxyConfig {
    /// Parses Flux's proxy Secret: `address` (required; `http://`, `https://` or `socks5://`),
    /// `username`, `password`.
    pub fn from_secret(data: &SecretData) -> Result<ProxyConfig, AuthError> {
        let address = text(data, "address")?
            .map(str::trim)
            .ok_or(AuthError::MissingProxyKey { key: "address" })?;
        let schemes = ["http://", "https://", "socks5://", "socks5h://"];
        if !schemes.iter().any(|s| address.starts_with(s)) || reqwest::Proxy::all(address).is_err()
        {
            let why = "it must be an http://, https:// or socks5:// URL";
            return Err(AuthError::Invalid {
                key: "address",
                why,
            });
        }
        let username = text(data, "username")?.map(str::to_owned);
        let password = text(data, "password")?.map(|p| Sensitive::new(p.to_owned()));
        if username.is_none() && password.is_some() {
            return Err(AuthError::PasswordWithoutUsername);
        }
        Ok(ProxyConfig {
            address: Sensitive::new(address.to_owned()),
            username,
            password,
        })
    }

    /// The reqwest proxy for all schemes.
    pub(crate) fn to_reqwest(&self) -> Result<reqwest::Proxy, reqwest::Error> {
        let proxy = reqwest::Proxy::all(self.address.expose().as_str())?;
        Ok(match &self.username {
            Some(user) => {
                let pass = self.password.as_ref().map(|p| p.expose().as_str());
                proxy.basic_auth(user, pass.unwrap_or_default())
            }
            None => proxy,
        })
    }
}
