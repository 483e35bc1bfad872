//! The staged apply: resolve kinds, validate by dry-run before writing, write stage by stage.

use std::collections::{BTreeSet, HashMap};

use kube::api::DynamicObject;
use kube::{Client, ResourceExt};

use super::changeset::{Action, ChangeSet, ChangeSetEntry, ObjectKey, Observed};
use super::discovery::ResolvedKind;
use super::error::ApplyError;
use super::object::{self, Target};
use super::plan::{self, Provided, SsaMode};
use super::refusal::Refusal;
use super::refusal::{refusal, refused};
use super::stages::{CrdKinds, Stage, stage_of};
use super::takeover;
use super::{ApplyOptions, bounded};
use crate::health;
use crate::live::LiveObject;

/// What the validation decided for one object.
#[derive(Debug, Clone)]
enum Plan {
    /// Not validated yet: it needs something an earlier stage writes.
    Pending,
    /// Apply; the dry-run's resourceVersion tells Created/Configured/Unchanged afterwards.
    Apply {
        dry_run_version: Option<String>,
        takeover: bool,
    },
    /// An immutable field changed and recreation is allowed.
    Recreate,
    /// `IfNotPresent` and the object exists: leave it.
    Present,
    /// Known not to exist, in a set that only creates: applied without a dry run, and deleted
    /// again when another object of the set fails (see [`super`]).
    Create,
}

#[derive(Debug)]
struct Item {
    index: usize,
    stage: Stage,
    target: Target,
    mode: SsaMode,
    recreate_allowed: bool,
    /// The CRD in the set that defines this object's kind, when discovery does not know it yet.
    crd: Option<String>,
    plan: Plan,
}

/// Applies `objects` in stages (see [`super`]); `unchanged` (called with each object after
/// namespace defaulting) marks objects known to match the cluster, which are reported
/// Unchanged without any request. It is `Sync` so that the returned future is `Send`.
/// Talks to the API server.
pub async fn apply_all(
    client: &Client,
    objects: Vec<DynamicObject>,
    opts: &ApplyOptions,
    unchanged: &(dyn Fn(&DynamicObject) -> bool + Sync),
) -> Result<ChangeSet, ApplyError> {
    let crd_kinds = CrdKinds::from_objects(&objects);
    let mut report: Vec<(Stage, usize, ChangeSetEntry)> = Vec::new();
    let mut items = Vec::new();
    let mut errors = Vec::new();
    let mut memo: HashMap<(String, String), Option<ResolvedKind>> = HashMap::new();
    for (index, mut obj) in objects.into_iter().enumerate() {
        let Some(mut key) = ObjectKey::of(&obj) else {
            errors.push(ApplyError::InvalidObject {
                index,
                what: describe(&obj),
            });
            continue;
        };
        let mode = plan::ssa_mode(&obj.metadata);
        let api_version = key.api_version();
        let memo_key = (api_version.clone(), key.kind.clone());
        let known = match memo.get(&memo_key) {
            Some(known) => known.clone(),
            None => match opts.kinds.resolve(client, &api_version, &key.kind).await {
                Ok(known) => {
                    memo.insert(memo_key, known.clone());
                    known
                }
                Err(source) => {
                    errors.push(ApplyError::Discovery {
                        api_version,
                        source,
                    });
                    continue;
                }
            },
        };
        let (kind, crd) = match known {
            Some(kind) => (kind, None),
            None => match crd_kinds.resolve(&key.group, &key.version, &key.kind) {
                Some((kind, crd)) => (kind, Some(crd.to_string())),
                None if mode == SsaMode::Ignore => {
                    report.push((Stage::Rest, index, entry(key, Action::Skipped)));
                    continue;
                }
                None => {
                    errors.push(ApplyError::UnknownKind {
                        object: key.to_string(),
                        api_version,
                        kind: key.kind,
                    });
                    continue;
                }
            },
        };
        plan::place(&mut obj, kind.namespaced(), &opts.default_namespace);
        key.namespace = obj.metadata.namespace.clone();
        let stage = stage_of(&key.group, &key.kind);
        if mode == SsaMode::Ignore {
            report.push((stage, index, entry(key, Action::Skipped)));
            continue;
        }
        if unchanged(&obj) {
            report.push((stage, index, entry(key, Action::Unchanged)));
            continue;
        }
        let recreate_allowed = plan::recreate_allowed(&obj.metadata, opts.force);
        items.push(Item {
            index,
            stage,
            target: Target { key, obj, kind },
            mode,
            recreate_allowed,
            plan: Plan::Pending,
            crd,
        });
    }
    if let Some(e) = ApplyError::from_many(errors) {
        return Err(e);
    }

    // A set that only creates is not dry-run: what fails is undone by deleting what this
    // apply created. Otherwise validate everything that can be validated before the first
    // write, so an invalid object anywhere in the set usually leaves the cluster untouched.
    let create_only = !items.is_empty()
        && items
            .iter()
            .all(|i| i.mode != SsaMode::IfNotPresent && opts.absent.contains(&i.target.key.id()));
    if create_only {
        for item in &mut items {
            item.plan = Plan::Create;
        }
    } else {
        let provided = Provided::from_objects(items.iter().map(|i| &i.target.obj));
        let upfront: Vec<usize> = (0..items.len())
            .filter(|&i| items[i].crd.is_none())
            .collect();
        validate(client, opts, &mut items, &upfront, Some(&provided)).await?;
    }

    let mut applied = ChangeSet::default();
    // (item, uid) of the objects this apply created without a dry run.
    let mut created: Vec<(usize, String)> = Vec::new();
    for stage in Stage::ALL {
        let in_stage: Vec<usize> = (0..items.len())
            .filter(|&i| items[i].stage == stage)
            .collect();
        let pending: Vec<usize> = in_stage
            .iter()
            .copied()
            .filter(|&i| matches!(items[i].plan, Plan::Pending))
            .collect();
        validate(client, opts, &mut items, &pending, None)
            .await
            .map_err(|e| e.after(&applied))?;
        let writes = in_stage.iter().map(|&i| write(client, opts, &items[i]));
        let results = bounded(writes.collect(), opts.concurrency).await;
        let mut failures = Vec::new();
        for (&i, result) in in_stage.iter().zip(results) {
            match result {
                Ok((action, observed, uid)) => {
                    if let Some(uid) = uid {
                        created.push((i, uid));
                    }
                    let item = &items[i];
                    let mut line = entry(item.target.key.clone(), action);
                    line.observed = observed;
                    if action.is_write() {
                        applied.entries.push(line.clone());
                    }
                    report.push((stage, item.index, line));
                }
                Err(e) => failures.push(e),
            }
        }
        let mut failed = ApplyError::from_many(failures);
        if failed.is_none() && stage == Stage::ClusterDefinitions {
            failed = wait_for_crds(client, opts, &items, &in_stage, &applied)
                .await
                .err();
        }
        if let Some(e) = failed {
            if create_only {
                return Err(undo_creates(client, opts, &items, &created, e, &applied).await);
            }
            return Err(e.after(&applied));
        }
    }
    report.sort_by_key(|(stage, index, _)| (*stage, *index));
    Ok(ChangeSet {
        entries: report.into_iter().map(|(_, _, e)| e).collect(),
    })
}

fn entry(key: ObjectKey, action: Action) -> ChangeSetEntry {
    ChangeSetEntry {
        key,
        action,
        observed: None,
    }
}

fn describe(obj: &DynamicObject) -> String {
    let kind = obj.types.as_ref().map_or("", |t| t.kind.as_str());
    format!("kind {kind:?}, name {:?}", obj.name_any())
}

/// Dry-runs the objects at `indices` in parallel. With `provided`, a refusal explained by an
/// earlier stage's objects leaves the object Pending for a second try before its own stage.
async fn validate(
    client: &Client,
    opts: &ApplyOptions,
    items: &mut [Item],
    indices: &[usize],
    provided: Option<&Provided>,
) -> Result<(), ApplyError> {
    let checks = indices
        .iter()
        .map(|&i| validate_one(client, opts, &items[i], provided));
    let checks = bounded(checks.collect(), opts.concurrency).await;
    let mut errors = Vec::new();
    for (&i, checked) in indices.iter().zip(checks) {
        match checked {
            Ok(plan) => items[i].plan = plan,
            Err(e) => errors.push(e),
        }
    }
    ApplyError::from_many(errors).map_or(Ok(()), Err)
}

async fn validate_one(
    client: &Client,
    opts: &ApplyOptions,
    item: &Item,
    provided: Option<&Provided>,
) -> Result<Plan, ApplyError> {
    let target = &item.target;
    if item.mode == SsaMode::IfNotPresent && object::get_live(client, target).await?.is_some() {
        return Ok(Plan::Present);
    }
    let refused_by = match object::dry_run(client, target, &opts.field_manager).await {
        Ok(result) => {
            let managed = result
                .metadata
                .managed_fields
                .as_deref()
                .unwrap_or_default();
            return Ok(Plan::Apply {
                dry_run_version: result.metadata.resource_version.clone(),
                takeover: item.mode == SsaMode::Override
                    && takeover::needs_takeover(managed, &opts.field_manager),
            });
        }
        Err(e) => refusal(&e),
    };
    match refused_by {
        Refusal::Immutable(_) if item.recreate_allowed => Ok(Plan::Recreate),
        Refusal::Immutable(reason) => Err(ApplyError::Immutable {
            object: target.subject(),
            reason,
        }),
        r if provided.is_some_and(|p| p.explains(&r, &target.obj)) => Ok(Plan::Pending),
        // A 404 naming no object: the resource is not served (any more), e.g. its CRD was
        // deleted after discovery was cached. Forget it so the next lookup asks again.
        Refusal::NotFound { name, .. } if name.is_empty() => {
            let resource = &target.kind.resource;
            opts.kinds.forget(&resource.api_version);
            Err(ApplyError::UnknownKind {
                object: target.subject(),
                api_version: resource.api_version.clone(),
                kind: resource.kind.clone(),
            })
        }
        r => Err(refused(r, "patch", &target.subject(), |object, reason| {
            ApplyError::DryRun { object, reason }
        })),
    }
}

/// Writes one object; returns what happened and, when the server answered with the object, what
/// our write left (so later passes can tell another writer's change apart, and health is known
/// without a read).
///
/// The third value is the uid of an object created without a dry run ([`Plan::Create`]), for
/// [`undo_creates`].
async fn write(
    client: &Client,
    opts: &ApplyOptions,
    item: &Item,
) -> Result<(Action, Option<Observed>, Option<String>), ApplyError> {
    let target = &item.target;
    let manager = opts.field_manager.as_str();
    match &item.plan {
        Plan::Present => Ok((Action::Skipped, None, None)),
        Plan::Recreate => {
            object::recreate(client, target, manager, opts.wait_timeout).await?;
            Ok((Action::Recreated, None, None))
        }
        Plan::Create => {
            let mut result = object::apply(client, target, manager).await?;
            let managed = result.metadata.managed_fields.clone().unwrap_or_default();
            if managed
                .iter()
                .all(|e| e.manager.as_deref() == Some(manager))
            {
                let uid = result.metadata.uid.clone();
                return Ok((Action::Created, Some(observed(&result)), uid));
            }
            // It existed without our ownership labels (the caller's view only holds labelled
            // objects): adopted like any existing object, and never deleted by an undo.
            if item.mode == SsaMode::Override && takeover::needs_takeover(&managed, manager) {
                object::take_over_fields(client, target, manager).await?;
                result = object::apply(client, target, manager).await?;
            }
            Ok((Action::Configured, Some(observed(&result)), None))
        }
        Plan::Apply {
            dry_run_version,
            takeover,
        } => {
            if *takeover {
                object::take_over_fields(client, target, manager).await?;
            }
            let result = object::apply(client, target, manager).await?;
            let action = plan::applied_action(
                dry_run_version.as_deref(),
                result.metadata.resource_version.as_deref(),
            );
            Ok((action, Some(observed(&result)), None))
        }
        // validate() leaves nothing Pending before a stage is written.
        Plan::Pending => Err(ApplyError::DryRun {
            object: target.subject(),
            reason: "was not validated".into(),
        }),
    }
}

/// What the server's answer to an apply shows: the write, and the object's health.
fn observed(result: &DynamicObject) -> Observed {
    Observed {
        live: LiveObject::of(&result.metadata),
        health: health::compute(&serde_json::to_value(result).unwrap_or_default()),
    }
}

/// Deletes the objects of a create-only apply that were created before `failure` (guarded by
/// their uid, so an object someone replaced meanwhile is left alone), latest stage first, and
/// returns `failure`; when a deletion fails too, what may remain is reported with it. Talks to
/// the API server.
async fn undo_creates(
    client: &Client,
    opts: &ApplyOptions,
    items: &[Item],
    created: &[(usize, String)],
    failure: ApplyError,
    applied: &ChangeSet,
) -> ApplyError {
    let mut created: Vec<&(usize, String)> = created.iter().collect();
    created.sort_by_key(|(i, _)| std::cmp::Reverse(items[*i].stage));
    let deletes = created
        .iter()
        .map(|(i, uid)| object::delete_created(client, &items[*i].target, uid));
    let results = bounded(deletes.collect(), opts.concurrency).await;
    let errors: Vec<ApplyError> = results.into_iter().filter_map(Result::err).collect();
    if errors.is_empty() {
        tracing::debug!(undone = created.len(), error = %failure, "undid the creates of a failed apply");
        return failure;
    }
    let mut all = vec![failure];
    all.extend(errors);
    ApplyError::Many(all).after(applied)
}

/// Waits until every CRD written in the first stage, and every CRD that a later object's kind
/// comes from, is Established.
async fn wait_for_crds(
    client: &Client,
    opts: &ApplyOptions,
    items: &[Item],
    first_stage: &[usize],
    applied: &ChangeSet,
) -> Result<(), ApplyError> {
    let written = first_stage
        .iter()
        .map(|&i| &items[i].target.key)
        .filter(|k| {
            k.kind == "CustomResourceDefinition"
                && applied.action_of(k).is_some_and(Action::is_write)
        });
    let mut names: BTreeSet<String> = written.map(|k| k.name.clone()).collect();
    names.extend(items.iter().filter_map(|i| i.crd.clone()));
    let waits = names
        .iter()
        .map(|name| object::wait_established(client, name, opts.wait_timeout));
    let waits = bounded(waits.collect(), opts.concurrency).await;
    ApplyError::from_many(waits.into_iter().filter_map(Result::err).collect()).map_or(Ok(()), Err)
}
