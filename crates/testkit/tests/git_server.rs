//! The git server against the real git CLI: every transport, every kind of auth, and the request
//! log that later tests rely on to assert what a client fetched.

use std::borrow::BorrowMut;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::LazyLock;

use mooring_testkit::git::{Auth, Credential, GitServer, RequestKind, Transport};

fn server() -> &'static GitServer {
    GitServer::shared().expect("start the git server")
}

/// A HOME without any gitconfig or ssh config, shared by the git commands of these tests.
static HOME: LazyLock<tempfile::TempDir> =
    LazyLock::new(|| tempfile::tempdir().expect("temp HOME"));

/// git with an isolated environment that never prompts: a rejected credential fails at once.
fn git(args: &[&str]) -> Command {
    let mut cmd = Command::new("git");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", HOME.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .current_dir(HOME.path())
        .args(args);
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run git")
}

fn succeeds(mut cmd: impl BorrowMut<Command>) -> String {
    let cmd = cmd.borrow_mut();
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server().logs()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(mut cmd: impl BorrowMut<Command>) -> String {
    let cmd = cmd.borrow_mut();
    let out = run(cmd);
    assert!(
        !out.status.success(),
        "{cmd:?} succeeded but should have failed"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ssh_command(key: &Path, known_hosts: &Path) -> String {
    format!(
        "ssh -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes \
         -o BatchMode=yes -F /dev/null",
        key.display(),
        known_hosts.display()
    )
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("read cloned file")
}

#[test]
fn clones_over_http_and_logs_one_fetch() {
    let repo = server()
        .create_repo("http-plain", Auth::None)
        .expect("create repo");
    let sha = repo
        .commit(&[("deploy/app.yaml", "kind: ConfigMap\n")], "add app")
        .expect("commit");
    let dest = tempfile::tempdir().expect("tempdir");
    let dir = dest.path().join("clone");
    succeeds(git(&["clone", "-q", repo.http_url()]).arg(&dir));

    assert_eq!(read(&dir.join("deploy/app.yaml")), "kind: ConfigMap\n");
    let head = succeeds(git(&[
        "-C",
        dir.to_str().expect("utf-8"),
        "rev-parse",
        "HEAD",
    ]));
    assert_eq!(head.trim(), sha);
    assert_eq!(repo.head("main").expect("head"), sha);
    assert_eq!(server().fetch_count("http-plain"), 1);
    let requests = server().requests("http-plain");
    assert!(
        requests
            .iter()
            .all(|r| r.transport == Transport::Http && r.succeeded())
    );
    assert!(
        requests
            .iter()
            .any(|r| r.kind == RequestKind::RefAdvertisement && r.method == "GET")
    );
}

#[test]
fn ls_remote_lists_refs_over_protocol_v2_without_fetching() {
    let repo = server()
        .create_repo("http-ls-remote", Auth::None)
        .expect("create repo");
    let sha = repo.head("main").expect("head");
    let refs = succeeds(&mut git(&[
        "-c",
        "protocol.version=2",
        "ls-remote",
        repo.http_url(),
    ]));

    assert!(
        refs.contains(&format!("{sha}\trefs/heads/main")),
        "ls-remote: {refs}"
    );
    assert_eq!(server().fetch_count("http-ls-remote"), 0);
    assert!(server().ref_listing_count("http-ls-remote") >= 1);
    // An `ls-refs` POST exists only if the Git-Protocol header reached the backend.
    let requests = server().requests("http-ls-remote");
    let ls_refs = requests
        .iter()
        .find(|r| r.kind == RequestKind::LsRefs)
        .expect("ls-refs POST");
    assert_eq!(ls_refs.command.as_deref(), Some("ls-refs"));
    assert_eq!(server().upload_pack_count("http-ls-remote"), 1);

    let dest = tempfile::tempdir().expect("tempdir");
    succeeds(git(&["-c", "protocol.version=2", "clone", "-q", repo.http_url()]).arg(dest.path()));
    assert_eq!(server().fetch_count("http-ls-remote"), 1);
    let fetch = server()
        .requests("http-ls-remote")
        .into_iter()
        .rfind(|r| r.kind == RequestKind::Fetch);
    assert_eq!(fetch.expect("fetch").command.as_deref(), Some("fetch"));
}

#[test]
fn protocol_v0_listing_and_fetch_are_told_apart() {
    let repo = server()
        .create_repo("http-v0", Auth::None)
        .expect("create repo");
    succeeds(&mut git(&[
        "-c",
        "protocol.version=0",
        "ls-remote",
        repo.http_url(),
    ]));
    assert_eq!(server().fetch_count("http-v0"), 0);
    assert_eq!(server().upload_pack_count("http-v0"), 0);
    assert_eq!(server().ref_listing_count("http-v0"), 1);

    let dest = tempfile::tempdir().expect("tempdir");
    succeeds(git(&["-c", "protocol.version=0", "clone", "-q", repo.http_url()]).arg(dest.path()));
    assert_eq!(server().fetch_count("http-v0"), 1);

    server().clear_requests("http-v0");
    assert!(server().requests("http-v0").is_empty());
}

#[test]
fn https_basic_auth_with_the_custom_ca() {
    let repo = server()
        .create_repo("https-basic", Auth::basic("alice", "s3cret"))
        .expect("repo");
    let ca = format!("http.sslCAInfo={}", server().ca_file().display());
    let url = |userinfo: &str| {
        repo.https_url()
            .replacen("https://", &format!("https://{userinfo}@"), 1)
    };
    let dest = tempfile::tempdir().expect("tempdir");

    succeeds(git(&["-c", &ca, "clone", "-q", &url("alice:s3cret")]).arg(dest.path().join("a")));
    assert!(dest.path().join("a/README.md").exists());
    let requests = server().requests("https-basic");
    assert!(
        requests.iter().any(|r| r.status == 401),
        "git was challenged first"
    );
    let fetch = requests
        .iter()
        .find(|r| r.kind == RequestKind::Fetch)
        .expect("fetch");
    assert_eq!(fetch.transport, Transport::Https);
    assert_eq!(
        fetch.credential,
        Credential::Basic {
            username: "alice".into()
        }
    );

    // Credentials from a helper, as a Secret-backed credential would be supplied.
    let helper = "credential.helper=!f() { echo username=alice; echo password=s3cret; }; f";
    succeeds(
        git(&["-c", &ca, "-c", helper, "clone", "-q", repo.https_url()]).arg(dest.path().join("b")),
    );
    assert_eq!(server().fetch_count("https-basic"), 2);

    let stderr =
        fails(git(&["-c", &ca, "clone", "-q", &url("alice:wrong")]).arg(dest.path().join("c")));
    assert!(
        stderr.contains("401") || stderr.contains("Authentication failed"),
        "{stderr}"
    );
    fails(git(&["-c", &ca, "clone", "-q", repo.https_url()]).arg(dest.path().join("d")));
    // Without the CA the TLS handshake itself fails.
    let stderr = fails(git(&["clone", "-q", &url("alice:s3cret")]).arg(dest.path().join("e")));
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
    assert_eq!(server().fetch_count("https-basic"), 2);
}

#[test]
fn https_bearer_token() {
    let repo = server()
        .create_repo("https-bearer", Auth::bearer("tok"))
        .expect("create repo");
    let ca = format!("http.sslCAInfo={}", server().ca_file().display());
    let dest = tempfile::tempdir().expect("tempdir");
    let header = |token: &str| format!("http.extraHeader=Authorization: Bearer {token}");

    succeeds(
        git(&[
            "-c",
            &ca,
            "-c",
            &header("tok"),
            "clone",
            "-q",
            repo.https_url(),
        ])
        .arg(dest.path().join("a")),
    );
    let fetch = server()
        .requests("https-bearer")
        .into_iter()
        .find(|r| r.kind == RequestKind::Fetch);
    assert_eq!(fetch.expect("fetch").credential, Credential::Bearer);

    fails(git(&["-c", &ca, "clone", "-q", repo.https_url()]).arg(dest.path().join("b")));
    fails(
        git(&[
            "-c",
            &ca,
            "-c",
            &header("nope"),
            "clone",
            "-q",
            repo.https_url(),
        ])
        .arg(dest.path().join("c")),
    );
    assert_eq!(server().fetch_count("https-bearer"), 1);

    // Rotating the token locks out the old one.
    server()
        .set_auth("https-bearer", Auth::bearer("tok2"))
        .expect("set auth");
    fails(git(&[
        "-c",
        &ca,
        "-c",
        &header("tok"),
        "ls-remote",
        repo.https_url(),
    ]));
    succeeds(&mut git(&[
        "-c",
        &ca,
        "-c",
        &header("tok2"),
        "ls-remote",
        repo.https_url(),
    ]));
}

#[test]
fn unknown_repositories_are_not_found() {
    let url = format!(
        "http://127.0.0.1:{}/does-not-exist.git",
        server().http_port()
    );
    let stderr = fails(&mut git(&["ls-remote", &url]));
    assert!(
        stderr.contains("404") || stderr.contains("not found"),
        "{stderr}"
    );
}

#[test]
fn ssh_clone_checks_the_host_key_and_logs_the_fetch() {
    let repo = server()
        .create_repo("ssh-clone", Auth::None)
        .expect("create repo");
    let sha = repo
        .commit(&[("a.txt", "over ssh\n")], "ssh content")
        .expect("commit");
    let dest = tempfile::tempdir().expect("tempdir");
    let known_hosts = dest.path().join("known_hosts");
    std::fs::write(&known_hosts, format!("{}\n", server().known_hosts())).expect("known_hosts");
    let ssh = ssh_command(server().user_key_file(), &known_hosts);

    succeeds(
        git(&["clone", "-q", repo.ssh_url()])
            .arg(dest.path().join("a"))
            .env("GIT_SSH_COMMAND", &ssh),
    );
    assert_eq!(read(&dest.path().join("a/a.txt")), "over ssh\n");
    let requests = server().requests("ssh-clone");
    assert_eq!(requests.len(), 1, "{requests:?}");
    let session = &requests[0];
    assert_eq!(session.transport, Transport::Ssh);
    assert_eq!(session.service.as_deref(), Some("git-upload-pack"));
    assert_eq!(session.kind, RequestKind::Fetch);
    assert_eq!(
        session.credential,
        Credential::SshKey { key: "user".into() }
    );
    assert_eq!(server().fetch_count("ssh-clone"), 1);
    assert_eq!(server().upload_pack_count("ssh-clone"), 1);

    // v2 over ssh needs `AcceptEnv GIT_PROTOCOL`; an `ls-refs` shows the server honoured it.
    let refs = succeeds(
        git(&["-c", "protocol.version=2", "ls-remote", repo.ssh_url()])
            .env("GIT_SSH_COMMAND", &ssh),
    );
    assert!(refs.contains(&sha), "{refs}");
    let listing = server()
        .requests("ssh-clone")
        .pop()
        .expect("ls-remote session");
    assert_eq!(
        (listing.kind, listing.command.as_deref()),
        (RequestKind::LsRefs, Some("ls-refs"))
    );
    assert_eq!(server().fetch_count("ssh-clone"), 1);
    assert_eq!(server().ref_listing_count("ssh-clone"), 1);

    // The key runs git commands only, not a shell.
    let login = format!("{}@127.0.0.1", server().ssh_user());
    let port = server().ssh_port().to_string();
    let mut shell = Command::new("ssh");
    shell
        .args(ssh.split_whitespace().skip(1))
        .args(["-p", &port, &login, "id"]);
    assert!(fails(&mut shell).contains("git commands only"));
}

#[test]
fn ssh_refuses_an_unknown_host_key() {
    let repo = server()
        .create_repo("ssh-hostkey", Auth::None)
        .expect("create repo");
    let dest = tempfile::tempdir().expect("tempdir");
    let empty = dest.path().join("empty_known_hosts");
    std::fs::write(&empty, "").expect("known_hosts");
    let ssh = ssh_command(server().user_key_file(), &empty);
    let stderr = fails(git(&["ls-remote", repo.ssh_url()]).env("GIT_SSH_COMMAND", &ssh));
    assert!(stderr.contains("Host key verification failed"), "{stderr}");

    // A different key for the same host is refused as well.
    let other = dest.path().join("other_key");
    succeeds(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&other),
    );
    let other_public = std::fs::read_to_string(other.with_extension("pub")).expect("pub key");
    let key: Vec<&str> = other_public.split_whitespace().take(2).collect();
    let wrong = dest.path().join("wrong_known_hosts");
    let line = format!("[127.0.0.1]:{} {}\n", server().ssh_port(), key.join(" "));
    std::fs::write(&wrong, line).expect("known_hosts");
    let ssh = ssh_command(server().user_key_file(), &wrong);
    fails(git(&["ls-remote", repo.ssh_url()]).env("GIT_SSH_COMMAND", &ssh));
    assert!(server().requests("ssh-hostkey").is_empty());

    // And a key sshd does not know cannot log in.
    let ssh = ssh_command(&other, server().known_hosts_file());
    fails(git(&["ls-remote", repo.ssh_url()]).env("GIT_SSH_COMMAND", &ssh));
    assert!(server().requests("ssh-hostkey").is_empty());
}

#[test]
fn the_encrypted_key_works_with_its_passphrase() {
    let key = server().encrypted_user_key_file();
    let key_arg = key.to_str().expect("utf-8");
    fails(Command::new("ssh-keygen").args(["-y", "-P", "", "-f", key_arg]));
    succeeds(Command::new("ssh-keygen").args([
        "-y",
        "-P",
        server().user_key_passphrase(),
        "-f",
        key_arg,
    ]));
    assert!(
        server()
            .encrypted_user_key_pem()
            .contains("OPENSSH PRIVATE KEY")
    );
    assert!(server().user_key_pem().contains("OPENSSH PRIVATE KEY"));

    let repo = server()
        .create_repo("ssh-encrypted", Auth::None)
        .expect("create repo");
    let dest = tempfile::tempdir().expect("tempdir");
    let askpass = dest.path().join("askpass.sh");
    std::fs::write(
        &askpass,
        format!("#!/bin/sh\necho '{}'\n", server().user_key_passphrase()),
    )
    .expect("askpass");
    std::fs::set_permissions(
        &askpass,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let ssh = format!(
        "ssh -i {key_arg} -o IdentitiesOnly=yes -o UserKnownHostsFile={} \
         -o StrictHostKeyChecking=yes -F /dev/null",
        server().known_hosts_file().display()
    );
    succeeds(
        git(&["ls-remote", repo.ssh_url()])
            .env("GIT_SSH_COMMAND", &ssh)
            .env("SSH_ASKPASS", &askpass)
            .env("SSH_ASKPASS_REQUIRE", "force"),
    );
    let session = server().requests("ssh-encrypted").pop().expect("session");
    assert_eq!(
        session.credential,
        Credential::SshKey {
            key: "encrypted".into()
        }
    );
}

#[test]
fn annotated_tags_and_symlinks_survive_a_clone() {
    let repo = server()
        .create_repo("tags-links", Auth::None)
        .expect("create repo");
    repo.commit(&[("config/base.yaml", "base\n")], "base")
        .expect("commit");
    let sha = repo
        .symlink("current.yaml", "config/base.yaml", "link")
        .expect("symlink");
    assert_eq!(repo.tag("v1.0.0", true, "release 1.0.0").expect("tag"), sha);
    assert_eq!(repo.tag("light", false, "").expect("tag"), sha);

    let dest = tempfile::tempdir().expect("tempdir");
    let dir = dest.path().join("clone");
    succeeds(git(&["clone", "-q", repo.http_url()]).arg(&dir));
    let link = std::fs::read_link(dir.join("current.yaml")).expect("a symlink in the clone");
    assert_eq!(link, Path::new("config/base.yaml"));
    let in_clone = |args: &[&str]| {
        succeeds(git(&["-C", dir.to_str().expect("utf-8")]).args(args))
            .trim()
            .to_string()
    };
    assert_eq!(in_clone(&["cat-file", "-t", "v1.0.0"]), "tag");
    assert_eq!(in_clone(&["cat-file", "-t", "light"]), "commit");
    assert_eq!(in_clone(&["rev-parse", "v1.0.0^{commit}"]), sha);
    assert!(in_clone(&["tag", "-l", "-n1", "v1.0.0"]).contains("release 1.0.0"));
}

#[test]
fn changes_are_deterministic_and_land_on_their_branch() {
    let changes = |name: &str| {
        let repo = server().empty_repo(name, Auth::None).expect("create repo");
        let files = [("a.txt", "1\n"), ("dir/b.txt", "2\n")];
        let first = repo.commit(&files, "two files").expect("commit");
        let dev = repo
            .commit_on("dev", &[("a.txt", "dev\n")], "on dev")
            .expect("commit on dev");
        let removed = repo.remove(&["dir"], "remove dir").expect("remove");
        let again = repo
            .commit(&[("a.txt", "1\n")], "same content")
            .expect("empty commit");
        assert_ne!(
            again, removed,
            "committing unchanged content still makes a revision"
        );
        assert_eq!(repo.head("dev").expect("dev"), dev);
        assert_eq!(repo.head("main").expect("main"), again);
        (repo, vec![first, dev, removed, again])
    };
    let (repo, a) = changes("determinism-a");
    let (_, b) = changes("determinism-b");
    assert_eq!(
        a, b,
        "the same changes give the same SHAs in any repository"
    );

    let dest = tempfile::tempdir().expect("tempdir");
    let dev = dest.path().join("dev");
    succeeds(git(&["clone", "-q", "-b", "dev", repo.http_url()]).arg(&dev));
    assert_eq!(read(&dev.join("a.txt")), "dev\n");
    assert!(
        dev.join("dir/b.txt").exists(),
        "dev branched from main before the removal"
    );
    let main = dest.path().join("main");
    succeeds(git(&["clone", "-q", repo.http_url()]).arg(&main));
    assert_eq!(read(&main.join("a.txt")), "1\n");
    assert!(!main.join("dir").exists());
}

#[test]
fn empty_repositories_have_no_refs() {
    let repo = server()
        .empty_repo("empty", Auth::None)
        .expect("create repo");
    let refs = succeeds(&mut git(&["ls-remote", repo.http_url()]));
    assert_eq!(refs.trim(), "");
    assert!(repo.head("main").is_err());
    let sha = repo
        .commit(&[("first.txt", "x\n")], "first")
        .expect("first commit");
    assert_eq!(repo.head("main").expect("head"), sha);
    assert!(
        server().empty_repo("empty", Auth::None).is_err(),
        "names are unique"
    );
    assert!(server().empty_repo("../escape", Auth::None).is_err());
}

#[tokio::test]
async fn a_private_server_works_in_a_tokio_test_and_stops_on_drop() {
    let server = GitServer::start().expect("start a private server");
    let repo = server
        .create_repo("private", Auth::None)
        .expect("create repo");
    let url = repo.http_url().to_string();
    let out = tokio::process::Command::new("git")
        .args(["ls-remote", &url])
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .await
        .expect("run git");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(server.ref_listing_count("private") >= 1);
    assert_eq!(server.fetch_count("private"), 0);

    let ports = [server.http_port(), server.https_port(), server.ssh_port()];
    let root = server.root().to_path_buf();
    // Dropping inside a runtime must not panic, and must stop every listener and sshd.
    drop(server);
    for port in ports {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still open"
        );
    }
    assert!(!root.exists(), "the temp dir is removed");
}

#[test]
fn gzip_request_bodies_are_classified() {
    let repo = server()
        .create_repo("gzip-body", Auth::None)
        .expect("create repo");
    // git gzips an upload-pack request over 1 KiB: 30 distinct tips make 30 `want` lines.
    for i in 0..30 {
        repo.commit(&[("n.txt", &format!("{i}\n"))], &format!("commit {i}"))
            .expect("commit");
        repo.tag(&format!("t{i}"), false, "").expect("tag");
    }
    let dest = tempfile::tempdir().expect("tempdir");
    let trace = dest.path().join("curl.trace");
    succeeds(
        git(&["-c", "protocol.version=2", "clone", "-q", repo.http_url()])
            .arg(dest.path().join("clone"))
            .env("GIT_TRACE_CURL", &trace)
            .env("GIT_TRACE_CURL_NO_DATA", "1"),
    );
    let sent = std::fs::read_to_string(&trace).expect("curl trace");
    assert!(
        sent.contains("Content-Encoding: gzip"),
        "the fetch was not gzipped"
    );
    assert_eq!(server().fetch_count("gzip-body"), 1);
}

#[test]
fn a_stopped_server_refuses_and_serves_again_on_the_same_ports() {
    // A server of its own: stopping the shared one would fail the other tests.
    let mut server = GitServer::start().expect("start a git server");
    let repo = server.create_repo("down-and-up", Auth::None).expect("repo");
    let (http, https) = (server.http_port(), server.https_port());
    let before = succeeds(git(&["ls-remote", repo.http_url()]));

    server.stop_serving();
    assert!(!server.is_serving());
    for port in [http, https] {
        let refused = std::net::TcpStream::connect(("127.0.0.1", port));
        assert!(refused.is_err(), "port {port} still accepts connections");
    }
    let stderr = fails(git(&["ls-remote", repo.http_url()]));
    assert!(stderr.contains("connect"), "{stderr}");
    // The repository changes while the server is down, as a push elsewhere would.
    let head = repo
        .commit(&[("new.txt", "written while down\n")], "while down")
        .expect("commit");

    server.serve_again().expect("serve again");
    assert!(server.is_serving());
    assert_eq!((server.http_port(), server.https_port()), (http, https));
    let after = succeeds(git(&["ls-remote", repo.http_url()]));
    assert_ne!(before, after);
    assert!(after.contains(&head), "{after}");
}
