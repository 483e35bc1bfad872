//! What both Mooring controllers share: flags, telemetry, the health and metrics server, leader
//! election, shutdown, per-object backoff with jittered requeues, status patching, and where an
//! artifact's symbolic links lead.

pub mod app;
pub mod backoff;
pub mod errors;
pub mod events;
pub mod finalizers;
pub mod flags;
pub mod leader;
pub mod links;
pub mod malloc;
pub mod reconcile;
pub mod runner;
pub mod server;
pub mod shutdown;
pub mod spaced;
pub mod status;
pub mod stores;
pub mod telemetry;
