//! The GitRepository kind (`source.mooring.dev/v1`): a git repository to fetch and publish as an
//! artifact.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Artifact, LocalObjectReference, is_false, without_description};
use crate::constants::{
    DEFAULT_GIT_BRANCH, DEFAULT_GIT_TIMEOUT, DURATION_PATTERN, GIT_URL_PATTERN,
    SHORT_DURATION_PATTERN,
};
use crate::duration::{DurationError, parse_duration};

/// The desired state of a GitRepository.
// Every `printcolumn(...)` repeats `type_ = ...`, which clippy mistakes for a duplicate.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "source.mooring.dev",
    version = "v1",
    kind = "GitRepository",
    plural = "gitrepositories",
    namespaced,
    status = "GitRepositoryStatus",
    shortname = "gitrepo",
    category = "mooring",
    derive = "PartialEq",
    doc = "GitRepository fetches a git repository at a branch, tag, semver range, ref or commit, \
           and publishes its content as a tar.gz artifact that Kustomizations consume.",
    printcolumn(name = "URL", type_ = "string", json_path = ".spec.url"),
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
        json_path = ".status.artifact.revision"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.serviceAccountName) || (has(self.provider) && (self.provider == 'aws' || self.provider == 'azure'))",
    "message": "spec.serviceAccountName can only be set when spec.provider is 'aws' or 'azure'",
}]))]
pub struct GitRepositorySpec {
    /// Address of the repository: `http://`, `https://` or `ssh://` (the scp-like form
    /// `user@host:path` is not accepted; write `ssh://user@host/path`).
    #[schemars(pattern(GIT_URL_PATTERN))]
    pub url: String,

    /// Secret in the same namespace holding the credentials. For HTTPS: `username` and
    /// `password`, or `bearerToken`; optionally `ca.crt`, and `tls.crt` with `tls.key` for a
    /// client certificate. For SSH: `identity` (private key) and `known_hosts`, both required,
    /// and `password` for an encrypted key. For the `github` provider: the GitHub App keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,

    /// How to authenticate to the git server: `generic` (default; credentials from
    /// `secretRef`), `aws` (CodeCommit through the workload identity), `azure` (Azure DevOps
    /// through the workload identity) or `github` (a GitHub App whose keys are in `secretRef`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<GitProvider>,

    /// ServiceAccount in the same namespace whose workload identity is used to authenticate.
    /// Only allowed when `provider` is `aws` or `azure`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,

    /// How often the repository is checked for a new revision, for example `1m` or `1h30m`.
    /// A change of this object's spec is handled at once, whatever the interval.
    #[schemars(pattern(DURATION_PATTERN))]
    pub interval: String,

    /// Time limit of the git operations of one reconciliation (units ms, s and m). Defaults to
    /// `60s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(SHORT_DURATION_PATTERN), extend("default" = "60s"))]
    pub timeout: Option<String>,

    /// The git reference to check out. When omitted, the branch `master` is checked out.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<GitRepositoryRef>,

    /// Verification of the OpenPGP or SSH signature of the checked-out commit or tag. When
    /// omitted, signatures are not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<GitRepositoryVerification>,

    /// Secret in the same namespace with the proxy to use for every git operation of this
    /// object: `address` (required; `http://`, `https://` or `socks5://`), and optionally
    /// `username` and `password`. It takes precedence over the controller's environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret_ref: Option<LocalObjectReference>,

    /// Paths to leave out of the artifact, in `.gitignore` syntax. When set, it replaces the
    /// default exclusions (except for version-control files, which are always left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<String>,

    /// Stops fetching new revisions while true. The last artifact stays available.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,

    /// Also check out the submodules, with the same credentials as this repository.
    #[serde(default, skip_serializing_if = "is_false")]
    pub recurse_submodules: bool,

    /// Artifacts of other GitRepositories in the same namespace to copy into this artifact.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<GitRepositoryInclude>,

    /// Directories to check out instead of the whole tree (a leading `./` is ignored). Each one
    /// must exist in the checked-out revision; only these directories end up in the artifact.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sparse_checkout: Vec<String>,
}

/// Which git reference to check out.
///
/// At most one of `branch`, `tag`, `semver` and `name` may be set, and `commit` may only be
/// combined with `branch`. (Flux documents the precedence commit > name > semver > tag > branch,
/// while its code lets a tag win over a semver range; rejecting such combinations removes the
/// ambiguity.)
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "[has(self.branch), has(self.tag), has(self.semver), has(self.name)].filter(x, x).size() <= 1",
        "message": "only one of spec.ref.branch, tag, semver, name may be set",
    },
    {
        "rule": "!has(self.commit) || !(has(self.tag) || has(self.semver) || has(self.name))",
        "message": "spec.ref.commit may only be combined with spec.ref.branch",
    },
]))]
pub struct GitRepositoryRef {
    /// Branch to check out. Used when no other field is set; defaults to `master`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,

    /// Tag to check out. Annotated tags are resolved to the commit they point to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,

    /// Semantic-version range (for example `>=1.0.0 <2.0.0` or `~1.2`); the newest tag that
    /// matches it is checked out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<String>,

    /// Full git reference to check out, for example `refs/heads/main`, `refs/tags/v1.0.0` or
    /// `refs/pull/420/head`. The revision then names the full reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,

    /// Commit SHA to check out. When `branch` is also set, only that branch is fetched to find
    /// the commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// The git reference a GitRepository resolves to, after defaults and precedence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GitCheckout {
    /// An exact commit, optionally looked up on one branch.
    Commit {
        /// The commit SHA.
        commit: String,
        /// The branch to fetch the commit from, if given.
        branch: Option<String>,
    },
    /// A full reference such as `refs/heads/main`.
    Name(String),
    /// The newest tag matching a semver range.
    Semver(String),
    /// A tag.
    Tag(String),
    /// The tip of a branch.
    Branch(String),
}

impl GitRepositoryRef {
    /// The reference to check out, following the documented precedence
    /// commit > name > semver > tag > branch, with branch `master` as the default.
    pub fn checkout(&self) -> GitCheckout {
        if let Some(commit) = &self.commit {
            return GitCheckout::Commit {
                commit: commit.clone(),
                branch: self.branch.clone(),
            };
        }
        if let Some(name) = &self.name {
            return GitCheckout::Name(name.clone());
        }
        if let Some(range) = &self.semver {
            return GitCheckout::Semver(range.clone());
        }
        if let Some(tag) = &self.tag {
            return GitCheckout::Tag(tag.clone());
        }
        let branch = self.branch.as_deref().unwrap_or(DEFAULT_GIT_BRANCH);
        GitCheckout::Branch(branch.to_owned())
    }
}

/// Authentication provider of a GitRepository.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(transform = without_description)]
pub enum GitProvider {
    /// Credentials come from `secretRef`.
    #[default]
    Generic,
    /// AWS CodeCommit through the workload identity.
    Aws,
    /// Azure DevOps through the workload identity.
    Azure,
    /// A GitHub App whose keys are in `secretRef`.
    Github,
}

/// Signature verification of a GitRepository.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitRepositoryVerification {
    /// What to verify: `HEAD` (default; the checked-out commit), `Tag` (the tag object of
    /// `ref.tag`, `ref.semver`, or a `ref.name` that is a tag) or `TagAndHEAD` (both). `head`
    /// is accepted as a synonym of `HEAD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "HEAD"))]
    pub mode: Option<GitVerificationMode>,

    /// Secret in the same namespace with the trusted public keys. Keys ending in `.asc` hold
    /// OpenPGP keyrings, keys ending in `.sshpub` hold SSH keys in `authorized_keys` format; any
    /// other key is read as an OpenPGP keyring.
    pub secret_ref: LocalObjectReference,
}

/// What a GitRepository verifies the signature of.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[schemars(transform = without_description)]
pub enum GitVerificationMode {
    /// Lower-case synonym of `HEAD`, kept for compatibility.
    #[serde(rename = "head")]
    LegacyHead,
    /// The checked-out commit.
    #[serde(rename = "HEAD")]
    Head,
    /// The tag object that was checked out.
    Tag,
    /// Both the tag object and the commit it points to.
    TagAndHEAD,
}

impl GitVerificationMode {
    /// Whether the checked-out commit's signature is verified.
    pub fn verifies_head(self) -> bool {
        !matches!(self, Self::Tag)
    }

    /// Whether the tag object's signature is verified.
    pub fn verifies_tag(self) -> bool {
        matches!(self, Self::Tag | Self::TagAndHEAD)
    }
}

/// Another GitRepository whose artifact is copied into this one.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitRepositoryInclude {
    /// The GitRepository, in the same namespace, to include.
    pub repository: LocalObjectReference,

    /// Directory of the included artifact to copy. Defaults to its root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_path: Option<String>,

    /// Directory of this artifact to copy into. Defaults to the included repository's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_path: Option<String>,
}

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

impl GitRepositorySpec {
    /// The polling interval.
    pub fn interval(&self) -> Result<Duration, DurationError> {
        parse_duration(&self.interval)
    }

    /// The time limit of the git operations, `60s` when not set.
    pub fn timeout(&self) -> Result<Duration, DurationError> {
        parse_duration(self.timeout.as_deref().unwrap_or(DEFAULT_GIT_TIMEOUT))
    }

    /// The reference to check out, with defaults and precedence applied.
    pub fn checkout(&self) -> GitCheckout {
        self.reference.clone().unwrap_or_default().checkout()
    }

    /// The authentication provider, `generic` when not set.
    pub fn provider(&self) -> GitProvider {
        self.provider.unwrap_or_default()
    }
}
