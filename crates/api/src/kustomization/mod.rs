//! The Kustomization kind (`kustomize.mooring.dev/v1`): a directory of a source artifact to
//! build with kustomize and keep applied to the cluster.

mod build;
mod refs;
mod status;

use std::time::Duration;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use build::{
    BuildMetadata, CommonMetadata, IgnoreRule, Image, Patch, PostBuild, Selector, SubstituteKind,
    SubstituteReference, SubstituteStrategy,
};
pub use refs::{
    CrossNamespaceSourceReference, CustomHealthCheck, Decryption, DecryptionProvider,
    DependencyReference, KubeConfigReference, NamespacedObjectKindReference, SourceKind,
};
pub use status::{KustomizationStatus, LOCAL_CLUSTER, ResourceInventory, ResourceRef, Snapshot};

use crate::common::{is_false, without_description};
use crate::constants::DURATION_PATTERN;
use crate::duration::{DurationError, parse_duration};

/// The desired state of a Kustomization.
// Every `printcolumn(...)` repeats `type_ = ...`, which clippy mistakes for a duplicate.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "kustomize.mooring.dev",
    version = "v1",
    kind = "Kustomization",
    plural = "kustomizations",
    namespaced,
    status = "KustomizationStatus",
    shortname = "ks",
    category = "mooring",
    derive = "PartialEq",
    doc = "Kustomization builds a directory of a source artifact with kustomize and keeps the \
           result applied to the cluster with server-side apply, pruning what was removed and \
           waiting for what was applied to become healthy.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].message"#
    ),
    printcolumn(
        name = "Revision",
        type_ = "string",
        json_path = ".status.lastAppliedRevision"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct KustomizationSpec {
    /// The source whose artifact holds the manifests.
    pub source_ref: CrossNamespaceSourceReference,

    /// Directory inside the artifact that holds a `kustomization.yaml`, or plain manifests for
    /// which one is generated. Defaults to the artifact's root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,

    /// How often the Kustomization is reconciled when nothing else asks for it, for example
    /// `10m`: substitution values are read again and the cluster is compared with the manifests.
    /// A new source revision, a change of this object, and a change of any object it applied are
    /// handled at once.
    #[schemars(pattern(DURATION_PATTERN), length(max = 32), extend("x-kubernetes-validations" = [{
        "rule": "duration(self) >= duration('1s')",
        "message": "must be at least 1s",
    }]))]
    pub interval: String,

    /// The longest wait before retrying a failed reconciliation. The first retry comes after
    /// 1s and each consecutive failure doubles the wait, up to this value or 5m, whichever is
    /// shorter (each wait moved by up to 5% either way). Defaults to `interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN), length(max = 32), extend("x-kubernetes-validations" = [{
        "rule": "duration(self) >= duration('1s')",
        "message": "must be at least 1s",
    }]))]
    pub retry_interval: Option<String>,

    /// Time limit of the slow steps of a reconciliation: the kustomize build, waiting for an
    /// applied CustomResourceDefinition to be established, with `force` waiting for a deleted
    /// object to be gone before it is created again, and the health checks (counted from the
    /// last write, or from when health was first found pending). Defaults to `interval`.
    /// (Flux documents this default, while its code uses `interval` minus 30s with a floor of
    /// 30s; Mooring follows the documentation.) It does not bound the wait of
    /// `deletionPolicy: WaitForTermination`, which is a fixed 60s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub timeout: Option<String>,

    /// Delete the objects that this Kustomization applied before and that are no longer in the
    /// manifests.
    pub prune: bool,

    /// What happens to the applied objects when this Kustomization is deleted: `MirrorPrune`
    /// (default; delete them if `prune` is true), `Delete` (always delete them),
    /// `WaitForTermination` (delete them, then wait up to 60s, whatever `timeout` says, until
    /// they are gone) or `Orphan` (keep them). When some are still there after the 60s, a
    /// `PruneFailed` Warning event names them and the deletion is tried again later, with the
    /// backoff of a failed reconciliation; the finalizer stays meanwhile, unless the
    /// Kustomization's namespace is being deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "MirrorPrune"))]
    pub deletion_policy: Option<DeletionPolicy>,

    /// Wait for every applied object to become ready before reporting Ready. The entries of
    /// `healthChecks` that are not among the applied objects are checked too.
    #[serde(default, skip_serializing_if = "is_false")]
    pub wait: bool,

    /// Objects to wait for, after applying, before reporting Ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_checks: Vec<NamespacedObjectKindReference>,

    /// CEL expressions that tell when objects of a custom kind are ready, in progress or failed.
    /// Not implemented: a Kustomization that sets it is refused (Stalled).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_check_exprs: Vec<CustomHealthCheck>,

    /// Kustomizations that must be ready before this one is applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<DependencyReference>,

    /// Namespace set on every namespaced object of the build (kustomize `namespace`). The
    /// namespace must exist or be part of the manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub target_namespace: Option<String>,

    /// Prefix added to the names of all objects (kustomize `namePrefix`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub name_prefix: Option<String>,

    /// Suffix added to the names of all objects (kustomize `nameSuffix`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub name_suffix: Option<String>,

    /// Labels and annotations set on every object after the build, overriding the values the
    /// manifests give.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_metadata: Option<CommonMetadata>,

    /// Strategic merge or JSON 6902 patches added to the kustomization.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<Patch>,

    /// Image name, tag and digest overrides added to the kustomization.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Image>,

    /// Kustomize components to include, as paths relative to `path`. URLs and absolute paths
    /// are rejected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<String>,

    /// Leave out the entries of `components` that do not exist instead of failing.
    #[serde(default, skip_serializing_if = "is_false")]
    pub ignore_missing_components: bool,

    /// Kustomize build metadata to add to the objects as annotations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build_metadata: Vec<BuildMetadata>,

    /// Variable substitution applied to the built manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_build: Option<PostBuild>,

    /// Decryption of SOPS-encrypted manifests and of the SOPS-encrypted files that
    /// kustomize secretGenerators read, with the age (`*.agekey`) and OpenPGP (`*.asc`)
    /// private keys of `secretRef`. The MAC of every encrypted file is verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decryption: Option<Decryption>,

    /// ServiceAccount, in the same namespace, to impersonate for every request made for this
    /// Kustomization: applying, pruning, checking health, reading `substituteFrom` and
    /// `kubeConfig` Secrets, and deleting on removal. When omitted, the controller's
    /// `--default-service-account` is impersonated, or, without one, the controller's own
    /// identity is used. With `kubeConfig`, it is impersonated on the remote cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,

    /// Kubeconfig of a remote cluster to apply to instead of this one: objects are applied,
    /// pruned, watched for drift and checked for health there. Only `secretRef` is
    /// implemented; `configMapRef` is refused (Stalled), and a Kustomization deleted while it
    /// names `configMapRef` deletes nothing anywhere: a `PruneFailed` Warning names the field,
    /// and the finalizer stays until the spec names a `secretRef` again, or `suspend: true` or
    /// `deletionPolicy: Orphan` leaves the objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_config: Option<KubeConfigReference>,

    /// Delete and recreate objects whose change touches an immutable field.
    #[serde(default, skip_serializing_if = "is_false")]
    #[schemars(extend("default" = false))]
    pub force: bool,

    /// Stops applying new revisions and correcting drift while true. A suspended Kustomization
    /// deletes nothing when it is deleted.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,

    /// Fields to leave alone when correcting drift. Not implemented: a Kustomization that sets
    /// it is refused (Stalled).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<IgnoreRule>,
}

/// What happens to the applied objects when a Kustomization is deleted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = without_description)]
pub enum DeletionPolicy {
    /// Delete them if `prune` is true.
    #[default]
    MirrorPrune,
    /// Always delete them.
    Delete,
    /// Delete them and wait up to 60s until they are gone.
    WaitForTermination,
    /// Keep them.
    Orphan,
}

impl KustomizationSpec {
    /// The reconcile interval.
    pub fn interval(&self) -> Result<Duration, DurationError> {
        parse_duration(&self.interval)
    }

    /// The delay before retrying a failed reconciliation: `retryInterval`, else `interval`.
    pub fn retry_interval(&self) -> Result<Duration, DurationError> {
        parse_duration(self.retry_interval.as_deref().unwrap_or(&self.interval))
    }

    /// The time limit of one reconciliation's operations: `timeout`, else `interval`.
    pub fn timeout(&self) -> Result<Duration, DurationError> {
        parse_duration(self.timeout.as_deref().unwrap_or(&self.interval))
    }

    /// The deletion policy, `MirrorPrune` when not set.
    pub fn deletion_policy(&self) -> DeletionPolicy {
        self.deletion_policy.unwrap_or_default()
    }

    /// Whether the applied objects are deleted together with this Kustomization.
    pub fn deletes_on_removal(&self) -> bool {
        match self.deletion_policy() {
            DeletionPolicy::MirrorPrune => self.prune,
            DeletionPolicy::Delete | DeletionPolicy::WaitForTermination => true,
            DeletionPolicy::Orphan => false,
        }
    }
}
