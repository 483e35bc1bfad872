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
    /// whether work is in progress or blocked; `ArtifactInStorage`, `FetchFailed`,
    /// `IncludeUnavailable`, `StorageOperationFailed` and `SourceVerified` give details.
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

    /// Who made, tagged and signed the revision of the current artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<GitProvenance>,

    /// The verification mode used for the current artifact, when signatures were verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_verification_mode: Option<GitVerificationMode>,

    /// The last value of the `reconcile.mooring.dev/requestedAt` annotation that was handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

/// Who made, tagged and signed a revision.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitProvenance {
    /// The revision this describes, as in `artifact.revision`.
    pub revision: String,

    /// The commit's author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<GitPerson>,

    /// The commit's committer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committer: Option<GitPerson>,

    /// The tagger of the verified tag (the `Tag` and `TagAndHEAD` modes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tagger: Option<GitPerson>,

    /// The key whose signature was verified: the commit's, else the tag's. Absent without
    /// `spec.verify`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<GitSigner>,
}

/// A person as git records them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitPerson {
    /// The name.
    pub name: String,
    /// The email address.
    pub email: String,
    /// When, RFC 3339 in UTC.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub time: String,
}

/// A key that made a verified signature.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitSigner {
    /// `openpgp` or `ssh`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The OpenPGP fingerprint of the (sub)key, or the SSH key's `SHA256:` fingerprint.
    pub fingerprint: String,
    /// The OpenPGP user id, or the SSH principals (or key comment).
    pub identity: String,
}
