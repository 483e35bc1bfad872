//! Start-up of the source-controller process: client, storage, servers, leader election.

use std::sync::Arc;

use mooring_runtime::app::{run_as_leader, stopped};
use mooring_runtime::server::{self, Readiness};
use mooring_runtime::shutdown;

use crate::cli::Args;
use crate::context::{Context, Settings};

/// Why the controller could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No usable Kubernetes configuration.
    #[error("loading the Kubernetes configuration: {0}")]
    Config(String),
    /// Registering metrics failed.
    #[error("registering metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// A server could not start.
    #[error("{what} server: {source}")]
    Server {
        /// Which server.
        what: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// Leader election could not start.
    #[error(transparent)]
    Leader(#[from] mooring_runtime::app::StartError),
}

/// Runs the source-controller until SIGTERM/SIGINT.
///
/// The artifact server runs on every replica, but only the leader is ready, so the Service
/// sends downloads to the replica whose storage holds the artifacts.
pub async fn run(args: Args) -> Result<(), StartError> {
    crate::git::keep_scratch_in(&args.git_cache_path);
    let client = kube::Client::try_default()
        .await
        .map_err(|e| StartError::Config(e.to_string()))?;
    let (ctx, feeds) = Context::new(
        client.clone(),
        args.storage_path.clone(),
        Settings::from_args(&args),
    )?;
    let ctx = Arc::new(ctx);
    let readiness = Readiness::default();
    let (trigger, shutdown) = shutdown::channel();
    let signals = trigger.on_signals();

    let ops = tokio::spawn(server::serve(
        args.common.metrics_addr,
        ctx.metrics.registry.clone(),
        readiness.clone(),
        shutdown.clone(),
    ));
    let limits = crate::server::ServerLimits {
        max_connections: args.artifact_max_connections.max(1),
        ..Default::default()
    };
    let artifacts = tokio::spawn(crate::server::serve(
        args.artifact_addr,
        args.storage_path.clone(),
        limits,
        shutdown.clone().wait(),
    ));

    let receivers = tokio::spawn(crate::receiver::server::serve(
        args.receiver_addr,
        ctx.receiver_server(args.receiver_max_body_size),
        shutdown.clone().wait(),
    ));

    let watch_config = args.common.watch_config();
    let concurrency = args.common.concurrency;
    run_as_leader(
        client,
        &args.common,
        "mooring-source-controller",
        readiness,
        shutdown.clone(),
        move |stop| crate::controller::run(ctx, feeds, watch_config, concurrency, stopped(stop)),
    )
    .await?;
    trigger.trigger();
    signals.abort();
    if let Ok(Err(source)) = artifacts.await {
        return Err(StartError::Server {
            what: "artifact",
            source,
        });
    }
    if let Ok(Err(source)) = receivers.await {
        return Err(StartError::Server {
            what: "receiver",
            source,
        });
    }
    if let Ok(Err(source)) = ops.await {
        return Err(StartError::Server {
            what: "operations",
            source,
        });
    }
    Ok(())
}
