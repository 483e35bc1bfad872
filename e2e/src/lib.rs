//! The end-to-end harness: a fresh control plane per test binary, the chart installed with
//! `helm`, the two controller binaries running as the chart's own ServiceAccounts, and every
//! further step through the `kubectl` and `helm` CLIs.
//!
//! Nothing here talks to the API server through a client library: what a test checks is what a
//! user sees.

pub mod cli;
pub mod cluster;
pub mod objects;

pub use cli::Error;
pub use cluster::{Cluster, NAMESPACE, RELEASE};

use mooring_testkit::examples;
use mooring_testkit::git::{Auth, GitServer, Repo};

/// Creates `name` on `server` holding `examples/sample-app`; returns it and the commit SHA.
pub fn sample_repo(server: &GitServer, name: &str) -> Result<(Repo, String), Error> {
    let repo = server.create_repo(name, Auth::None)?;
    let files = examples::sample_app_files()?;
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(path, content)| (path.as_str(), content.as_str()))
        .collect();
    let sha = repo.commit(&files, "the sample app")?;
    Ok((repo, sha))
}

/// The revision a GitRepository following `main` reports for `sha`.
pub fn main_revision(sha: &str) -> String {
    format!("main@sha1:{sha}")
}
