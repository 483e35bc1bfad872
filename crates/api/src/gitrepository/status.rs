//! The observed state of a GitRepository.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{GitRepositoryInclude, GitVerificationMode};
use crate::common::{Artifact, is_false};

/// The observed state of a GitRepository.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": -1}))]
pub struct GitRepositoryStatus {
    /// The last generation of the spec that was fully handled (ready, or stalled on an error
    /// that needs a spec change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Current state of the object. `Ready` summarizes it; `Reconciling` and `Stalled` tell
    /// whether work is in progress or blocked; `ArtifactInStorage`, `ArtifactOutdated`,
    /// `FetchFailed`, `IncludeUnavailable`, `StorageOperationFailed` and `SourceVerified` give
    /// details.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// The artifact last produced from the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,

    /// Artifacts of the included repositories used for the current artifact, in the order of
    /// `spec.include`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included_artifacts: Vec<Artifact>,

    /// The `spec.ignore` used for the current artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_ignore: Option<String>,

    /// The `spec.recurseSubmodules` used for the current artifact.
    #[serde(default, skip_serializing_if = "is_false")]
    pub observed_recurse_submodules: bool,

    /// The `spec.include` used for the current artifact.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observed_include: Vec<GitRepositoryInclude>,

    /// The `spec.sparseCheckout` used for the current artifact.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observed_sparse_checkout: Vec<String>,

    /// The verification mode used for the current artifact, when signatures were verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_verification_mode: Option<GitVerificationMode>,

    /// The last value of the `reconcile.mooring.dev/requestedAt` annotation that was handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}
