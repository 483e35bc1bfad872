//! SOPS decryption end to end (issue 13): files encrypted at test time by the real `sops` for
//! keys made by the real `age-keygen` and `gpg`, in a git repository served by the test git
//! server, built and applied by both controllers against the real API server.

mod flow;

use std::collections::BTreeMap;
use std::time::Duration;

use flow::*;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Secret};
use kube::api::{Api, ListParams};
use mooring_api::Kustomization;
use mooring_testkit::git::{Auth, GitServer};
use mooring_testkit::sops::{AgeKey, Encrypt, PgpKey, age_key, pgp_key};
use mooring_testkit::test_env;

const SLOW: Duration = Duration::from_secs(3600);

fn secret_yaml(name: &str, entries: &[(&str, &str)], annotations: &str) -> String {
    let mut out = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  labels:\n    tier: data\n{annotations}type: Opaque\nstringData:\n"
    );
    for (k, v) in entries {
        out.push_str(&format!("  {k}: \"{v}\"\n"));
    }
    out
}

fn encrypt(age: &[&AgeKey], pgp: &[&PgpKey], args: &[&str], name: &str, plain: &[u8]) -> String {
    let bytes = Encrypt {
        age: age.to_vec(),
        pgp: pgp.to_vec(),
        args: args.iter().map(|a| a.to_string()).collect(),
        config: None,
    }
    .file(name, plain)
    .expect("sops encrypt");
    String::from_utf8(bytes).expect("sops writes text")
}

async fn key_secret(env: &mooring_testkit::TestEnv, name: &str, data: BTreeMap<String, String>) {
    let api: Api<Secret> = Api::namespaced(env.client.clone(), &env.namespace);
    apply_json(
        &api,
        serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "type": "Opaque", "stringData": data}),
    )
    .await;
    // stringData merges into data: replace the whole key set.
    let secret = api.get(name).await.expect("key Secret");
    let stale: Vec<String> = secret
        .data
        .unwrap_or_default()
        .into_keys()
        .filter(|k| !data.contains_key(k))
        .collect();
    for key in stale {
        let patch = serde_json::json!([{"op": "remove", "path": format!("/data/{}", key.replace('~', "~0").replace('/', "~1"))}]);
        api.patch(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::<serde_json::Value>::Json(
                serde_json::from_value(patch).expect("json patch"),
            ),
        )
        .await
        .expect("remove a key");
    }
}

fn string_data(secret: &Secret) -> BTreeMap<String, String> {
    secret
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
        .collect()
}

fn failed_with(ks: &Kustomization, needle: &str) -> bool {
    ready(ks).is_some_and(|(s, _, m)| s == "False" && m.contains(needle))
}

#[tokio::test]
async fn sops_files_are_decrypted_applied_refused_when_tampered_and_follow_key_rotation() {
    let env = test_env("sops-flow").await.expect("env");
    let server = GitServer::shared().expect("git server");
    let repo = server
        .create_repo(&unique("sops"), Auth::None)
        .expect("repo");
    let (age_a, age_b) = (age_key().expect("age"), age_key().expect("age"));
    let pgp = pgp_key("sops-flow").expect("gpg");
    let regex = ["--encrypted-regex", "^(data|stringData)$"];

    let age_secret = encrypt(
        &[&age_a],
        &[],
        &[],
        "age.yaml",
        secret_yaml(
            "for-age",
            &[("password", "age-value"), ("greeting", "${GREETING}")],
            "",
        )
        .as_bytes(),
    );
    let pgp_plain = secret_yaml("for-pgp", &[("password", "pgp-value")], "");
    let pgp_secret = encrypt(&[], &[&pgp], &regex, "pgp.yaml", pgp_plain.as_bytes());
    let both_secret = encrypt(
        &[&age_a],
        &[&pgp],
        &[],
        "both.yaml",
        secret_yaml(
            "for-both",
            &[("password", "both-value"), ("raw", "${GREETING}")],
            "  annotations:\n    kustomize.mooring.dev/substitute: disabled\n",
        )
        .as_bytes(),
    );
    let suffix_secret = encrypt(
        &[&age_a],
        &[],
        &[],
        "suffix.yaml",
        secret_yaml(
            "for-suffix",
            &[
                ("token", "suffix-value"),
                ("note_unencrypted", "plain-note"),
            ],
            "",
        )
        .as_bytes(),
    );
    assert!(
        suffix_secret.contains("note_unencrypted: plain-note"),
        "{suffix_secret}"
    );
    // Flux's usual setting: only data and stringData encrypted, the rest readable in git.
    let regex_secret = encrypt(
        &[&age_a],
        &[],
        &["--encrypted-regex", "^(data|stringData)$"],
        "regex.yaml",
        secret_yaml("for-regex", &[("token", "regex-value")], "").as_bytes(),
    );
    assert!(
        regex_secret.contains("name: for-regex") && !regex_secret.contains("regex-value"),
        "{regex_secret}"
    );
    let dotenv = encrypt(
        &[&age_a],
        &[],
        &[],
        "app.env",
        b"USER=admin\nPASSWORD=env-value\n",
    );
    let ini = encrypt(
        &[&age_a],
        &[],
        &[],
        "db.ini",
        b"[db]\nuser = admin\npassword = ini-value\n",
    );
    let json_secret = encrypt(
        &[&age_a],
        &[],
        &[],
        "json.json",
        br#"{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "for-json"}, "stringData": {"password": "json-value"}}"#,
    );
    let binary: Vec<u8> = (0u8..=255).collect();
    let blob = encrypt(&[&age_a], &[], &[], "blob.bin", &binary);
    let kustomization_yaml = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
        resources: [age.yaml, pgp.yaml, both.yaml, suffix.yaml, regex.yaml, json.json, map.yaml]\n\
        secretGenerator:\n  - name: generated\n    envs: [app.env]\n    files: [blob.bin, db.ini]\n\
        \x20   options:\n      disableNameSuffixHash: true\n";
    let first = repo
        .commit(
            &[
                ("deploy/kustomization.yaml", kustomization_yaml),
                ("deploy/age.yaml", &age_secret),
                ("deploy/pgp.yaml", &pgp_secret),
                ("deploy/both.yaml", &both_secret),
                ("deploy/suffix.yaml", &suffix_secret),
                ("deploy/regex.yaml", &regex_secret),
                ("deploy/app.env", &dotenv),
                ("deploy/blob.bin", &blob),
                ("deploy/db.ini", &ini),
                ("deploy/json.json", &json_secret),
                ("deploy/map.yaml", &config_map_yaml("map", "1")),
            ],
            "encrypted secrets",
        )
        .expect("commit");
    key_secret(
        &env,
        "sops-keys",
        BTreeMap::from([
            ("identity.agekey".to_string(), age_a.identity.clone()),
            ("private.asc".to_string(), pgp.armored_secret.clone()),
        ]),
    )
    .await;
    let _controllers = start(&env, SLOW).await;
    git_repository(&env, "repo", repo.http_url()).await;
    kustomization(
        &env,
        "app",
        serde_json::json!({"path": "./deploy", "retryInterval": "1h",
            "decryption": {"provider": "sops", "secretRef": {"name": "sops-keys"}},
            "postBuild": {"substitute": {"GREETING": "hello"}}}),
    )
    .await;
    wait_ks(&env, "app", "applied at the first commit", 90, |k| {
        applied(k, &first)
    })
    .await;

    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.namespace);
    let get = |name: &'static str| {
        let secrets = secrets.clone();
        async move { string_data(&secrets.get(name).await.expect(name)) }
    };
    let age = get("for-age").await;
    assert_eq!(age.get("password").map(String::as_str), Some("age-value"));
    // Substitution runs after decryption.
    assert_eq!(age.get("greeting").map(String::as_str), Some("hello"));
    assert_eq!(
        get("for-pgp").await.get("password").map(String::as_str),
        Some("pgp-value")
    );
    let both = get("for-both").await;
    assert_eq!(both.get("password").map(String::as_str), Some("both-value"));
    // The per-object opt-out of substitution still holds for a decrypted Secret.
    assert_eq!(both.get("raw").map(String::as_str), Some("${GREETING}"));
    let suffix = get("for-suffix").await;
    assert_eq!(
        suffix.get("token").map(String::as_str),
        Some("suffix-value")
    );
    assert_eq!(
        suffix.get("note_unencrypted").map(String::as_str),
        Some("plain-note")
    );
    assert_eq!(
        get("for-regex").await.get("token").map(String::as_str),
        Some("regex-value")
    );
    let generated = secrets.get("generated").await.expect("generated Secret");
    let data = generated.data.clone().unwrap_or_default();
    assert_eq!(
        data.get("PASSWORD").map(|v| v.0.as_slice()),
        Some(&b"env-value"[..])
    );
    assert_eq!(
        data.get("USER").map(|v| v.0.as_slice()),
        Some(&b"admin"[..])
    );
    assert_eq!(
        data.get("blob.bin").map(|v| v.0.clone()),
        Some(binary.clone())
    );
    // No decrypted value in the status or the Events.
    let kss: Api<Kustomization> = Api::namespaced(env.client.clone(), &env.namespace);
    let status = serde_json::to_string(&kss.get("app").await.expect("ks").status).expect("json");
    let events: Api<Event> = Api::namespaced(env.client.clone(), &env.namespace);
    let events = serde_json::to_string(
        &events
            .list(&ListParams::default())
            .await
            .expect("events")
            .items,
    )
    .expect("json");
    for value in [
        "age-value",
        "pgp-value",
        "both-value",
        "env-value",
        "suffix-value",
    ] {
        assert!(!status.contains(value), "{value} in the status: {status}");
        assert!(!events.contains(value), "{value} in an Event");
    }

    // A changed value under the MAC: nothing of the commit is applied, the file is named, the
    // last applied state is kept.
    let tampered = pgp_secret.replace("tier: data", "tier: web");
    assert_ne!(tampered, pgp_secret);
    let bad = repo
        .commit(
            &[
                ("deploy/pgp.yaml", &tampered),
                ("deploy/map.yaml", &config_map_yaml("map", "2")),
            ],
            "tampered",
        )
        .expect("commit");
    poke_source(&env, "repo", "tampered").await;
    let ks = wait_ks(&env, "app", "the tampered file refused", 60, |k| {
        attempted(k, &bad) && failed_with(k, "deploy/pgp.yaml")
    })
    .await;
    let (_, reason, message) = ready(&ks).expect("Ready");
    assert_eq!(reason, "BuildFailed", "{message}");
    assert!(message.contains("MAC does not match"), "{message}");
    assert!(
        ks.status
            .as_ref()
            .and_then(|s| s.last_applied_revision.as_deref())
            .is_some_and(|r| r.ends_with(&first)),
        "the last applied revision is kept"
    );
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let map = maps.get("map").await.expect("map");
    assert_eq!(
        data_of(Some(&map), "value").as_deref(),
        Some("1"),
        "nothing of the bad commit is applied"
    );
    assert_eq!(
        get("for-pgp").await.get("password").map(String::as_str),
        Some("pgp-value")
    );

    // Repaired; then the key Secret holds only a key that cannot decrypt: the change of the
    // Secret alone reconciles (retryInterval is an hour), and the error names the file and its
    // recipients, not the key.
    let good = repo
        .commit(&[("deploy/pgp.yaml", &pgp_secret)], "repaired")
        .expect("commit");
    poke_source(&env, "repo", "repaired").await;
    wait_ks(&env, "app", "applied after the repair", 60, |k| {
        applied(k, &good)
    })
    .await;
    key_secret(
        &env,
        "sops-keys",
        BTreeMap::from([("identity.agekey".to_string(), age_b.identity.clone())]),
    )
    .await;
    let ks = wait_ks(&env, "app", "the wrong key refused", 60, |k| {
        failed_with(k, "no key in the decryption Secret")
    })
    .await;
    let (_, _, message) = ready(&ks).expect("Ready");
    assert!(message.contains("deploy/"), "{message}");
    assert!(message.contains(&age_a.recipient), "{message}");
    assert!(!message.contains("AGE-SECRET-KEY"), "{message}");
    assert!(!message.contains(&age_b.recipient), "{message}");

    // Rotated: both keys. The Secret change alone brings the Kustomization back.
    key_secret(
        &env,
        "sops-keys",
        BTreeMap::from([
            ("new.agekey".to_string(), age_b.identity.clone()),
            ("identity.agekey".to_string(), age_a.identity.clone()),
            ("private.asc".to_string(), pgp.armored_secret.clone()),
        ]),
    )
    .await;
    wait_ks(&env, "app", "Ready again after the rotation", 60, |k| {
        ready(k).is_some_and(|(s, _, _)| s == "True")
    })
    .await;
}

#[tokio::test]
async fn an_encrypted_secret_without_spec_decryption_is_refused() {
    let env = test_env("sops-off").await.expect("env");
    let server = GitServer::shared().expect("git server");
    let repo = server
        .create_repo(&unique("sops-off"), Auth::None)
        .expect("repo");
    let key = age_key().expect("age");
    let secret = encrypt(
        &[&key],
        &[],
        &[],
        "secret.yaml",
        secret_yaml("locked", &[("password", "never-applied")], "").as_bytes(),
    );
    let commit = repo
        .commit(&[("deploy/secret.yaml", &secret)], "encrypted")
        .expect("commit");
    let _controllers = start(&env, SLOW).await;
    git_repository(&env, "repo", repo.http_url()).await;
    kustomization(&env, "app", serde_json::json!({"path": "./deploy"})).await;
    let ks = wait_ks(&env, "app", "refused", 60, |k| {
        attempted(k, &commit) && failed_with(k, "SOPS-encrypted")
    })
    .await;
    let (_, _, message) = ready(&ks).expect("Ready");
    assert!(message.contains("deploy/secret.yaml"), "{message}");
    assert!(message.contains("spec.decryption is not set"), "{message}");
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.namespace);
    assert!(secrets.get_opt("locked").await.expect("get").is_none());
}

#[tokio::test]
async fn a_substitution_error_inside_a_decrypted_value_does_not_quote_it() {
    let env = test_env("sops-subst").await.expect("env");
    let server = GitServer::shared().expect("git server");
    let repo = server
        .create_repo(&unique("sops-subst"), Auth::None)
        .expect("repo");
    let key = age_key().expect("age");
    // A bad expression inside the secret value: the syntax error quotes up to 40 characters
    // from where it starts, which is the middle of the decrypted value.
    let secret = encrypt(
        &[&key],
        &[],
        &[],
        "secret.yaml",
        secret_yaml("db", &[("password", "q7-${zz9 hidden-tail-w4")], "").as_bytes(),
    );
    let commit = repo
        .commit(
            &[("deploy/secret.yaml", &secret)],
            "encrypted, with a bad expression",
        )
        .expect("commit");
    key_secret(
        &env,
        "sops-keys",
        BTreeMap::from([("app.agekey".to_string(), key.identity.clone())]),
    )
    .await;
    let _controllers = start(&env, SLOW).await;
    git_repository(&env, "repo", repo.http_url()).await;
    kustomization(
        &env,
        "app",
        serde_json::json!({
            "path": "./deploy",
            "decryption": {"provider": "sops", "secretRef": {"name": "sops-keys"}},
            "postBuild": {"substitute": {"unused": "value"}},
        }),
    )
    .await;
    let ks = wait_ks(&env, "app", "refused", 60, |k| {
        attempted(k, &commit) && failed_with(k, "bad substitution")
    })
    .await;
    let (_, _, message) = ready(&ks).expect("Ready");
    assert!(message.contains("Secret/"), "names the object: {message}");
    assert!(message.contains("not shown"), "{message}");
    for fragment in ["zz9", "hidden-tail", "q7-"] {
        assert!(
            !message.contains(fragment),
            "{fragment} shown in: {message}"
        );
    }
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.namespace);
    assert!(secrets.get_opt("db").await.expect("get").is_none());
}
