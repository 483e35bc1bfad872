//! mooring-source-controller.

pub mod archive;
pub mod server;
pub mod storage;
