//! Per-object calls to the API server: existence check, dry-run, apply, takeover, recreation,
//! and the watches that wait for deletion and CRD establishment.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use super::changeset::ObjectKey;
use super::discovery::ResolvedKind;
use super::error::ApplyError;
use super::refusal::{Refusal, refusal, refused};
use super::takeover;

/// One object ready for the API: its key, desired state and resolved kind.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub key: ObjectKey,
    pub obj: DynamicObject,
    pub kind: ResolvedKind,
}

impl Target {
    /// `Kind/namespace/name`.
    pub fn subject(&self) -> String {
        self.key.to_string()
    }

    fn api(&self, client: &Client) -> Api<DynamicObject> {
        api_for(client, &self.kind, self.key.namespace.as_deref())
    }
}

/// A dynamic API for a kind, in `namespace` when the kind is namespaced.
pub(crate) fn api_for(
    client: &Client,
    kind: &ResolvedKind,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    match namespace {
        Some(ns) if kind.namespaced() => Api::namespaced_with(client.clone(), ns, &kind.resource),
        _ => Api::all_with(client.clone(), &kind.resource),
    }
}

/// Reads the live object; None when it does not exist. Talks to the API server.
pub(crate) async fn get_live(
    client: &Client,
    target: &Target,
) -> Result<Option<DynamicObject>, ApplyError> {
    let name = target.key.name.as_str();
    match target.api(client).get(name).await {
        Ok(live) => Ok(Some(live)),
        Err(e) => match refusal(&e) {
            Refusal::NotFound { .. } | Refusal::NamespaceMissing(_) => Ok(None),
            other => Err(refused(
                other,
                "get",
                &target.subject(),
                |object, reason| ApplyError::Get { object, reason },
            )),
        },
    }
}

/// Server-side apply dry-run (forced, as the real apply will be). Talks to the API server.
pub(crate) async fn dry_run(
    client: &Client,
    target: &Target,
    manager: &str,
) -> Result<DynamicObject, kube::Error> {
    let params = PatchParams::apply(manager).force().dry_run();
    target
        .api(client)
        .patch(&target.key.name, &params, &Patch::Apply(&target.obj))
        .await
}

/// Server-side apply with force. Talks to the API server.
pub(crate) async fn apply(
    client: &Client,
    target: &Target,
    manager: &str,
) -> Result<DynamicObject, ApplyError> {
    let params = PatchParams::apply(manager).force();
    target
        .api(client)
        .patch(&target.key.name, &params, &Patch::Apply(&target.obj))
        .await
        .map_err(|e| {
            refused(refusal(&e), "patch", &target.subject(), |object, reason| {
                ApplyError::Apply { object, reason }
            })
        })
}

/// Moves the fields owned by kubectl-like managers into `manager`'s Apply entry (see
/// [`takeover`]), guarded by the live resourceVersion. Talks to the API server.
pub(crate) async fn take_over_fields(
    client: &Client,
    target: &Target,
    manager: &str,
) -> Result<(), ApplyError> {
    let Some(live) = get_live(client, target).await? else {
        return Ok(());
    };
    let entries = live.metadata.managed_fields.clone().unwrap_or_default();
    let Some(merged) = takeover::take_over(&entries, manager, &target.kind.resource.api_version)
    else {
        return Ok(());
    };
    // A merge patch carrying resourceVersion is refused if the object changed since the read.
    let patch = json!({"metadata": {
        "managedFields": merged,
        "resourceVersion": live.resource_version(),
    }});
    target
        .api(client)
        .patch(
            &target.key.name,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map(drop)
        .map_err(|e| {
            refused(refusal(&e), "patch", &target.subject(), |object, reason| {
                ApplyError::Apply {
                    object,
                    reason: format!("taking over fields set by kubectl: {reason}"),
                }
            })
        })
}

/// Deletes the object created with `uid` (background; a precondition on the uid leaves any
/// other object of that name alone). Gone already is fine. Talks to the API server.
pub(crate) async fn delete_created(
    client: &Client,
    target: &Target,
    uid: &str,
) -> Result<(), ApplyError> {
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..DeleteParams::background()
    };
    match target.api(client).delete(&target.key.name, &params).await {
        Ok(_) => Ok(()),
        Err(e) => match refusal(&e) {
            Refusal::NotFound { .. } | Refusal::NamespaceMissing(_) => Ok(()),
            other => Err(refused(
                other,
                "delete",
                &target.subject(),
                |object, reason| ApplyError::Delete {
                    object,
                    reason: format!("undoing its creation: {reason}"),
                },
            )),
        },
    }
}

/// Deletes the object (foreground: its dependents go first), waits until it is gone, and
/// applies it again. Talks to the API server.
pub(crate) async fn recreate(
    client: &Client,
    target: &Target,
    manager: &str,
    timeout: Duration,
) -> Result<DynamicObject, ApplyError> {
    let api = target.api(client);
    let subject = target.subject();
    let uid = match api
        .delete(&target.key.name, &DeleteParams::foreground())
        .await
    {
        Ok(either) => either.left().and_then(|o| o.uid()),
        Err(e) => match refusal(&e) {
            Refusal::NotFound { .. } => None,
            other => {
                return Err(refused(other, "delete", &subject, |object, reason| {
                    ApplyError::Delete { object, reason }
                }));
            }
        },
    };
    if let Some(uid) = uid
        && !wait_gone(&api, &target.key.name, &uid, &subject, timeout).await?
    {
        return Err(ApplyError::TerminationTimeout {
            objects: vec![subject],
            timeout,
        });
    }
    apply(client, target, manager).await
}

/// Waits (watching, not polling) until the object with `uid` no longer exists; false on timeout.
pub(crate) async fn wait_gone(
    api: &Api<DynamicObject>,
    name: &str,
    uid: &str,
    subject: &str,
    timeout: Duration,
) -> Result<bool, ApplyError> {
    let gone = await_condition(api.clone(), name, conditions::is_deleted(uid));
    match tokio::time::timeout(timeout, gone).await {
        Ok(Ok(_)) => Ok(true),
        Ok(Err(e)) => Err(ApplyError::Watch {
            object: subject.to_string(),
            reason: e.to_string(),
        }),
        Err(_elapsed) => Ok(false),
    }
}

/// Waits (watching) until the CRD `name` is Established. Talks to the API server.
pub(crate) async fn wait_established(
    client: &Client,
    name: &str,
    timeout: Duration,
) -> Result<(), ApplyError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let established = await_condition(api, name, conditions::is_crd_established());
    match tokio::time::timeout(timeout, established).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(ApplyError::Watch {
            object: format!("{}/{name}", CustomResourceDefinition::kind(&())),
            reason: e.to_string(),
        }),
        Err(_elapsed) => Err(ApplyError::NotEstablished {
            name: name.to_string(),
            timeout,
        }),
    }
}
