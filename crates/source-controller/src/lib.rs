//! The GitRepository controller: fetches repositories with gix, packs each revision into a
//! deterministic tar.gz artifact, stores and serves it, and publishes `status.artifact`.

pub mod app;
pub mod archive;
pub mod cli;
pub mod context;
pub mod controller;
pub mod decide;
pub mod error;
pub mod git;
pub mod local;
pub mod metrics;
pub mod receiver;
pub mod reconciler;
pub mod server;
pub mod steps;
pub mod storage;
pub mod verification;
pub mod verify;

pub use app::run;
