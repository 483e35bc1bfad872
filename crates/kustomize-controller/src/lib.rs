//! mooring-kustomize-controller: turns a Kustomization and its source artifact into objects to
//! apply.
//!
//! Pipeline of the build half: [`artifact`] (download, verify, extract, cache), [`build`]
//! (kustomize, sandboxed), [`substitute`] (post-build variables), [`manifests`] (parse,
//! `commonMetadata`, ownership labels), [`inventory`] (ids, stages, prune set, render digest).

pub mod artifact;
pub mod build;
pub mod inventory;
pub mod manifests;
pub mod substitute;
