//! `mooring why KIND NAME`: why an object is not Ready, as the chain of objects it waits for,
//! down to the first one whose failure is its own. A Kustomization waiting for a dependency
//! leads to that dependency, one waiting for its source leads to the GitRepository, and an
//! object a Kustomization manages leads to that Kustomization when it is not Ready.

use kube::api::{Api, DynamicObject};
use kube::discovery::Scope;
use mooring_api::conditions::{find_condition, reasons, types};
use mooring_api::{GitRepository, Kustomization};
use mooring_kustomize_controller::health;
use serde::Serialize;

use crate::args::{Global, WhyArgs};
use crate::client::{Cluster, connect};
use crate::error::{Error, is_not_found};
use crate::kinds::{fetch, one_line};
use crate::output::{print_structured, write_stdout};
use crate::trace::{owner_of, resolve_kind};

/// How many hops are followed (a dependency cycle stops there too).
const MAX_HOPS: usize = 20;

/// One object of the chain.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Hop {
    /// Kind.
    pub kind: String,
    /// Namespace; empty for a cluster-scoped object.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Status of its `Ready` condition (for a managed object: `True` when its health is
    /// Current); `NotFound` when it does not exist.
    pub ready: String,
    /// The condition's reason (for a managed object: its health status).
    pub reason: String,
    /// The condition's message, on one line.
    pub message: String,
    /// What this hop waits for, when the chain goes on: `dependency`, `source` or `applier`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waits_for: Option<&'static str>,
}

impl Hop {
    fn is_ready(&self) -> bool {
        self.ready == "True"
    }
}

/// The next object to look at.
enum Next {
    Kustomization(String, String),
    Source(String, String),
}

/// Runs `why`.
pub async fn run(global: &Global, args: WhyArgs) -> Result<(), Error> {
    let cluster = connect(global).await?;
    let ns = cluster.namespace.clone();
    let mut chain: Vec<Hop> = Vec::new();
    let mut next = match args.kind.to_lowercase().as_str() {
        "source" | "sources" | "gitrepository" | "gitrepositories" | "gitrepo" => {
            Some(Next::Source(ns.clone(), args.name.clone()))
        }
        "kustomization" | "kustomizations" | "ks" => {
            Some(Next::Kustomization(ns.clone(), args.name.clone()))
        }
        _ => managed(&cluster, &args.kind, &args.name, &mut chain).await?,
    };
    while let Some(step) = next.take() {
        if chain.len() >= MAX_HOPS {
            break;
        }
        let (hop, then) = match step {
            Next::Source(ns, name) => (source_hop(&cluster, &ns, &name).await?, None),
            Next::Kustomization(ns, name) => kustomization_hop(&cluster, &ns, &name).await?,
        };
        let seen = chain
            .iter()
            .any(|h| (&h.kind, &h.namespace, &h.name) == (&hop.kind, &hop.namespace, &hop.name));
        // The first object decides the answer; past it, a Ready object ends the chain.
        if seen || (!chain.is_empty() && hop.is_ready()) {
            break;
        }
        chain.push(hop);
        next = then;
    }
    // The last hop leads nowhere: what it waited for was Ready, already seen, or past the limit.
    if let Some(last) = chain.last_mut() {
        last.waits_for = None;
    }
    let ready = chain.first().is_some_and(Hop::is_ready);
    match global.output {
        Some(format) => print_structured(format, &chain)?,
        None => write_stdout(&text(&chain))?,
    }
    if ready {
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "{} is not ready",
            chain.first().map(label).unwrap_or_default()
        )))
    }
}

/// The hop for an object of any kind a Kustomization manages, and that Kustomization next.
async fn managed(
    cluster: &Cluster,
    kind: &str,
    name: &str,
    chain: &mut Vec<Hop>,
) -> Result<Option<Next>, Error> {
    let (resource, scope) = resolve_kind(cluster, kind).await?;
    let namespace = match scope {
        Scope::Namespaced => cluster.namespace.clone(),
        Scope::Cluster => String::new(),
    };
    let api: Api<DynamicObject> = match scope {
        Scope::Namespaced => Api::namespaced_with(cluster.client.clone(), &namespace, &resource),
        Scope::Cluster => Api::all_with(cluster.client.clone(), &resource),
    };
    let object = api.get(name).await.map_err(|e| {
        if is_not_found(&e) {
            Error::NotFound {
                kind: resource.kind.clone(),
                namespace: namespace.clone(),
                name: name.to_string(),
            }
        } else {
            Error::api(format!("reading {} {namespace}/{name}", resource.kind))(e)
        }
    })?;
    let value = serde_json::to_value(&object).map_err(|e| Error::Output(e.to_string()))?;
    let health = health::compute(&value);
    let owner = owner_of(&object.metadata);
    chain.push(Hop {
        kind: resource.kind.clone(),
        namespace,
        name: name.to_string(),
        ready: if health.is_current() { "True" } else { "False" }.to_string(),
        reason: health.status.to_string(),
        message: one_line(&health.message),
        waits_for: owner.as_ref().map(|_| "applier"),
    });
    if health.is_current() {
        return Ok(None);
    }
    Ok(owner.map(|(ns, name)| Next::Kustomization(ns, name)))
}

/// The hop for a GitRepository: its failures are always its own.
async fn source_hop(cluster: &Cluster, ns: &str, name: &str) -> Result<Hop, Error> {
    let repo = match fetch::<GitRepository>(cluster, ns, name).await {
        Ok(repo) => repo,
        Err(Error::NotFound { .. }) => return Ok(missing("GitRepository", ns, name)),
        Err(e) => return Err(e),
    };
    let conditions = repo.status.map(|s| s.conditions).unwrap_or_default();
    Ok(condition_hop("GitRepository", ns, name, &conditions))
}

/// The hop for a Kustomization, and what it waits for: the first dependency that is not Ready
/// when its reason is `DependencyNotReady`, its source when it waits for the artifact.
async fn kustomization_hop(
    cluster: &Cluster,
    ns: &str,
    name: &str,
) -> Result<(Hop, Option<Next>), Error> {
    let ks = match fetch::<Kustomization>(cluster, ns, name).await {
        Ok(ks) => ks,
        Err(Error::NotFound { .. }) => return Ok((missing("Kustomization", ns, name), None)),
        Err(e) => return Err(e),
    };
    let conditions = ks.status.clone().map(|s| s.conditions).unwrap_or_default();
    let mut hop = condition_hop("Kustomization", ns, name, &conditions);
    if hop.is_ready() {
        return Ok((hop, None));
    }
    let next = match hop.reason.as_str() {
        reasons::DEPENDENCY_NOT_READY => first_unready_dependency(cluster, &ks, ns).await?,
        reasons::ARTIFACT_FAILED => {
            let source = &ks.spec.source_ref;
            let source_ns = source.namespace.clone().unwrap_or_else(|| ns.to_string());
            Some(Next::Source(source_ns, source.name.clone()))
        }
        _ => None,
    };
    hop.waits_for = match next {
        Some(Next::Kustomization(..)) => Some("dependency"),
        Some(Next::Source(..)) => Some("source"),
        None => None,
    };
    Ok((hop, next))
}

/// The first `dependsOn` Kustomization that is missing or not Ready.
async fn first_unready_dependency(
    cluster: &Cluster,
    ks: &Kustomization,
    ns: &str,
) -> Result<Option<Next>, Error> {
    for dep in &ks.spec.depends_on {
        let dep_ns = dep.namespace.clone().unwrap_or_else(|| ns.to_string());
        let ready = match fetch::<Kustomization>(cluster, &dep_ns, &dep.name).await {
            Ok(d) => {
                let status = d.status.clone().unwrap_or_default();
                find_condition(&status.conditions, types::READY).is_some_and(|c| c.status == "True")
                    && status.observed_generation == d.metadata.generation
            }
            Err(Error::NotFound { .. }) => false,
            Err(e) => return Err(e),
        };
        if !ready {
            return Ok(Some(Next::Kustomization(dep_ns, dep.name.clone())));
        }
    }
    Ok(None)
}

fn condition_hop(
    kind: &str,
    ns: &str,
    name: &str,
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
) -> Hop {
    let (ready, reason, message) = find_condition(conditions, types::READY).map_or_else(
        || {
            (
                "Unknown".to_string(),
                String::new(),
                "not reconciled yet".to_string(),
            )
        },
        |c| (c.status.clone(), c.reason.clone(), one_line(&c.message)),
    );
    Hop {
        kind: kind.to_string(),
        namespace: ns.to_string(),
        name: name.to_string(),
        ready,
        reason,
        message,
        waits_for: None,
    }
}

fn missing(kind: &str, ns: &str, name: &str) -> Hop {
    Hop {
        kind: kind.to_string(),
        namespace: ns.to_string(),
        name: name.to_string(),
        ready: "NotFound".to_string(),
        reason: "NotFound".to_string(),
        message: "does not exist".to_string(),
        waits_for: None,
    }
}

fn label(hop: &Hop) -> String {
    if hop.namespace.is_empty() {
        format!("{} {}", hop.kind, hop.name)
    } else {
        format!("{} {}/{}", hop.kind, hop.namespace, hop.name)
    }
}

/// The human form: one line per hop, each indented under the one that waits for it. A hop
/// that leads on says what it waits for; the last one says why it is not Ready.
pub fn text(chain: &[Hop]) -> String {
    let mut out = String::new();
    for (depth, (hop, below)) in chain
        .iter()
        .zip(chain.iter().skip(1).map(Some).chain([None]))
        .enumerate()
    {
        let indent = "  ".repeat(depth);
        let line = match (hop.waits_for, below) {
            _ if hop.is_ready() && chain.len() == 1 => format!("{} is ready", label(hop)),
            (Some("dependency"), Some(b)) => {
                format!("{} waits for dependency {}", label(hop), label(b))
            }
            (Some("source"), Some(b)) => {
                format!("{} waits for its source {}", label(hop), label(b))
            }
            (Some("applier"), Some(b)) => format!(
                "{} is not ready ({}: {}), and {} that applies it is not ready",
                label(hop),
                hop.reason,
                hop.message,
                label(b)
            ),
            _ if hop.ready == "NotFound" => format!("{} does not exist", label(hop)),
            _ => {
                let reason = if hop.reason.is_empty() {
                    hop.ready.clone()
                } else {
                    hop.reason.clone()
                };
                format!("{} is not ready: {reason}: {}", label(hop), hop.message)
            }
        };
        out.push_str(&indent);
        out.push_str(&line);
        out.push('\n');
    }
    out
}
