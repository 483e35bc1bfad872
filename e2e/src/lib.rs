//! The end-to-end harness: a fresh control plane per test binary, the chart installed with
//! `helm`, the two controller binaries running as the chart's own ServiceAccounts, and every
//! further step through the `kubectl` and `helm` CLIs.
//!
//! Nothing here talks to the API server through a client library: what a test checks is what a
//! user sees.

pub mod chart;
pub mod cli;
pub mod cluster;
pub mod objects;

pub use cli::Error;
pub use cluster::{Cluster, NAMESPACE, RELEASE};

use std::time::Instant;

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

/// Prints how long each step of a test took, so that slow steps show in the test output.
#[derive(Debug)]
pub struct Timer {
    start: Instant,
    last: Instant,
}

impl Timer {
    /// Starts counting.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            last: Instant::now(),
        }
    }

    /// Prints `what` with the time since the start and since the previous step.
    pub fn step(&mut self, what: &str) {
        eprintln!(
            "[e2e {:6.1}s, step {:5.1}s] {what}",
            self.start.elapsed().as_secs_f64(),
            self.last.elapsed().as_secs_f64()
        );
        self.last = Instant::now();
    }
}

impl Default for Timer {
    fn default() -> Self {
        Self::new()
    }
}
