//! `mooring trace KIND NAME`: which Kustomization applied an object (from the ownership labels
//! the kustomize-controller stamps), which Kustomization applied that one in turn, and for each
//! its GitRepository: URL, revision, commit author and time, signature, and when the object was
//! last written.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DynamicObject};
use kube::discovery::{ApiResource, Discovery, Scope};
use mooring_api::conditions::{find_condition, types};
use mooring_api::constants::{
    KUSTOMIZE_FIELD_MANAGER, KUSTOMIZE_NAME_LABEL, KUSTOMIZE_NAMESPACE_LABEL,
};
use mooring_api::{GitRepository, Kustomization};
use mooring_kustomize_controller::health;
use mooring_kustomize_controller::inventory::ObjectId;
use serde::Serialize;

use crate::args::{Global, TraceArgs};
use crate::client::{Cluster, connect};
use crate::error::{Error, is_not_found};
use crate::kinds::{fetch, one_line, ready_of};
use crate::output::{print_structured, time, write_stdout};

/// How many Kustomizations up the chain are followed (a label cycle stops there too).
const MAX_DEPTH: usize = 10;

/// What `trace` found.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trace {
    /// The traced object.
    pub object: Traced,
    /// The Kustomizations that applied it, nearest first: the one that applied the object, then
    /// the one that applied that Kustomization, and so on.
    pub applied_by: Vec<Link>,
}

/// The traced object.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Traced {
    /// Kind.
    pub kind: String,
    /// Namespace; empty for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// kstatus health of the live object.
    pub health: String,
    /// Why, when not Current.
    pub health_message: String,
    /// When the kustomize-controller last wrote it (its managed-fields entry), when recorded.
    pub applied_at: Option<String>,
}

/// One Kustomization of the chain and its source.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    /// Namespace of the Kustomization.
    pub namespace: String,
    /// Name of the Kustomization.
    pub name: String,
    /// `spec.path`.
    pub path: Option<String>,
    /// Status of its `Ready` condition.
    pub ready: String,
    /// Message of its `Ready` condition.
    pub message: String,
    /// `status.lastAppliedRevision`.
    pub last_applied_revision: Option<String>,
    /// Whether its `status.inventory` lists the object below it in the chain.
    pub in_inventory: bool,
    /// Its source.
    pub source: Option<Source>,
}

/// A GitRepository and what its artifact records.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `spec.url`.
    pub url: String,
    /// The artifact's revision.
    pub revision: Option<String>,
    /// `git.author` of the artifact's commit.
    pub author: Option<String>,
    /// `git.commitTime` of the artifact's commit.
    pub commit_time: Option<String>,
    /// `git.subject` of the artifact's commit.
    pub subject: Option<String>,
    /// The signature check, from the `SourceVerified` condition and any signer recorded in the
    /// artifact's metadata; `None` when nothing was recorded.
    pub signature: Option<String>,
}

/// Runs `trace`.
pub async fn run(global: &Global, args: TraceArgs) -> Result<(), Error> {
    let cluster = connect(global).await?;
    let (resource, scope) = resolve_kind(&cluster, &args.kind).await?;
    let namespace = match scope {
        Scope::Namespaced => cluster.namespace.clone(),
        Scope::Cluster => String::new(),
    };
    let api: Api<DynamicObject> = match scope {
        Scope::Namespaced => Api::namespaced_with(cluster.client.clone(), &namespace, &resource),
        Scope::Cluster => Api::all_with(cluster.client.clone(), &resource),
    };
    let object = api.get(&args.name).await.map_err(|e| {
        if is_not_found(&e) {
            Error::NotFound {
                kind: resource.kind.clone(),
                namespace: namespace.clone(),
                name: args.name.clone(),
            }
        } else {
            Error::api(format!(
                "reading {} {namespace}/{}",
                resource.kind, args.name
            ))(e)
        }
    })?;
    let value = serde_json::to_value(&object).map_err(|e| Error::Output(e.to_string()))?;
    let health = health::compute(&value);
    let traced = Traced {
        kind: resource.kind.clone(),
        namespace: namespace.clone(),
        name: args.name.clone(),
        health: health.status.to_string(),
        health_message: if health.is_current() {
            String::new()
        } else {
            one_line(&health.message)
        },
        applied_at: applied_at(&object.metadata),
    };
    let Some(mut owner) = owner_of(&object.metadata) else {
        return Err(Error::Failed(format!(
            "{} is not managed by a Kustomization: it has no {KUSTOMIZE_NAME_LABEL} and \
             {KUSTOMIZE_NAMESPACE_LABEL} labels",
            subject(&traced.kind, &namespace, &args.name)
        )));
    };
    let mut below = ObjectId {
        namespace,
        name: args.name.clone(),
        group: resource.group.clone(),
        kind: resource.kind.clone(),
    };
    let mut applied_by: Vec<Link> = Vec::new();
    while applied_by.len() < MAX_DEPTH {
        if applied_by.iter().any(|l| {
            (l.namespace.as_str(), l.name.as_str()) == (owner.0.as_str(), owner.1.as_str())
        }) {
            break;
        }
        let ks: Kustomization = fetch(&cluster, &owner.0, &owner.1).await?;
        applied_by.push(link(&cluster, &ks, &below).await?);
        below = ObjectId {
            namespace: owner.0.clone(),
            name: owner.1.clone(),
            group: mooring_api::constants::KUSTOMIZE_GROUP.to_string(),
            kind: "Kustomization".to_string(),
        };
        match owner_of(&ks.metadata) {
            Some(next) => owner = next,
            None => break,
        }
    }
    let trace = Trace {
        object: traced,
        applied_by,
    };
    match global.output {
        Some(format) => print_structured(format, &trace),
        None => write_stdout(&text(&trace)),
    }
}

/// Finds the resource a kubectl-style kind names: a kind, plural or singular, optionally with
/// `.group`; the core group wins a tie, then the first group in discovery order.
pub(crate) async fn resolve_kind(
    cluster: &Cluster,
    arg: &str,
) -> Result<(ApiResource, Scope), Error> {
    let (name, group) = match arg.split_once('.') {
        Some((name, group)) => (name.to_lowercase(), Some(group.to_string())),
        None => (arg.to_lowercase(), None),
    };
    let discovery = Discovery::new(cluster.client.clone())
        .run()
        .await
        .map_err(Error::api("discovering the API server's resources"))?;
    let mut found: Vec<(ApiResource, Scope)> = Vec::new();
    for api_group in discovery.groups() {
        if group.as_deref().is_some_and(|g| g != api_group.name()) {
            continue;
        }
        for (resource, capabilities) in api_group.recommended_resources() {
            let kind = resource.kind.to_lowercase();
            if kind == name || resource.plural == name {
                found.push((resource, capabilities.scope));
            }
        }
    }
    found.sort_by_key(|(r, _)| !r.group.is_empty());
    found
        .into_iter()
        .next()
        .ok_or_else(|| Error::Failed(format!("the server has no resource type {arg:?}")))
}

/// The Kustomization (namespace, name) that the ownership labels name.
pub(crate) fn owner_of(meta: &ObjectMeta) -> Option<(String, String)> {
    let labels = meta.labels.as_ref()?;
    Some((
        labels.get(KUSTOMIZE_NAMESPACE_LABEL)?.clone(),
        labels.get(KUSTOMIZE_NAME_LABEL)?.clone(),
    ))
}

/// When the kustomize-controller last wrote the object, from its managed-fields entry.
fn applied_at(meta: &ObjectMeta) -> Option<String> {
    meta.managed_fields
        .iter()
        .flatten()
        .filter(|m| m.manager.as_deref() == Some(KUSTOMIZE_FIELD_MANAGER))
        .filter_map(|m| m.time.as_ref().map(|t| t.0))
        .max()
        .map(time)
}

/// One Kustomization of the chain, with its source.
async fn link(cluster: &Cluster, ks: &Kustomization, below: &ObjectId) -> Result<Link, Error> {
    let namespace = ks.metadata.namespace.clone().unwrap_or_default();
    let status = ks.status.clone().unwrap_or_default();
    let (ready, message) = ready_of(&status.conditions);
    let in_inventory = status
        .inventory
        .iter()
        .flat_map(|i| &i.entries)
        .any(|e| ObjectId::parse(&e.id).is_ok_and(|id| id == *below));
    let source_ref = &ks.spec.source_ref;
    let source_namespace = source_ref.namespace.clone().unwrap_or(namespace.clone());
    let source = match fetch::<GitRepository>(cluster, &source_namespace, &source_ref.name).await {
        Ok(repo) => Some(source(&repo)),
        Err(Error::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    Ok(Link {
        namespace,
        name: ks.metadata.name.clone().unwrap_or_default(),
        path: ks.spec.path.clone(),
        ready,
        message: one_line(&message),
        last_applied_revision: status.last_applied_revision,
        in_inventory,
        source,
    })
}

fn source(repo: &GitRepository) -> Source {
    let status = repo.status.clone().unwrap_or_default();
    let artifact = status.artifact.as_ref();
    let metadata = artifact
        .and_then(|a| a.metadata.clone())
        .unwrap_or_default();
    let verified = find_condition(&status.conditions, types::SOURCE_VERIFIED).map(|c| {
        let outcome = if c.status == "True" {
            "verified"
        } else {
            "not verified"
        };
        format!("{outcome}: {}", one_line(&c.message))
    });
    let signers: Vec<String> = metadata
        .iter()
        .filter(|(k, _)| k.to_lowercase().contains("sign"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let signature = match (verified, signers.is_empty()) {
        (None, true) => None,
        (Some(v), true) => Some(v),
        (None, false) => Some(signers.join(", ")),
        (Some(v), false) => Some(format!("{v} ({})", signers.join(", "))),
    };
    Source {
        namespace: repo.metadata.namespace.clone().unwrap_or_default(),
        name: repo.metadata.name.clone().unwrap_or_default(),
        url: repo.spec.url.clone(),
        revision: artifact.map(|a| a.revision.clone()),
        author: metadata.get("git.author").cloned(),
        commit_time: metadata.get("git.commitTime").cloned(),
        subject: metadata.get("git.subject").cloned(),
        signature,
    }
}

fn subject(kind: &str, namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        format!("{kind}/{name}")
    } else {
        format!("{kind}/{namespace}/{name}")
    }
}

/// The human form: the object, then each Kustomization of the chain with its source.
fn text(trace: &Trace) -> String {
    let o = &trace.object;
    let mut lines = vec![subject(&o.kind, &o.namespace, &o.name)];
    let health = if o.health_message.is_empty() {
        o.health.clone()
    } else {
        format!("{}: {}", o.health, o.health_message)
    };
    lines.push(field("health", &health));
    lines.push(field(
        "applied at",
        o.applied_at.as_deref().unwrap_or("not recorded"),
    ));
    for link in &trace.applied_by {
        lines.push(format!(
            "applied by Kustomization {}/{}",
            link.namespace, link.name
        ));
        lines.push(field("path", link.path.as_deref().unwrap_or("./")));
        lines.push(field("ready", &format!("{}: {}", link.ready, link.message)));
        lines.push(field(
            "revision",
            link.last_applied_revision
                .as_deref()
                .unwrap_or("none applied"),
        ));
        lines.push(field(
            "inventory",
            if link.in_inventory {
                "lists the object"
            } else {
                "does not list the object"
            },
        ));
        match &link.source {
            None => lines.push(field("source", "not found")),
            Some(s) => {
                lines.push(field(
                    "source",
                    &format!("GitRepository {}/{}", s.namespace, s.name),
                ));
                lines.push(field("url", &s.url));
                lines.push(field("artifact", s.revision.as_deref().unwrap_or("none")));
                lines.push(field(
                    "author",
                    s.author.as_deref().unwrap_or("not recorded"),
                ));
                lines.push(field(
                    "committed",
                    s.commit_time.as_deref().unwrap_or("not recorded"),
                ));
                if let Some(subject) = &s.subject {
                    lines.push(field("subject", subject));
                }
                lines.push(field(
                    "signature",
                    s.signature.as_deref().unwrap_or("not recorded"),
                ));
            }
        }
    }
    lines.join("\n") + "\n"
}

fn field(name: &str, value: &str) -> String {
    format!("  {:<12}{value}", format!("{name}:"))
}
