//! Which git reference a GitRepository checks out, and how its signature is verified.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{LocalObjectReference, without_description};
use crate::constants::DEFAULT_GIT_BRANCH;

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
    /// `refs/pull/420/head`. The revision then names the full reference. A short name is not
    /// guessed: when a branch and a tag share a name, `branch` takes the branch, `tag` the tag,
    /// and `name` must say `refs/heads/<name>` or `refs/tags/<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,

    /// Commit SHA (40 hex digits) to check out. The commit is fetched by its SHA, which the
    /// server must allow. When `branch` is also set, the branch is only listed, to check that
    /// it exists and to name the revision (`<branch>@sha1:<commit>`); the commit is not looked
    /// for on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// The git reference a GitRepository resolves to, after defaults and precedence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GitCheckout {
    /// An exact commit, fetched by its SHA.
    Commit {
        /// The commit SHA.
        commit: String,
        /// A branch that must exist and names the revision, if given; the commit is not
        /// fetched from it.
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

    /// Secret in the same namespace with the trusted public keys; every entry is read,
    /// whatever its name. An entry holding `-----BEGIN PGP PUBLIC KEY BLOCK-----` is one or
    /// more armored OpenPGP keys; any other entry holds SSH signing keys, one per line, as
    /// public keys (`ssh-ed25519 AAAA... comment`) or `allowed_signers` lines (`principals
    /// [namespaces="git"] [valid-after=...] [valid-before=...] ssh-ed25519 AAAA...`).
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
