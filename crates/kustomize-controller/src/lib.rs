//! mooring-kustomize-controller.

pub mod apply;
pub mod client_cache;
