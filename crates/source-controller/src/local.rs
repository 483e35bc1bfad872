//! The controller and artifact server in the calling process, for tests, benchmarks and
//! `make run`-style tooling. Production uses [`crate::run`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{reflector, watcher};
use mooring_runtime::backoff::FailureTracker;
use tokio::sync::watch;

use crate::context::{Context, Settings};
use crate::metrics::Metrics;
use crate::storage::Storage;

/// Where and how to run.
#[derive(Debug)]
pub struct LocalOptions {
    /// Artifact storage directory.
    pub storage: PathBuf,
    /// Git cache directory.
    pub git_cache: PathBuf,
    /// Listener for the artifact server (bind 127.0.0.1:0 for a free port).
    pub listener: tokio::net::TcpListener,
    /// Only watch this namespace.
    pub namespace: Option<String>,
    /// Reconciles at once.
    pub concurrency: u16,
}

/// A running in-process source-controller.
pub struct LocalController {
    /// The artifact server's base URL.
    pub base_url: String,
    /// The shared context (metrics, storage).
    pub context: Arc<Context>,
    stop: watch::Sender<bool>,
    controller: tokio::task::JoinHandle<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl LocalController {
    /// Stops the controller and the artifact server and waits for both.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.controller.await;
        let _ = self.server.await;
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Starts the controller and the artifact server with `client`.
pub fn start(
    client: kube::Client,
    options: LocalOptions,
) -> Result<LocalController, prometheus::Error> {
    let base_url = match options.listener.local_addr() {
        Ok(addr) => format!("http://{addr}"),
        Err(_) => "http://127.0.0.1".to_string(),
    };
    let (stop, stop_rx) = watch::channel(false);
    let server = tokio::spawn(crate::server::serve_on(
        options.listener,
        options.storage.clone(),
        stopped(stop_rx.clone()),
    ));
    let (repositories, writer) = reflector::store();
    let context = Arc::new(Context {
        client: client.clone(),
        storage: Storage::new(options.storage),
        settings: Settings {
            git_cache: options.git_cache,
            advertised_base: base_url.clone(),
            retention: 2,
            max_artifact_size: Some(512 * 1024 * 1024),
        },
        recorder: Recorder::new(client, Reporter::from("mooring-source-controller")),
        metrics: Metrics::new()?,
        failures: FailureTracker::new(Duration::from_millis(500), Duration::from_secs(30)),
        repositories,
    });
    let config = match &options.namespace {
        Some(ns) => watcher::Config::default().fields(&format!("metadata.namespace={ns}")),
        None => watcher::Config::default(),
    };
    let controller = tokio::spawn(crate::controller::run(
        context.clone(),
        writer,
        config,
        options.concurrency,
        stopped(stop_rx),
    ));
    Ok(LocalController {
        base_url,
        context,
        stop,
        controller,
        server,
    })
}
