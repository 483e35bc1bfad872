//! Where a Kustomization's objects live: this cluster, or the remote cluster that the kubeconfig
//! in its `spec.kubeConfig.secretRef` Secret names. Each cluster has its own clients, discovery
//! and live view; a remote one is built once per kubeconfig and rebuilt when the Secret's
//! kubeconfig changes.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};
use mooring_api::kustomization::LOCAL_CLUSTER;
use mooring_api::{Kustomization, fields};

use crate::apply::KindCache;
use crate::client_cache::ClientCache;
use crate::context::Context;
use crate::live::LiveView;
use crate::wakes::Wakes;

/// One cluster the controller applies to.
pub struct Cluster {
    /// Clients per identity on this cluster.
    pub clients: ClientCache,
    /// Discovery of this cluster's kinds.
    pub kinds: KindCache,
    /// The live view of the objects managed on this cluster.
    pub live: LiveView,
    /// Tells one cluster from another in the remembered state.
    pub fingerprint: u64,
    /// What an inventory of objects applied here records as its cluster
    /// ([`ResourceInventory::cluster`](mooring_api::kustomization::ResourceInventory)):
    /// [`LOCAL_CLUSTER`] or the remote's server URL.
    pub name: String,
}

impl Cluster {
    /// The cluster the controller runs in, reached with `config` (its own identity is
    /// `client`'s).
    pub fn local(config: Config, client: Client, wakes: Arc<Wakes>) -> Self {
        Self::new(config, client, wakes, 0, LOCAL_CLUSTER.to_owned())
    }

    /// A remote cluster reached with `config`, told apart by `fingerprint` (of its kubeconfig)
    /// and recorded in inventories by its server URL.
    fn remote(config: Config, client: Client, wakes: Arc<Wakes>, fingerprint: u64) -> Self {
        let name = config.cluster_url.to_string();
        Self::new(config, client, wakes, fingerprint, name)
    }

    fn new(
        config: Config,
        client: Client,
        wakes: Arc<Wakes>,
        fingerprint: u64,
        name: String,
    ) -> Self {
        Self {
            clients: ClientCache::with_own(config, client.clone()),
            kinds: KindCache::new(),
            live: LiveView::new(client, wakes, fingerprint),
            fingerprint,
            name,
        }
    }

    /// How messages name this cluster.
    pub fn described(&self) -> String {
        described(&self.name)
    }
}

/// How messages name the cluster an inventory records.
pub fn described(name: &str) -> String {
    if name == LOCAL_CLUSTER {
        "this cluster".to_owned()
    } else {
        format!("the cluster at {name}")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.live.shutdown();
    }
}

/// The cluster and the client of one Kustomization's pass.
pub struct Target {
    /// The cluster.
    pub cluster: Arc<Cluster>,
    /// The client that applies, prunes and reads health there, with the Kustomization's
    /// identity.
    pub client: Client,
}

/// Why the target cluster cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The kubeconfig Secret could not be read.
    #[error("spec.kubeConfig.secretRef: reading Secret '{namespace}/{name}': {source}")]
    Read {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The Secret or its key is missing, or the kubeconfig is unusable.
    #[error("spec.kubeConfig.secretRef: Secret '{namespace}/{name}': {problem}")]
    Invalid {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// The remote cluster does not answer.
    #[error(
        "spec.kubeConfig.secretRef: the cluster at {server} (Secret '{namespace}/{name}') cannot be reached: {source}"
    )]
    Unreachable {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// The kubeconfig's server.
        server: String,
        /// The error.
        #[source]
        source: kube::Error,
    },
    /// A client could not be built.
    #[error("{0}")]
    Client(String),
    /// `spec.kubeConfig` names the cluster some other way than a Secret; the gate refuses it
    /// for a pass, and a deletion must not read it as "this cluster".
    #[error("{0}")]
    Unsupported(String),
}

/// The remote clusters in use, by kubeconfig Secret.
pub struct Remotes {
    wakes: Arc<Wakes>,
    clusters: Mutex<HashMap<(String, String, String), Arc<Cluster>>>,
}

impl Remotes {
    /// No remote cluster yet; their live views wake Kustomizations through `wakes`.
    pub fn new(wakes: Arc<Wakes>) -> Self {
        Self {
            wakes,
            clusters: Mutex::new(HashMap::new()),
        }
    }

    /// Stops every remote live view.
    pub fn shutdown(&self) {
        let clusters = self.clusters.lock().unwrap_or_else(|p| p.into_inner());
        for cluster in clusters.values() {
            cluster.live.shutdown();
        }
    }

    /// The remote cluster of the kubeconfig Secret `namespace/name`, read with `reader` (the
    /// Kustomization's identity on this cluster). Talks to the API server (one GET).
    pub async fn cluster(
        &self,
        reader: &Client,
        namespace: &str,
        name: &str,
        key: Option<&str>,
    ) -> Result<Arc<Cluster>, TargetError> {
        let invalid = |problem: String| TargetError::Invalid {
            namespace: namespace.to_string(),
            name: name.to_string(),
            problem,
        };
        let api: Api<Secret> = Api::namespaced(reader.clone(), namespace);
        let secret = api
            .get_opt(name)
            .await
            .map_err(|source| TargetError::Read {
                namespace: namespace.to_string(),
                name: name.to_string(),
                source,
            })?
            .ok_or_else(|| invalid("not found".to_string()))?;
        let data = secret.data.unwrap_or_default();
        let keys: Vec<&str> = match key {
            Some(key) => vec![key],
            None => vec!["value", "value.yaml"],
        };
        let bytes = keys
            .iter()
            .find_map(|k| data.get(*k))
            .ok_or_else(|| invalid(format!("no key {}", keys.join(" or "))))?;
        let text = std::str::from_utf8(&bytes.0)
            .map_err(|_| invalid("the kubeconfig is not UTF-8 text".to_string()))?;
        let fingerprint = {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            text.hash(&mut hasher);
            hasher.finish()
        };
        let slot = (
            namespace.to_string(),
            name.to_string(),
            key.unwrap_or_default().to_string(),
        );
        if let Some(cluster) = self.get(&slot).filter(|c| c.fingerprint == fingerprint) {
            return Ok(cluster);
        }
        let kubeconfig =
            Kubeconfig::from_yaml(text).map_err(|e| invalid(format!("invalid kubeconfig: {e}")))?;
        refuse_local_access(&kubeconfig).map_err(invalid)?;
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| invalid(format!("invalid kubeconfig: {e}")))?;
        let client = Client::try_from(config.clone())
            .map_err(|e| TargetError::Client(format!("a client for the remote cluster: {e}")))?;
        // One request per new kubeconfig, so that a wrong address is reported as such; a
        // cluster that does not answer is not kept, and is tried again at the next pass.
        client
            .apiserver_version()
            .await
            .map_err(|source| TargetError::Unreachable {
                namespace: namespace.to_string(),
                name: name.to_string(),
                server: config.cluster_url.to_string(),
                source,
            })?;
        let cluster = Arc::new(Cluster::remote(
            config,
            client,
            self.wakes.clone(),
            fingerprint,
        ));
        tracing::info!(secret = %format!("{namespace}/{name}"), "remote cluster client built");
        let old = self
            .clusters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(slot, cluster.clone());
        // The old cluster's watches stop when its last pass drops it.
        drop(old);
        Ok(cluster)
    }

    /// Forgets the remote cluster of `ks` unless another Kustomization of `all` uses the same
    /// Secret; its watches stop once no pass holds it.
    pub fn release(&self, ks: &Kustomization, all: &[Arc<Kustomization>]) {
        let Some(secret) = kubeconfig_secret(ks) else {
            return;
        };
        let ns = ks.namespace().unwrap_or_default();
        let shared = all.iter().any(|other| {
            other.uid() != ks.uid()
                && other.namespace().as_deref() == Some(ns.as_str())
                && kubeconfig_secret(other) == Some(secret)
        });
        if !shared {
            self.clusters
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|(slot_ns, slot_name, _), _| !(slot_ns == &ns && slot_name == secret));
        }
    }

    fn get(&self, slot: &(String, String, String)) -> Option<Arc<Cluster>> {
        self.clusters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(slot)
            .cloned()
    }
}

/// Refuses kubeconfigs that would make the controller read its own files or run programs: a
/// tenant's kubeconfig could otherwise name the controller's own token file and act as the
/// controller. Only inline data is accepted.
pub fn refuse_local_access(kubeconfig: &Kubeconfig) -> Result<(), String> {
    for named in &kubeconfig.auth_infos {
        let Some(user) = &named.auth_info else {
            continue;
        };
        let refused = [
            ("exec", user.exec.is_some()),
            ("auth-provider", user.auth_provider.is_some()),
            ("tokenFile", user.token_file.is_some()),
            ("client-certificate", user.client_certificate.is_some()),
            ("client-key", user.client_key.is_some()),
        ];
        if let Some((field, _)) = refused.iter().find(|(_, set)| *set) {
            return Err(format!(
                "users[{}].user.{field} is refused: only inline credentials (token, \
                 client-certificate-data, client-key-data) are accepted",
                named.name
            ));
        }
    }
    for named in &kubeconfig.clusters {
        let Some(cluster) = &named.cluster else {
            continue;
        };
        if cluster.certificate_authority.is_some() {
            return Err(format!(
                "clusters[{}].cluster.certificate-authority is refused: use \
                 certificate-authority-data",
                named.name
            ));
        }
        if cluster.insecure_skip_tls_verify == Some(true) {
            return Err(format!(
                "clusters[{}].cluster.insecure-skip-tls-verify is refused: give the cluster's CA \
                 in certificate-authority-data",
                named.name
            ));
        }
    }
    Ok(())
}

/// The ServiceAccount impersonated on a remote cluster: only one the Kustomization names (the
/// controller's default ServiceAccount is a rule of this cluster; on a remote cluster the
/// kubeconfig's own identity applies).
pub fn remote_service_account(ks: &Kustomization) -> Option<&str> {
    ks.spec
        .service_account_name
        .as_deref()
        .filter(|sa| !sa.is_empty())
}

/// The name of the kubeconfig Secret of `ks`, if it targets a remote cluster.
fn kubeconfig_secret(ks: &Kustomization) -> Option<&str> {
    ks.spec
        .kube_config
        .as_ref()?
        .secret_ref
        .as_ref()
        .map(|s| s.name.as_str())
}

/// The two clients of a pass: `local` acts on this cluster with the Kustomization's identity
/// (substitution sources, the kubeconfig Secret); `target` is where its objects go.
pub struct Clients {
    /// This cluster, as the Kustomization.
    pub local: Client,
    /// The cluster of the objects.
    pub target: Target,
}

/// The clients of `ks`. Talks to the API server only for a remote cluster (reads the kubeconfig
/// Secret).
pub async fn clients(ks: &Kustomization, ctx: &Context) -> Result<Clients, TargetError> {
    let ns = ks.namespace().unwrap_or_default();
    let local = ctx
        .local
        .clients
        .get(&ns, ctx.settings.service_account(ks))
        .map_err(|e| TargetError::Client(e.to_string()))?;
    let Some(kube_config) = ks.spec.kube_config.as_ref() else {
        return Ok(Clients {
            target: Target {
                cluster: ctx.local.clone(),
                client: local.clone(),
            },
            local,
        });
    };
    let Some(secret_ref) = kube_config.secret_ref.as_ref() else {
        let json = serde_json::to_value(&ks.spec).unwrap_or_default();
        let why = fields::KUSTOMIZATION_REFUSED
            .iter()
            .filter(|r| r.path.starts_with("spec.kubeConfig."))
            .find(|r| fields::refused(&json, std::slice::from_ref(*r)).is_some())
            .map(|r| r.message())
            .unwrap_or_else(|| "spec.kubeConfig names no secretRef".to_owned());
        return Err(TargetError::Unsupported(why));
    };
    let cluster = ctx
        .remotes
        .cluster(&local, &ns, &secret_ref.name, secret_ref.key.as_deref())
        .await?;
    let client = cluster
        .clients
        .get(&ns, remote_service_account(ks))
        .map_err(|e| TargetError::Client(e.to_string()))?;
    Ok(Clients {
        local,
        target: Target { cluster, client },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubeconfig(user: &str, cluster: &str) -> Kubeconfig {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://10.0.0.1:6443\n{cluster}\
             users:\n- name: u\n  user:\n{user}contexts:\n- name: x\n  context: {{cluster: c, user: u}}\n\
             current-context: x\n"
        );
        Kubeconfig::from_yaml(&text).expect("kubeconfig")
    }

    #[test]
    fn inline_credentials_are_accepted() {
        let ok = kubeconfig("    token: abc\n", "    certificate-authority-data: Zm9v\n");
        assert_eq!(refuse_local_access(&ok), Ok(()));
    }

    #[test]
    fn files_programs_and_skipped_tls_are_refused_naming_the_field() {
        let cases = [
            (
                "    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token\n",
                "",
                "users[u].user.tokenFile",
            ),
            (
                "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh\n",
                "",
                "users[u].user.exec",
            ),
            (
                "    client-certificate: /etc/cert\n",
                "",
                "client-certificate",
            ),
            (
                "    token: abc\n",
                "    certificate-authority: /etc/ca.crt\n",
                "clusters[c].cluster.certificate-authority",
            ),
            (
                "    token: abc\n",
                "    insecure-skip-tls-verify: true\n",
                "insecure-skip-tls-verify",
            ),
        ];
        for (user, cluster, field) in cases {
            let refused = refuse_local_access(&kubeconfig(user, cluster)).expect_err(field);
            assert!(refused.contains(field), "{refused}");
        }
    }
}
