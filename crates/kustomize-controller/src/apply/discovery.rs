//! Cached discovery: apiVersion + kind → API resource and scope, re-read on a miss.
//!
//! The cache is per group-version, so a miss costs one request for that group-version only
//! (never a full discovery sweep). Discovery is the same for every identity, so one cache can
//! serve the controller's own client and every impersonating client.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList;
use kube::Client;
use kube::discovery::{ApiResource, Scope};

use super::changeset::split_api_version;

/// An API resource and whether its objects live in a namespace.
#[derive(Debug, Clone)]
pub struct ResolvedKind {
    /// Group, version, kind and plural, for `Api::*_with`.
    pub resource: ApiResource,
    /// Namespaced or cluster-wide.
    pub scope: Scope,
}

impl ResolvedKind {
    /// Whether objects of this kind carry a namespace.
    pub fn namespaced(&self) -> bool {
        matches!(self.scope, Scope::Namespaced)
    }
}

type GroupVersionKinds = HashMap<String, ResolvedKind>;

/// A shared, cheaply cloned discovery cache keyed by apiVersion.
#[derive(Debug, Clone, Default)]
pub struct KindCache {
    by_api_version: Arc<RwLock<HashMap<String, Arc<GroupVersionKinds>>>>,
}

impl KindCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The cached resource for (apiVersion, kind), without asking the API server.
    pub fn cached(&self, api_version: &str, kind: &str) -> Option<ResolvedKind> {
        let map = self
            .by_api_version
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(api_version)
            .and_then(|kinds| kinds.get(kind).cloned())
    }

    /// Resolves (apiVersion, kind), re-reading that group-version from the API server when it
    /// is not cached or does not list the kind (e.g. a CRD applied moments ago).
    /// Ok(None): the API server does not serve the kind. Talks to the API server on a miss.
    pub async fn resolve(
        &self,
        client: &Client,
        api_version: &str,
        kind: &str,
    ) -> Result<Option<ResolvedKind>, kube::Error> {
        if let Some(found) = self.cached(api_version, kind) {
            return Ok(Some(found));
        }
        self.refresh(client, api_version).await?;
        Ok(self.cached(api_version, kind))
    }

    /// Drops one group-version, so that its next lookup asks the API server again (used when a
    /// request for a cached kind returns 404: its CRD was removed).
    pub fn forget(&self, api_version: &str) {
        self.by_api_version
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(api_version);
    }

    /// Re-reads one group-version; a group-version the server does not serve is cached empty.
    /// Talks to the API server.
    pub async fn refresh(&self, client: &Client, api_version: &str) -> Result<(), kube::Error> {
        let (group, _) = split_api_version(api_version);
        let listed = if group.is_empty() {
            client.list_core_api_resources(api_version).await
        } else {
            client.list_api_group_resources(api_version).await
        };
        let kinds = match listed {
            Ok(list) => kinds_of(&list),
            Err(kube::Error::Api(status)) if status.code == 404 => HashMap::new(),
            Err(e) => return Err(e),
        };
        self.by_api_version
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(api_version.to_string(), Arc::new(kinds));
        Ok(())
    }
}

/// The top-level resources (no subresources) of one group-version listing, by kind.
fn kinds_of(list: &APIResourceList) -> GroupVersionKinds {
    let (group, version) = split_api_version(&list.group_version);
    list.resources
        .iter()
        .filter(|r| !r.name.contains('/'))
        .map(|r| {
            let resolved = ResolvedKind {
                resource: ApiResource {
                    group: group.to_string(),
                    version: version.to_string(),
                    api_version: list.group_version.clone(),
                    kind: r.kind.clone(),
                    plural: r.name.clone(),
                },
                scope: if r.namespaced {
                    Scope::Namespaced
                } else {
                    Scope::Cluster
                },
            };
            (r.kind.clone(), resolved)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_map_kinds_to_resources_without_subresources() {
        let list: APIResourceList = serde_json::from_value(serde_json::json!({
            "groupVersion": "apps/v1",
            "resources": [
                {"name": "deployments", "singularName": "deployment", "namespaced": true,
                 "kind": "Deployment", "verbs": ["get", "patch"]},
                {"name": "deployments/status", "singularName": "", "namespaced": true,
                 "kind": "Deployment", "verbs": ["get"]},
            ]
        }))
        .expect("list");
        let kinds = kinds_of(&list);
        let deployment = &kinds["Deployment"];
        assert_eq!(deployment.resource.plural, "deployments");
        assert_eq!(deployment.resource.group, "apps");
        assert_eq!(deployment.resource.api_version, "apps/v1");
        assert!(deployment.namespaced());
    }
}
