//! mooring-kustomize-controller.

pub mod health;
