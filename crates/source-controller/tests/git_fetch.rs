//! resolve() and fetch() against the real test git server (git http-backend over HTTP/HTTPS,
//! sshd).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use mooring_api::GitCheckout;
use mooring_source_controller::git::{GitAuth, GitError, Remote, fetch, resolve};
use mooring_testkit::git::{Auth, GitServer, Repo};

fn server() -> &'static GitServer {
    GitServer::shared().expect("start the git server")
}

fn secret(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect()
}

fn remote_with(url: &str, pairs: &[(&str, &str)]) -> Remote {
    let mut remote = Remote::new(url);
    remote.auth = GitAuth::from_secret(&secret(pairs), url).expect("valid secret");
    remote.timeout = Duration::from_secs(30);
    remote
}

fn https(repo: &Repo, pairs: &[(&str, &str)]) -> Remote {
    let mut all = vec![("ca.crt", server().ca_pem())];
    all.extend_from_slice(pairs);
    remote_with(repo.https_url(), &all)
}

fn ssh(repo: &Repo) -> Remote {
    let s = server();
    remote_with(
        repo.ssh_url(),
        &[
            ("identity", s.user_key_pem()),
            ("known_hosts", s.known_hosts()),
        ],
    )
}

fn branch(name: &str) -> GitCheckout {
    GitCheckout::Branch(name.to_owned())
}

fn cache() -> tempfile::TempDir {
    tempfile::tempdir().expect("cache dir")
}

/// Resolves and fetches `checkout`, checks the fetched commit and revision, and returns the
/// revision.
fn resolve_and_fetch(remote: &Remote, checkout: &GitCheckout, cache: &Path, want: &str) -> String {
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

#[test]
fn http_without_auth_resolves_without_fetching_then_fetches() {
    let s = server();
    let repo = s.create_repo("plain-http", Auth::None).expect("repo");
    let head = repo
        .commit(&[("app.yaml", "kind: ConfigMap\n")], "add app\n\nbody")
        .expect("commit");
    let remote = remote_with(repo.http_url(), &[]);
    s.clear_requests(repo.name());

    let resolved = resolve(&remote, &branch("main")).expect("resolve");
    assert_eq!(resolved.revision, format!("main@sha1:{head}"));
    assert_eq!(resolved.ref_name.as_deref(), Some("refs/heads/main"));
    assert_eq!(
        s.fetch_count(repo.name()),
        0,
        "resolve must not fetch a pack"
    );
    assert!(s.ref_listing_count(repo.name()) >= 1);

    let cache = cache();
    let started = Instant::now();
    let fetched = fetch(&remote, &resolved, cache.path()).expect("fetch");
    eprintln!("first fetch (http, 2 commits): {:?}", started.elapsed());
    assert_eq!(fetched.commit, head);
    assert_eq!(fetched.info.subject, "add app");
    assert_eq!(fetched.info.author, "Mooring Test <test@mooring.invalid>");
    assert!(fetched.info.time.ends_with('Z'), "{}", fetched.info.time);
    assert_eq!(s.fetch_count(repo.name()), 1);
    let dir_name = fetched
        .repo_path
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name");
    assert_eq!(
        dir_name,
        mooring_source_controller::git::cache_key(repo.http_url())
    );
}

#[test]
fn https_basic_auth_with_custom_ca() {
    let s = server();
    let repo = s
        .create_repo("https-basic", Auth::basic("bot", "s3cret-pw"))
        .expect("repo");
    let head = repo.head("main").expect("head");
    let cache = cache();
    let good = https(&repo, &[("username", "bot"), ("password", "s3cret-pw")]);
    let revision = resolve_and_fetch(&good, &branch("main"), cache.path(), &head);
    assert_eq!(revision, format!("main@sha1:{head}"));

    let wrong = https(&repo, &[("username", "bot"), ("password", "wrong-pw")]);
    let err = resolve(&wrong, &branch("main")).expect_err("wrong password");
    assert!(
        matches!(err, GitError::AuthenticationFailed { .. }),
        "{err}"
    );
    assert_eq!(err.reason(), "AuthenticationFailed");
    assert!(!err.to_string().contains("wrong-pw"), "{err}");

    let anonymous = https(&repo, &[]);
    let err = resolve(&anonymous, &branch("main")).expect_err("no credentials");
    assert!(err.to_string().contains("requires credentials"), "{err}");
}

#[test]
fn https_without_the_ca_is_a_tls_error() {
    let s = server();
    let repo = s.create_repo("https-no-ca", Auth::None).expect("repo");
    let remote = remote_with(repo.https_url(), &[]);
    let err = resolve(&remote, &branch("main")).expect_err("untrusted certificate");
    assert_eq!(err.label(), "tls", "{err}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
}

#[test]
fn https_bearer_token() {
    let s = server();
    let repo = s
        .create_repo("https-bearer", Auth::bearer("tok-abc-123"))
        .expect("repo");
    let head = repo.head("main").expect("head");
    let remote = https(&repo, &[("bearerToken", "tok-abc-123")]);
    resolve_and_fetch(&remote, &branch("main"), cache().path(), &head);

    let wrong = https(&repo, &[("bearerToken", "tok-wrong-999")]);
    let err = resolve(&wrong, &branch("main")).expect_err("wrong token");
    assert_eq!(err.reason(), "AuthenticationFailed", "{err}");
    assert!(!err.to_string().contains("tok-wrong-999"), "{err}");
}

#[test]
fn credentials_are_never_sent_over_plain_http() {
    let s = server();
    let repo = s
        .create_repo("plain-http-creds", Auth::basic("bot", "pw"))
        .expect("repo");
    let pairs = secret(&[("username", "bot"), ("password", "pw")]);
    let err = GitAuth::from_secret(&pairs, repo.http_url()).expect_err("refused");
    assert!(
        err.to_string()
            .contains("refusing to send credentials over plain http"),
        "{err}"
    );

    let url = repo.http_url().replace("http://", "http://bot:pw-in-url@");
    s.clear_requests(repo.name());
    let err = resolve(&Remote::new(url), &branch("main")).expect_err("refused");
    assert!(
        err.to_string()
            .contains("refusing to send credentials over plain http"),
        "{err}"
    );
    assert!(!err.to_string().contains("pw-in-url"), "{err}");
    assert!(
        s.requests(repo.name()).is_empty(),
        "nothing may reach the server"
    );
}

#[test]
fn ssh_with_known_hosts() {
    let s = server();
    let repo = s.create_repo("ssh-plain-key", Auth::None).expect("repo");
    let head = repo.head("main").expect("head");
    let remote = ssh(&repo);
    s.clear_requests(repo.name());
    let started = Instant::now();
    let resolved = resolve(&remote, &branch("main")).expect("resolve over ssh");
    eprintln!("ssh resolve: {:?}", started.elapsed());
    assert_eq!(
        s.fetch_count(repo.name()),
        0,
        "resolve must not fetch a pack"
    );
    let started = Instant::now();
    let fetched = fetch(&remote, &resolved, cache().path()).expect("fetch over ssh");
    eprintln!("ssh fetch: {:?}", started.elapsed());
    assert_eq!(fetched.commit, head);
}

#[test]
fn ssh_with_an_encrypted_key() {
    let s = server();
    let repo = s
        .create_repo("ssh-encrypted-key", Auth::None)
        .expect("repo");
    let head = repo.head("main").expect("head");
    let pairs = [
        ("identity", s.encrypted_user_key_pem()),
        ("known_hosts", s.known_hosts()),
        ("password", s.user_key_passphrase()),
    ];
    let remote = remote_with(repo.ssh_url(), &pairs);
    resolve_and_fetch(&remote, &branch("main"), cache().path(), &head);

    let wrong = [
        ("identity", s.encrypted_user_key_pem()),
        ("known_hosts", s.known_hosts()),
        ("password", "not-the-passphrase"),
    ];
    let err = resolve(&remote_with(repo.ssh_url(), &wrong), &branch("main")).expect_err("wrong");
    assert_eq!(err.reason(), "AuthenticationFailed", "{err}");
    assert!(err.to_string().contains("'password'"), "{err}");
}

/// A syntactically valid ed25519 public key that no server has.
fn foreign_host_key() -> String {
    use base64::Engine;
    let mut blob = Vec::new();
    for part in [&b"ssh-ed25519"[..], &[7u8; 32][..]] {
        blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
        blob.extend_from_slice(part);
    }
    format!(
        "ssh-ed25519 {}",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

#[test]
fn ssh_host_key_must_be_known_and_unchanged() {
    let s = server();
    let repo = s.create_repo("ssh-host-keys", Auth::None).expect("repo");
    let other_host = format!("[example.invalid]:22 {}\n", foreign_host_key());
    let pairs = [
        ("identity", s.user_key_pem()),
        ("known_hosts", other_host.as_str()),
    ];
    let err = resolve(&remote_with(repo.ssh_url(), &pairs), &branch("main")).expect_err("unknown");
    assert_eq!(err.label(), "host_key_unknown", "{err}");
    assert!(err.to_string().contains("not in known_hosts"), "{err}");

    let changed = format!("[127.0.0.1]:{} {}\n", s.ssh_port(), foreign_host_key());
    let pairs = [
        ("identity", s.user_key_pem()),
        ("known_hosts", changed.as_str()),
    ];
    let err = resolve(&remote_with(repo.ssh_url(), &pairs), &branch("main")).expect_err("changed");
    assert_eq!(err.label(), "host_key_changed", "{err}");
}

#[test]
fn every_ref_kind_resolves_and_fetches() {
    let s = server();
    let repo = s.create_repo("ref-kinds", Auth::None).expect("repo");
    let v1 = repo.commit(&[("a", "1")], "one").expect("commit");
    repo.tag("v1.0.0", false, "").expect("lightweight tag");
    let v11 = repo.commit(&[("a", "2")], "two").expect("commit");
    repo.tag("v1.1.0", true, "release 1.1.0")
        .expect("annotated tag");
    let v2 = repo.commit(&[("a", "3")], "three").expect("commit");
    repo.tag("v2.0.0", true, "release 2")
        .expect("annotated tag");
    repo.tag("not-semver", false, "").expect("tag");
    let dev = repo
        .commit_on("dev", &[("b", "dev")], "on dev")
        .expect("dev commit");
    let remote = https(&repo, &[]);
    let cache = cache();
    let c = cache.path();

    let rev = |r: &str, sha: &str| format!("{r}@sha1:{sha}");
    assert_eq!(
        resolve_and_fetch(&remote, &branch("main"), c, &v2),
        rev("main", &v2)
    );
    assert_eq!(
        resolve_and_fetch(&remote, &branch("dev"), c, &dev),
        rev("dev", &dev)
    );
    let tag = |t: &str| GitCheckout::Tag(t.to_owned());
    assert_eq!(
        resolve_and_fetch(&remote, &tag("v1.0.0"), c, &v1),
        rev("v1.0.0", &v1)
    );
    // Annotated: peeled to the commit.
    assert_eq!(
        resolve_and_fetch(&remote, &tag("v1.1.0"), c, &v11),
        rev("v1.1.0", &v11)
    );
    let semver = GitCheckout::Semver(">=1.0.0 <2.0.0".to_owned());
    assert_eq!(
        resolve_and_fetch(&remote, &semver, c, &v11),
        rev("v1.1.0", &v11)
    );
    let semver = GitCheckout::Semver("*".to_owned());
    assert_eq!(
        resolve_and_fetch(&remote, &semver, c, &v2),
        rev("v2.0.0", &v2)
    );
    let name = GitCheckout::Name("refs/heads/dev".to_owned());
    assert_eq!(
        resolve_and_fetch(&remote, &name, c, &dev),
        rev("refs/heads/dev", &dev)
    );
    let name = GitCheckout::Name("refs/tags/v1.1.0".to_owned());
    assert_eq!(
        resolve_and_fetch(&remote, &name, c, &v11),
        rev("refs/tags/v1.1.0", &v11)
    );
    let commit = GitCheckout::Commit {
        commit: v1.clone(),
        branch: None,
    };
    assert_eq!(
        resolve_and_fetch(&remote, &commit, c, &v1),
        format!("sha1:{v1}")
    );
    let commit = GitCheckout::Commit {
        commit: v11.clone(),
        branch: Some("main".to_owned()),
    };
    assert_eq!(
        resolve_and_fetch(&remote, &commit, c, &v11),
        rev("main", &v11)
    );
}

#[test]
fn missing_refs_and_empty_repositories_have_clear_errors() {
    let s = server();
    let repo = s.create_repo("missing-refs", Auth::None).expect("repo");
    repo.tag("v0.1.0", false, "").expect("tag");
    let remote = remote_with(repo.http_url(), &[]);
    let err = resolve(&remote, &branch("master")).expect_err("no master");
    assert_eq!(
        err.to_string(),
        format!(
            "branch 'master' not found in {}; the repository's default branch (HEAD) is 'main'",
            repo.http_url()
        )
    );
    let err = resolve(&remote, &GitCheckout::Tag("v9".into())).expect_err("no tag");
    assert_eq!(
        err.to_string(),
        format!("tag 'v9' not found in {}", repo.http_url())
    );
    let err = resolve(&remote, &GitCheckout::Semver(">=1.0.0".into())).expect_err("no match");
    assert!(
        err.to_string()
            .contains("matches semver range '>=1.0.0' (1 tags seen"),
        "{err}"
    );
    let err = resolve(&remote, &GitCheckout::Name("refs/heads/nope".into())).expect_err("no ref");
    assert_eq!(err.label(), "ref_not_found");

    let empty = s.empty_repo("empty-repo", Auth::None).expect("empty");
    let remote = remote_with(empty.http_url(), &[]);
    for checkout in [
        branch("main"),
        GitCheckout::Tag("v1".into()),
        GitCheckout::Semver("*".into()),
    ] {
        let err = resolve(&remote, &checkout).expect_err("empty");
        assert_eq!(err.reason(), "EmptyGitRepository", "{checkout:?}: {err}");
        assert!(err.to_string().contains("is empty"), "{err}");
    }
}

#[test]
fn unreachable_host_and_timeout() {
    // A port that was free a moment ago: nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let remote = remote_with(&format!("http://127.0.0.1:{port}/repo.git"), &[]);
    let err = resolve(&remote, &branch("main")).expect_err("refused");
    assert_eq!(err.label(), "unreachable", "{err}");
    assert_eq!(err.reason(), "GitOperationFailed");

    // Accepts connections (the kernel queues them) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let mut remote = remote_with(&format!("http://127.0.0.1:{port}/repo.git"), &[]);
    remote.timeout = Duration::from_secs(1);
    let started = Instant::now();
    let err = resolve(&remote, &branch("main")).expect_err("timeout");
    assert_eq!(err.label(), "timeout", "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}

#[test]
fn a_missing_commit_fails_at_fetch() {
    let s = server();
    let repo = s.create_repo("missing-commit", Auth::None).expect("repo");
    let remote = remote_with(repo.http_url(), &[]);
    let ghost = "0123456789abcdef0123456789abcdef01234567";
    let checkout = GitCheckout::Commit {
        commit: ghost.to_owned(),
        branch: None,
    };
    s.clear_requests(repo.name());
    let resolved = resolve(&remote, &checkout).expect("commit resolves offline");
    assert_eq!(resolved.revision, format!("sha1:{ghost}"));
    assert!(
        s.requests(repo.name()).is_empty(),
        "a bare commit needs no request"
    );
    let err = fetch(&remote, &resolved, cache().path()).expect_err("no such commit");
    assert_eq!(err.label(), "commit_not_found", "{err}");
    assert!(err.to_string().contains(ghost), "{err}");
}
