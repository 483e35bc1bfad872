//! References a Kustomization makes to other objects: its source, its dependencies, the objects
//! it checks the health of, a remote cluster and decryption keys.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{LocalObjectReference, SecretKeyReference, without_description};

/// Reference to the source object that provides the artifact.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.apiVersion) || self.apiVersion == 'source.mooring.dev/v1'",
    "message": "spec.sourceRef.apiVersion must be source.mooring.dev/v1 when set",
}]))]
pub struct CrossNamespaceSourceReference {
    /// API version of the source. Optional; when set it must be `source.mooring.dev/v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub api_version: Option<String>,

    /// Kind of the source. Only `GitRepository` is supported; the other Flux source kinds
    /// (`OCIRepository`, `Bucket`, `ExternalArtifact`) are rejected.
    pub kind: SourceKind,

    /// Name of the source.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// Namespace of the source. Defaults to the Kustomization's namespace. Another namespace
    /// is refused (Stalled, `AccessDenied`) unless the kustomize-controller runs with
    /// `--allow-cross-namespace-refs=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

/// Kind of a Kustomization's source.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = without_description)]
pub enum SourceKind {
    /// A GitRepository of `source.mooring.dev/v1`.
    #[default]
    GitRepository,
}

impl SourceKind {
    /// The kind's name, as written in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GitRepository => "GitRepository",
        }
    }
}

/// Another Kustomization that must be ready first.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DependencyReference {
    /// Name of the Kustomization.
    pub name: String,

    /// Namespace of the Kustomization. Defaults to this Kustomization's namespace. Another
    /// namespace is refused (Stalled, `AccessDenied`) unless the kustomize-controller runs
    /// with `--allow-cross-namespace-refs=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,

    /// CEL expression that decides whether the dependency is ready, in place of the built-in
    /// check. Not implemented: a Kustomization that sets it is refused (Stalled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_expr: Option<String>,
}

/// Reference to an object whose health is checked.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespacedObjectKindReference {
    /// API version of the object, for example `apps/v1`. Defaults to `apps/v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,

    /// Kind of the object, for example `Deployment`.
    pub kind: String,

    /// Name of the object.
    pub name: String,

    /// Namespace of the object. When omitted or empty, the Kustomization's own namespace. Not
    /// used for cluster-scoped kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// CEL expressions that compute the health of objects of a custom kind.
///
/// The expressions see the object itself as input. They are evaluated in the order
/// `inProgress`, `failed`, `current`; the first that returns true decides.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomHealthCheck {
    /// API version of the objects, for example `example.com/v1`. Only the group is matched.
    pub api_version: String,

    /// Kind of the objects. When omitted, the expressions apply to every kind of the group that
    /// has no entry of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,

    /// Expression that returns true when the object is ready.
    pub current: String,

    /// Expression that returns true while the object is still being reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_progress: Option<String>,

    /// Expression that returns true when the object failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// Where to find the kubeconfig of a remote cluster. Exactly one field must be set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.secretRef) != has(self.configMapRef)",
    "message": "exactly one of spec.kubeConfig.secretRef and spec.kubeConfig.configMapRef must be set",
}]))]
pub struct KubeConfigReference {
    /// Secret in the same namespace holding a kubeconfig, under `key` (default `value`, then
    /// `value.yaml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyReference>,

    /// ConfigMap in the same namespace describing a cluster to reach through workload identity
    /// (keys such as `provider`, `cluster`, `address`, `ca.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<LocalObjectReference>,
}

/// Decryption of encrypted manifests.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Decryption {
    /// Decryption provider. Only `sops` exists.
    pub provider: DecryptionProvider,

    /// Secret in the same namespace with the decryption keys: age identities in keys named
    /// `*.agekey`, armored OpenPGP private keys (without passphrase) in keys named `*.asc`.
    /// It is read with the Kustomization's identity, and a change of it starts a reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,

    /// ServiceAccount in the same namespace whose workload identity is used to reach a key
    /// management service. Not supported: cloud key services are not implemented, and a
    /// Kustomization that sets it is refused (Stalled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
}

/// Decryption provider.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(transform = without_description)]
pub enum DecryptionProvider {
    /// Mozilla SOPS.
    #[default]
    Sops,
}
