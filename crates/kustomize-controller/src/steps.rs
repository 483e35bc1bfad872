//! The steps of a Kustomization pass. Steps that talk to the API server or git say so.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use mooring_api::conditions::reasons;
use mooring_api::constants::KUSTOMIZE_FIELD_MANAGER;
use mooring_api::kustomization::ResourceInventory;
use mooring_api::{DeletionPolicy, Kustomization};
use mooring_runtime::backoff::jittered_interval;

use crate::apply::{self, ApplyOptions, ObjectKey};
use crate::context::Context;
use crate::decide::{AppliedRender, Outcome, dependencies_ready};
use crate::drift::{Owner, Seen, drifted};
use crate::error::Error;
use crate::health::{self, Health, HealthStatus, ObjectLabel};
use crate::inventory::{self, ObjectId};
use crate::reconciler::{Pass, publish};
use crate::state::{Applied, hash_json};
use crate::{build, manifests, substitute};

/// Runs one pass: dependencies, source, render, apply, prune, health.
pub async fn run(ks: &Kustomization, ctx: &Context, started: Instant) -> Result<Pass, Error> {
    let ns = ks.namespace().unwrap_or_default();
    let name = ks.name_any();
    let owner: Owner = (ns.clone(), name.clone());
    let spec = &ks.spec;
    let invalid = |message: String| Error::InvalidSpec {
        reason: reasons::RECONCILIATION_FAILED,
        message,
    };
    let interval = spec
        .interval()
        .map_err(|e| invalid(format!("spec.interval: {e}")))?;
    let timeout = spec
        .timeout()
        .map_err(|e| invalid(format!("spec.timeout: {e}")))?;

    let source_ns = spec
        .source_ref
        .namespace
        .clone()
        .unwrap_or_else(|| ns.clone());
    if source_ns != ns && !ctx.settings.allow_cross_namespace_refs {
        return Err(Error::InvalidSpec {
            reason: reasons::ACCESS_DENIED,
            message: format!(
                "spec.sourceRef.namespace: cross-namespace references are disabled on this controller ({source_ns}/{})",
                spec.source_ref.name
            ),
        });
    }
    check_dependencies(ks, ctx, &ns)?;
    let (revision, url, digest) = source_artifact(ctx, &source_ns, &spec.source_ref.name)?;

    let client = ctx
        .clients
        .get(&ns, spec.service_account_name.as_deref())
        .map_err(|e| Error::Apply {
            revision: revision.clone(),
            reason: reasons::RECONCILIATION_FAILED,
            message: e.to_string(),
        })?;

    let mut state = ctx.applied.get(&owner);
    render(ks, ctx, &mut state, &revision, &url, &digest).await?;

    // After a restart nothing is remembered: health must be checked again before Ready.
    let first_pass = state.markers.is_empty();
    let changes = ctx.drift.take_changes(&owner);
    let drift = drifted(&changes, &state.markers);
    let desired = state.desired.clone();
    // A watch that re-listed may have missed deletions: trust nothing remembered then.
    let epoch = ctx.drift.epoch();
    let resynced = state.drift_epoch != epoch;
    state.drift_epoch = epoch;
    let unchanged_ids: HashSet<String> = desired
        .iter()
        .filter(|(id, hash)| {
            !resynced
                && state.applied_hashes.get(id) == Some(hash)
                && state.markers.contains_key(id)
                && !drift.contains(id)
        })
        .map(|(id, _)| id.clone())
        .collect();
    let unchanged = |o: &DynamicObject| unchanged_ids.contains(&object_id(o));

    let opts = ApplyOptions {
        field_manager: KUSTOMIZE_FIELD_MANAGER.to_string(),
        default_namespace: spec.target_namespace.clone().unwrap_or_else(|| ns.clone()),
        force: spec.force,
        concurrency: ctx.settings.apply_concurrency,
        wait_timeout: timeout,
        kinds: ctx.kinds.clone(),
    };
    let apply_failed = |e: apply::ApplyError, reason: &'static str| Error::Apply {
        revision: revision.clone(),
        reason,
        message: e.to_string(),
    };
    let changeset = apply::apply_all(&client, state.objects.clone(), &opts, &unchanged)
        .await
        .map_err(|e| apply_failed(e, reasons::RECONCILIATION_FAILED))?;

    let mut wrote = false;
    for entry in &changeset.entries {
        ctx.metrics
            .objects
            .with_label_values(&[entry.action.as_str()])
            .inc();
        let id = key_id(&entry.key);
        if entry.action.is_write() {
            wrote = true;
            if drift.contains(&id) {
                ctx.metrics.drift_corrections.inc();
            }
        }
        if let Some(observed) = &entry.observed {
            let seen = Seen {
                generation: observed.generation,
                resource_version: observed.resource_version.clone(),
                deleted: false,
            };
            state.markers.insert(id, seen);
        }
    }
    for (id, hash) in &desired {
        state.applied_hashes.insert(id.clone(), *hash);
    }
    for obj in &state.objects {
        if let Some(kind) = opts.kinds.cached(
            obj.types
                .as_ref()
                .map(|t| t.api_version.as_str())
                .unwrap_or(""),
            obj.types.as_ref().map(|t| t.kind.as_str()).unwrap_or(""),
        ) {
            ctx.drift.ensure_watch(&kind.resource);
        }
    }

    let new_inventory = inventory::inventory_of(&state.objects).map_err(|e| Error::Build {
        revision: revision.clone(),
        message: e.to_string(),
    })?;
    let old_inventory = ks
        .status
        .as_ref()
        .and_then(|s| s.inventory.clone())
        .unwrap_or_default();
    let mut all_changes = changeset.clone();
    if spec.prune {
        let stale = inventory::diff(&old_inventory, &state.objects).map_err(|e| Error::Build {
            revision: revision.clone(),
            message: e.to_string(),
        })?;
        if !stale.is_empty() {
            let keys = stale.iter().map(|e| entry_key(&e.id, &e.version)).collect();
            let pruned = apply::prune(&client, keys, (&name, &ns), &opts)
                .await
                .map_err(|e| apply_failed(e, reasons::PRUNE_FAILED))?;
            for entry in &pruned.entries {
                ctx.metrics
                    .objects
                    .with_label_values(&[entry.action.as_str()])
                    .inc();
                state.markers.remove(&key_id(&entry.key));
                state.applied_hashes.remove(&key_id(&entry.key));
            }
            wrote |= pruned.has_writes();
            all_changes.extend(pruned);
        }
    }
    if all_changes.has_writes() {
        let lines: Vec<String> = all_changes.writes().map(|e| e.to_string()).collect();
        publish(
            ctx,
            ks,
            EventType::Normal,
            reasons::PROGRESSING,
            lines.join("\n"),
        )
        .await;
    }

    let last_applied = ks
        .status
        .as_ref()
        .and_then(|s| s.last_applied_revision.clone());
    let last_digest = ks
        .status
        .as_ref()
        .and_then(|s| s.history.first().map(|h| h.digest.clone()));
    let applied = (last_applied.as_deref() != Some(revision.as_str())
        || last_digest.as_deref() != Some(state.render_digest.as_str()))
    .then(|| AppliedRender {
        digest: state.render_digest.clone(),
        duration: format!("{:.3}s", started.elapsed().as_secs_f64()),
    });

    let check_health = spec.wait || !spec.health_checks.is_empty();
    if wrote || (first_pass && state.health_since.is_none()) {
        state.health_since = Some(Instant::now());
    }
    let outcome = if check_health && state.health_since.is_some() {
        let summary = assess_health(ks, &client, &state.objects, &opts).await;
        if summary.all_current {
            state.health_since = None;
            Outcome::Ready {
                revision: revision.clone(),
                inventory: new_inventory,
                applied,
            }
        } else if !summary.failed.is_empty()
            || state
                .health_since
                .is_some_and(|since| since.elapsed() >= timeout)
        {
            let message = if summary.failed.is_empty() {
                format!("timeout waiting for: {}", summary.message)
            } else {
                summary.message
            };
            ctx.applied.put(owner, state);
            return Err(Error::Unhealthy {
                revision,
                message,
                inventory: new_inventory,
            });
        } else {
            let remaining = state
                .health_since
                .map(|since| timeout.saturating_sub(since.elapsed()))
                .unwrap_or(timeout);
            ctx.applied.put(owner, state);
            return Ok(Pass {
                outcome: Outcome::HealthPending {
                    revision,
                    inventory: new_inventory,
                    message: summary.message,
                    applied,
                },
                // Watches on the managed objects wake us sooner; this bounds the wait.
                requeue: remaining.max(Duration::from_secs(1)),
            });
        }
    } else {
        Outcome::Ready {
            revision: revision.clone(),
            inventory: new_inventory,
            applied,
        }
    };
    ctx.applied.put(owner, state);
    Ok(Pass {
        outcome,
        requeue: jittered_interval(interval),
    })
}

/// Fails with `DependencyNotReady` unless every `dependsOn` Kustomization is Ready.
fn check_dependencies(ks: &Kustomization, ctx: &Context, ns: &str) -> Result<(), Error> {
    if ks.spec.depends_on.is_empty() {
        return Ok(());
    }
    let found: Vec<(String, Option<Arc<Kustomization>>)> = ks
        .spec
        .depends_on
        .iter()
        .map(|d| {
            let dep_ns = d.namespace.clone().unwrap_or_else(|| ns.to_string());
            let key = format!("{dep_ns}/{}", d.name);
            (
                key,
                ctx.kustomizations
                    .get(&ObjectRef::new(&d.name).within(&dep_ns)),
            )
        })
        .collect();
    let refs: Vec<(String, Option<&Kustomization>)> = found
        .iter()
        .map(|(k, d)| (k.clone(), d.as_deref()))
        .collect();
    dependencies_ready(&refs).map_err(|message| Error::Waiting {
        reason: reasons::DEPENDENCY_NOT_READY,
        message,
    })
}

/// The source's current artifact (revision, url, digest), from the watch cache.
fn source_artifact(ctx: &Context, ns: &str, name: &str) -> Result<(String, String, String), Error> {
    let waiting = |message: String| Error::Waiting {
        reason: reasons::ARTIFACT_FAILED,
        message,
    };
    let source = ctx
        .sources
        .get(&ObjectRef::new(name).within(ns))
        .ok_or_else(|| waiting(format!("GitRepository '{ns}/{name}' not found")))?;
    let artifact = source
        .status
        .as_ref()
        .and_then(|s| s.artifact.clone())
        .ok_or_else(|| waiting(format!("GitRepository '{ns}/{name}' has no artifact yet")))?;
    let digest = artifact.digest.clone().ok_or_else(|| {
        waiting(format!(
            "GitRepository '{ns}/{name}' artifact has no digest"
        ))
    })?;
    Ok((artifact.revision, artifact.url, digest))
}

/// Downloads, builds, substitutes and parses the render unless the cached one is current.
/// Talks to the artifact server and, for `substituteFrom`, the API server.
async fn render(
    ks: &Kustomization,
    ctx: &Context,
    state: &mut Applied,
    revision: &str,
    url: &str,
    digest: &str,
) -> Result<(), Error> {
    let ns = ks.namespace().unwrap_or_default();
    let spec = &ks.spec;
    let build_err = |message: String| Error::Build {
        revision: revision.to_string(),
        message,
    };
    let vars: BTreeMap<String, String> = match &spec.post_build {
        Some(post_build) => substitute::gather_vars(&ctx.client, &ns, post_build)
            .await
            .map_err(|e| build_err(e.to_string()))?,
        None => BTreeMap::new(),
    };
    let render_key = hash_json(&(digest, ks.metadata.generation, &vars));
    if state.render_key == render_key && !state.objects.is_empty() {
        return Ok(());
    }
    let extracted = ctx
        .artifacts
        .get(url, digest)
        .await
        .map_err(|e| Error::Artifact {
            revision: revision.to_string(),
            message: e.to_string(),
        })?;
    let mut input = build::BuildInput::new(&extracted.dir, &ctx.settings.kustomize).with_spec(spec);
    input.allow_remote_bases = ctx.settings.allow_remote_bases;
    input.timeout = spec.timeout().unwrap_or(input.timeout);
    input.work_root = Some(ctx.artifacts.scratch_dir());
    let mut yaml = build::build(input)
        .await
        .map_err(|e| build_err(e.to_string()))?;
    if substitute::should_substitute(spec.post_build.as_ref(), &vars) {
        yaml = substitute::substitute(&yaml, &vars, ctx.settings.strict_substitution)
            .map_err(|e| build_err(e.to_string()))?;
    }
    let mut objects = manifests::parse(&yaml).map_err(|e| build_err(e.to_string()))?;
    if objects.is_empty() {
        return Err(build_err(format!(
            "the render of '{}' is empty: refusing to apply, and nothing is pruned",
            spec.path.as_deref().unwrap_or("./")
        )));
    }
    if let Some(common) = &spec.common_metadata {
        manifests::set_common_metadata(&mut objects, common);
    }
    manifests::stamp_owner(&mut objects, &ks.name_any(), &ns);
    evict_unused_artifacts(ctx).await;
    state.render_digest =
        inventory::render_digest(&objects).map_err(|e| build_err(e.to_string()))?;
    state.render_key = render_key;
    state.revision = revision.to_string();
    // Ids and manifest hashes are computed once per render, not on every pass.
    state.desired = objects
        .iter()
        .map(|o| (object_id(o), hash_json(o)))
        .collect();
    state.objects = objects;
    Ok(())
}

/// Removes extracted artifacts that no source points at any more; called after a new render,
/// so the cache holds about one tree per source.
async fn evict_unused_artifacts(ctx: &Context) {
    let keep: HashSet<String> = ctx
        .sources
        .state()
        .iter()
        .filter_map(|s| s.status.as_ref()?.artifact.as_ref()?.digest.clone())
        .collect();
    match ctx.artifacts.retain(&keep).await {
        Ok(0) => {}
        Ok(evicted) => tracing::debug!(evicted, "evicted unused artifacts"),
        Err(e) => tracing::warn!(error = %e, "evicting unused artifacts failed"),
    }
}

/// Health of the objects named by `wait` (all) or `healthChecks`. Talks to the API server: one
/// GET per object, only while a rollout is being watched.
async fn assess_health(
    ks: &Kustomization,
    client: &kube::Client,
    objects: &[DynamicObject],
    opts: &ApplyOptions,
) -> health::Summary {
    let ns = ks.namespace().unwrap_or_default();
    let mut targets: Vec<(String, String, Option<String>, String)> = Vec::new();
    if ks.spec.wait {
        for o in objects {
            let types = o.types.clone().unwrap_or_default();
            targets.push((types.api_version, types.kind, o.namespace(), o.name_any()));
        }
    }
    for check in &ks.spec.health_checks {
        targets.push((
            // The documented default: most health checks name Deployments.
            check
                .api_version
                .clone()
                .unwrap_or_else(|| "apps/v1".to_string()),
            check.kind.clone(),
            check.namespace.clone().or_else(|| Some(ns.clone())),
            check.name.clone(),
        ));
    }
    let mut results = Vec::new();
    for (api_version, kind, namespace, name) in targets {
        let label = ObjectLabel::new(&kind, namespace.as_deref(), &name);
        let resolved = match opts.kinds.resolve(client, &api_version, &kind).await {
            Ok(Some(resolved)) => resolved,
            _ => {
                results.push((label, Health::new(HealthStatus::NotFound, "kind not found")));
                continue;
            }
        };
        let api: Api<DynamicObject> = match (resolved.namespaced(), &namespace) {
            (true, Some(n)) => Api::namespaced_with(client.clone(), n, &resolved.resource),
            (true, None) => {
                Api::namespaced_with(client.clone(), &opts.default_namespace, &resolved.resource)
            }
            (false, _) => Api::all_with(client.clone(), &resolved.resource),
        };
        let health = match api.get_opt(&name).await {
            Ok(Some(obj)) => health::compute(&serde_json::to_value(&obj).unwrap_or_default()),
            Ok(None) => Health::new(HealthStatus::NotFound, "not found"),
            Err(e) => Health::new(HealthStatus::Unknown, e.to_string()),
        };
        results.push((label, health));
    }
    health::summarize(&results)
}

/// Deletes what the Kustomization applied, as its `deletionPolicy` says. Talks to the API server.
pub async fn cleanup(ks: &Kustomization, ctx: &Context) -> Result<(), Error> {
    let ns = ks.namespace().unwrap_or_default();
    let name = ks.name_any();
    let owner: Owner = (ns.clone(), name.clone());
    ctx.applied.forget(&owner);
    let _ = ctx.drift.take_changes(&owner);
    let policy = ks.spec.deletion_policy();
    let delete = match policy {
        DeletionPolicy::Delete | DeletionPolicy::WaitForTermination => true,
        DeletionPolicy::MirrorPrune => ks.spec.prune,
        DeletionPolicy::Orphan => false,
    };
    let inventory: ResourceInventory = ks
        .status
        .as_ref()
        .and_then(|s| s.inventory.clone())
        .unwrap_or_default();
    if !delete || inventory.entries.is_empty() || ks.spec.suspend {
        return Ok(());
    }
    let client = ctx
        .clients
        .get(&ns, ks.spec.service_account_name.as_deref())
        .map_err(|e| Error::Finalizer(e.to_string()))?;
    let mut keys = Vec::new();
    for entry in &inventory.entries {
        let parsed =
            inventory::InventoryEntry::parse(entry).map_err(|e| Error::Finalizer(e.to_string()))?;
        keys.push(entry_key(&parsed.id, &parsed.version));
    }
    let opts = ApplyOptions::new(ns.clone());
    let wait = matches!(policy, DeletionPolicy::WaitForTermination);
    let deleted = apply::delete_all(&client, keys, (&name, &ns), &opts, wait)
        .await
        .map_err(|e| Error::Finalizer(e.to_string()))?;
    if deleted.has_writes() {
        let lines: Vec<String> = deleted.writes().map(|e| e.to_string()).collect();
        publish(ctx, ks, EventType::Normal, "Deleted", lines.join("\n")).await;
    }
    Ok(())
}

/// The inventory id of a rendered object.
fn object_id(obj: &DynamicObject) -> String {
    ObjectId::of(obj)
        .map(|id| id.to_string())
        .unwrap_or_default()
}

/// The inventory id of an apply key.
fn key_id(key: &ObjectKey) -> String {
    ObjectId {
        namespace: key.namespace.clone().unwrap_or_default(),
        name: key.name.clone(),
        group: key.group.clone(),
        kind: key.kind.clone(),
    }
    .to_string()
}

/// The apply key of an inventory entry. Its `v` is stored as an apiVersion (`apps/v1`), while the
/// key holds the group and the bare version apart.
fn entry_key(id: &ObjectId, api_version: &str) -> ObjectKey {
    let (_, version) = apply::split_api_version(api_version);
    ObjectKey {
        group: id.group.clone(),
        version: version.to_string(),
        kind: id.kind.clone(),
        namespace: (!id.namespace.is_empty()).then(|| id.namespace.clone()),
        name: id.name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_entries_of_named_groups_give_the_bare_version() {
        let id = ObjectId::parse("default_reader_rbac.authorization.k8s.io_Role").expect("id");
        let key = entry_key(&id, "rbac.authorization.k8s.io/v1");
        assert_eq!(key.api_version(), "rbac.authorization.k8s.io/v1");
        assert_eq!(key.version, "v1");
        let core = ObjectId::parse("default_settings__ConfigMap").expect("id");
        assert_eq!(entry_key(&core, "v1").api_version(), "v1");
    }
}
