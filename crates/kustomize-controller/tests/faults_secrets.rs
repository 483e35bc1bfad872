//! Secrets never leave (issue 11, item 5): distinct marker values are planted in every kind of
//! credential (basic auth, bearer token, SSH key and its passphrase, TLS client key, a token in
//! the URL's userinfo, `postBuild.substituteFrom` Secret values), each goes through a fetch or a
//! build that succeeds and one that fails (wrong password or token, wrong passphrase, unknown
//! host key, unreachable host, refused or plain-http URL token, substitution errors built from
//! the value), with both controller binaries logging at debug level; then every status, every
//! Event of the namespace, both full logs and both /metrics pages are searched for every
//! marker, raw, base64- and percent-encoded. The substituted marker may show only in the object
//! it was substituted into.
//!
//! The test git server does not ask for client certificates, so the TLS client key is loaded
//! (it must parse) and held through successful and failing HTTPS fetches, but never sent.

mod flow;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use flow::{apply_json, unique};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Secret};
use kube::api::{Api, ListParams};
use mooring_api::{GitRepository, Kustomization};
use mooring_testkit::TestEnv;
use mooring_testkit::certs::TestCa;
use mooring_testkit::controllers::{Controllers, KUSTOMIZE_CONTROLLER, Options, SOURCE_CONTROLLER};
use mooring_testkit::faults::{self, Row};
use mooring_testkit::git::{Auth, GitServer};
use mooring_testkit::wait::{ready, wait_for};
use sha2::{Digest, Sha256};

/// A value planted in a credential, and the strings whose presence would mean it leaked.
struct Marker {
    /// What it is, for the report.
    name: String,
    /// The planted value (or, for a key, the lines of its PEM body).
    needles: Vec<String>,
}

impl Marker {
    fn new(name: &str, value: &str) -> Self {
        Self {
            name: name.to_string(),
            needles: vec![value.to_string()],
        }
    }

    /// A private key: every line of its PEM body that is not a fixed header.
    fn key(name: &str, pem: &str, skip_header_lines: usize) -> Self {
        let needles = pem
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() >= 20)
            .skip(skip_header_lines)
            .map(str::to_string)
            .collect();
        Self {
            name: name.to_string(),
            needles,
        }
    }

    /// Every form a leak could take: as is, base64 (standard and URL-safe, padded or not) and
    /// percent-encoded.
    fn forms(&self) -> Vec<String> {
        let mut forms = Vec::new();
        for needle in &self.needles {
            let bytes = needle.as_bytes();
            forms.push(needle.clone());
            forms.push(base64::engine::general_purpose::STANDARD.encode(bytes));
            forms.push(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
            forms.push(percent_encoded(needle));
        }
        // A padded encoding also shows without its padding, embedded in a longer one.
        forms
            .iter_mut()
            .for_each(|f| *f = f.trim_end_matches('=').to_string());
        forms.sort();
        forms.dedup();
        forms
    }
}

/// `text` with every byte but the unreserved ones percent-encoded (RFC 3986).
fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A marker value no other test or run uses: `<prefix><16 hex>`.
fn marker(prefix: &str) -> String {
    let seed = format!(
        "{prefix}-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    );
    let digest = hex::encode(Sha256::digest(seed.as_bytes()));
    format!("{prefix}{}", &digest[..16])
}

async fn secret(env: &TestEnv, name: &str, data: &[(&str, &str)]) {
    let api: Api<Secret> = Api::namespaced(env.client.clone(), &env.namespace);
    let string_data: BTreeMap<&str, &str> = data.iter().copied().collect();
    apply_json(
        &api,
        serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "stringData": string_data}),
    )
    .await;
}

async fn git_repository(env: &TestEnv, name: &str, url: &str, secret: Option<&str>) {
    let api: Api<GitRepository> = Api::namespaced(env.client.clone(), &env.namespace);
    let mut spec = serde_json::json!({"url": url, "interval": "1h", "timeout": "20s",
        "ref": {"branch": "main"}});
    if let Some(secret) = secret {
        spec["secretRef"] = serde_json::json!({"name": secret});
    }
    apply_json(
        &api,
        serde_json::json!({"apiVersion": "source.mooring.dev/v1", "kind": "GitRepository",
            "metadata": {"name": name}, "spec": spec}),
    )
    .await;
}

/// What a GitRepository or Kustomization must come to.
enum Expect {
    /// Ready=True.
    Ready,
    /// Ready=False with this reason.
    Failed(&'static str),
}

fn reached(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    expect: &Expect,
) -> bool {
    match (ready(conditions), expect) {
        (Some((s, _, _)), Expect::Ready) => s == "True",
        (Some((s, r, _)), Expect::Failed(reason)) => s == "False" && r == *reason,
        (None, _) => false,
    }
}

/// Everything the controllers publish, by place: (place, text).
async fn published(env: &TestEnv, controllers: &Controllers) -> Vec<(String, String)> {
    let repos: Api<GitRepository> = Api::namespaced(env.client.clone(), &env.namespace);
    let kss: Api<Kustomization> = Api::namespaced(env.client.clone(), &env.namespace);
    let events: Api<Event> = Api::namespaced(env.client.clone(), &env.namespace);
    let all = ListParams::default();
    let repo_statuses: Vec<_> = repos
        .list(&all)
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|r| (r.metadata.name, r.status))
        .collect();
    let ks_statuses: Vec<_> = kss
        .list(&all)
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|k| (k.metadata.name, k.status))
        .collect();
    let events = events.list(&all).await.expect("list").items;
    let log = |name: &str| std::fs::read_to_string(controllers.log_file(name)).expect("log");
    let metrics = |name: &str| controllers.metrics(name).expect("metrics");
    vec![
        (
            "GitRepository status".to_string(),
            serde_json::to_string(&repo_statuses).expect("json"),
        ),
        (
            "Kustomization status".to_string(),
            serde_json::to_string(&ks_statuses).expect("json"),
        ),
        (
            "Events".to_string(),
            serde_json::to_string(&events).expect("json"),
        ),
        ("source-controller log".to_string(), log(SOURCE_CONTROLLER)),
        (
            "kustomize-controller log".to_string(),
            log(KUSTOMIZE_CONTROLLER),
        ),
        (
            "source-controller /metrics".to_string(),
            metrics(SOURCE_CONTROLLER),
        ),
        (
            "kustomize-controller /metrics".to_string(),
            metrics(KUSTOMIZE_CONTROLLER),
        ),
    ]
}

/// A known_hosts line for the git server's address with a host key that is not its own.
fn wrong_known_hosts(server: &GitServer, dir: &std::path::Path) -> String {
    let key = dir.join("other_host_key");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(status.success(), "ssh-keygen failed");
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
    let public: Vec<&str> = public.split_whitespace().take(2).collect();
    format!("[127.0.0.1]:{} {}", server.ssh_port(), public.join(" "))
}

#[tokio::test]
async fn secrets_never_leave() {
    let env = mooring_testkit::test_env("faults-secrets")
        .await
        .expect("env");
    let server = GitServer::shared().expect("git server");
    let scratch = tempfile::tempdir().expect("tempdir");

    let user = marker("mkUser");
    // '+' and '/' so that the percent-encoded form differs from the raw one.
    let password = format!("{}+/x", marker("mkPass"));
    let wrong_password = format!("{}+/x", marker("mkWrongPass"));
    let bearer = marker("mkBearer");
    let wrong_bearer = marker("mkWrongBearer");
    let wrong_passphrase = marker("mkWrongPhrase");
    let url_token = marker("mkUrlToken");
    let substituted = marker("mkSubstOk");
    let offset = marker("mkSubstOffset");
    let broken = format!("[{}", marker("mkSubstBroken"));
    let client = TestCa::new("faults-secrets client CA")
        .and_then(|ca| ca.client_cert("faults-secrets", &[]))
        .expect("client certificate");
    let ca = server.ca_pem();

    let basic_repo = server
        .create_repo(&unique("secrets-basic"), Auth::basic(&user, &password))
        .expect("repo");
    let bearer_repo = server
        .create_repo(&unique("secrets-bearer"), Auth::bearer(&bearer))
        .expect("repo");
    // GitHub's form of a token in a URL: a fixed user and the token as the password.
    let token_repo = server
        .create_repo(
            &unique("secrets-url-token"),
            Auth::basic("x-access-token", &url_token),
        )
        .expect("repo");
    let app_repo = server
        .create_repo(&unique("secrets-app"), Auth::None)
        .expect("repo");
    let ssh_repo = server
        .create_repo(&unique("secrets-ssh"), Auth::None)
        .expect("repo");
    app_repo
        .commit(
            &[
                (
                    "ok/map.yaml",
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: substituted\ndata:\n  value: \"${VALUE}\"\n",
                ),
                (
                    "offset/map.yaml",
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: offset\ndata:\n  value: \"${VALUE:${OFFSET}}\"\n",
                ),
                (
                    "broken/map.yaml",
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\ndata:\n  value: ${BROKEN}\n",
                ),
            ],
            "three uses of a Secret's values",
        )
        .expect("commit");

    let with_token = |url: &str| url.replacen("://", &format!("://{url_token}@"), 1);
    let closed_port = mooring_testkit::control_plane::free_port().expect("port");
    let unreachable = format!("https://127.0.0.1:{closed_port}/nothing.git");
    let known_hosts = server.known_hosts().to_string();
    let wrong_hosts = wrong_known_hosts(server, scratch.path());
    let basic = [
        ("username", user.as_str()),
        ("password", password.as_str()),
        ("ca.crt", ca),
    ];
    let tls = [
        ("username", user.as_str()),
        ("password", password.as_str()),
        ("ca.crt", ca),
        ("tls.crt", client.cert_pem.as_str()),
        ("tls.key", client.key_pem.as_str()),
    ];
    secret(&env, "basic", &basic).await;
    secret(
        &env,
        "basic-wrong",
        &[
            ("username", user.as_str()),
            ("password", wrong_password.as_str()),
            ("ca.crt", ca),
        ],
    )
    .await;
    secret(
        &env,
        "bearer",
        &[("bearerToken", bearer.as_str()), ("ca.crt", ca)],
    )
    .await;
    secret(
        &env,
        "bearer-wrong",
        &[("bearerToken", wrong_bearer.as_str()), ("ca.crt", ca)],
    )
    .await;
    secret(&env, "tls", &tls).await;
    secret(&env, "ca", &[("ca.crt", ca)]).await;
    secret(
        &env,
        "ssh",
        &[
            ("identity", server.user_key_pem()),
            ("known_hosts", known_hosts.as_str()),
        ],
    )
    .await;
    secret(
        &env,
        "ssh-encrypted",
        &[
            ("identity", server.encrypted_user_key_pem()),
            ("password", server.user_key_passphrase()),
            ("known_hosts", known_hosts.as_str()),
        ],
    )
    .await;
    secret(
        &env,
        "ssh-wrong-host",
        &[
            ("identity", server.user_key_pem()),
            ("known_hosts", wrong_hosts.as_str()),
        ],
    )
    .await;
    secret(
        &env,
        "ssh-wrong-passphrase",
        &[
            ("identity", server.encrypted_user_key_pem()),
            ("password", wrong_passphrase.as_str()),
            ("known_hosts", known_hosts.as_str()),
        ],
    )
    .await;
    secret(
        &env,
        "vars",
        &[
            ("VALUE", substituted.as_str()),
            ("OFFSET", offset.as_str()),
            ("BROKEN", broken.as_str()),
        ],
    )
    .await;

    let mut options = Options::local(env.plane.kubeconfig()).watching(&env.namespace);
    options.log_level = "debug".to_string();
    let controllers = tokio::task::spawn_blocking(move || Controllers::start(&options))
        .await
        .expect("start task")
        .expect("controllers");

    let token_https =
        token_repo
            .https_url()
            .replacen("://", &format!("://x-access-token:{url_token}@"), 1);
    let token_refused = with_token(basic_repo.https_url());
    let token_http = with_token(basic_repo.http_url());
    let sources: Vec<(&str, &str, Option<&str>, Expect)> = vec![
        (
            "basic",
            basic_repo.https_url(),
            Some("basic"),
            Expect::Ready,
        ),
        (
            "basic-wrong",
            basic_repo.https_url(),
            Some("basic-wrong"),
            Expect::Failed("AuthenticationFailed"),
        ),
        (
            "bearer",
            bearer_repo.https_url(),
            Some("bearer"),
            Expect::Ready,
        ),
        (
            "bearer-wrong",
            bearer_repo.https_url(),
            Some("bearer-wrong"),
            Expect::Failed("AuthenticationFailed"),
        ),
        ("tls", basic_repo.https_url(), Some("tls"), Expect::Ready),
        (
            "tls-unreachable",
            &unreachable,
            Some("tls"),
            Expect::Failed("GitOperationFailed"),
        ),
        ("ssh", ssh_repo.ssh_url(), Some("ssh"), Expect::Ready),
        (
            "ssh-encrypted",
            ssh_repo.ssh_url(),
            Some("ssh-encrypted"),
            Expect::Ready,
        ),
        (
            "ssh-wrong-host",
            ssh_repo.ssh_url(),
            Some("ssh-wrong-host"),
            Expect::Failed("AuthenticationFailed"),
        ),
        (
            "ssh-wrong-passphrase",
            ssh_repo.ssh_url(),
            Some("ssh-wrong-passphrase"),
            Expect::Failed("AuthenticationFailed"),
        ),
        ("url-token", &token_https, Some("ca"), Expect::Ready),
        (
            "url-token-refused",
            &token_refused,
            Some("ca"),
            Expect::Failed("AuthenticationFailed"),
        ),
        (
            "url-token-http",
            &token_http,
            None,
            Expect::Failed("AuthenticationFailed"),
        ),
        ("app", app_repo.http_url(), None, Expect::Ready),
    ];
    for (name, url, secret, _) in &sources {
        git_repository(&env, name, url, *secret).await;
    }
    let kustomizations = [
        ("substituted", "./ok", Expect::Ready),
        ("offset", "./offset", Expect::Failed("BuildFailed")),
        ("broken", "./broken", Expect::Failed("BuildFailed")),
    ];
    for (name, path, _) in &kustomizations {
        flow::kustomization(
            &env,
            name,
            serde_json::json!({"path": path, "interval": "1h", "retryInterval": "5s",
                "sourceRef": {"kind": "GitRepository", "name": "app"},
                "postBuild": {"substituteFrom": [{"kind": "Secret", "name": "vars"}]}}),
        )
        .await;
    }

    // Every fetch and build ends as it should: the credentials were used. Waited on together.
    let repos: Api<GitRepository> = Api::namespaced(env.client.clone(), &env.namespace);
    let kss: Api<Kustomization> = Api::namespaced(env.client.clone(), &env.namespace);
    let limit = Duration::from_secs(90);
    let source_ends = sources.iter().map(|(name, _, _, expect)| {
        let repos = repos.clone();
        async move {
            let check = |r: Option<&GitRepository>| {
                r.and_then(|r| r.status.as_ref())
                    .is_some_and(|s| reached(&s.conditions, expect))
            };
            let waited = tokio::time::timeout(
                limit,
                kube::runtime::wait::await_condition(repos.clone(), name, check),
            )
            .await;
            if waited.is_ok() {
                return None;
            }
            let now = repos.get(name).await.ok().and_then(|r| r.status);
            let seen = now.and_then(|s| ready(&s.conditions));
            Some(format!("GitRepository {name}: {seen:?}"))
        }
    });
    let ks_ends = kustomizations.iter().map(|(name, _, expect)| {
        let kss = kss.clone();
        async move {
            let check = |k: Option<&Kustomization>| {
                k.and_then(|k| k.status.as_ref())
                    .is_some_and(|s| reached(&s.conditions, expect))
            };
            let waited = tokio::time::timeout(
                limit,
                kube::runtime::wait::await_condition(kss.clone(), name, check),
            )
            .await;
            if waited.is_ok() {
                return None;
            }
            let now = kss.get(name).await.ok().and_then(|k| k.status);
            let seen = now.and_then(|s| ready(&s.conditions));
            Some(format!("Kustomization {name}: {seen:?}"))
        }
    });
    let (source_ends, ks_ends) = futures::future::join(
        futures::future::join_all(source_ends),
        futures::future::join_all(ks_ends),
    )
    .await;
    let wrong_ends: Vec<String> = source_ends.into_iter().chain(ks_ends).flatten().collect();
    // The substituted value reached the object it was substituted into: the plant worked.
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let target = wait_for(
        &maps,
        "substituted",
        "the substituted ConfigMap",
        Duration::from_secs(30),
        |c| c.is_some(),
    )
    .await
    .expect("ConfigMap");
    assert_eq!(
        target.data.and_then(|d| d.get("value").cloned()).as_deref(),
        Some(substituted.as_str()),
        "the Secret's value is substituted"
    );

    let markers = vec![
        Marker::new("basic username", &user),
        Marker::new("basic password", &password),
        Marker::new("wrong basic password", &wrong_password),
        Marker::new("basic header", &format!("{user}:{password}")),
        Marker::new("bearer token", &bearer),
        Marker::new("wrong bearer token", &wrong_bearer),
        // The first line of an OpenSSH key is the same for every key.
        Marker::key("SSH private key", server.user_key_pem(), 1),
        Marker::key(
            "encrypted SSH private key",
            server.encrypted_user_key_pem(),
            1,
        ),
        Marker::new("SSH key passphrase", server.user_key_passphrase()),
        Marker::new("wrong SSH key passphrase", &wrong_passphrase),
        Marker::key("TLS client key", &client.key_pem, 0),
        Marker::new("token as the URL's user", &url_token),
        Marker::new("substituteFrom value", &substituted),
        Marker::new("substituteFrom value used as an offset", &offset),
        Marker::new("substituteFrom value breaking the YAML", &broken[1..]),
    ];
    let places = published(&env, &controllers).await;
    // Debug logs that say nothing would prove nothing.
    for (place, text) in &places {
        if place.ends_with("log") {
            assert!(
                text.lines().filter(|l| l.contains("DEBUG")).count() > 10,
                "{place} is not at debug level"
            );
        }
    }
    let mut leaks = Vec::new();
    for m in &markers {
        let forms = m.forms();
        for (place, text) in &places {
            let hits: Vec<&String> = forms.iter().filter(|f| text.contains(f.as_str())).collect();
            if !hits.is_empty() {
                let line = text
                    .lines()
                    .find(|l| hits.iter().any(|h| l.contains(h.as_str())))
                    .unwrap_or_default();
                let line: String = line.chars().take(400).collect();
                leaks.push(format!("{} in {place}: {line}", m.name));
            }
        }
    }
    // The substituted value may be in its own object only.
    let other_maps = maps.list(&ListParams::default()).await.expect("list").items;
    for map in other_maps
        .iter()
        .filter(|m| m.metadata.name.as_deref() != Some("substituted"))
    {
        let text = serde_json::to_string(map).expect("json");
        for m in &markers {
            if m.forms().iter().any(|f| text.contains(f.as_str())) {
                leaks.push(format!("{} in ConfigMap {:?}", m.name, map.metadata.name));
            }
        }
    }
    let runs = markers.len() * (places.len() + 1);
    faults::record(&Row {
        runs: runs as u64,
        passed: (runs - leaks.len()) as u64,
        leaked: leaks.len() as u64,
        ..Row::new("secrets never leave")
    });
    let sizes: Vec<String> = places
        .iter()
        .map(|(p, t)| format!("{p}: {} bytes", t.len()))
        .collect();
    eprintln!(
        "searched {} markers in {} places ({})",
        markers.len(),
        places.len() + 1,
        sizes.join(", ")
    );
    tokio::task::spawn_blocking(move || drop(controllers))
        .await
        .expect("stop");
    assert!(
        wrong_ends.is_empty() && leaks.is_empty(),
        "not every credential was used as planned:\n{}\nsecrets leaked:\n{}",
        wrong_ends.join("\n"),
        leaks.join("\n")
    );
}
