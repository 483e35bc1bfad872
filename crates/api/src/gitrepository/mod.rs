//! The GitRepository kind (`source.mooring.dev/v1`): a git repository to fetch and publish as an
//! artifact.

mod reference;
mod status;

use std::time::Duration;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use reference::{
    GitCheckout, GitRepositoryRef, GitRepositoryVerification, GitVerificationMode,
};
pub use status::{GitPerson, GitProvenance, GitRepositoryStatus, GitSigner};

use crate::common::{LocalObjectReference, is_false, without_description};
use crate::constants::{
    DEFAULT_GIT_TIMEOUT, DURATION_PATTERN, GIT_URL_PATTERN, SHORT_DURATION_PATTERN,
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
    /// and `password` for an encrypted key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,

    /// How to authenticate to the git server. Only `generic` (the default: credentials from
    /// `secretRef`) is implemented. `aws`, `azure` and `github` are accepted for compatibility
    /// with Flux manifests but refused: the object goes Stalled with reason
    /// `InvalidProviderConfiguration` and nothing is fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<GitProvider>,

    /// ServiceAccount for a workload identity. Accepted only when `provider` is `aws` or
    /// `azure`, which are refused (Stalled, `InvalidProviderConfiguration`), so it is never
    /// used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,

    /// How often the repository is checked for a new revision, for example `1m` or `1h30m`.
    /// A change of this object's spec is handled at once, whatever the interval.
    /// GitRepositories with the same URL, the same credentials (`secretRef` and
    /// `proxySecretRef` data) and the same ref asked for (the same branch, the same tag, or the
    /// tags for any `semver` range) share one ref listing: a check may use one made for
    /// another of them less than half this interval before.
    #[schemars(pattern(DURATION_PATTERN), length(max = 32), extend("x-kubernetes-validations" = [{
        "rule": "duration(self) >= duration('1s')",
        "message": "must be at least 1s",
    }]))]
    pub interval: String,

    /// Time limit of each git operation, such as listing the refs or fetching a commit (units
    /// ms, s and m). Defaults to `60s`. A longer value is cut to the source-controller's
    /// `--max-git-timeout` (default `5m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(SHORT_DURATION_PATTERN), extend("default" = "60s"))]
    pub timeout: Option<String>,

    /// The git reference to check out. When omitted, the branch `master` is checked out.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<GitRepositoryRef>,

    /// Verification of the OpenPGP or SSH signature of the checked-out commit or tag. A
    /// revision that is unsigned, signed by a key not in the Secret, by an expired or revoked
    /// key, or whose signature does not match its content is not served
    /// (`SourceVerified=False`); the last verified artifact stays. When the Secret changes, the
    /// served revision is verified again: it is withdrawn from `status.artifact` when its key
    /// is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<GitRepositoryVerification>,

    /// Secret in the same namespace with the proxy to use for every git operation of this
    /// object: `address` (required; `http://`, `https://` or `socks5://`), and optionally
    /// `username` and `password`. It takes precedence over the controller's environment. Only
    /// for `http://` and `https://` URLs: with an `ssh://` URL every git operation fails ("a
    /// proxy is not supported for ssh:// URLs").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret_ref: Option<LocalObjectReference>,

    /// Paths to leave out of the artifact, in `.gitignore` syntax. When set, it replaces the
    /// default exclusions, except for the version-control files (`.git/`, `.gitignore`,
    /// `.gitmodules`, `.gitattributes`), which stay excluded unless a `!` rule re-includes
    /// them. Its rules take precedence over those of `.sourceignore` files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<String>,

    /// Stops fetching new revisions while true. The last artifact stays available.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,

    /// Also check out the submodules. Not implemented yet: `true` is refused (Stalled).
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

/// Authentication provider of a GitRepository.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(transform = without_description)]
pub enum GitProvider {
    /// Credentials come from `secretRef`.
    #[default]
    Generic,
    /// AWS CodeCommit through a workload identity (refused).
    Aws,
    /// Azure DevOps through a workload identity (refused).
    Azure,
    /// A GitHub App (refused).
    Github,
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
