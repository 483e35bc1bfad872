//! resolve() and fetch() over every transport against the real test git server (git
//! http-backend over HTTP and HTTPS, sshd): credentials, trust, and failures.

mod common;

use std::time::{Duration, Instant};

use common::*;
use mooring_source_controller::git::{GitAuth, GitError, ProxyConfig, Remote, fetch, resolve};
use mooring_testkit::git::{Auth, Credential, RequestKind};
use mooring_testkit::proxy::ForwardProxy;

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
    let started = Instant::now();
    let revision = resolve_and_fetch(&good, &branch("main"), cache.path(), &head);
    eprintln!(
        "https basic, resolve + fetch of one commit: {:?}",
        started.elapsed()
    );
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

/// The kinds of the requests `repo` received since the last clear, in order.
fn request_kinds(s: &mooring_testkit::git::GitServer, repo: &str) -> Vec<RequestKind> {
    s.requests(repo).iter().map(|r| r.kind).collect()
}

#[test]
fn listings_of_a_known_server_send_only_ls_refs_on_a_kept_connection() {
    let s = server();
    let repo = s
        .create_repo("listing-kept", Auth::basic("bot", "kept-pw"))
        .expect("repo");
    let remote = https(&repo, &[("username", "bot"), ("password", "kept-pw")]);
    s.clear_requests(repo.name());
    let first = resolve(&remote, &branch("main")).expect("resolve");
    assert_eq!(
        request_kinds(s, repo.name()),
        [RequestKind::RefAdvertisement, RequestKind::LsRefs],
        "the first listing asks for the capabilities, with the credentials at once"
    );
    assert!(
        s.requests(repo.name()).iter().all(|r| r.succeeded()
            && r.credential
                == Credential::Basic {
                    username: "bot".into()
                }),
        "{:?}",
        s.requests(repo.name())
    );

    // The capabilities are remembered: one request per listing, and a new commit is seen.
    let head = repo
        .commit(&[("next.yaml", "kind: ConfigMap\n")], "next")
        .expect("commit");
    s.clear_requests(repo.name());
    let second = resolve(&remote, &branch("main")).expect("resolve");
    assert_ne!(first.commit, second.commit);
    assert_eq!(second.commit, head);
    assert_eq!(request_kinds(s, repo.name()), [RequestKind::LsRefs]);

    // A tag is peeled to its commit, and a missing branch still names the default one.
    repo.tag("v1.0.0", true, "release").expect("tag");
    let tagged = resolve(&remote, &mooring_api::GitCheckout::Tag("v1.0.0".into())).expect("tag");
    assert_eq!(tagged.commit, head);
    let err = resolve(&remote, &branch("nope")).expect_err("no such branch");
    assert!(err.to_string().contains("main"), "{err}");

    // A wrong password fails as gix reports it; after any failed listing the server's
    // capabilities are asked for again.
    let wrong = https(&repo, &[("username", "bot"), ("password", "wrong-pw")]);
    let err = resolve(&wrong, &branch("main")).expect_err("wrong password");
    assert!(
        matches!(err, GitError::AuthenticationFailed { .. }),
        "{err}"
    );
    assert!(!err.to_string().contains("wrong-pw"), "{err}");
    s.clear_requests(repo.name());
    resolve(&remote, &branch("main")).expect("resolve");
    assert_eq!(
        request_kinds(s, repo.name()),
        [RequestKind::RefAdvertisement, RequestKind::LsRefs]
    );
}

#[test]
fn a_fetch_over_https_sends_the_credentials_at_once_and_keeps_one_connection() {
    let s = server();
    let repo = s
        .create_repo("fetch-kept", Auth::basic("bot", "fetch-pw"))
        .expect("repo");
    let head = repo
        .commit(&[("app.yaml", "kind: ConfigMap\n")], "app")
        .expect("commit");
    let remote = https(&repo, &[("username", "bot"), ("password", "fetch-pw")]);
    let resolved = resolve(&remote, &branch("main")).expect("resolve");
    s.clear_requests(repo.name());
    let cache = cache();
    let fetched = fetch(&remote, &resolved, cache.path()).expect("fetch");
    assert_eq!(fetched.commit, head);
    let served = s.requests(repo.name());
    // gix's own client asked without credentials first and answered the 401 with them.
    assert_eq!(
        request_kinds(s, repo.name()),
        [
            RequestKind::RefAdvertisement,
            RequestKind::LsRefs,
            RequestKind::Fetch
        ],
        "{served:?}"
    );
    assert!(
        served.iter().all(|r| r.succeeded()
            && r.credential
                == Credential::Basic {
                    username: "bot".into()
                }),
        "{served:?}"
    );
    assert!(
        served.iter().all(|r| r.connection == served[0].connection),
        "one connection carries the fetch: {served:?}"
    );

    // A bearer token goes with every request too.
    let bearer = s
        .create_repo("fetch-kept-bearer", Auth::bearer("tok-fetch-456"))
        .expect("repo");
    let head = bearer.head("main").expect("head");
    let remote = https(&bearer, &[("bearerToken", "tok-fetch-456")]);
    let resolved = resolve(&remote, &branch("main")).expect("resolve");
    s.clear_requests(bearer.name());
    let fetched = fetch(&remote, &resolved, cache.path()).expect("fetch");
    assert_eq!(fetched.commit, head);
    let served = s.requests(bearer.name());
    assert!(
        served
            .iter()
            .all(|r| r.succeeded() && r.credential == Credential::Bearer),
        "{served:?}"
    );
}

#[test]
fn a_moved_repository_is_fetched_where_the_redirect_of_its_first_request_leads() {
    let s = server();
    let repo = s
        .create_repo("fetch-moved", Auth::basic("bot", "moved-pw"))
        .expect("repo");
    let head = repo
        .commit(&[("app.yaml", "kind: ConfigMap\n")], "app")
        .expect("commit");
    let mut remote = https(&repo, &[("username", "bot"), ("password", "moved-pw")]);
    remote.url = repo.moved_https_url();
    let resolved = resolve(&remote, &branch("main")).expect("resolve through the redirect");
    assert_eq!(resolved.commit, head);
    s.clear_requests(repo.name());
    let cache = cache();
    let fetched = fetch(&remote, &resolved, cache.path()).expect("fetch through the redirect");
    assert_eq!(fetched.commit, head);
    let served = s.requests(repo.name());
    let paths: Vec<(u16, &str)> = served.iter().map(|r| (r.status, r.path.as_str())).collect();
    let base = format!("/{}.git", repo.name());
    assert_eq!(
        paths,
        [
            (301, format!("/moved{base}/info/refs").as_str()),
            (200, format!("{base}/info/refs").as_str()),
            (200, format!("{base}/git-upload-pack").as_str()),
            (200, format!("{base}/git-upload-pack").as_str()),
        ],
        "only the first request is redirected; the fetch goes to the new base"
    );
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
    remote.timeout_setting = "--max-git-timeout";
    let started = Instant::now();
    let err = resolve(&remote, &branch("main")).expect_err("timeout");
    assert_eq!(err.label(), "timeout", "{err}");
    assert!(
        err.to_string()
            .ends_with("timed out after 1s (--max-git-timeout)"),
        "the message names the setting that gave the limit: {err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    // A fetch from it ends at the deadline too, and one cancelled meanwhile ends at once.
    let resolved = mooring_source_controller::git::Resolved {
        commit: "0123456789abcdef0123456789abcdef01234567".into(),
        revision: "main@sha1:0123456789abcdef0123456789abcdef01234567".into(),
        ref_name: Some("refs/heads/main".into()),
    };
    let cache = cache();
    let started = Instant::now();
    let err = fetch(&remote, &resolved, cache.path()).expect_err("timeout");
    assert_eq!(err.label(), "timeout", "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // Cancelled once the fetch's connection is accepted, while it waits for an answer.
    let quiet = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = quiet.local_addr().expect("addr").port();
    let remote = remote_with(&format!("http://127.0.0.1:{port}/repo.git"), &[]);
    let cancel = remote.cancel.clone();
    let canceller = std::thread::spawn(move || {
        let accepted = quiet.accept();
        cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        accepted
    });
    let started = Instant::now();
    let err = fetch(&remote, &resolved, cache.path()).expect_err("cancelled");
    let _connection = canceller.join().expect("canceller");
    assert_eq!(err.label(), "cancelled", "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}

#[test]
fn cancelled_before_start() {
    let s = server();
    let repo = s.create_repo("cancelled", Auth::None).expect("repo");
    let remote = remote_with(repo.http_url(), &[]);
    let resolved = resolve(&remote, &branch("main")).expect("resolve");
    remote
        .cancel
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let err = resolve(&remote, &branch("main")).expect_err("cancelled");
    assert_eq!(err.label(), "cancelled");
    let err = fetch(&remote, &resolved, cache().path()).expect_err("cancelled");
    assert_eq!(err.label(), "cancelled");
}

#[test]
fn a_proxy_secret_carries_listings_and_fetches_over_http_and_https() {
    let s = server();
    let proxy = ForwardProxy::start(Some(("pu", "proxy-pw"))).expect("proxy");
    let proxy_url = proxy.url();
    let through_proxy = |password: &str| {
        let data = secret(&[
            ("address", &proxy_url),
            ("username", "pu"),
            ("password", password),
        ]);
        Some(ProxyConfig::from_secret(&data).expect("proxy secret"))
    };
    let cache = cache();

    // Plain HTTP: absolute-form requests, each carrying the proxy's credentials.
    let repo = s.create_repo("via-proxy", Auth::None).expect("repo");
    let head = repo.head("main").expect("head");
    let mut remote = remote_with(repo.http_url(), &[]);
    remote.proxy = through_proxy("proxy-pw");
    s.clear_requests(repo.name());
    let resolved = resolve(&remote, &branch("main")).expect("resolve through the proxy");
    assert_eq!(resolved.revision, format!("main@sha1:{head}"));
    let fetched = fetch(&remote, &resolved, cache.path()).expect("fetch through the proxy");
    assert_eq!(fetched.commit, head);
    let carried = proxy.requests();
    assert!(
        carried.iter().all(|r| r.authorized
            && r.method != "CONNECT"
            && r.target.starts_with(repo.http_url())),
        "{carried:?}"
    );
    // Every request the git server saw came through the proxy.
    assert_eq!(carried.len(), s.requests(repo.name()).len(), "{carried:?}");
    assert!(carried.iter().any(|r| r.method == "POST"), "{carried:?}");

    // HTTPS: one CONNECT tunnel per connection, TLS to the git server inside it.
    let tls = s
        .create_repo("via-proxy-tls", Auth::basic("bot", "tls-pw"))
        .expect("repo");
    let tls_head = tls.head("main").expect("head");
    let mut remote = https(&tls, &[("username", "bot"), ("password", "tls-pw")]);
    remote.proxy = through_proxy("proxy-pw");
    proxy.clear();
    s.clear_requests(tls.name());
    let resolved = resolve(&remote, &branch("main")).expect("resolve through a tunnel");
    let fetched = fetch(&remote, &resolved, cache.path()).expect("fetch through a tunnel");
    assert_eq!(fetched.commit, tls_head);
    let carried = proxy.requests();
    let authority = tls
        .https_url()
        .trim_start_matches("https://")
        .split('/')
        .next()
        .expect("authority")
        .to_owned();
    assert!(!carried.is_empty());
    assert!(
        carried
            .iter()
            .all(|r| r.authorized && r.method == "CONNECT" && r.target == authority),
        "{carried:?}"
    );
    assert!(
        s.requests(tls.name())
            .iter()
            .any(|r| r.kind == RequestKind::Fetch && r.succeeded()),
        "the git server served the fetch"
    );

    // Wrong proxy credentials: the proxy refuses, the error says so without the password, and
    // the git server is never reached.
    let mut remote = remote_with(repo.http_url(), &[]);
    remote.proxy = through_proxy("not-the-proxy-pw");
    proxy.clear();
    s.clear_requests(repo.name());
    let err = resolve(&remote, &branch("main")).expect_err("the proxy refuses");
    let message = err.to_string();
    assert!(!message.contains("not-the-proxy-pw"), "{message}");
    assert!(message.contains("407"), "{message}");
    assert!(proxy.requests().iter().all(|r| !r.authorized));
    assert!(
        s.requests(repo.name()).is_empty(),
        "{:?}",
        s.requests(repo.name())
    );

    // A file over the object limit is streamed through the proxy too, over HTTP and through a
    // tunnel over HTTPS with the Secret's CA and credentials (gix's transport carries the
    // second fetch there, with the same settings as gix's own).
    let size: u64 = 4 << 20;
    for over_tls in [false, true] {
        let name = format!("big-via-proxy-{}", if over_tls { "tls" } else { "http" });
        // Credentials only over TLS: a Secret's are refused over plain HTTP.
        let auth = if over_tls {
            Auth::basic("bot", "big-pw")
        } else {
            Auth::None
        };
        let big = s.create_repo(&name, auth).expect("repo");
        let big_head = big
            .commit_zeros("big.bin", size, "a big file")
            .expect("commit");
        let mut remote = if over_tls {
            https(&big, &[("username", "bot"), ("password", "big-pw")])
        } else {
            remote_with(big.http_url(), &[])
        };
        remote.proxy = through_proxy("proxy-pw");
        remote.object_size_limit = Some(1 << 20);
        proxy.clear();
        s.clear_requests(big.name());
        let resolved = resolve(&remote, &branch("main")).expect("resolve");
        let fetched = fetch(&remote, &resolved, cache.path()).expect("streamed through the proxy");
        assert_eq!(fetched.commit, big_head);
        let packed = mooring_source_controller::git::pack::packed_blob(
            &fetched.repo_path.join("objects"),
            &blob_of(&fetched.repo_path, &big_head, "big.bin"),
        )
        .expect("read the pack")
        .expect("stored whole in a pack");
        assert_eq!(packed.size, size);
        assert_shallow_at(&fetched.repo_path, &big_head);
        let served = s.requests(big.name());
        assert_eq!(
            served
                .iter()
                .filter(|r| r.kind == RequestKind::Fetch)
                .count(),
            2,
            "gix's fetch, refused for the size, then the streamed one: {served:?}"
        );
        if over_tls {
            // gix asks without credentials first and answers the 401 with them.
            assert!(
                served.iter().filter(|r| r.succeeded()).all(|r| r.credential
                    == Credential::Basic {
                        username: "bot".into()
                    }),
                "{served:?}"
            );
        }
        let carried = proxy.requests();
        assert!(carried.iter().all(|r| r.authorized), "{carried:?}");
        if !over_tls {
            // Every request the git server saw came through the proxy.
            assert_eq!(carried.len(), served.len(), "{carried:?} {served:?}");
        }
    }
}

#[test]
fn a_file_over_the_object_limit_is_streamed_over_https_with_credentials_and_over_ssh() {
    let s = server();
    let repo = s
        .create_repo("big-streamed", Auth::basic("bot", "stream-pw"))
        .expect("repo");
    let size: u64 = 4 << 20;
    let head = repo
        .commit_zeros("big.bin", size, "a big file")
        .expect("commit");
    let mut remote = https(&repo, &[("username", "bot"), ("password", "stream-pw")]);
    remote.object_size_limit = Some(1 << 20);
    let resolved = resolve(&remote, &branch("main")).expect("resolve");
    s.clear_requests(repo.name());
    let cache = cache();
    let fetched = fetch(&remote, &resolved, cache.path()).expect("fetch");
    assert_eq!(fetched.commit, head);
    // gix's fetch brings the pack and refuses it; the streamed one lists the ref unpeeled and
    // fetches it, on the same credentials.
    let kinds = request_kinds(s, repo.name());
    assert_eq!(
        kinds.iter().filter(|k| **k == RequestKind::Fetch).count(),
        2,
        "{kinds:?}"
    );
    let requests = s.requests(repo.name());
    let streamed = &requests[requests.len() - 2..];
    assert_eq!(
        streamed.iter().map(|r| r.kind).collect::<Vec<_>>(),
        [RequestKind::LsRefs, RequestKind::Fetch],
        "{requests:?}"
    );
    assert!(
        streamed.iter().all(|r| r.succeeded()
            && r.credential
                == Credential::Basic {
                    username: "bot".into()
                }),
        "{requests:?}"
    );
    let blob = blob_of(&fetched.repo_path, &head, "big.bin");
    let packed = mooring_source_controller::git::pack::packed_blob(
        &fetched.repo_path.join("objects"),
        &blob,
    )
    .expect("read the pack")
    .expect("stored whole in a pack");
    assert_eq!(packed.size, size);
    assert_shallow_at(&fetched.repo_path, &head);
    drop(fetched);

    // Over SSH the pack comes through gix's transport, negotiated and written here.
    let ssh_repo = s.create_repo("big-over-ssh", Auth::None).expect("repo");
    let ssh_head = ssh_repo
        .commit_zeros("big.bin", size, "a big file")
        .expect("commit");
    let mut remote = ssh(&ssh_repo);
    remote.object_size_limit = Some(1 << 20);
    let resolved = resolve(&remote, &branch("main")).expect("resolve");
    let fetched = fetch(&remote, &resolved, cache.path()).expect("fetch over ssh");
    assert_eq!(fetched.commit, ssh_head);
    let packed = mooring_source_controller::git::pack::packed_blob(
        &fetched.repo_path.join("objects"),
        &blob_of(&fetched.repo_path, &ssh_head, "big.bin"),
    )
    .expect("read the pack")
    .expect("stored whole in a pack");
    assert_eq!(packed.size, size);
    assert_shallow_at(&fetched.repo_path, &ssh_head);

    // By annotated tag, over SSH and over HTTPS, each a URL not fetched before: the cache's ref
    // keeps the tag object (what tag verification reads).
    for over_ssh in [true, false] {
        let name = format!("big-tag-{}", if over_ssh { "ssh" } else { "https" });
        let tagged = s.create_repo(&name, Auth::None).expect("repo");
        let head = tagged
            .commit_zeros("big.bin", size, "a big file")
            .expect("commit");
        tagged.tag("v1", true, "release").expect("tag");
        let tag = std::process::Command::new("git")
            .arg("-C")
            .arg(tagged.path())
            .args(["rev-parse", "refs/tags/v1"])
            .output()
            .expect("git rev-parse");
        let tag = String::from_utf8_lossy(&tag.stdout).trim().to_owned();
        assert_ne!(tag, head, "an annotated tag has an object of its own");
        let mut remote = if over_ssh {
            ssh(&tagged)
        } else {
            https(&tagged, &[])
        };
        remote.object_size_limit = Some(1 << 20);
        let checkout = mooring_api::GitCheckout::Tag("v1".into());
        let resolved = resolve(&remote, &checkout).expect("resolve");
        let fetched = fetch(&remote, &resolved, cache.path()).expect("fetch by tag");
        assert_eq!(fetched.commit, head, "{name}");
        assert_eq!(fetched.tag_object.as_deref(), Some(tag.as_str()), "{name}");
    }
}

/// The cache lists `commit` as a shallow boundary (its parents were not fetched), and no
/// temporary boundary file is left.
fn assert_shallow_at(git_dir: &std::path::Path, commit: &str) {
    let shallow = std::fs::read_to_string(git_dir.join("shallow")).expect("shallow file");
    assert!(shallow.lines().any(|l| l == commit), "{shallow}");
    assert!(!git_dir.join("shallow.streamed").exists());
    assert!(!git_dir.join("shallow.lock").exists());
}

/// The id of the blob at `path` in `commit` of the bare repository `git_dir` (git CLI).
fn blob_of(git_dir: &std::path::Path, commit: &str, path: &str) -> gix::ObjectId {
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(git_dir)
        .args(["rev-parse", &format!("{commit}:{path}")])
        .output()
        .expect("git rev-parse");
    assert!(out.status.success(), "{out:?}");
    gix::ObjectId::from_hex(String::from_utf8_lossy(&out.stdout).trim().as_bytes())
        .expect("the file's blob")
}
