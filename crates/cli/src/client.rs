//! The connection to the cluster, chosen by `--kubeconfig`, `--context` and `-n` as kubectl
//! chooses it.

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::args::Global;
use crate::error::Error;

/// A client and the namespace the command works in.
#[derive(Clone)]
pub struct Cluster {
    /// The API client.
    pub client: kube::Client,
    /// `-n`, else the context's namespace, else `default`.
    pub namespace: String,
}

/// Connects as the flags say: `--kubeconfig` (else `$KUBECONFIG`, `~/.kube/config`, then the
/// in-cluster configuration) with `--context` (else the current context).
pub async fn connect(global: &Global) -> Result<Cluster, Error> {
    let options = KubeConfigOptions {
        context: global.context.clone(),
        ..Default::default()
    };
    let config = match (&global.kubeconfig, &global.context) {
        (Some(path), _) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| Error::Config(e.to_string()))?
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| Error::Config(e.to_string()))?,
        (None, None) => kube::Config::infer()
            .await
            .map_err(|e| Error::Config(e.to_string()))?,
    };
    let namespace = global
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = kube::Client::try_from(config).map_err(|e| Error::Config(e.to_string()))?;
    Ok(Cluster { client, namespace })
}
