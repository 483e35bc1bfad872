//! The GitRepository reconcile driver: a thin sequence of named steps.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use mooring_api::conditions::reasons;
use mooring_api::constants::{FINALIZER, RECONCILE_REQUESTED_AT_ANNOTATION, SOURCE_FIELD_MANAGER};
use mooring_api::{Artifact, GitRepository, GitRepositoryStatus, GitVerificationMode};
use mooring_runtime::reconcile::{self, Class, Pass, Tail, finish, object_key};
use mooring_runtime::runner::Action;
use mooring_runtime::{errors, finalizers};

use crate::context::Context;
use crate::decide::{Outcome, Verified, next_status, rebuild_reason};
use crate::error::Error;
use crate::steps;
use crate::storage::Storage;
use crate::verification;
use crate::verify;

/// Artifact metadata: when the source saw the revision (RFC 3339, milliseconds).
pub const SEEN_TIME: &str = "source.seenTime";
/// Artifact metadata: when the artifact of the revision was stored and ready to serve.
pub const READY_TIME: &str = "source.readyTime";

/// Reconciles one GitRepository: called by the controller on every trigger.
pub async fn reconcile(repo: Arc<GitRepository>, ctx: Arc<Context>) -> Result<Action, Error> {
    // A pass must never decide from an artifact record older than the one it wrote last.
    if let Some(action) = reconcile::skip_stale_copy(&ctx.writes, &*repo) {
        return Ok(action);
    }
    let ns = repo.namespace().unwrap_or_default();
    let api: Api<GitRepository> = Api::namespaced(ctx.client.clone(), &ns);
    let ours = repo.finalizers().iter().any(|f| f == FINALIZER);
    let finalizer_error =
        |what: &str, e: kube::Error| Error::Finalizer(format!("{what}: {}", errors::chain(&e)));
    if repo.meta().deletion_timestamp.is_some() {
        if !ours {
            return Ok(Action::await_change());
        }
        let action = cleanup(repo.clone(), ctx).await?;
        finalizers::remove(&api, &*repo, FINALIZER)
            .await
            .map_err(|e| finalizer_error("removing the finalizer", e))?;
        return Ok(action);
    }
    if ours {
        return apply(repo, ctx).await;
    }
    // The event of the finalizer write starts the pass that fetches.
    match finalizers::add(&api, &*repo, FINALIZER).await {
        Ok(_) => Ok(Action::await_change()),
        // The copy is older than the object on the server (the finalizer is there already,
        // or a deletion began): the watch brings the newer copy.
        Err(kube::Error::Api(status)) if status.code == 422 => {
            Ok(Action::requeue(reconcile::STALE_COPY_RETRY))
        }
        Err(e) => Err(finalizer_error("adding the finalizer", e)),
    }
}

/// Decides when to retry after `reconcile` returned an error (status was not written).
pub fn error_policy(repo: Arc<GitRepository>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = object_key(&*repo);
    tracing::warn!(object = %key, error = %error, "reconcile failed");
    Action::requeue(ctx.failures.record_failure(&key))
}

async fn apply(repo: Arc<GitRepository>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = object_key(&*repo);
    if repo.spec.suspend {
        tracing::debug!(object = %key, "suspended");
        // Suspension ends with a spec change, which triggers a reconcile by itself.
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    let outcome = match run_steps(&repo, &ctx).await {
        Ok(outcome) => outcome,
        Err(error) => {
            tracing::info!(object = %key, error = %error, "GitRepository not ready");
            error.outcome()
        }
    };
    let class = match &outcome {
        Outcome::Ready { .. } => Class::Success {
            interval: repo.spec.interval().unwrap_or(Duration::from_secs(60)),
        },
        Outcome::Failed {
            reason, message, ..
        }
        | Outcome::Unverified {
            reason, message, ..
        } => Class::Failure {
            reason: reason.clone(),
            message: message.clone(),
            at_most: None,
        },
        // An invalid spec waits for the user to change it.
        Outcome::Stalled { .. } => Class::Stalled,
    };
    let status = desired_status(&repo, &outcome);
    let tail = Tail {
        client: &ctx.client,
        field_manager: SOURCE_FIELD_MANAGER,
        metrics: &ctx.metrics.reconcile,
        failures: &ctx.failures,
        recorder: &ctx.recorder,
        writes: &ctx.writes,
    };
    finish(
        tail,
        &*repo,
        repo.status.as_ref(),
        Pass { class, status },
        started,
    )
    .await
    .map_err(|reconcile::Error::PatchStatus(e)| Error::PatchStatus(e))
}

/// What a pass's blocking task found of the remote.
enum Found {
    /// The checkout, resolved from a listing.
    Resolved(crate::git::Resolved),
    /// A URL never fetched before: its ref, fetched without a listing ([`steps::fetch_new`]).
    Fetched(crate::git::Fetched),
}

/// Whether the stored artifact is in storage with its digest, and the resolved checkout (or,
/// with nothing in storage and a URL never fetched, the fetched one), in one blocking task (one
/// thread woken for all); `Err` when the time limit ran out.
async fn checked_and_resolved(
    ctx: &Context,
    remote: &crate::git::Remote,
    spec: &mooring_api::GitRepositorySpec,
    status: &GitRepositoryStatus,
    credential: String,
    max_age: Option<Duration>,
    limit: steps::TimeLimit,
) -> Result<(bool, Result<Found, Error>), Error> {
    let cancel = remote.cancel.clone();
    steps::run_blocking(limit, cancel.clone(), {
        let remote = remote.clone();
        let checkout = spec.checkout();
        let listings = ctx.listings.clone();
        let storage = ctx.storage.clone();
        let cache = ctx.settings.git_cache.clone();
        let artifact = status.artifact.clone();
        move || {
            let in_storage = artifact
                .as_ref()
                .is_some_and(|artifact| steps::artifact_present_blocking(&storage, artifact));
            if !in_storage {
                match steps::fetch_new(&remote, &checkout, &cache) {
                    Ok(Some(fetched)) => return Ok((false, Ok(Found::Fetched(fetched)))),
                    Ok(None) => {}
                    Err(error) => return Ok((false, Err(error))),
                }
            }
            let sharing = crate::git::Sharing {
                listings: &listings,
                credential,
                max_age,
                cancel: &cancel,
            };
            Ok((
                in_storage,
                steps::resolve(&remote, &checkout, Some(sharing)).map(Found::Resolved),
            ))
        }
    })
    .await
}

/// Validates, resolves, and rebuilds the artifact when needed. Talks to the API and git.
async fn run_steps(repo: &GitRepository, ctx: &Context) -> Result<Outcome, Error> {
    let ns = repo.namespace().unwrap_or_default();
    let name = repo.name_any();
    let spec = &repo.spec;
    let limit = steps::TimeLimit::new(steps::validate(spec)?, ctx.settings.max_git_timeout);
    let timeout = limit.duration;
    let verify_mode = verify::mode(spec)?;
    let keys = match (&spec.verify, verify_mode) {
        (Some(verify), Some(mode)) => {
            match verification::read_keys(ctx, &ns, &verify.secret_ref.name).await {
                Ok(keys) => Some((mode, keys)),
                Err(error) => {
                    publish(
                        ctx,
                        repo,
                        EventType::Warning,
                        reasons::VERIFICATION_ERROR,
                        error.to_string(),
                    )
                    .await;
                    return Err(error);
                }
            }
        }
        _ => None,
    };
    let secret = read_secret(
        ctx,
        &ns,
        spec.secret_ref.as_ref().map(|r| r.name.as_str()),
        "spec.secretRef",
    )
    .await?;
    let proxy = read_secret(
        ctx,
        &ns,
        spec.proxy_secret_ref.as_ref().map(|r| r.name.as_str()),
        "spec.proxySecretRef",
    )
    .await?;
    let cancel = Arc::new(AtomicBool::new(false));
    let remote = steps::remote(
        spec,
        secret.as_ref(),
        proxy.as_ref(),
        limit,
        cancel.clone(),
        ctx.settings.max_git_object_size,
    )?;
    let included = steps::included_artifacts(repo, &ctx.repositories, &ctx.storage)?;

    let status = repo.status.clone().unwrap_or_default();

    let credential = steps::credential_digest(
        secret.as_ref(),
        proxy.as_ref(),
        &format!("{:?}", spec.provider()),
    );
    let max_age = crate::decide::listing_max_age(
        repo.status.as_ref(),
        repo.meta().generation,
        repo.annotations()
            .get(RECONCILE_REQUESTED_AT_ANNOTATION)
            .map(String::as_str),
        spec.interval().unwrap_or(Duration::from_secs(60)),
    );
    let started = Instant::now();
    // The common pass, an artifact already checked in storage and a listing on a kept
    // connection (or a shared one), needs no blocking thread: it runs here.
    let quick = match &status.artifact {
        Some(artifact)
            if artifact
                .digest
                .as_deref()
                .is_some_and(|digest| ctx.storage.holds_known(&artifact.path, digest)) =>
        {
            crate::git::resolve_async(
                &remote,
                &spec.checkout(),
                &ctx.listings,
                credential.clone(),
                max_age,
                &ctx.listing_clients,
            )
            .await
        }
        _ => crate::git::Quick::NotHere,
    };
    let checked_and_resolved = match quick {
        crate::git::Quick::Resolved(resolved) => Ok((true, Ok(Found::Resolved(resolved)))),
        crate::git::Quick::TimedOut => Err(steps::timed_out(limit)),
        crate::git::Quick::NotHere => {
            checked_and_resolved(ctx, &remote, spec, &status, credential, max_age, limit).await
        }
    };
    let (in_storage, resolved) = match checked_and_resolved {
        Ok(both) => both,
        // Timed out: the storage is looked at on its own.
        Err(error) => {
            let in_storage = match &status.artifact {
                Some(artifact) => steps::artifact_present(&ctx.storage, artifact).await,
                None => false,
            };
            (in_storage, Err(error))
        }
    };
    let operation = match &resolved {
        Ok(Found::Fetched(_)) => "fetch",
        _ => "resolve",
    };
    ctx.metrics
        .git_duration
        .with_label_values(&[operation])
        .observe(started.elapsed().as_secs_f64());
    // When this pass saw the remote's revision: for a new commit, when the source saw it.
    let seen = jiff::Timestamp::now();
    let found = match resolved {
        Ok(found) => found,
        Err(error @ Error::Git { .. }) => {
            // The remote is down, but what was served must not stay lost: the cache still
            // holds the commit. The failure is reported all the same.
            if let Some(artifact) = status.artifact.as_ref().filter(|_| !in_storage) {
                steps::restore_from_cache(ctx, &ns, &name, spec, artifact, &included, timeout)
                    .await;
            }
            return Err(error);
        }
        Err(error) => return Err(error),
    };
    let included_artifacts: Vec<Artifact> = included.iter().map(|i| i.artifact.clone()).collect();
    let revision = match &found {
        Found::Resolved(resolved) => &resolved.revision,
        Found::Fetched(fetched) => &fetched.revision,
    };
    let rebuild = rebuild_reason(spec, &status, revision, in_storage, &included_artifacts);
    // With verification on, the served revision is fetched and verified on every pass, so
    // that a key removed from the Secret stops it being served.
    if rebuild.is_none() && keys.is_none() {
        return unchanged(ctx, &status, included_artifacts, None);
    }

    let fetched = match found {
        Found::Fetched(fetched) => fetched,
        Found::Resolved(resolved) => {
            let started = Instant::now();
            let fetched = steps::run_blocking(limit, cancel.clone(), {
                let cache = ctx.settings.git_cache.clone();
                move || steps::fetch(&remote, &resolved, &cache)
            })
            .await?;
            if fetched.downloaded {
                ctx.metrics
                    .git_duration
                    .with_label_values(&["fetch"])
                    .observe(started.elapsed().as_secs_f64());
            }
            fetched
        }
    };
    if fetched.downloaded {
        ctx.metrics.git_requests.with_label_values(&["fetch"]).inc();
    }

    let signers = match &keys {
        Some((mode, keyring)) => {
            Some(verify_or_refuse(ctx, repo, &fetched, *mode, keyring, timeout).await?)
        }
        None => None,
    };
    let served = status.artifact.as_ref().map(|a| a.revision.as_str());
    let reason = match rebuild {
        Some(reason) => reason,
        // The ref moved between listing and fetching.
        None if served != Some(fetched.revision.as_str()) => format!(
            "building artifact: new upstream revision '{}'",
            fetched.revision
        ),
        None => {
            let verified = signers.as_ref().map(|s| Verified {
                mode: s.mode,
                message: s.message(),
            });
            let mut status = status.clone();
            if let (Some(artifact), Some(signers)) = (status.artifact.as_mut(), &signers) {
                artifact
                    .metadata
                    .get_or_insert_default()
                    .extend(signers.metadata());
            }
            return unchanged(ctx, &status, included_artifacts, verified);
        }
    };
    tracing::info!(namespace = %ns, name = %name, %reason, "building artifact");

    let mut built = steps::build_and_store(ctx, &ns, &name, spec, &fetched, &included).await?;
    let latency = built.artifact.metadata.get_or_insert_default();
    latency.insert(SEEN_TIME.to_string(), format!("{seen:.3}"));
    latency.insert(
        READY_TIME.to_string(),
        format!("{:.3}", jiff::Timestamp::now()),
    );
    if let Some(signers) = &signers {
        built
            .artifact
            .metadata
            .get_or_insert_default()
            .extend(signers.metadata());
        publish(
            ctx,
            repo,
            EventType::Normal,
            "SourceVerified",
            signers.message(),
        )
        .await;
    }
    ctx.metrics
        .artifact_size
        .with_label_values(&[&ns, &name])
        .set(built.artifact.size.unwrap_or(0));
    steps::evict_git_caches_soon(ctx);
    if !built.dropped_symlinks.is_empty() {
        publish(
            ctx,
            repo,
            EventType::Warning,
            "SymlinksDropped",
            format!(
                "symlinks leaving the repository were left out: {}",
                built.dropped_symlinks.join(", ")
            ),
        )
        .await;
    }
    publish(
        ctx,
        repo,
        EventType::Normal,
        "NewArtifact",
        format!(
            "stored artifact for revision '{}' ({reason})",
            fetched.revision
        ),
    )
    .await;
    Ok(Outcome::Ready {
        artifact: built.artifact,
        included: included_artifacts,
        verified: signers.map(|s| Verified {
            mode: s.mode,
            message: s.message(),
        }),
    })
}

/// The served artifact stays: the outcome of a pass that found nothing to build.
fn unchanged(
    ctx: &Context,
    status: &GitRepositoryStatus,
    included: Vec<Artifact>,
    verified: Option<Verified>,
) -> Result<Outcome, Error> {
    let mut artifact = status.artifact.clone().ok_or_else(|| Error::Storage {
        reason: reasons::STAT_OPERATION_FAILED,
        message: "artifact missing from status".to_string(),
    })?;
    // The advertised address may have changed since the artifact was stored.
    artifact.url = Storage::url_for(&artifact.path, &ctx.settings.advertised_base);
    if verified.is_none()
        && let Some(metadata) = artifact.metadata.as_mut()
    {
        // spec.verify was removed: the served revision is no longer claimed verified.
        metadata.retain(|key, _| !key.starts_with("verify."));
    }
    Ok(Outcome::Ready {
        artifact,
        included,
        verified,
    })
}

/// Verifies the fetched revision; on failure, publishes a Warning naming the commit or tag and
/// the key, and fails the pass, withdrawing the served artifact when it no longer verifies
/// either (it is the same revision, or the keys changed). Reads the git cache.
async fn verify_or_refuse(
    ctx: &Context,
    repo: &GitRepository,
    fetched: &crate::git::Fetched,
    mode: GitVerificationMode,
    keys: &verify::Keyring,
    timeout: Duration,
) -> Result<verify::SourceSigners, Error> {
    let failure = match verification::verify_revision(fetched.into(), mode, keys.clone()).await {
        Ok(signers) => return Ok(signers),
        Err(failure) => failure,
    };
    let withdraw = match repo.status.as_ref().and_then(|s| s.artifact.as_ref()) {
        None => false,
        Some(served) if served.revision == fetched.revision => true,
        Some(served) => {
            !verification::served_still_verifies(ctx, &repo.spec, served, mode, keys, timeout).await
        }
    };
    let mut message = failure.to_string();
    if withdraw {
        message.push_str("; the artifact is withdrawn");
    }
    publish(
        ctx,
        repo,
        EventType::Warning,
        failure.reason(),
        message.clone(),
    )
    .await;
    Err(Error::Verification {
        reason: failure.reason(),
        message,
        withdraw,
    })
}

async fn read_secret(
    ctx: &Context,
    ns: &str,
    name: Option<&str>,
    what: &'static str,
) -> Result<Option<(String, BTreeMap<String, Vec<u8>>)>, Error> {
    let Some(name) = name else { return Ok(None) };
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let secret = api.get_opt(name).await.map_err(|e| Error::ReadSecret {
        what,
        name: name.to_string(),
        message: kube_reason(&e),
    })?;
    let secret = secret.ok_or_else(|| Error::ReadSecret {
        what,
        name: name.to_string(),
        message: "not found".to_string(),
    })?;
    let data = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    Ok(Some((name.to_string(), data)))
}

/// The API server's reason for a failed call, without request details.
fn kube_reason(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// The status after a pass that ended with `outcome`.
fn desired_status(repo: &GitRepository, outcome: &Outcome) -> GitRepositoryStatus {
    let current = repo.status.clone().unwrap_or_default();
    let requested_at = repo
        .annotations()
        .get(RECONCILE_REQUESTED_AT_ANNOTATION)
        .map(String::as_str);
    let now = Time(jiff::Timestamp::now());
    let generation = repo.meta().generation.unwrap_or(0);
    next_status(
        &current,
        &repo.spec,
        generation,
        outcome,
        requested_at,
        &now,
    )
}

/// Removes the object's artifacts when it is deleted.
async fn cleanup(repo: Arc<GitRepository>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = repo.namespace().unwrap_or_default();
    let name = repo.name_any();
    ctx.storage
        .remove_all(&ns, &name)
        .map_err(|e| Error::Storage {
            reason: reasons::STAT_OPERATION_FAILED,
            message: format!("removing the artifacts of {ns}/{name}: {e}"),
        })?;
    ctx.metrics
        .artifact_size
        .remove_label_values(&[&ns, &name])
        .ok();
    steps::evict_git_caches(&ctx).await;
    ctx.failures.reset(&object_key(&*repo));
    ctx.writes.forget(&*repo);
    Ok(Action::await_change())
}

/// Publishes an Event about `repo`; failures to publish are logged, never fatal.
pub(crate) async fn publish(
    ctx: &Context,
    repo: &GitRepository,
    type_: EventType,
    reason: &str,
    note: String,
) {
    mooring_runtime::events::publish(&ctx.recorder, repo, type_, reason, note).await;
}
