use std::collections::BTreeMap;

use base64::Engine;
use mooring_testkit::certs::TestCa;

use super::*;
use crate::git::proxy::ProxyConfig;
use crate::git::ssh_secret::ssh_key_is_encrypted;

const HTTPS: &str = "https://git.example.com/org/repo.git";
const HTTP: &str = "http://git.example.com/org/repo.git";
const SSH: &str = "ssh://git@git.example.com/org/repo.git";
const KNOWN_HOSTS: &str = "git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake\n";

fn secret(pairs: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_vec()))
        .collect()
}

/// A structurally valid OpenSSH private key block with the given cipher name (the key bytes
/// are not real: only the header is read).
fn openssh_key(cipher: &str) -> Vec<u8> {
    let mut raw = b"openssh-key-v1\0".to_vec();
    raw.extend_from_slice(&(cipher.len() as u32).to_be_bytes());
    raw.extend_from_slice(cipher.as_bytes());
    raw.extend_from_slice(&[0u8; 64]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
    format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{b64}\n-----END OPENSSH PRIVATE KEY-----\n")
        .into_bytes()
}

#[test]
fn empty_secret_means_no_credentials() {
    let auth = GitAuth::from_secret(&secret(&[]), HTTPS).expect("empty is fine");
    assert!(auth.is_empty());
    assert_eq!(GitAuth::none(), auth);
}

#[test]
fn basic_auth_from_username_and_password() {
    let data = secret(&[("username", b"bot"), ("password", b"s3cret")]);
    let auth = GitAuth::from_secret(&data, HTTPS).expect("basic");
    assert_eq!(
        auth.http,
        Some(HttpCredentials::Basic {
            username: "bot".into(),
            password: Sensitive::new("s3cret".into()),
        })
    );
    // A username alone is allowed (an empty password), as in Flux.
    let auth = GitAuth::from_secret(&secret(&[("username", b"bot")]), HTTPS).expect("user");
    assert!(matches!(auth.http, Some(HttpCredentials::Basic { .. })));
}

#[test]
fn password_without_username_is_an_error() {
    let err = GitAuth::from_secret(&secret(&[("password", b"x")]), HTTPS).expect_err("no user");
    assert_eq!(err, AuthError::PasswordWithoutUsername);
    assert!(err.to_string().contains("'password'"), "{err}");
    assert_eq!(err.reason(), "AuthenticationFailed");
}

#[test]
fn bearer_token_is_exclusive_with_basic() {
    let auth =
        GitAuth::from_secret(&secret(&[("bearerToken", b"tok-123\n")]), HTTPS).expect("bearer");
    assert_eq!(
        auth.http,
        Some(HttpCredentials::Bearer(Sensitive::new("tok-123".into())))
    );
    for extra in ["username", "password"] {
        let data = secret(&[("bearerToken", b"tok"), (extra, b"x")]);
        let err = GitAuth::from_secret(&data, HTTPS).expect_err("both");
        assert_eq!(err, AuthError::BasicAndBearer);
    }
    let err = GitAuth::from_secret(&secret(&[("bearerToken", b" ")]), HTTPS).expect_err("empty");
    assert_eq!(err, AuthError::Empty { key: "bearerToken" });
    let err = GitAuth::from_secret(&secret(&[("bearerToken", b"a\x07b")]), HTTPS).expect_err("ctl");
    assert!(matches!(
        err,
        AuthError::Invalid {
            key: "bearerToken",
            ..
        }
    ));
}

#[test]
fn credentials_are_refused_over_plain_http() {
    for data in [
        secret(&[("username", b"bot"), ("password", b"pw")]),
        secret(&[("bearerToken", b"tok")]),
    ] {
        let err = GitAuth::from_secret(&data, HTTP).expect_err("plain http");
        assert!(matches!(err, AuthError::CredentialsOverPlainHttp { .. }));
        assert!(
            err.to_string()
                .contains("refusing to send credentials over plain http")
        );
    }
    // No credentials over http is fine, and so is a CA (unused).
    assert!(GitAuth::from_secret(&secret(&[]), HTTP).is_ok());
    let auth = GitAuth::none();
    assert!(
        auth.check_for(Scheme::Http, true).is_err(),
        "password in the URL"
    );
    assert!(auth.check_for(Scheme::Http, false).is_ok());
    assert!(auth.check_for(Scheme::Https, true).is_ok());
}

#[test]
fn ca_from_ca_crt_or_legacy_ca_file() {
    let ca = TestCa::new("test-ca").expect("ca");
    let pem = ca.cert_pem().as_bytes();
    let auth = GitAuth::from_secret(&secret(&[("ca.crt", pem)]), HTTPS).expect("ca.crt");
    assert_eq!(auth.ca_pem.as_deref(), Some(pem));
    let auth = GitAuth::from_secret(&secret(&[("caFile", pem)]), HTTPS).expect("caFile");
    assert_eq!(auth.ca_pem.as_deref(), Some(pem));
    // ca.crt wins over caFile.
    let data = secret(&[("ca.crt", pem), ("caFile", b"garbage")]);
    assert!(GitAuth::from_secret(&data, HTTPS).is_ok());
    let err = GitAuth::from_secret(&secret(&[("ca.crt", b"garbage")]), HTTPS).expect_err("bad");
    assert!(
        matches!(err, AuthError::Invalid { key: "ca.crt", .. }),
        "{err}"
    );
    let err = GitAuth::from_secret(&secret(&[("caFile", b"garbage")]), HTTPS).expect_err("bad");
    assert!(err.to_string().contains("'caFile'"), "{err}");
}

#[test]
fn client_certificate_needs_both_keys() {
    let ca = TestCa::new("test-ca").expect("ca");
    let client = ca.client_cert("mooring", &[]).expect("client cert");
    let (crt, key) = (client.cert_pem.as_bytes(), client.key_pem.as_bytes());
    let auth =
        GitAuth::from_secret(&secret(&[("tls.crt", crt), ("tls.key", key)]), HTTPS).expect("mTLS");
    assert!(auth.client_cert.is_some());
    let err = GitAuth::from_secret(&secret(&[("tls.crt", crt)]), HTTPS).expect_err("no key");
    assert_eq!(
        err,
        AuthError::IncompletePair {
            present: "tls.crt",
            missing: "tls.key"
        }
    );
    let err = GitAuth::from_secret(&secret(&[("tls.key", key)]), HTTPS).expect_err("no crt");
    assert!(err.to_string().contains("'tls.crt' is missing"), "{err}");
    let data = secret(&[("tls.crt", b"x"), ("tls.key", b"y")]);
    let err = GitAuth::from_secret(&data, HTTPS).expect_err("garbage");
    assert!(matches!(err, AuthError::Invalid { key: "tls.crt", .. }));
}

#[test]
fn ssh_needs_identity_and_known_hosts() {
    let key = openssh_key("none");
    let data = secret(&[("identity", &key), ("known_hosts", KNOWN_HOSTS.as_bytes())]);
    let auth = GitAuth::from_secret(&data, SSH).expect("ssh");
    let ssh = auth.ssh.as_ref().expect("ssh part");
    assert_eq!(ssh.passphrase, None);
    assert!(auth.http.is_none());

    let err = GitAuth::from_secret(&secret(&[("identity", &key)]), SSH).expect_err("no kh");
    assert_eq!(err, AuthError::MissingSshKey { key: "known_hosts" });
    let data = secret(&[("known_hosts", KNOWN_HOSTS.as_bytes())]);
    let err = GitAuth::from_secret(&data, SSH).expect_err("no identity");
    assert!(err.to_string().contains("'identity' is missing"), "{err}");
    let data = secret(&[("identity", &key), ("known_hosts", b"# only a comment\n")]);
    let err = GitAuth::from_secret(&data, SSH).expect_err("bad kh");
    assert!(matches!(
        err,
        AuthError::Invalid {
            key: "known_hosts",
            ..
        }
    ));
    let data = secret(&[
        ("identity", b"not a key"),
        ("known_hosts", KNOWN_HOSTS.as_bytes()),
    ]);
    let err = GitAuth::from_secret(&data, SSH).expect_err("bad key");
    assert!(matches!(
        err,
        AuthError::Invalid {
            key: "identity",
            ..
        }
    ));
    // No Secret at all for an ssh:// URL.
    assert_eq!(
        GitAuth::none().check_for(Scheme::Ssh, false),
        Err(AuthError::SshWithoutSecret)
    );
}

#[test]
fn encrypted_ssh_key_takes_password_as_passphrase() {
    let key = openssh_key("aes256-ctr");
    let kh = KNOWN_HOSTS.as_bytes();
    let data = secret(&[("identity", &key), ("known_hosts", kh)]);
    let err = GitAuth::from_secret(&data, SSH).expect_err("no passphrase");
    assert_eq!(err, AuthError::EncryptedKeyWithoutPassword);
    let data = secret(&[
        ("identity", &key),
        ("known_hosts", kh),
        ("password", b"pass phrase\n"),
    ]);
    let auth = GitAuth::from_secret(&data, SSH).expect("with passphrase");
    let pass = auth
        .ssh
        .as_ref()
        .and_then(|s| s.passphrase.as_ref())
        .expect("passphrase");
    assert_eq!(pass.expose(), "pass phrase");
}

#[test]
fn encryption_is_detected_in_every_pem_flavour() {
    assert_eq!(ssh_key_is_encrypted(&openssh_key("none")), Ok(false));
    assert_eq!(ssh_key_is_encrypted(&openssh_key("aes256-ctr")), Ok(true));
    let legacy = b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
    assert_eq!(ssh_key_is_encrypted(legacy), Ok(true));
    let legacy_plain = b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n";
    assert_eq!(ssh_key_is_encrypted(legacy_plain), Ok(false));
    let pkcs8 =
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
    assert_eq!(ssh_key_is_encrypted(pkcs8), Ok(true));
    assert!(
        ssh_key_is_encrypted(
            b"-----BEGIN OPENSSH PRIVATE KEY-----\n!!\n-----END OPENSSH PRIVATE KEY-----"
        )
        .is_err()
    );
}

#[test]
fn keys_of_the_other_transport_are_ignored() {
    let key = openssh_key("none");
    let data = secret(&[("identity", &key), ("known_hosts", KNOWN_HOSTS.as_bytes())]);
    assert!(
        GitAuth::from_secret(&data, HTTPS)
            .expect("https ignores ssh keys")
            .is_empty()
    );
    let data = secret(&[
        ("identity", &key),
        ("known_hosts", KNOWN_HOSTS.as_bytes()),
        ("username", b"u"),
        ("bearerToken", b"t"),
    ]);
    assert!(
        GitAuth::from_secret(&data, SSH)
            .expect("ssh ignores http keys")
            .http
            .is_none()
    );
}

#[test]
fn invalid_utf8_and_unsupported_scheme() {
    let err = GitAuth::from_secret(&secret(&[("username", &[0xff])]), HTTPS).expect_err("utf8");
    assert_eq!(err, AuthError::NotUtf8 { key: "username" });
    let err = GitAuth::from_secret(&secret(&[]), "git@host:repo").expect_err("scp");
    assert_eq!(err.reason(), "URLInvalid");
}

#[test]
fn debug_and_errors_never_show_secret_values() {
    let key = openssh_key("aes256-ctr");
    let data = secret(&[
        ("identity", &key),
        ("known_hosts", KNOWN_HOSTS.as_bytes()),
        ("password", b"hunter2-passphrase"),
    ]);
    let ssh = GitAuth::from_secret(&data, SSH).expect("ssh");
    let basic = GitAuth::from_secret(
        &secret(&[("username", b"u"), ("password", b"hunter2-pw")]),
        HTTPS,
    )
    .expect("basic");
    let bearer =
        GitAuth::from_secret(&secret(&[("bearerToken", b"hunter2-token")]), HTTPS).expect("bearer");
    let proxy = ProxyConfig::from_secret(&secret(&[
        ("address", b"http://puser:hunter2-inline@proxy:3128"),
        ("username", b"puser"),
        ("password", b"hunter2-proxy"),
    ]))
    .expect("proxy");
    let printed = format!("{ssh:?} {basic:?} {bearer:?} {proxy:?}");
    assert!(
        printed.contains("basic(u)") && printed.contains("encrypted key"),
        "{printed}"
    );
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(!printed.contains("AAAA"), "{printed}");
    let err =
        GitAuth::from_secret(&secret(&[("bearerToken", b"hunter2\x07")]), HTTPS).expect_err("ctl");
    assert!(!err.to_string().contains("hunter2"));
    let secrets = basic.secret_strings();
    assert_eq!(secrets, vec!["hunter2-pw"]);
}

#[test]
fn proxy_secret_rules() {
    let proxy = ProxyConfig::from_secret(&secret(&[("address", b"http://proxy.local:3128")]))
        .expect("address only");
    assert!(proxy.username.is_none());
    assert!(proxy.to_reqwest().is_ok());
    let socks = secret(&[
        ("address", b"socks5://proxy:1080"),
        ("username", b"u"),
        ("password", b"p"),
    ]);
    assert!(
        ProxyConfig::from_secret(&socks)
            .expect("socks5")
            .to_reqwest()
            .is_ok()
    );
    let err = ProxyConfig::from_secret(&secret(&[("username", b"u")])).expect_err("no address");
    assert_eq!(err, AuthError::MissingProxyKey { key: "address" });
    let err = ProxyConfig::from_secret(&secret(&[("address", b"proxy:3128")])).expect_err("scheme");
    assert!(matches!(err, AuthError::Invalid { key: "address", .. }));
    let data = secret(&[("address", b"http://proxy:3128"), ("password", b"p")]);
    let err = ProxyConfig::from_secret(&data).expect_err("password alone");
    assert_eq!(err, AuthError::PasswordWithoutUsername);
}
