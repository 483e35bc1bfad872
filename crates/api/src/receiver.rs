//! The Receiver kind (`notification.mooring.dev/v1`): a webhook address that makes
//! GitRepositories fetch at once when a git server announces a push.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{LocalObjectReference, is_false, without_description};
use crate::constants::DURATION_PATTERN;
use crate::duration::{DurationError, parse_duration};

/// The interval of a Receiver that sets none.
pub const DEFAULT_RECEIVER_INTERVAL: &str = "10m";
/// The key of the Receiver's Secret that holds the token.
pub const RECEIVER_TOKEN_KEY: &str = "token";
/// The prefix of every webhook path.
pub const WEBHOOK_PATH_PREFIX: &str = "/hook/";

/// The desired state of a Receiver.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "notification.mooring.dev",
    version = "v1",
    kind = "Receiver",
    plural = "receivers",
    namespaced,
    status = "ReceiverStatus",
    category = "mooring",
    derive = "PartialEq",
    doc = "Receiver is a webhook address served by the source-controller: a call that passes \
           the type's authentication makes the GitRepositories it names fetch at once.",
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
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ReceiverSpec {
    /// Who calls the webhook, which decides how a call is authenticated: `generic` (the path
    /// alone), `generic-hmac` (`X-Signature: sha256=<hex>` or `sha512=<hex>`, an HMAC of the
    /// body with the token), `github` (`X-Hub-Signature-256`), `gitlab` (`X-Gitlab-Token`),
    /// `gitea` (`X-Gitea-Signature`), `forgejo` (`X-Forgejo-Signature`) or `bitbucket`
    /// (Bitbucket Server's `X-Hub-Signature`). The other values Flux accepts (`harbor`,
    /// `dockerhub`, `quay`, `gcr`, `nexus`, `acr`, `cdevents`) are refused (Stalled).
    #[serde(rename = "type")]
    pub type_: ReceiverType,

    /// How often the Receiver is checked again (its Secret read and its path computed), for
    /// example `10m` (the default). At least `1s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN), length(max = 32), extend("x-kubernetes-validations" = [{
        "rule": "duration(self) >= duration('1s')",
        "message": "must be at least 1s",
    }]))]
    pub interval: Option<String>,

    /// The events that trigger a fetch, as the caller names them (`push`, `Push Hook`,
    /// `repo:refs_changed`), compared without regard to case. Empty: every event. GitHub's
    /// `ping` is answered and never triggers anything. The calls of `generic` and
    /// `generic-hmac` name no event: with these types, a non-empty `events` is refused
    /// (Stalled).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,

    /// The objects to fetch when a call is accepted: GitRepositories in the Receiver's
    /// namespace, by name, or every one whose labels match `matchLabels` (with `name: '*'`).
    pub resources: Vec<ReceiverResource>,

    /// A CEL expression that filters the resources. Not implemented: setting it is refused
    /// (Stalled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_filter: Option<String>,

    /// Secret in the same namespace whose key `token` authenticates the calls and is part of
    /// the webhook path.
    pub secret_ref: LocalObjectReference,

    /// Stops accepting calls while true: an authenticated call is answered 503 and fetches
    /// nothing.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,
}

/// How the calls of a Receiver are authenticated.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(transform = without_description)]
pub enum ReceiverType {
    /// The path alone.
    Generic,
    /// `X-Signature: <sha256|sha512>=<hex HMAC of the body>`.
    GenericHmac,
    /// GitHub: `X-Hub-Signature-256`, event in `X-GitHub-Event`.
    Github,
    /// GitLab: `X-Gitlab-Token`, event in `X-Gitlab-Event`.
    Gitlab,
    /// Gitea: `X-Gitea-Signature`, event in `X-Gitea-Event`.
    Gitea,
    /// Forgejo: `X-Forgejo-Signature`, event in `X-Forgejo-Event`.
    Forgejo,
    /// Bitbucket Server: `X-Hub-Signature`, event in `X-Event-Key`.
    Bitbucket,
    /// Harbor (refused).
    Harbor,
    /// Docker Hub (refused).
    Dockerhub,
    /// Quay (refused).
    Quay,
    /// Google Container Registry (refused).
    Gcr,
    /// Nexus (refused).
    Nexus,
    /// Azure Container Registry (refused).
    Acr,
    /// CDEvents (refused).
    Cdevents,
}

impl ReceiverType {
    /// The type as written in `spec.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiverType::Generic => "generic",
            ReceiverType::GenericHmac => "generic-hmac",
            ReceiverType::Github => "github",
            ReceiverType::Gitlab => "gitlab",
            ReceiverType::Gitea => "gitea",
            ReceiverType::Forgejo => "forgejo",
            ReceiverType::Bitbucket => "bitbucket",
            ReceiverType::Harbor => "harbor",
            ReceiverType::Dockerhub => "dockerhub",
            ReceiverType::Quay => "quay",
            ReceiverType::Gcr => "gcr",
            ReceiverType::Nexus => "nexus",
            ReceiverType::Acr => "acr",
            ReceiverType::Cdevents => "cdevents",
        }
    }

    /// Whether the source-controller serves this type.
    pub fn is_implemented(self) -> bool {
        matches!(
            self,
            ReceiverType::Generic
                | ReceiverType::GenericHmac
                | ReceiverType::Github
                | ReceiverType::Gitlab
                | ReceiverType::Gitea
                | ReceiverType::Forgejo
                | ReceiverType::Bitbucket
        )
    }
}

/// An object, or a set of objects by label, that a Receiver triggers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiverResource {
    /// API version of the referent; `source.mooring.dev/v1` when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,

    /// Kind of the referent. Only `GitRepository` is implemented; the other kinds Flux
    /// accepts are refused (Stalled).
    pub kind: String,

    /// Name of the referent, or `*` with `matchLabels`.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// Namespace of the referent. Only the Receiver's own namespace is accepted: a Receiver
    /// cannot make another namespace's objects fetch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,

    /// Labels the referents must all have; requires `name: '*'`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
}

/// The observed state of a Receiver.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiverStatus {
    /// The last generation of the spec that was handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready` tells whether the webhook path is served.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// The path the webhook is served at, relative to the receiver address:
    /// `/hook/<sha256 hex of token + name + namespace>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_path: Option<String>,

    /// The value of the `reconcile.mooring.dev/requestedAt` annotation last handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

impl ReceiverSpec {
    /// How often the Receiver is checked again, 10 minutes when not set.
    pub fn interval(&self) -> Result<Duration, DurationError> {
        parse_duration(
            self.interval
                .as_deref()
                .unwrap_or(DEFAULT_RECEIVER_INTERVAL),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_written_as_flux_writes_them() {
        let t: ReceiverType = serde_json::from_str("\"generic-hmac\"").expect("type");
        assert_eq!(t, ReceiverType::GenericHmac);
        assert_eq!(t.as_str(), "generic-hmac");
        assert!(!ReceiverType::Harbor.is_implemented());
    }
}
