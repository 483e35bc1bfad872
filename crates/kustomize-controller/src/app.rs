//! Start-up of the kustomize-controller process: client, caches, servers, leader election.

use std::sync::Arc;
use std::time::Duration;

use mooring_runtime::app::{run_as_leader, stopped};
use mooring_runtime::server::{self, Readiness};
use mooring_runtime::shutdown;

use crate::artifact::Limits;
use crate::cli::Args;
use crate::context::{Context, Settings};
use crate::controller;
use crate::metrics::Metrics;

/// Why the controller could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No usable Kubernetes configuration.
    #[error("loading the Kubernetes configuration: {0}")]
    Config(String),
    /// Registering metrics failed.
    #[error("registering metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The operations server could not start.
    #[error("operations server on {addr}: {source}")]
    Server {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Leader election could not start.
    #[error(transparent)]
    Leader(#[from] mooring_runtime::app::StartError),
}

/// Runs the kustomize-controller until SIGTERM/SIGINT.
pub async fn run(args: Args) -> Result<(), StartError> {
    let config = kube::Config::infer()
        .await
        .map_err(|e| StartError::Config(e.to_string()))?;
    let client =
        kube::Client::try_from(config.clone()).map_err(|e| StartError::Config(e.to_string()))?;
    let metrics = Metrics::new()?;
    let readiness = Readiness::default();
    let (trigger, shutdown) = shutdown::channel();
    let signals = trigger.on_signals();

    let ops = tokio::spawn(server::serve(
        args.common.metrics_addr,
        metrics.registry.clone(),
        readiness.clone(),
        shutdown.clone(),
    ));

    let limits = Limits {
        max_download_bytes: args.max_download_bytes(),
        ..Limits::default()
    };
    let settings = Settings {
        kustomize: args.kustomize_path.clone(),
        allow_cross_namespace_refs: args.allow_cross_namespace_refs,
        default_service_account: Some(args.default_service_account.clone())
            .filter(|sa| !sa.is_empty()),
        allow_remote_bases: args.allow_remote_bases,
        strict_substitution: args.strict_substitution,
        apply_concurrency: args.apply_concurrency,
        requeue_dependency: Duration::from_secs(args.requeue_dependency_seconds),
        max_render_objects: args.max_render_objects,
    };
    let cache = args.artifact_cache_path.clone();
    let parts =
        Context::build(config, client.clone(), settings, cache, limits, metrics).map_err(|e| {
            StartError::Config(format!(
                "artifact cache {}: {e}",
                args.artifact_cache_path.display()
            ))
        })?;
    let ctx = Arc::new(parts.context);
    let (writers, wakeups) = (parts.writers, parts.wakeups);
    let watch_config = args.common.watch_config();
    let concurrency = args.common.concurrency;
    run_as_leader(
        client,
        &args.common,
        "mooring-kustomize-controller",
        readiness,
        shutdown.clone(),
        move |stop| {
            controller::run(
                ctx,
                writers,
                wakeups,
                watch_config,
                concurrency,
                stopped(stop),
            )
        },
    )
    .await?;
    trigger.trigger();
    signals.abort();
    match ops.await {
        Ok(Err(source)) => Err(StartError::Server {
            addr: args.common.metrics_addr,
            source,
        }),
        _ => Ok(()),
    }
}
