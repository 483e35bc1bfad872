//! The GitRepository controller: fetches repositories with gix, packs each revision into a
//! deterministic tar.gz artifact, stores and serves it, and publishes `status.artifact`.

pub mod archive;
pub mod decide;
pub mod server;
pub mod storage;
