//! The steps of a Kustomization pass, in the order the driver ([`crate::reconciler`]) runs
//! them: [`gate`] (spec, source, dependencies) → [`render`] → [`plan`] (against the live view)
//! → [`apply`] → [`prune`] → [`health`]. Each takes and returns plain data; those that talk to
//! the API server say so. [`cleanup`] runs instead when the Kustomization is deleted.

pub mod apply;
pub mod cleanup;
pub mod gate;
pub mod health;
pub mod plan;
pub mod prune;
pub mod render;
