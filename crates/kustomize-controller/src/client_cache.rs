//! Clients per identity: the controller's own, and one per impersonated ServiceAccount, built
//! once and reused (Flux built a fresh client per reconcile, a known cost at scale).

use std::collections::HashMap;
use std::sync::Mutex;

use kube::{Client, Config};

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientCacheError {
    /// The client could not be built from the configuration.
    #[error("building a client for {identity}: {source}")]
    Build {
        /// The identity, `system:serviceaccount:<ns>:<name>` or `the controller`.
        identity: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
}

impl ClientCacheError {
    /// A stable short name of the failure.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Build { .. } => "ClientBuild",
        }
    }
}

/// Key: (namespace, ServiceAccount); None = the controller's own identity.
type Key = Option<(String, String)>;

/// Clients keyed by identity, built from one base configuration.
pub struct ClientCache {
    base: Config,
    clients: Mutex<HashMap<Key, Client>>,
}

impl std::fmt::Debug for ClientCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The base config holds credentials; show only the server.
        f.debug_struct("ClientCache")
            .field("cluster_url", &self.base.cluster_url)
            .finish_non_exhaustive()
    }
}

/// The user name the API server gives a ServiceAccount.
pub fn service_account_user(namespace: &str, service_account: &str) -> String {
    format!("system:serviceaccount:{namespace}:{service_account}")
}

/// `base` changed to impersonate the ServiceAccount. No groups are sent: for a ServiceAccount
/// user the API server adds the groups its own token would carry (`system:serviceaccounts`,
/// `system:serviceaccounts:<ns>`, `system:authenticated`), and naming groups would need
/// `impersonate` on `groups`, a right that also lets its holder claim `system:masters`.
pub fn impersonating(base: &Config, namespace: &str, service_account: &str) -> Config {
    let mut config = base.clone();
    config.auth_info.impersonate = Some(service_account_user(namespace, service_account));
    config.auth_info.impersonate_groups = None;
    config
}

impl ClientCache {
    /// A cache building every client from `base` (the controller's own configuration).
    pub fn new(base: Config) -> Self {
        Self {
            base,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// A cache whose client for the controller's own identity is `own` (built from `base`):
    /// one connection pool per identity, and what `own` carries (e.g. layers) applies to
    /// every request sent as the controller.
    pub fn with_own(base: Config, own: Client) -> Self {
        let cache = Self::new(base);
        cache
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(None, own);
        cache
    }

    /// The controller's client when `service_account` is None, else a client impersonating
    /// `system:serviceaccount:<namespace>:<service_account>`; built on first use, then shared.
    /// Must be called inside a tokio runtime (clients spawn their connection workers there).
    pub fn get(
        &self,
        namespace: &str,
        service_account: Option<&str>,
    ) -> Result<Client, ClientCacheError> {
        let key: Key = service_account
            .filter(|sa| !sa.is_empty())
            .map(|sa| (namespace.to_string(), sa.to_string()));
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let (config, identity) = match &key {
            None => (self.base.clone(), "the controller".to_string()),
            Some((ns, sa)) => (
                impersonating(&self.base, ns, sa),
                service_account_user(ns, sa),
            ),
        };
        let client = Client::try_from(config)
            .map_err(|source| ClientCacheError::Build { identity, source })?;
        clients.insert(key, client.clone());
        Ok(client)
    }

    /// Drops the cached client of a ServiceAccount (e.g. when its Kustomization is deleted).
    pub fn evict(&self, namespace: &str, service_account: &str) {
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&Some((namespace.to_string(), service_account.to_string())));
    }

    /// How many clients are cached.
    pub fn len(&self) -> usize {
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether no client is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impersonation_names_the_service_account_only() {
        let base = Config::new("https://127.0.0.1:6443".parse().expect("url"));
        let config = impersonating(&base, "team-a", "deployer");
        assert_eq!(
            config.auth_info.impersonate.as_deref(),
            Some("system:serviceaccount:team-a:deployer")
        );
        assert!(config.auth_info.impersonate_groups.is_none());
        assert!(base.auth_info.impersonate.is_none());
    }

    #[tokio::test]
    async fn clients_are_built_once_per_identity() {
        let cache = ClientCache::new(Config::new("https://127.0.0.1:6443".parse().expect("url")));
        cache.get("team-a", Some("deployer")).expect("client");
        cache.get("team-a", Some("deployer")).expect("client");
        cache.get("team-a", None).expect("client");
        cache.get("team-b", None).expect("client");
        cache.get("team-b", Some("deployer")).expect("client");
        assert_eq!(cache.len(), 3);
        cache.evict("team-a", "deployer");
        assert_eq!(cache.len(), 2);
    }
}
