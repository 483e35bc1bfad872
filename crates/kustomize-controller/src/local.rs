//! The controller in the calling process, for tests, benchmarks and tooling. Production uses
//! [`crate::run`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mooring_runtime::flags::watch_config;
use tokio::sync::watch;

use crate::artifact::{ArtifactError, Limits};
use crate::context::{Context, Settings};
use crate::controller;
use crate::metrics::Metrics;

/// Where and how to run.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Artifact cache directory.
    pub artifact_cache: PathBuf,
    /// The kustomize binary.
    pub kustomize: PathBuf,
    /// Only watch Kustomizations in this namespace.
    pub namespace: Option<String>,
    /// Reconciles at once.
    pub concurrency: u16,
    /// How long to wait before looking again at a missing source or dependency.
    pub requeue_dependency: Duration,
    /// Fail on substitution variables without value or default.
    pub strict_substitution: bool,
    /// Let Kustomizations name sources and dependencies in other namespaces.
    pub allow_cross_namespace_refs: bool,
    /// ServiceAccount impersonated for Kustomizations that name none.
    pub default_service_account: Option<String>,
}

/// Why an in-process controller could not start.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// Metrics registration failed.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The artifact cache directory is unusable.
    #[error("artifact cache: {0}")]
    Cache(#[from] ArtifactError),
}

/// A running in-process kustomize-controller.
pub struct LocalController {
    /// The shared context (metrics, state).
    pub context: Arc<Context>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl LocalController {
    /// Stops the controller and waits for in-flight reconciles.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Starts the controller with `client`, built from `config` (impersonation derives from it).
/// The context and the controller loop are the binary's own; only what a test must choose
/// differs (client, directories, namespace, concurrency, substitution, dependency requeue).
pub fn start(
    config: kube::Config,
    client: kube::Client,
    options: LocalOptions,
) -> Result<LocalController, LocalError> {
    let settings = Settings {
        kustomize: options.kustomize,
        allow_cross_namespace_refs: options.allow_cross_namespace_refs,
        default_service_account: options.default_service_account,
        allow_remote_bases: false,
        strict_substitution: options.strict_substitution,
        apply_concurrency: 8,
        requeue_dependency: options.requeue_dependency,
        max_render_objects: crate::build::DEFAULT_MAX_OBJECTS,
    };
    let parts = Context::build(
        config,
        client,
        settings,
        options.artifact_cache,
        Limits::default(),
        Metrics::new()?,
    )?;
    let context = Arc::new(parts.context);
    let watch_config = watch_config(None, options.namespace.as_deref());
    let (stop, mut stop_rx) = watch::channel(false);
    let shutdown = async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    };
    let task = tokio::spawn(controller::run(
        context.clone(),
        parts.writers,
        parts.wakeups,
        watch_config,
        options.concurrency,
        shutdown,
    ));
    Ok(LocalController {
        context,
        stop,
        task,
    })
}
