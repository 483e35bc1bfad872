//! The controller and artifact server in the calling process, for tests, benchmarks and
//! `make run`-style tooling. Production uses [`crate::run`]; both build their context with
//! [`Context::new`], so an in-process run differs only in what its caller chooses below.

use std::path::PathBuf;
use std::sync::Arc;

use mooring_runtime::flags::watch_config;
use tokio::sync::watch;

use crate::context::{Context, Settings};

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
    /// The receiver server's base URL (`http://127.0.0.1:<port>`); a Receiver's
    /// `status.webhookPath` goes after it.
    pub receiver_url: String,
    /// The shared context (metrics, storage).
    pub context: Arc<Context>,
    stop: watch::Sender<bool>,
    controller: tokio::task::JoinHandle<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    receiver_server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl LocalController {
    /// Stops the controller and the artifact server and waits for both.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.controller.await;
        let _ = self.server.await;
        let _ = self.receiver_server.await;
    }
}

/// Why an in-process controller could not start.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// Registering the metrics failed.
    #[error("registering metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The receiver server's port could not be bound.
    #[error("binding the receiver server: {0}")]
    Bind(std::io::Error),
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Starts the controller, the artifact server and the receiver server (on a free port of
/// 127.0.0.1) with `client`, with the binary's default settings.
pub fn start(client: kube::Client, options: LocalOptions) -> Result<LocalController, LocalError> {
    start_with(client, options, |_| {})
}

/// Like [`start`], with `settings` changing the defaults first, as the binary's flags would
/// (for example a small `max_artifact_size`).
pub fn start_with(
    client: kube::Client,
    options: LocalOptions,
    settings: impl FnOnce(&mut Settings),
) -> Result<LocalController, LocalError> {
    // Bound here, synchronously, so that the URL is known before anything is served.
    let receiver_listener = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .and_then(tokio::net::TcpListener::from_std)
        .map_err(LocalError::Bind)?;
    let receiver_url = match receiver_listener.local_addr() {
        Ok(addr) => format!("http://{addr}"),
        Err(_) => "http://127.0.0.1".to_string(),
    };
    let base_url = match options.listener.local_addr() {
        Ok(addr) => format!("http://{addr}"),
        Err(_) => "http://127.0.0.1".to_string(),
    };
    let mut chosen = Settings::with_defaults(options.git_cache, base_url.clone());
    settings(&mut chosen);
    let (context, feeds) = Context::new(client, options.storage.clone(), chosen)?;
    let context = Arc::new(context);
    let (stop, stop_rx) = watch::channel(false);
    let server = tokio::spawn(crate::server::serve_on(
        options.listener,
        options.storage,
        crate::server::ServerLimits::default(),
        stopped(stop_rx.clone()),
    ));
    let receiver_server = tokio::spawn(crate::receiver::server::serve_on(
        receiver_listener,
        context.receiver_server(crate::receiver::server::DEFAULT_MAX_BODY),
        stopped(stop_rx.clone()),
    ));
    let controller = tokio::spawn(crate::controller::run(
        context.clone(),
        feeds,
        watch_config(None, options.namespace.as_deref()),
        options.concurrency,
        stopped(stop_rx),
    ));
    Ok(LocalController {
        base_url,
        receiver_url,
        context,
        stop,
        controller,
        server,
        receiver_server,
    })
}
