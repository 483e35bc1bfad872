//! The Kustomization controller: builds source artifacts with kustomize and keeps the cluster
//! equal to the result with server-side apply, pruning, drift correction and health checks.

pub mod apply;
pub mod client_cache;
pub mod decide;
pub mod drift;
pub mod health;
