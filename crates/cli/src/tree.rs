//! `mooring tree kustomization NAME`: a Kustomization's inventory as a tree, nested
//! Kustomizations followed, each object's health computed from the live object with the
//! kustomize-controller's own rules.

use std::collections::{BTreeSet, HashMap};

use futures::future::BoxFuture;
use kube::api::{Api, DynamicObject};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiResource, Scope, pinned_kind};
use mooring_api::Kustomization;
use mooring_api::constants::KUSTOMIZE_GROUP;
use mooring_kustomize_controller::health::{self, HealthStatus};
use mooring_kustomize_controller::inventory::{InventoryEntry, ObjectId};
use serde::Serialize;

use crate::args::{Global, KustomizationArgs};
use crate::client::{Cluster, connect};
use crate::error::{Error, is_not_found};
use crate::kinds::{fetch, one_line};
use crate::output::{print_structured, write_stdout};

/// One object of the tree.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// Kind.
    pub kind: String,
    /// Namespace; absent for cluster-scoped objects.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Name.
    pub name: String,
    /// kstatus value: `Current`, `InProgress`, `Failed`, `Terminating`, `NotFound`, `Unknown`.
    pub health: String,
    /// Why, when not Current.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// For a Kustomization: the objects of its inventory.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Node>,
}

/// Runs `tree`.
pub async fn run(global: &Global, args: KustomizationArgs) -> Result<(), Error> {
    let cluster = connect(global).await?;
    let mut walk = Walk {
        cluster: &cluster,
        resources: HashMap::new(),
        visited: BTreeSet::new(),
    };
    let ks: Kustomization = fetch(&cluster, &cluster.namespace, &args.name).await?;
    let root = walk.kustomization(ks).await?;
    match global.output {
        Some(format) => print_structured(format, &root),
        None => write_stdout(&render(&root)),
    }
}

/// The walk's state: resolved kinds, and the Kustomizations seen (a cycle is not followed).
struct Walk<'a> {
    cluster: &'a Cluster,
    resources: HashMap<GroupVersionKind, Option<(ApiResource, Scope)>>,
    visited: BTreeSet<(String, String)>,
}

impl<'a> Walk<'a> {
    /// The node of a Kustomization with its inventory below it.
    fn kustomization(&mut self, ks: Kustomization) -> BoxFuture<'_, Result<Node, Error>> {
        Box::pin(async move {
            let namespace = ks.metadata.namespace.clone().unwrap_or_default();
            let name = ks.metadata.name.clone().unwrap_or_default();
            let value = serde_json::to_value(&ks).map_err(|e| Error::Output(e.to_string()))?;
            let mut node = node("Kustomization", &namespace, &name, &value);
            if !self.visited.insert((namespace.clone(), name.clone())) {
                node.message = "already shown above".to_string();
                return Ok(node);
            }
            let entries = ks
                .status
                .and_then(|s| s.inventory)
                .map(|i| i.entries)
                .unwrap_or_default();
            for entry in entries {
                let entry = InventoryEntry::parse(&entry).map_err(|e| {
                    Error::Failed(format!(
                        "Kustomization {namespace}/{name}: status.inventory: {e}"
                    ))
                })?;
                node.children.push(self.object(&entry).await?);
            }
            Ok(node)
        })
    }

    /// The node of one inventory entry, read live.
    async fn object(&mut self, entry: &InventoryEntry) -> Result<Node, Error> {
        let id = &entry.id;
        if id.group == KUSTOMIZE_GROUP && id.kind == "Kustomization" {
            return match fetch::<Kustomization>(self.cluster, &id.namespace, &id.name).await {
                Ok(ks) => self.kustomization(ks).await,
                Err(Error::NotFound { .. }) => Ok(missing(id)),
                Err(e) => Err(e),
            };
        }
        let Some((resource, scope)) = self.resource(entry).await? else {
            return Ok(Node {
                health: HealthStatus::Unknown.to_string(),
                message: format!("the API server does not serve {}", entry.version),
                ..missing(id)
            });
        };
        let api: Api<DynamicObject> = match scope {
            Scope::Namespaced => {
                Api::namespaced_with(self.cluster.client.clone(), &id.namespace, &resource)
            }
            Scope::Cluster => Api::all_with(self.cluster.client.clone(), &resource),
        };
        match api.get(&id.name).await {
            Ok(object) => {
                let value =
                    serde_json::to_value(&object).map_err(|e| Error::Output(e.to_string()))?;
                Ok(node(&id.kind, &id.namespace, &id.name, &value))
            }
            Err(e) if is_not_found(&e) => Ok(missing(id)),
            Err(e) => Err(Error::api(format!("reading {}", id.subject()))(e)),
        }
    }

    /// The API resource of an entry's kind, from discovery (once per kind).
    async fn resource(
        &mut self,
        entry: &InventoryEntry,
    ) -> Result<Option<(ApiResource, Scope)>, Error> {
        let version = entry
            .version
            .rsplit_once('/')
            .map_or(entry.version.as_str(), |(_, v)| v);
        let gvk = GroupVersionKind::gvk(&entry.id.group, version, &entry.id.kind);
        if let Some(found) = self.resources.get(&gvk) {
            return Ok(found.clone());
        }
        let found = match pinned_kind(&self.cluster.client, &gvk).await {
            Ok((resource, capabilities)) => Some((resource, capabilities.scope)),
            Err(e) if is_not_found(&e) || matches!(e, kube::Error::Discovery(_)) => None,
            Err(e) => return Err(Error::api(format!("discovering {}", entry.version))(e)),
        };
        self.resources.insert(gvk, found.clone());
        Ok(found)
    }
}

fn node(kind: &str, namespace: &str, name: &str, object: &serde_json::Value) -> Node {
    let health = health::compute(object);
    Node {
        kind: kind.to_string(),
        namespace: namespace.to_string(),
        name: name.to_string(),
        message: if health.is_current() {
            String::new()
        } else {
            one_line(&health.message)
        },
        health: health.status.to_string(),
        children: Vec::new(),
    }
}

fn missing(id: &ObjectId) -> Node {
    Node {
        kind: id.kind.clone(),
        namespace: id.namespace.clone(),
        name: id.name.clone(),
        health: HealthStatus::NotFound.to_string(),
        message: "in the inventory but not in the cluster".to_string(),
        children: Vec::new(),
    }
}

/// The tree as text: `Kind/namespace/name  Health[: message]`, children drawn below.
fn render(root: &Node) -> String {
    let mut text = format!("{}\n", label(root));
    draw(&root.children, "", &mut text);
    text
}

fn draw(children: &[Node], indent: &str, text: &mut String) {
    for (i, child) in children.iter().enumerate() {
        let last = i + 1 == children.len();
        let (branch, next) = if last {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        text.push_str(&format!("{indent}{branch}{}\n", label(child)));
        draw(&child.children, &format!("{indent}{next}"), text);
    }
}

fn label(node: &Node) -> String {
    let subject = if node.namespace.is_empty() {
        format!("{}/{}", node.kind, node.name)
    } else {
        format!("{}/{}/{}", node.kind, node.namespace, node.name)
    };
    if node.message.is_empty() {
        format!("{subject}  {}", node.health)
    } else {
        format!("{subject}  {}: {}", node.health, node.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(kind: &str, name: &str, health: &str) -> Node {
        Node {
            kind: kind.into(),
            namespace: "ns".into(),
            name: name.into(),
            health: health.into(),
            message: String::new(),
            children: Vec::new(),
        }
    }

    #[test]
    fn trees_draw_branches_and_indent_nested_children() {
        let mut child = leaf("Kustomization", "child", "Current");
        child.children = vec![leaf("ConfigMap", "b", "Current")];
        let mut root = leaf("Kustomization", "apps", "Current");
        root.children = vec![leaf("ConfigMap", "a", "Current"), child];
        assert_eq!(
            render(&root),
            "Kustomization/ns/apps  Current\n\
             ├── ConfigMap/ns/a  Current\n\
             └── Kustomization/ns/child  Current\n    \
             └── ConfigMap/ns/b  Current\n"
        );
    }
}
