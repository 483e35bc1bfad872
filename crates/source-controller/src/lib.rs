//! mooring-source-controller.

pub mod git;
