//! GitRepository and Kustomization as the commands see them: fetched by name, and summed up in
//! the columns `get` shows.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::Api;
use kube::{Resource, ResourceExt};
use mooring_api::conditions::{find_condition, types};
use mooring_api::{GitRepository, Kustomization};
use serde::Serialize;

use crate::args::TargetKind;
use crate::client::Cluster;
use crate::error::{Error, is_not_found};
use crate::output;

/// The kind names printed for each target kind.
pub fn kind_name(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Source => "GitRepository",
        TargetKind::Kustomization => "Kustomization",
    }
}

/// Reads one object of kind `K` in `namespace`; a missing one is [`Error::NotFound`].
pub async fn fetch<K>(cluster: &Cluster, namespace: &str, name: &str) -> Result<K, Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let kind = K::kind(&()).to_string();
    let api: Api<K> = Api::namespaced(cluster.client.clone(), namespace);
    api.get(name).await.map_err(|e| {
        if is_not_found(&e) {
            Error::NotFound {
                kind,
                namespace: namespace.to_string(),
                name: name.to_string(),
            }
        } else {
            Error::api(format!("reading {kind} {namespace}/{name}"))(e)
        }
    })
}

/// The `Ready` condition as (status, message): `Unknown` and empty when there is none.
pub fn ready_of(conditions: &[Condition]) -> (String, String) {
    find_condition(conditions, types::READY).map_or_else(
        || ("Unknown".to_string(), String::new()),
        |c| (c.status.clone(), c.message.clone()),
    )
}

/// One line of `get`: what an object is, and where it stands.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// `GitRepository` or `Kustomization`.
    pub kind: &'static str,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Status of the `Ready` condition: `True`, `False` or `Unknown`.
    pub ready: String,
    /// Artifact revision (GitRepository) or last applied revision (Kustomization).
    pub revision: Option<String>,
    /// Message of the `Ready` condition.
    pub message: String,
    /// `spec.suspend`.
    pub suspended: bool,
    /// Creation time, RFC 3339.
    pub created_at: Option<String>,
    #[serde(skip)]
    created: Option<Timestamp>,
}

impl Summary {
    /// The summary of a GitRepository.
    pub fn of_source(repo: &GitRepository) -> Self {
        let status = repo.status.clone().unwrap_or_default();
        let (ready, message) = ready_of(&status.conditions);
        Self::new(
            "GitRepository",
            repo,
            ready,
            message,
            status.artifact.map(|a| a.revision),
            repo.spec.suspend,
        )
    }

    /// The summary of a Kustomization.
    pub fn of_kustomization(ks: &Kustomization) -> Self {
        let status = ks.status.clone().unwrap_or_default();
        let (ready, message) = ready_of(&status.conditions);
        Self::new(
            "Kustomization",
            ks,
            ready,
            message,
            status.last_applied_revision,
            ks.spec.suspend,
        )
    }

    fn new<K: ResourceExt>(
        kind: &'static str,
        object: &K,
        ready: String,
        message: String,
        revision: Option<String>,
        suspended: bool,
    ) -> Self {
        let created = object.creation_timestamp().map(|t| t.0);
        Self {
            kind,
            namespace: object.namespace().unwrap_or_default(),
            name: object.name_any(),
            ready,
            revision,
            message,
            suspended,
            created_at: created.map(output::time),
            created,
        }
    }

    /// The table cells: [NAMESPACE,] NAME, READY, REVISION, SUSPENDED, AGE, MESSAGE.
    pub fn cells(&self, with_namespace: bool, name_prefix: &str, now: Timestamp) -> Vec<String> {
        let mut cells = Vec::with_capacity(7);
        if with_namespace {
            cells.push(self.namespace.clone());
        }
        cells.push(format!("{name_prefix}{}", self.name));
        cells.push(self.ready.clone());
        cells.push(self.revision.clone().unwrap_or_else(|| "-".to_string()));
        cells.push(self.suspended.to_string());
        cells.push(
            self.created
                .map_or_else(|| "-".to_string(), |t| output::age(t, now)),
        );
        cells.push(one_line(&self.message));
        cells
    }
}

/// The column titles matching [`Summary::cells`].
pub fn summary_header(with_namespace: bool) -> Vec<&'static str> {
    let mut header = Vec::with_capacity(7);
    if with_namespace {
        header.push("NAMESPACE");
    }
    header.extend(["NAME", "READY", "REVISION", "SUSPENDED", "AGE", "MESSAGE"]);
    header
}

/// A message on one line (conditions may hold several).
pub fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}
