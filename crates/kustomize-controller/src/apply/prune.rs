//! Garbage collection: delete objects that left the manifests (prune) or all managed objects
//! when a Kustomization is deleted, only where the ownership labels say they are ours.

use kube::api::{DeleteParams, ObjectMeta, Preconditions, PropagationPolicy};
use kube::{Client, ResourceExt};
use mooring_api::constants::{
    DISABLED_VALUE, KUSTOMIZE_NAME_LABEL, KUSTOMIZE_NAMESPACE_LABEL, PRUNE_ANNOTATION,
};

use super::changeset::{Action, ChangeSet, ObjectKey};
use super::error::ApplyError;
use super::object::{api_for, wait_gone};
use super::plan::{SsaMode, knob, ssa_mode};
use super::refusal::{Refusal, refusal, refused};
use super::stages::stage_of;
use super::{ApplyOptions, bounded};
use crate::inventory::Owner;

/// Why a managed object is kept rather than deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Its ownership labels name another Kustomization (or none).
    NotOwned,
    /// `kustomize.mooring.dev/prune: disabled`.
    PruneDisabled,
    /// `ssa: Ignore` or `reconcile: disabled`.
    Ignored,
}

/// Whether the live object may be deleted on behalf of `owner`.
pub fn may_delete(meta: &ObjectMeta, owner: &Owner) -> Result<(), Keep> {
    let label = |key: &str| {
        meta.labels
            .as_ref()
            .and_then(|l| l.get(key))
            .map(String::as_str)
    };
    if label(KUSTOMIZE_NAME_LABEL) != Some(owner.name.as_str())
        || label(KUSTOMIZE_NAMESPACE_LABEL) != Some(owner.namespace.as_str())
    {
        return Err(Keep::NotOwned);
    }
    if knob(meta, PRUNE_ANNOTATION).is_some_and(|v| v.eq_ignore_ascii_case(DISABLED_VALUE)) {
        return Err(Keep::PruneDisabled);
    }
    if ssa_mode(meta) == SsaMode::Ignore {
        return Err(Keep::Ignored);
    }
    Ok(())
}

/// Deletes the objects `ids` (stale inventory entries) that still carry `owner`'s labels
/// and are not protected, in reverse stage order (CRDs and Namespaces last). Objects already
/// gone are left out; protected ones are reported Skipped. Talks to the API server.
pub async fn prune(
    client: &Client,
    ids: Vec<ObjectKey>,
    owner: &Owner,
    opts: &ApplyOptions,
) -> Result<ChangeSet, ApplyError> {
    delete_all(client, ids, owner, opts, false).await
}

/// [`prune`] for a deleted Kustomization (`deletionPolicy: Delete`, or `MirrorPrune` with
/// prune on); with `wait_for_termination`, also waits (watching, up to `opts.wait_timeout`)
/// until every deleted object is gone, finalizers and dependents included.
/// Talks to the API server.
pub async fn delete_all(
    client: &Client,
    mut ids: Vec<ObjectKey>,
    owner: &Owner,
    opts: &ApplyOptions,
    wait_for_termination: bool,
) -> Result<ChangeSet, ApplyError> {
    // Stable: the caller's order is kept within a stage.
    ids.sort_by_key(|k| std::cmp::Reverse(stage_of(&k.group, &k.kind)));
    let mut changes = ChangeSet::default();
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    let mut rest = ids.as_slice();
    while let Some(first) = rest.first() {
        let stage = stage_of(&first.group, &first.kind);
        let cut = rest
            .iter()
            .position(|k| stage_of(&k.group, &k.kind) != stage)
            .unwrap_or(rest.len());
        let (group, tail) = rest.split_at(cut);
        rest = tail;
        let deletes = group.iter().map(|key| delete_one(client, key, owner, opts));
        let results = bounded(deletes.collect(), opts.concurrency).await;
        for (key, result) in group.iter().zip(results) {
            match result {
                Ok(Outcome::Gone) => {}
                Ok(Outcome::Kept) => changes.push(key.clone(), Action::Skipped),
                Ok(Outcome::Deleted(uid)) => {
                    changes.push(key.clone(), Action::Deleted);
                    deleted.push((key, uid));
                }
                Err(e) => errors.push(e),
            }
        }
    }
    if wait_for_termination && errors.is_empty() {
        let waits = deleted.iter().map(|(key, uid)| async move {
            let gone = match opts.kinds.cached(&key.api_version(), &key.kind) {
                Some(kind) => {
                    let api = api_for(client, &kind, key.namespace.as_deref());
                    wait_gone(&api, &key.name, uid, &key.to_string(), opts.wait_timeout).await?
                }
                None => true,
            };
            Ok::<_, ApplyError>((!gone).then(|| key.to_string()))
        });
        let waits = bounded(waits.collect(), opts.concurrency).await;
        let mut remaining = Vec::new();
        for wait in waits {
            match wait {
                Ok(Some(subject)) => remaining.push(subject),
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        if !remaining.is_empty() {
            remaining.sort();
            errors.push(ApplyError::TerminationTimeout {
                objects: remaining,
                timeout: opts.wait_timeout,
            });
        }
    }
    match ApplyError::from_many(errors) {
        Some(e) => Err(e.after(&changes)),
        None => Ok(changes),
    }
}

enum Outcome {
    Gone,
    Kept,
    Deleted(String),
}

/// How many times a deletion is retried when the object changed between the read and the delete.
const CONFLICT_RETRIES: usize = 3;

async fn delete_one(
    client: &Client,
    key: &ObjectKey,
    owner: &Owner,
    opts: &ApplyOptions,
) -> Result<Outcome, ApplyError> {
    let subject = key.to_string();
    let kind = match opts
        .kinds
        .resolve(client, &key.api_version(), &key.kind)
        .await
    {
        Ok(Some(kind)) => kind,
        // The kind is no longer served (its CRD was removed), so its objects are gone too.
        Ok(None) => return Ok(Outcome::Gone),
        Err(source) => {
            return Err(ApplyError::Discovery {
                api_version: key.api_version(),
                source,
            });
        }
    };
    let api = api_for(client, &kind, key.namespace.as_deref());
    for _ in 0..CONFLICT_RETRIES {
        let live = match api.get(&key.name).await {
            Ok(live) => live,
            Err(e) => {
                return match refusal(&e) {
                    Refusal::NotFound { .. } | Refusal::NamespaceMissing(_) => Ok(Outcome::Gone),
                    r => Err(refused(r, "get", &subject, |object, reason| {
                        ApplyError::Get { object, reason }
                    })),
                };
            }
        };
        if may_delete(&live.metadata, owner).is_err() {
            return Ok(Outcome::Kept);
        }
        let uid = live.uid().unwrap_or_default();
        // Preconditions: delete exactly the object whose labels were just checked.
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            preconditions: Some(Preconditions {
                uid: Some(uid.clone()),
                resource_version: live.resource_version(),
            }),
            ..Default::default()
        };
        match api.delete(&key.name, &params).await {
            Ok(_) => return Ok(Outcome::Deleted(uid)),
            Err(e) => match refusal(&e) {
                Refusal::NotFound { .. } => return Ok(Outcome::Gone),
                Refusal::Other(_) if is_conflict(&e) => continue,
                r => {
                    return Err(refused(r, "delete", &subject, |object, reason| {
                        ApplyError::Delete { object, reason }
                    }));
                }
            },
        }
    }
    Err(ApplyError::Delete {
        object: subject,
        reason: format!("the object kept changing ({CONFLICT_RETRIES} attempts)"),
    })
}

fn is_conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 409)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mooring_api::constants::{RECONCILE_ANNOTATION, SSA_ANNOTATION};

    fn meta(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> ObjectMeta {
        let map = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        ObjectMeta {
            labels: map(labels),
            annotations: map(annotations),
            ..Default::default()
        }
    }

    const OWNED: [(&str, &str); 2] = [
        (KUSTOMIZE_NAME_LABEL, "apps"),
        (KUSTOMIZE_NAMESPACE_LABEL, "flux"),
    ];

    #[test]
    fn only_owned_unprotected_objects_are_deleted() {
        assert_eq!(
            may_delete(&meta(&OWNED, &[]), &Owner::new("flux", "apps")),
            Ok(())
        );
        assert_eq!(
            may_delete(&meta(&OWNED, &[]), &Owner::new("other", "apps")),
            Err(Keep::NotOwned)
        );
        assert_eq!(
            may_delete(&meta(&OWNED[..1], &[]), &Owner::new("flux", "apps")),
            Err(Keep::NotOwned)
        );
        assert_eq!(
            may_delete(
                &meta(&OWNED, &[(PRUNE_ANNOTATION, "Disabled")]),
                &Owner::new("flux", "apps")
            ),
            Err(Keep::PruneDisabled)
        );
        assert_eq!(
            may_delete(
                &meta(&OWNED, &[(SSA_ANNOTATION, "Ignore")]),
                &Owner::new("flux", "apps")
            ),
            Err(Keep::Ignored)
        );
        assert_eq!(
            may_delete(
                &meta(&OWNED, &[(RECONCILE_ANNOTATION, "disabled")]),
                &Owner::new("flux", "apps")
            ),
            Err(Keep::Ignored)
        );
    }
}
