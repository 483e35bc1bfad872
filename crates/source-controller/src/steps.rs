//! The steps of a GitRepository pass that the driver calls by name. Steps that talk to the API
//! server or git say so.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use mooring_api::conditions::reasons;
use mooring_api::constants::MIN_INTERVAL;
use mooring_api::{Artifact, GitCheckout, GitRepository, GitRepositorySpec};

use crate::archive::shared::{ArchiveKey, Made, copy_shared};
use crate::archive::{ArchiveError, ArchiveOptions, IncludeSource, build_archive};
use crate::context::Context;
use crate::error::Error;
use crate::git::{self, Fetched, GitAuth, ProxyConfig, Remote, Resolved};
use crate::storage::{Storage, StoreError};

/// Longest commit subject kept in artifact metadata.
const MAX_SUBJECT: usize = 256;

/// Checks what the API server's schema cannot: the URL's scheme and host, and the timeout.
/// Returns the timeout.
pub fn validate(spec: &GitRepositorySpec) -> Result<Duration, Error> {
    if git::Scheme::of(&spec.url).is_none() {
        return Err(Error::InvalidSpec {
            field: "spec.url",
            reason: reasons::URL_INVALID,
            message: format!(
                "unsupported URL '{}': use http://, https:// or ssh://",
                git::redact(&spec.url)
            ),
        });
    }
    // Accepted by the API for Flux compatibility but not implemented: refusing them is safer
    // than publishing an artifact that looks verified, or fetched with credentials it lacks.
    if spec.provider() != mooring_api::GitProvider::Generic {
        return Err(Error::InvalidSpec {
            field: "spec.provider",
            reason: reasons::INVALID_PROVIDER_CONFIGURATION,
            message: "only the generic provider (credentials from spec.secretRef) is supported"
                .to_string(),
        });
    }
    let json = serde_json::to_value(spec).unwrap_or_default();
    if let Some(refused) =
        mooring_api::fields::refused(&json, mooring_api::fields::GITREPOSITORY_REFUSED)
    {
        return Err(Error::InvalidSpec {
            field: refused.path,
            reason: refused.reason,
            message: refused.message(),
        });
    }
    let interval = spec.interval().map_err(|e| Error::InvalidSpec {
        field: "spec.interval",
        reason: reasons::URL_INVALID,
        message: e.to_string(),
    })?;
    if interval < MIN_INTERVAL {
        return Err(Error::InvalidSpec {
            field: "spec.interval",
            reason: reasons::URL_INVALID,
            message: format!("spec.interval must be at least {MIN_INTERVAL:?}"),
        });
    }
    spec.timeout().map_err(|e| Error::InvalidSpec {
        field: "spec.timeout",
        reason: reasons::URL_INVALID,
        message: e.to_string(),
    })
}

/// The remote to talk to, with credentials from the auth and proxy Secrets.
pub fn remote(
    spec: &GitRepositorySpec,
    secret: Option<&(String, BTreeMap<String, Vec<u8>>)>,
    proxy: Option<&(String, BTreeMap<String, Vec<u8>>)>,
    limit: TimeLimit,
    cancel: Arc<AtomicBool>,
    object_size_limit: Option<u64>,
) -> Result<Remote, Error> {
    let auth = match secret {
        Some((name, data)) => {
            GitAuth::from_secret(data, &spec.url).map_err(|e| Error::Credentials {
                name: name.clone(),
                message: e.to_string(),
            })?
        }
        None => GitAuth::default(),
    };
    let proxy = match proxy {
        Some((name, data)) => {
            Some(
                ProxyConfig::from_secret(data).map_err(|e| Error::Credentials {
                    name: name.clone(),
                    message: e.to_string(),
                })?,
            )
        }
        None => None,
    };
    Ok(Remote {
        url: spec.url.clone(),
        auth,
        proxy,
        timeout: limit.duration,
        timeout_setting: limit.source,
        cancel,
        object_size_limit,
    })
}

/// An included repository's artifact and where it goes.
#[derive(Debug, Clone)]
pub struct Included {
    /// The included repository's current artifact.
    pub artifact: Artifact,
    /// Where its files go in this artifact.
    pub source: IncludeSource,
}

/// The artifacts of `spec.include`, from the watch cache; each must exist and have an artifact.
pub fn included_artifacts(
    repo: &GitRepository,
    store: &Store<GitRepository>,
    storage: &Storage,
) -> Result<Vec<Included>, Error> {
    let ns = repo.namespace().unwrap_or_default();
    let mut out = Vec::new();
    for include in &repo.spec.include {
        let name = &include.repository.name;
        let included = store
            .get(&ObjectRef::new(name).within(&ns))
            .ok_or_else(|| Error::IncludeUnavailable {
                reason: reasons::NOT_FOUND,
                message: format!("included GitRepository '{ns}/{name}' not found"),
            })?;
        let artifact = included
            .status
            .as_ref()
            .and_then(|s| s.artifact.clone())
            .ok_or_else(|| Error::IncludeUnavailable {
                reason: reasons::NO_ARTIFACT,
                message: format!("included GitRepository '{ns}/{name}' has no artifact yet"),
            })?;
        let archive =
            storage
                .local_path(&artifact.path)
                .map_err(|e| Error::IncludeUnavailable {
                    reason: reasons::NO_ARTIFACT,
                    message: format!("included GitRepository '{ns}/{name}': {e}"),
                })?;
        out.push(Included {
            artifact,
            source: IncludeSource {
                archive,
                from_path: include.from_path.clone(),
                to_path: include.to_path.clone().unwrap_or_else(|| name.clone()),
            },
        });
    }
    Ok(out)
}

/// How long one git operation may take, and which setting said so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeLimit {
    /// The limit.
    pub duration: Duration,
    /// `spec.timeout`, or `--max-git-timeout` when that cut a longer `spec.timeout`.
    pub source: &'static str,
}

impl TimeLimit {
    /// `spec.timeout`, cut to the controller's `--max-git-timeout`.
    pub fn new(spec_timeout: Duration, max: Duration) -> Self {
        if spec_timeout > max {
            Self {
                duration: max,
                source: "--max-git-timeout, which cuts a longer spec.timeout",
            }
        } else {
            Self {
                duration: spec_timeout,
                source: "spec.timeout",
            }
        }
    }
}

/// Runs blocking git work off the async threads, bounded by `limit`; on timeout the work is
/// told to stop through `cancel`.
pub async fn run_blocking<T: Send + 'static>(
    limit: TimeLimit,
    cancel: Arc<AtomicBool>,
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let timeout = limit.duration;
    let task = tokio::task::spawn_blocking(work);
    match tokio::time::timeout(timeout, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(Error::Git {
            reason: reasons::GIT_OPERATION_FAILED,
            message: format!("git task failed: {join}"),
        }),
        Err(_) => {
            cancel.store(true, Ordering::Relaxed);
            Err(timed_out(limit))
        }
    }
}

/// The error of git work that ran out of `limit`.
pub fn timed_out(limit: TimeLimit) -> Error {
    Error::Git {
        reason: reasons::GIT_OPERATION_FAILED,
        message: format!(
            "git operation timed out after {:?} ({})",
            limit.duration, limit.source
        ),
    }
}

/// Lists the remote's refs (no pack), or takes a listing shared as `sharing` allows, and
/// resolves the checkout. Talks to git; blocking.
pub fn resolve(
    remote: &Remote,
    checkout: &GitCheckout,
    sharing: Option<git::Sharing<'_>>,
) -> Result<Resolved, Error> {
    git::resolve_with(remote, checkout, sharing).map_err(|e| match &e {
        // Only a spec change can fix these; Secret problems stay retried, as a Secret can be
        // fixed without touching the GitRepository.
        git::GitError::InvalidSemverRange { .. } | git::GitError::InvalidCommit { .. } => {
            Error::InvalidSpec {
                field: "spec.ref",
                reason: reasons::GIT_OPERATION_FAILED,
                message: e.to_string(),
            }
        }
        git::GitError::UrlInvalid { .. } => Error::InvalidSpec {
            field: "spec.url",
            reason: reasons::URL_INVALID,
            message: e.to_string(),
        },
        _ => Error::Git {
            reason: e.reason(),
            message: e.to_string(),
        },
    })
}

/// A digest of the credential material of a GitRepository (its Secret's data, its proxy
/// Secret's data, its provider), to key shared listings: equal material, equal digest.
pub fn credential_digest(
    secret: Option<&(String, BTreeMap<String, Vec<u8>>)>,
    proxy: Option<&(String, BTreeMap<String, Vec<u8>>)>,
    provider: &str,
) -> String {
    use sha2::{Digest as _, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(provider.as_bytes());
    for (what, data) in [("secret", secret), ("proxy", proxy)] {
        hasher.update([0]);
        hasher.update(what.as_bytes());
        for (key, value) in data.iter().flat_map(|(_, d)| d.iter()) {
            // Lengths first, so that no two different maps hash the same bytes.
            hasher.update((key.len() as u64).to_be_bytes());
            hasher.update(key.as_bytes());
            hasher.update((value.len() as u64).to_be_bytes());
            hasher.update(value);
        }
    }
    hex::encode(hasher.finalize())
}

/// Fetches the resolved commit into the per-URL cache. Talks to git; blocking.
pub fn fetch(remote: &Remote, resolved: &Resolved, cache: &Path) -> Result<Fetched, Error> {
    git::fetch(remote, resolved, cache).map_err(|e| Error::Git {
        reason: e.reason(),
        message: e.to_string(),
    })
}

/// [`git::fetch_new`]: the tip of a branch or tag of a URL never fetched, without a listing
/// first; `Ok(None)` when the usual resolve and fetch must run.
pub fn fetch_new(
    remote: &Remote,
    checkout: &GitCheckout,
    cache: &Path,
) -> Result<Option<Fetched>, Error> {
    git::fetch_new(remote, checkout, cache).map_err(|e| Error::Git {
        reason: e.reason(),
        message: e.to_string(),
    })
}

/// Rebuilds `artifact` (the one in status, missing or damaged in storage) from the git cache
/// alone, for when the remote cannot be reached: the archive is deterministic, so the same
/// commit with the same settings gives the same bytes and the same path. Returns whether the
/// artifact is served again; a rebuild whose digest differs (settings changed since) is
/// thrown away, as it is not the artifact the status advertises. Reads the cache; blocking
/// work runs off the async threads.
pub async fn restore_from_cache(
    ctx: &Context,
    ns: &str,
    name: &str,
    spec: &GitRepositorySpec,
    artifact: &Artifact,
    included: &[Included],
    timeout: Duration,
) -> bool {
    let fetched = tokio::task::spawn_blocking({
        let url = spec.url.clone();
        let revision = artifact.revision.clone();
        let cache = ctx.settings.git_cache.clone();
        move || git::cached(&url, &revision, &cache, timeout)
    })
    .await;
    let fetched = match fetched {
        Ok(Ok(fetched)) => fetched,
        Ok(Err(e)) => {
            tracing::info!(namespace = %ns, name = %name, error = %e, "the lost artifact cannot be rebuilt from the git cache");
            return false;
        }
        Err(_) => return false,
    };
    match build_and_store(ctx, ns, name, spec, &fetched, included).await {
        Ok(built) if built.artifact.digest == artifact.digest => {
            tracing::info!(namespace = %ns, name = %name, revision = %artifact.revision, "artifact rebuilt from the git cache while the remote is unreachable");
            true
        }
        Ok(built) => {
            let storage = ctx.storage.clone();
            let path = built.artifact.path.clone();
            if path != artifact.path {
                let _ = tokio::task::spawn_blocking(move || {
                    if let Ok(file) = storage.local_path(&path) {
                        let _ = std::fs::remove_file(file);
                    }
                })
                .await;
            }
            false
        }
        Err(e) => {
            tracing::info!(namespace = %ns, name = %name, error = %e, "rebuilding the lost artifact from the git cache failed");
            false
        }
    }
}

/// Removes the git caches of URLs no GitRepository uses any more (deleted, or moved to another
/// URL), now. Reads the whole store and the cache directory: see [`evict_git_caches_soon`].
pub async fn evict_git_caches(ctx: &Context) {
    evict(&ctx.repositories, ctx.settings.git_cache.clone()).await;
}

/// [`evict_git_caches`] after a build, at most once per [`EVICTION_SPACING`]: the first
/// request runs at once, later ones are folded into one run when the spacing has passed. A cold
/// start of N GitRepositories then reads the store and the cache directory a few times instead
/// of N times (measured: 4% of the source-controller's CPU at N=1000 went to reading that
/// directory). A deletion still evicts at once ([`evict_git_caches`]).
pub fn evict_git_caches_soon(ctx: &Context) {
    let store = ctx.repositories.clone();
    let root = ctx.settings.git_cache.clone();
    ctx.evictions
        .request(async move { evict(&store, root).await });
}

/// The least time between two evictions asked for by builds.
pub const EVICTION_SPACING: Duration = Duration::from_secs(10);

async fn evict(store: &Store<GitRepository>, root: std::path::PathBuf) {
    let live: Vec<String> = store
        .state()
        .iter()
        .filter(|r| r.metadata.deletion_timestamp.is_none())
        .map(|r| r.spec.url.clone())
        .collect();
    let removed = tokio::task::spawn_blocking(move || git::evict_unused(&root, &live))
        .await
        .unwrap_or_default();
    if !removed.is_empty() {
        tracing::info!(
            count = removed.len(),
            "evicted git caches no GitRepository uses"
        );
    }
}

/// The artifact built and stored by [`build_and_store`].
#[derive(Debug, Clone)]
pub struct Built {
    /// The new `status.artifact`.
    pub artifact: Artifact,
    /// Symlinks left out because they leave the repository.
    pub dropped_symlinks: Vec<String>,
}

/// Archives the fetched commit into storage, then collects old artifacts.
pub async fn build_and_store(
    ctx: &Context,
    ns: &str,
    name: &str,
    spec: &GitRepositorySpec,
    fetched: &Fetched,
    included: &[Included],
) -> Result<Built, Error> {
    let storage = ctx.storage.clone();
    let options = ArchiveOptions {
        ignore: spec.ignore.clone(),
        sparse_checkout: spec.sparse_checkout.clone(),
        includes: included.iter().map(|i| i.source.clone()).collect(),
        max_size: ctx.settings.max_artifact_size,
        max_include_size: ctx.settings.max_artifact_size,
        max_file_size: ctx.settings.max_git_object_size,
    };
    let key = ArchiveKey {
        repo: fetched.repo_path.clone(),
        commit: fetched.commit.clone(),
        options,
    };
    // Held while this object copies or builds: others packing the same commit the same way
    // wait, then copy.
    let slot = ctx.archives.slot(key.clone());
    let mut made = slot.lock().await;
    let shared = made.clone();
    let (ns_owned, name_owned) = (ns.to_string(), name.to_string());
    let retention = ctx.settings.retention;
    let stored = tokio::task::spawn_blocking(move || {
        let copied = shared.and_then(|shared| {
            match copy_shared(&storage, &ns_owned, &name_owned, &key.commit, &shared) {
                Ok(stored) => Some(stored),
                Err(e) => {
                    tracing::debug!(namespace = %ns_owned, name = %name_owned, error = %e, "building the artifact: the shared one cannot be copied");
                    None
                }
            }
        });
        let copied_now = copied.is_some();
        let result = match copied {
            Some(stored) => Ok(stored),
            None => storage.store(&ns_owned, &name_owned, &key.commit, |out| {
                build_archive(&key.repo, &key.commit, &key.options, out)
            }),
        };
        if let Ok((stored, _)) = &result
            && let Err(e) = storage.gc(&ns_owned, &name_owned, retention, &stored.path)
        {
            tracing::warn!(error = %e, "garbage-collecting old artifacts failed");
        }
        (result, copied_now)
    })
    .await
    .map_err(|e| Error::Storage {
        reason: reasons::ARCHIVE_OPERATION_FAILED,
        message: e.to_string(),
    })?;
    let (stored, copied) = stored;
    let (stored, summary) = stored.map_err(|e| match e {
        // An object of the cache that cannot be read (a damaged pack or loose object) would
        // fail every build: the cache is fetched anew at the next attempt.
        StoreError::Build(
            e @ (ArchiveError::ReadObject { .. } | ArchiveError::ReadPackedObject { .. }),
        ) => {
            let mut message = e.to_string();
            match git::mark_damaged(&fetched.repo_path, &message) {
                Ok(()) => message.push_str("; the git cache is fetched again at the next attempt"),
                Err(mark) => tracing::warn!(
                    path = %fetched.repo_path.display(), error = %mark,
                    "marking the git cache as damaged failed"
                ),
            }
            Error::Storage {
                reason: reasons::ARCHIVE_OPERATION_FAILED,
                message,
            }
        }
        StoreError::Build(e) => Error::Storage {
            reason: reasons::ARCHIVE_OPERATION_FAILED,
            message: e.to_string(),
        },
        StoreError::Storage(e) => Error::Storage {
            reason: reasons::STAT_OPERATION_FAILED,
            message: e.to_string(),
        },
    })?;
    ctx.metrics
        .archives
        .with_label_values(&[if copied { "copied" } else { "built" }])
        .inc();
    // The newest file of the key is the one least likely to be collected soon.
    *made = Some(Made {
        path: stored.path.clone(),
        digest: stored.digest.clone(),
        summary: summary.clone(),
    });
    drop(made);
    let info = &fetched.info;
    let mut metadata = BTreeMap::new();
    metadata.insert("git.author".to_string(), info.author.clone());
    metadata.insert("git.committer".to_string(), info.committer.clone());
    metadata.insert("git.commitTime".to_string(), info.time.clone());
    metadata.insert("git.authorTime".to_string(), info.author_time.clone());
    metadata.insert(
        "git.subject".to_string(),
        info.subject.chars().take(MAX_SUBJECT).collect(),
    );
    let artifact = Artifact {
        url: Storage::url_for(&stored.path, &ctx.settings.advertised_base),
        path: stored.path,
        // The ref may have moved between listing and fetching; the fetched tip is what is packed.
        revision: fetched.revision.clone(),
        digest: Some(stored.digest),
        last_update_time: Time(jiff::Timestamp::now()),
        size: Some(i64::try_from(stored.size).unwrap_or(i64::MAX)),
        metadata: Some(metadata),
    };
    Ok(Built {
        artifact,
        dropped_symlinks: summary.dropped_symlinks,
    })
}

/// Whether the artifact's file is in storage with its recorded digest: hashed in full when the
/// file is new to this process or changed on disk, one `stat` otherwise (see
/// [`Storage::holds`]). A corrupted file, even of the same size, is therefore rebuilt.
pub async fn artifact_present(storage: &Storage, artifact: &Artifact) -> bool {
    let storage = storage.clone();
    let artifact = artifact.clone();
    tokio::task::spawn_blocking(move || artifact_present_blocking(&storage, &artifact))
        .await
        .unwrap_or(false)
}

/// [`artifact_present`], on the calling thread. Blocking.
pub fn artifact_present_blocking(storage: &Storage, artifact: &Artifact) -> bool {
    artifact
        .digest
        .as_deref()
        .is_some_and(|digest| storage.holds(&artifact.path, digest))
}
