//! Wiring: the Kustomization watch, source and dependency triggers, live-view wake-ups, and the
//! controller loop. Every trigger is a watch plus an index lookup; nothing polls.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Api;
use kube::core::{PartialObjectMeta, PartialObjectMetaExt};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use mooring_api::Kustomization;
use mooring_api::conditions::find_condition;
use mooring_api::constants::RECONCILE_REQUESTED_AT_ANNOTATION;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

use mooring_runtime::runner;
use mooring_runtime::stores::{departures, departures_as, slim, stored_objects, tee};

use crate::context::Context;
use crate::reconciler::{error_policy, reconcile};
use crate::source::Source;

fn hash_of(value: impl Hash) -> Option<u64> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut hasher);
    Some(hasher.finish())
}

/// What should start a reconcile of the object itself: spec, reconcile requests, deletion.
/// The controller's own status writes change none of these.
fn trigger_hash(ks: &Kustomization) -> Option<u64> {
    hash_of((
        ks.meta().generation,
        ks.annotations().get(RECONCILE_REQUESTED_AT_ANNOTATION),
        ks.meta().deletion_timestamp.is_some(),
        ks.finalizers(),
    ))
}

/// A Kustomization's readiness, which its dependents wait on.
fn readiness_hash(ks: &Kustomization) -> Option<u64> {
    let status = ks.status.clone().unwrap_or_default();
    // The message too: a dependent's waiting message carries it (the blocking chain), so a
    // dependent is woken to rewrite its own when it changes.
    let ready =
        find_condition(&status.conditions, "Ready").map(|c| (c.status.clone(), c.message.clone()));
    hash_of((
        ready,
        status.observed_generation,
        status.last_applied_revision,
    ))
}

/// A GitRepository's current artifact.
fn artifact_hash(repo: &Source) -> Option<u64> {
    let status = repo.status.as_ref();
    let artifact = status
        .and_then(|s| s.artifact.as_ref())
        .map(|a| (&a.revision, &a.digest, &a.url));
    // Without an artifact, the Ready message or the suspension says why, and a waiting
    // Kustomization's message carries it: wake the users when it changes.
    let why_none = match artifact {
        Some(_) => None,
        None => Some((
            status
                .and_then(|s| find_condition(&s.conditions, "Ready"))
                .map(|c| c.message.clone()),
            repo.spec.suspend,
        )),
    };
    // A source being deleted wakes its users: they report it instead of applying on.
    let deleting = repo.metadata.deletion_timestamp.is_some();
    hash_of((artifact, why_none, deleting))
}

/// The Kustomizations of `kustomizations` whose source is `repo`. Called for every new
/// artifact, over every Kustomization: the names are compared in place, nothing is copied.
fn using<'a>(
    kustomizations: &'a [Arc<Kustomization>],
    repo: &'a Source,
) -> impl Iterator<Item = &'a Arc<Kustomization>> {
    let repo_ns = repo.metadata.namespace.as_deref();
    let repo_name = repo.metadata.name.as_deref().unwrap_or_default();
    kustomizations.iter().filter(move |ks| {
        let source = &ks.spec.source_ref;
        source.name == repo_name
            && source
                .namespace
                .as_deref()
                .or(ks.metadata.namespace.as_deref())
                == repo_ns
    })
}

/// The Kustomizations of `kustomizations` that depend on the one `dep` names (its metadata).
/// Called for every change of a Kustomization's readiness and every departure, over every
/// Kustomization: nothing is copied.
fn dependents_of(
    kustomizations: &[Arc<Kustomization>],
    dep: &ObjectMeta,
) -> Vec<ObjectRef<Kustomization>> {
    let dep_ns = dep.namespace.as_deref();
    let dep_name = dep.name.as_deref().unwrap_or_default();
    kustomizations
        .iter()
        .filter(|ks| {
            ks.spec.depends_on.iter().any(|d| {
                d.name == dep_name
                    && d.namespace.as_deref().or(ks.metadata.namespace.as_deref()) == dep_ns
            })
        })
        .map(|ks| ObjectRef::from_obj(&**ks))
        .collect()
}

/// The Kustomizations in `store` that decrypt with the keys of `secret`.
fn decrypting_with(
    store: &Store<Kustomization>,
    secret: &PartialObjectMeta<Secret>,
) -> Vec<ObjectRef<Kustomization>> {
    let secret_ns = secret.namespace();
    let secret_name = secret.name_any();
    store
        .state()
        .into_iter()
        .filter(|ks| {
            ks.spec
                .decryption
                .as_ref()
                .and_then(|d| d.secret_ref.as_ref())
                .is_some_and(|r| r.name == secret_name)
                && ks.namespace() == secret_ns
        })
        .map(|ks| ObjectRef::from_obj(&*ks))
        .collect()
}

/// The writers behind the stores in [`Context`], fed by [`run`].
pub struct Writers {
    /// Feeds `Context::kustomizations`.
    pub kustomizations: reflector::store::Writer<Kustomization>,
    /// Feeds `Context::sources`.
    pub sources: reflector::store::Writer<Source>,
}

/// Runs the Kustomization controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    writers: Writers,
    wakeups: mpsc::UnboundedReceiver<ObjectRef<Kustomization>>,
    watch_config: watcher::Config,
    concurrency: u16,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let ks_api: Api<Kustomization> = Api::all(ctx.client.clone());
    let repo_api: Api<Source> = Api::all(ctx.client.clone());
    // Key Secrets live in their Kustomization's namespace: the namespace restriction of the
    // Kustomization watch applies, its label selector (sharding) does not.
    let mut secret_config = watcher::Config::default().any_semantic();
    secret_config.field_selector = watch_config.field_selector.clone();
    let events = watcher(ks_api, watch_config)
        .default_backoff()
        .modify(slim)
        .reflect(writers.kustomizations);
    // A Kustomization that is gone wakes its dependents, which then report it missing instead
    // of staying Ready until their interval.
    let (events, gone_kustomizations) = departures_as(events, |metadata| {
        metadata.into_response_partial::<Kustomization>()
    });
    let (primary, changes) = tee(stored_objects(events, ctx.kustomizations.clone()));
    // A change seen while the object's pass runs waits for its end; the event of our own
    // finalizer write starts no pass (see `crate::wakes`).
    let wakes = ctx.wakes.clone();
    let primary = primary
        .predicate_filter(trigger_hash, Default::default())
        .filter(move |event| {
            futures::future::ready(match event {
                Ok(ks) => wakes.itself(ks),
                Err(_) => true,
            })
        });
    // Sources are not sharded by our label selector: any Kustomization may use any source.
    // After the store: a Kustomization woken by a new artifact reads it from there.
    let sources = watcher(repo_api, watcher::Config::default())
        .default_backoff()
        .modify(slim)
        .reflect(writers.sources);
    // A source that is gone wakes its users too: one deleted without the source-controller's
    // finalizer (that controller not running) comes with no "being deleted" change first, and
    // one deleted while the watch was down comes with no event at all.
    let (sources, gone_sources) = departures(sources);
    let sources = futures::stream::select(
        stored_objects(sources, ctx.sources.clone())
            .predicate_filter(artifact_hash, Default::default()),
        gone_sources,
    );
    // From the same watch, after the store: a dependent then reads its dependency's new
    // readiness.
    let readiness = changes.predicate_filter(readiness_hash, Default::default());
    // Key rotation: a change of a decryption Secret reconciles the Kustomizations using it.
    // Metadata only: the watch never carries Secret data.
    let secret_api: Api<PartialObjectMeta<Secret>> = Api::all(ctx.client.clone());
    let secrets = watcher(secret_api, secret_config)
        .default_backoff()
        .touched_objects();
    let by_secret = ctx.kustomizations.clone();
    let by_source = ctx.kustomizations.clone();
    let ahead = ctx.clone();
    let by_dependency = ctx.kustomizations.clone();
    let by_departed = ctx.kustomizations.clone();
    let triggers = vec![
        runner::changed(primary),
        runner::related(sources, move |repo: Source| {
            let all = by_source.state();
            using(&all, &repo)
                .map(|ks| {
                    crate::steps::render::build_ahead(&ahead, ks, &repo);
                    ObjectRef::from_obj(&**ks)
                })
                .collect::<Vec<_>>()
        }),
        runner::related(readiness, move |dep: Kustomization| {
            dependents_of(&by_dependency.state(), &dep.metadata)
        }),
        runner::related(
            gone_kustomizations,
            move |dep: PartialObjectMeta<Kustomization>| {
                dependents_of(&by_departed.state(), &dep.metadata)
            },
        ),
        runner::related(secrets, move |secret: PartialObjectMeta<Secret>| {
            decrypting_with(&by_secret, &secret)
        }),
        runner::requested(UnboundedReceiverStream::new(wakeups)),
    ];
    let workers = runner::Workers {
        concurrency,
        metrics: Some(ctx.metrics.queue.clone()),
    };
    let controller = runner::run(
        ctx.kustomizations.clone(),
        triggers,
        reconcile,
        error_policy,
        ctx.clone(),
        workers,
        shutdown,
    );
    controller.await;
    ctx.local.live.shutdown();
    ctx.remotes.shutdown();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kustomization(ns: &str, name: &str, spec: serde_json::Value) -> Arc<Kustomization> {
        let mut spec_with = serde_json::json!({"interval": "1m", "prune": true});
        if let (Some(all), Some(more)) = (spec_with.as_object_mut(), spec.as_object()) {
            all.extend(more.clone());
        }
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "kustomize.mooring.dev/v1", "kind": "Kustomization",
                "metadata": {"name": name, "namespace": ns},
                "spec": spec_with,
            }))
            .expect("a Kustomization"),
        )
    }

    fn names(refs: Vec<ObjectRef<Kustomization>>) -> Vec<String> {
        let mut names: Vec<String> = refs
            .into_iter()
            .map(|r| format!("{}/{}", r.namespace.unwrap_or_default(), r.name))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_source_wakes_the_kustomizations_that_name_it_in_its_namespace() {
        let source =
            |name: &str| serde_json::json!({"sourceRef": {"kind": "GitRepository", "name": name}});
        let elsewhere = serde_json::json!({"sourceRef": {"kind": "GitRepository", "name": "repo", "namespace": "apps"}});
        let all = [
            kustomization("apps", "same-namespace", source("repo")),
            kustomization("apps", "other-source", source("other")),
            kustomization("team", "same-name-other-namespace", source("repo")),
            kustomization("team", "cross-namespace", elsewhere),
        ];
        let repo: Source = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "repo", "namespace": "apps"},
        }))
        .expect("a source");
        assert_eq!(
            names(
                using(&all, &repo)
                    .map(|ks| ObjectRef::from_obj(&**ks))
                    .collect()
            ),
            ["apps/same-namespace", "team/cross-namespace"]
        );
    }

    #[test]
    fn a_kustomization_wakes_its_dependents_in_its_namespace() {
        let source = serde_json::json!({"kind": "GitRepository", "name": "repo"});
        let depends =
            |deps: serde_json::Value| serde_json::json!({"sourceRef": source, "dependsOn": deps});
        let all = [
            kustomization(
                "apps",
                "after-infra",
                depends(serde_json::json!([{"name": "infra"}])),
            ),
            kustomization(
                "apps",
                "after-other",
                depends(serde_json::json!([{"name": "other"}])),
            ),
            kustomization(
                "team",
                "after-own-infra",
                depends(serde_json::json!([{"name": "infra"}])),
            ),
            kustomization(
                "team",
                "after-apps-infra",
                depends(
                    serde_json::json!([{"name": "other"}, {"name": "infra", "namespace": "apps"}]),
                ),
            ),
        ];
        let infra = kustomization("apps", "infra", serde_json::json!({"sourceRef": source}));
        assert_eq!(
            names(dependents_of(&all, &infra.metadata)),
            ["apps/after-infra", "team/after-apps-infra"]
        );
    }
}
