//! Health: the objects that `wait` (all of the render) or `healthChecks` name, assessed from
//! what is known at their current resourceVersion. An object of the render whose
//! resourceVersion has not moved since its last assessment costs no request; the live view's
//! watches wake the Kustomization when one moves, so health is followed continuously, not only
//! after an apply. Objects outside the render (named by `healthChecks` only) are read on every
//! pass that assesses health.

use kube::api::{Api, DynamicObject};
use kube::{Client, ResourceExt};
use mooring_api::Kustomization;

use crate::apply::{ApplyOptions, split_api_version};
use crate::health::{self, Health, HealthStatus, ObjectLabel, Summary};
use crate::inventory::ObjectId;
use crate::live::{LiveView, Lookup, numeric};
use crate::state::{Assessed, IdMap};
use crate::steps::render::Render;

/// One object to assess.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Its identity.
    pub id: ObjectId,
    /// The apiVersion to read it with.
    pub api_version: String,
}

/// The objects whose health decides Ready: every rendered object with `wait`, plus each
/// `healthChecks` entry (apiVersion defaults to `apps/v1`, namespace to the Kustomization's).
pub fn targets(ks: &Kustomization, render: &Render) -> Vec<Target> {
    let ns = ks.namespace().unwrap_or_default();
    let mut targets: Vec<Target> = Vec::new();
    if ks.spec.wait {
        for desired in &render.objects {
            targets.push(Target {
                id: desired.id.clone(),
                api_version: desired.api_version.clone(),
            });
        }
    }
    for check in &ks.spec.health_checks {
        // The documented default: most health checks name Deployments.
        let api_version = check
            .api_version
            .clone()
            .unwrap_or_else(|| "apps/v1".to_string());
        let (group, _) = split_api_version(&api_version);
        // Empty is omitted: a namespaced read in namespace "" would be refused.
        let namespace = check
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| ns.clone());
        let mut id = ObjectId {
            namespace,
            name: check.name.clone(),
            group: group.to_string(),
            kind: check.kind.clone(),
        };
        // A cluster-scoped object of the render is named without its namespace.
        if let Some(desired) = render.objects.iter().find(|d| {
            d.id.namespace.is_empty()
                && d.id.name == id.name
                && d.id.kind == id.kind
                && d.id.group == id.group
        }) {
            id = desired.id.clone();
        }
        if !targets.iter().any(|t| t.id == id) {
            targets.push(Target { id, api_version });
        }
    }
    targets
}

/// Assesses `targets`, reusing `known` assessments whose resourceVersion is still current.
/// Returns the summary and the assessments to remember. Talks to the API server for objects
/// whose resourceVersion moved, and for objects outside the render.
pub async fn assess(
    client: &Client,
    targets: &[Target],
    render: &Render,
    live: &LiveView,
    known: &IdMap<Assessed>,
    opts: &ApplyOptions,
) -> (Summary, IdMap<Assessed>) {
    let mut results = Vec::new();
    let mut remembered = Vec::new();
    for target in targets {
        let rendered = render.objects.iter().any(|d| d.id == target.id);
        let label = ObjectLabel::new(
            &target.id.kind,
            Some(target.id.namespace.as_str()),
            &target.id.name,
        );
        let current = if rendered {
            live.lookup(&target.id)
        } else {
            Lookup::Unknown
        };
        // Still current: the object has not moved since, or the view has not caught up yet
        // with the write whose answer it was computed from.
        let cached = known
            .get(&target.id)
            .filter(|a| match (&current, numeric(&a.resource_version)) {
                (Lookup::Present(now), _) if now.resource_version == a.resource_version => true,
                (Lookup::Present(now), Some(at)) => {
                    numeric(&now.resource_version).is_some_and(|seen| seen < at)
                }
                (Lookup::Absent { seen_up_to }, Some(at)) => *seen_up_to < at,
                // The watch is starting: when it has listed, it wakes the pass again if the
                // object is not as assessed.
                (Lookup::Unknown, _) => rendered,
                _ => false,
            })
            .cloned();
        let assessed = match (cached, current) {
            (Some(cached), _) => Some(cached),
            (None, Lookup::Absent { .. }) => {
                results.push((label, Health::new(HealthStatus::NotFound, "not found")));
                continue;
            }
            (None, _) => read(client, target, opts).await,
        };
        let health = match assessed {
            Some(assessed) => {
                let health = assessed.health.clone();
                if rendered {
                    remembered.push((target.id.clone(), assessed));
                }
                health
            }
            None => Health::new(HealthStatus::NotFound, "not found"),
        };
        results.push((label, health));
    }
    (
        health::summarize(&results),
        remembered.into_iter().collect(),
    )
}

/// Reads one object and computes its health; None when it does not exist.
async fn read(client: &Client, target: &Target, opts: &ApplyOptions) -> Option<Assessed> {
    let resolved = match opts
        .kinds
        .resolve(client, &target.api_version, &target.id.kind)
        .await
    {
        Ok(Some(resolved)) => resolved,
        Ok(None) => {
            return Some(Assessed {
                resource_version: String::new(),
                health: Health::new(HealthStatus::NotFound, "kind not found"),
            });
        }
        Err(e) => return Some(unknown(e)),
    };
    let api: Api<DynamicObject> = if resolved.namespaced() {
        Api::namespaced_with(client.clone(), &target.id.namespace, &resolved.resource)
    } else {
        Api::all_with(client.clone(), &resolved.resource)
    };
    match api.get_opt(&target.id.name).await {
        Ok(Some(obj)) => Some(Assessed {
            resource_version: obj.resource_version().unwrap_or_default(),
            health: health::compute(&serde_json::to_value(&obj).unwrap_or_default()),
        }),
        Ok(None) => None,
        Err(e) => Some(unknown(e)),
    }
}

fn unknown(e: kube::Error) -> Assessed {
    Assessed {
        resource_version: String::new(),
        health: Health::new(HealthStatus::Unknown, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_health_check_with_an_empty_namespace_reads_the_kustomizations() {
        let ks: Kustomization = serde_json::from_value(serde_json::json!({
            "apiVersion": "kustomize.mooring.dev/v1", "kind": "Kustomization",
            "metadata": {"name": "app", "namespace": "apps"},
            "spec": {"interval": "10m", "prune": true,
                "sourceRef": {"kind": "GitRepository", "name": "repo"},
                "healthChecks": [
                    {"kind": "Deployment", "name": "web", "namespace": ""},
                    {"kind": "Deployment", "name": "api"},
                    {"kind": "Deployment", "name": "db", "namespace": "data"},
                ]},
        }))
        .expect("kustomization");
        let render = Render {
            key: 0,
            revision: "main@sha1:aaaa".into(),
            provenance: 0,
            digest: "sha256:0".into(),
            objects: Vec::new(),
        };
        let namespaces: Vec<String> = targets(&ks, &render)
            .into_iter()
            .map(|t| t.id.namespace)
            .collect();
        assert_eq!(namespaces, ["apps", "apps", "data"]);
    }
}
