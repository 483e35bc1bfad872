//! Helpers shared by the git integration tests.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use mooring_api::GitCheckout;
use mooring_source_controller::git::{GitAuth, Remote, fetch, resolve};
use mooring_testkit::git::{GitServer, Repo};

/// The shared test git server.
pub fn server() -> &'static GitServer {
    GitServer::shared().expect("start the git server")
}

/// Secret data from string pairs.
pub fn secret(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect()
}

/// A remote for `url` with credentials parsed from `pairs` and a 30 s timeout.
pub fn remote_with(url: &str, pairs: &[(&str, &str)]) -> Remote {
    let mut remote = Remote::new(url);
    remote.auth = GitAuth::from_secret(&secret(pairs), url).expect("valid secret");
    remote.timeout = Duration::from_secs(30);
    remote
}

/// The HTTPS remote of `repo`, trusting the server's CA, with more Secret `pairs`.
pub fn https(repo: &Repo, pairs: &[(&str, &str)]) -> Remote {
    let mut all = vec![("ca.crt", server().ca_pem())];
    all.extend_from_slice(pairs);
    remote_with(repo.https_url(), &all)
}

/// The SSH remote of `repo` with the server's plain user key and known_hosts.
pub fn ssh(repo: &Repo) -> Remote {
    let s = server();
    remote_with(
        repo.ssh_url(),
        &[
            ("identity", s.user_key_pem()),
            ("known_hosts", s.known_hosts()),
        ],
    )
}

/// A branch checkout.
pub fn branch(name: &str) -> GitCheckout {
    GitCheckout::Branch(name.to_owned())
}

/// A fresh cache root.
pub fn cache() -> tempfile::TempDir {
    tempfile::tempdir().expect("cache dir")
}

/// Resolves and fetches `checkout`, checks the fetched commit and revision, and returns the
/// revision.
pub fn resolve_and_fetch(
    remote: &Remote,
    checkout: &GitCheckout,
    cache: &Path,
    want: &str,
) -> String {
    let resolved = resolve(remote, checkout).unwrap_or_else(|e| panic!("resolve: {e}"));
    assert_eq!(resolved.commit, want);
    let fetched = fetch(remote, &resolved, cache).unwrap_or_else(|e| panic!("fetch: {e}"));
    assert_eq!(fetched.commit, want);
    assert_eq!(fetched.revision, resolved.revision);
    let repo = gix::open(&fetched.repo_path).expect("open the cache");
    let id = gix::ObjectId::from_hex(want.as_bytes()).expect("hex");
    repo.find_commit(id).expect("commit in the cache");
    resolved.revision
}
