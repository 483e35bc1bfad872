//! Wiring: the GitRepository watch, the include trigger, and the controller loop.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Resource, ResourceExt};
use mooring_api::constants::RECONCILE_REQUESTED_AT_ANNOTATION;
use mooring_api::{GitRepository, Receiver};
use mooring_runtime::runner;
use mooring_runtime::stores::{slim, stored_objects, tee};

use crate::context::{Context, Feeds};
use crate::reconciler::{error_policy, reconcile};

/// A hash of what should start a reconcile: the spec (generation), a reconcile request, and
/// deletion. The controller's own status writes change none of these, so they do not echo.
fn trigger_hash(repo: &GitRepository) -> Option<u64> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    repo.meta().generation.hash(&mut hasher);
    repo.annotations()
        .get(RECONCILE_REQUESTED_AT_ANNOTATION)
        .hash(&mut hasher);
    repo.meta().deletion_timestamp.is_some().hash(&mut hasher);
    repo.finalizers().hash(&mut hasher);
    Some(hasher.finish())
}

/// A hash of a GitRepository's current artifact, to wake the repositories that include it.
fn artifact_hash(repo: &GitRepository) -> Option<u64> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    repo.status
        .as_ref()
        .and_then(|s| s.artifact.as_ref())
        .map(|a| (&a.revision, &a.digest))
        .hash(&mut hasher);
    Some(hasher.finish())
}

/// The GitRepositories that include `changed`. Called for every new artifact, over every
/// GitRepository: the names are compared in place, nothing is copied.
fn includers_of(
    repos: &[Arc<GitRepository>],
    changed: &GitRepository,
) -> Vec<ObjectRef<GitRepository>> {
    let ns = changed.metadata.namespace.as_deref();
    let name = changed.metadata.name.as_deref().unwrap_or_default();
    repos
        .iter()
        .filter(|r| {
            r.spec.include.iter().any(|i| i.repository.name == name)
                && r.metadata.namespace.as_deref() == ns
        })
        .map(|r| ObjectRef::from_obj(&**r))
        .collect()
}

/// The GitRepositories that verify signatures with the keys of `secret`: a change of the
/// Secret verifies their revision again (a removed key withdraws it, an added one lets a
/// refused revision through).
fn verifying_with(
    repos: &[Arc<GitRepository>],
    secret: &PartialObjectMeta<Secret>,
) -> Vec<ObjectRef<GitRepository>> {
    let ns = secret.namespace();
    let name = secret.name_any();
    repos
        .iter()
        .filter(|r| {
            r.spec
                .verify
                .as_ref()
                .is_some_and(|v| v.secret_ref.name == name)
                && r.namespace() == ns
        })
        .map(|r| ObjectRef::from_obj(&**r))
        .collect()
}

/// Runs the GitRepository and the Receiver controllers until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    feeds: Feeds,
    watch_config: watcher::Config,
    concurrency: u16,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let shutdown = futures::FutureExt::shared(shutdown);
    let Feeds {
        repositories: writer,
        receivers,
        refresh,
    } = feeds;
    futures::join!(
        run_repositories(
            ctx.clone(),
            writer,
            refresh,
            watch_config.clone(),
            concurrency,
            shutdown.clone()
        ),
        run_receivers(ctx, receivers, watch_config, shutdown),
    );
}

/// The GitRepository controller; `refresh` is the in-process queue of webhook calls.
async fn run_repositories(
    ctx: Arc<Context>,
    writer: reflector::store::Writer<GitRepository>,
    refresh: impl futures::Stream<Item = ObjectRef<GitRepository>> + Send + 'static,
    watch_config: watcher::Config,
    concurrency: u16,
    shutdown: impl std::future::Future<Output = ()> + Clone + Send + Sync + 'static,
) {
    let api: Api<GitRepository> = Api::all(ctx.client.clone());
    let reader = ctx.repositories.clone();
    let events = watcher(api, watch_config.clone())
        .default_backoff()
        .modify(slim)
        .reflect(writer);
    let (primary, changes) = tee(stored_objects(events, reader.clone()));
    let primary = primary.predicate_filter(trigger_hash, Default::default());
    // From the same watch, after the store: an includer then reads the new artifact.
    let includes = changes.predicate_filter(artifact_hash, Default::default());
    let secrets = secret_changes(&ctx, &watch_config);
    let store = reader.clone();
    let by_keys = reader.clone();
    let triggers = vec![
        runner::changed(primary),
        runner::related(includes, move |changed: GitRepository| {
            includers_of(&store.state(), &changed)
        }),
        runner::related(secrets, move |secret: PartialObjectMeta<Secret>| {
            verifying_with(&by_keys.state(), &secret)
        }),
        runner::requested(refresh),
    ];
    let workers = runner::Workers {
        concurrency,
        metrics: Some(ctx.metrics.queue.clone()),
    };
    let controller = runner::run(
        reader.clone(),
        triggers,
        reconcile,
        error_policy,
        ctx,
        workers,
        shutdown,
    );
    controller.await;
}

/// The Receivers whose token is in `secret`.
fn receivers_reading(
    receivers: &[Arc<Receiver>],
    secret: &PartialObjectMeta<Secret>,
) -> Vec<ObjectRef<Receiver>> {
    let ns = secret.namespace();
    let name = secret.name_any();
    receivers
        .iter()
        .filter(|r| r.spec.secret_ref.name == name && r.namespace() == ns)
        .map(|r| ObjectRef::from_obj(&**r))
        .collect()
}

/// The Receiver controller: publishes each Receiver's path, again when its Secret changes (a
/// new token is a new path).
async fn run_receivers(
    ctx: Arc<Context>,
    writer: reflector::store::Writer<Receiver>,
    watch_config: watcher::Config,
    shutdown: impl std::future::Future<Output = ()> + Clone + Send + Sync + 'static,
) {
    use crate::receiver::reconciler::{error_policy, reconcile};
    let api: Api<Receiver> = Api::all(ctx.client.clone());
    let reader = ctx.receivers.clone();
    let events = watcher(api, watch_config.clone())
        .default_backoff()
        .modify(slim)
        .reflect(writer);
    let primary = stored_objects(events, reader.clone())
        .predicate_filter(trigger_hash_of_receiver, Default::default());
    let secrets = secret_changes(&ctx, &watch_config);
    let by_secret = reader.clone();
    let triggers = vec![
        runner::changed(primary),
        runner::related(secrets, move |secret: PartialObjectMeta<Secret>| {
            receivers_reading(&by_secret.state(), &secret)
        }),
    ];
    // Receivers are cheap: reading one Secret each.
    let controller = runner::run(
        reader.clone(),
        triggers,
        reconcile,
        error_policy,
        ctx,
        4_u16,
        shutdown,
    );
    controller.await;
}

/// Changes of Secrets in the watched namespaces, deletions included (a deleted Secret leaves
/// nothing to verify or authenticate with). Only their metadata is watched: a new
/// resourceVersion is all it takes to look again, and no key material is held in memory.
fn secret_changes(
    ctx: &Context,
    watch_config: &watcher::Config,
) -> impl futures::Stream<Item = Result<PartialObjectMeta<Secret>, watcher::Error>> + use<> {
    let mut secret_config = watcher::Config::default().any_semantic();
    secret_config.field_selector = watch_config.field_selector.clone();
    watcher(
        Api::<PartialObjectMeta<Secret>>::all(ctx.client.clone()),
        secret_config,
    )
    .default_backoff()
    .touched_objects()
    .predicate_filter(predicates::resource_version, Default::default())
}

/// Like [`trigger_hash`], for a Receiver: its spec and a reconcile request.
fn trigger_hash_of_receiver(receiver: &Receiver) -> Option<u64> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    receiver.meta().generation.hash(&mut hasher);
    receiver
        .annotations()
        .get(RECONCILE_REQUESTED_AT_ANNOTATION)
        .hash(&mut hasher);
    Some(hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(ns: &str, name: &str, include: &[&str]) -> Arc<GitRepository> {
        let include: Vec<serde_json::Value> = include
            .iter()
            .map(|n| serde_json::json!({"repository": {"name": n}}))
            .collect();
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "source.mooring.dev/v1", "kind": "GitRepository",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"url": "https://example.com/r.git", "interval": "1m", "include": include},
            }))
            .expect("a GitRepository"),
        )
    }

    #[test]
    fn a_new_artifact_wakes_the_repositories_that_include_it_in_its_namespace() {
        let all = [
            repo("apps", "includes-it", &["other", "shared"]),
            repo("apps", "includes-another", &["other"]),
            repo("team", "same-name-other-namespace", &["shared"]),
            repo("apps", "shared", &[]),
        ];
        let mut woken: Vec<String> = includers_of(&all, &repo("apps", "shared", &[]))
            .into_iter()
            .map(|r| format!("{}/{}", r.namespace.unwrap_or_default(), r.name))
            .collect();
        woken.sort();
        assert_eq!(woken, ["apps/includes-it"]);
    }
}
