//! The Kustomization controller: builds source artifacts with kustomize and keeps the cluster
//! equal to the result with server-side apply, pruning, drift correction and health checks.

pub mod app;
pub mod apply;
pub mod artifact;
pub mod build;
pub mod cli;
pub mod client_cache;
pub mod context;
pub mod controller;
pub mod decide;
pub mod decrypt;
pub mod error;
pub mod health;
pub mod inventory;
pub mod live;
pub mod local;
pub mod manifests;
pub mod metrics;
pub mod reconciler;
pub mod source;
pub mod state;
pub mod steps;
pub mod substitute;
pub mod target;
pub mod wakes;

pub use app::run;
