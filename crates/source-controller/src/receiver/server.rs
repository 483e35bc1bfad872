//! The receiver HTTP server: `POST /hook/<digest>`.
//!
//! The answers, in the order they are decided:
//! - 404: no Receiver serves the path (whatever the method or body, so an unauthenticated
//!   caller learns nothing else about which paths exist);
//! - 405: not a POST; 413: a body over the limit (announced or sent);
//! - 401: the call fails the type's authentication (signature or token);
//! - 503: the Receiver is suspended;
//! - 200: a ping, or an event the Receiver's `events` leave out: nothing is fetched;
//! - 202: the Receiver's GitRepositories are queued for a fetch now.
//!
//! None but the last changes anything, and none writes to the API: the fetch is queued in the
//! GitRepository controller itself.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use kube::ResourceExt;
use kube::runtime::reflector::Store;
use mooring_api::{GitRepository, Receiver};
use tokio::net::TcpListener;

use super::auth::{Verdict, check, event_allowed};
use super::{Hooks, Refresh};
use crate::server::{ServerLimits, serve_router_on};

/// The largest body accepted unless `--receiver-max-body-size` says otherwise (GitHub's own
/// limit for a delivery is 25 MiB, but a push event is a few KiB to a few hundred).
pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;

/// What the receiver server reads.
#[derive(Clone)]
pub struct Receivers {
    /// The served paths.
    pub hooks: Hooks,
    /// Every Receiver, as the controller's watch sees it.
    pub receivers: Store<Receiver>,
    /// Every GitRepository, as the controller's watch sees it.
    pub repositories: Store<GitRepository>,
    /// Queues reconciles.
    pub refresh: Refresh,
    /// The shared ref listings, forgotten for the URLs a call announces a change of.
    pub listings: Arc<crate::git::RefListings>,
    /// The largest body accepted, in bytes.
    pub max_body: usize,
    /// Calls answered, by code.
    pub calls: prometheus::IntCounterVec,
}

/// The router of the receiver server.
pub fn router(receivers: Receivers) -> Router {
    Router::new()
        .fallback(handle)
        .with_state(Arc::new(receivers))
}

/// Serves the receivers on `addr` until `shutdown` completes.
pub async fn serve(
    addr: SocketAddr,
    receivers: Receivers,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    serve_on(listener, receivers, shutdown).await
}

/// Serves the receivers on a bound listener until `shutdown` completes.
pub async fn serve_on(
    listener: TcpListener,
    receivers: Receivers,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = ServerLimits {
        max_connections: 64,
        ..ServerLimits::default()
    };
    serve_router_on(
        listener,
        router(receivers),
        limits,
        "receiver server",
        shutdown,
    )
    .await
}

async fn handle(
    State(served): State<Arc<Receivers>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (code, text) = answer(&served, method, uri.path(), &headers, body).await;
    served.calls.with_label_values(&[code.as_str()]).inc();
    (code, format!("{text}\n")).into_response()
}

async fn answer(
    served: &Receivers,
    method: Method,
    path: &str,
    headers: &HeaderMap,
    body: Body,
) -> (StatusCode, String) {
    let not_found = (StatusCode::NOT_FOUND, "not found".to_string());
    let Some(hook) = served.hooks.find(path) else {
        return not_found;
    };
    // Deleted (or deleted and created again) since it was published: not served.
    let Some(receiver) = served
        .receivers
        .get(&hook.receiver)
        .filter(|r| r.uid() == hook.uid)
    else {
        served.hooks.withdraw(&hook.receiver);
        return not_found;
    };
    if method != Method::POST {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed".to_string(),
        );
    }
    let too_large = (
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("body larger than {} bytes", served.max_body),
    );
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > served.max_body as u64) {
        return too_large;
    }
    let Ok(body) = to_bytes(body, served.max_body).await else {
        return too_large;
    };
    let verdict = check(hook.type_, &hook.token, headers, &body);
    let who = format!(
        "{}/{}",
        hook.receiver.namespace.as_deref().unwrap_or_default(),
        hook.receiver.name
    );
    let event = match verdict {
        Verdict::Refused => {
            tracing::info!(receiver = %who, "webhook call refused: authentication failed");
            return (StatusCode::UNAUTHORIZED, "unauthorized".to_string());
        }
        _ if receiver.spec.suspend => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "receiver is suspended".to_string(),
            );
        }
        Verdict::Ping => return (StatusCode::OK, "pong".to_string()),
        Verdict::Event(event) => event,
    };
    if !event_allowed(&hook.events, event.as_deref()) {
        return (
            StatusCode::OK,
            format!(
                "event '{}' is not in spec.events: nothing to do",
                event.unwrap_or_default()
            ),
        );
    }
    let namespace = hook.receiver.namespace.clone().unwrap_or_default();
    let queued = served.refresh.select_and_queue(
        &served.repositories,
        &namespace,
        &hook.resources,
        &served.listings,
    );
    tracing::info!(receiver = %who, event = event.as_deref().unwrap_or(""), queued,
        "webhook call accepted");
    (
        StatusCode::ACCEPTED,
        format!("fetching {queued} GitRepositories"),
    )
}
