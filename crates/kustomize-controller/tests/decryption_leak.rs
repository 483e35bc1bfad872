//! Decrypted values never leave (issue 13, item 3): marker values are encrypted by the real
//! `sops` into a Secret manifest and a secretGenerator dotenv file, and into a file whose MAC
//! is then broken; both controller binaries run at debug level. The markers must be found in
//! the applied Secrets and nowhere else: not in any status, Event, log line, nor in any file
//! the controllers keep (artifact storage, git cache, artifact cache, build working copies),
//! and no build working copy is left behind.

mod flow;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use flow::{apply_json, unique};
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{Api, ListParams};
use mooring_api::{GitRepository, Kustomization};
use mooring_testkit::controllers::{Controllers, KUSTOMIZE_CONTROLLER, Options, SOURCE_CONTROLLER};
use mooring_testkit::git::{Auth, GitServer};
use mooring_testkit::sops::{Encrypt, age_key};
use mooring_testkit::wait::{ready, wait_for};

fn marker(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}{}x{nanos:x}", std::process::id())
}

/// The forms a leak could take: raw, and base64 at each of the three byte alignments.
fn forms(value: &str) -> Vec<String> {
    let mut out = vec![value.to_string()];
    for skip in 0..3 {
        let padded = format!("{}{value}", "#".repeat(skip));
        let encoded = base64::engine::general_purpose::STANDARD.encode(padded.as_bytes());
        // Drop the characters that depend on the neighbours.
        let start = (skip * 4).div_ceil(3) + 1;
        let end = encoded.trim_end_matches('=').len().saturating_sub(2);
        if end > start {
            out.push(encoded[start..end].to_string());
        }
    }
    out
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => files_under(&path, out),
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
}

#[tokio::test]
async fn decrypted_values_are_found_in_the_applied_secrets_and_nowhere_else() {
    let env = mooring_testkit::test_env("sops-leak").await.expect("env");
    let server = GitServer::shared().expect("git server");
    let repo = server
        .create_repo(&unique("sops-leak"), Auth::None)
        .expect("repo");
    let key = age_key().expect("age key");
    let in_secret = marker("mkSopsSecret");
    let in_env = marker("mkSopsEnv");
    let in_tampered = marker("mkSopsTampered");
    let encrypt = |name: &str, plain: &str| {
        let bytes = Encrypt {
            age: vec![&key],
            ..Default::default()
        }
        .file(name, plain.as_bytes())
        .expect("sops encrypt");
        String::from_utf8(bytes).expect("text")
    };
    let secret = |name: &str, value: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  labels:\n    tier: data\nstringData:\n  value: {value}\n"
        )
    };
    let tampered = encrypt("t.yaml", &secret("tampered", &in_tampered))
        // Every value is encrypted here: break the MAC by changing one ciphertext byte.
        .replacen("data:", "data:A", 1);
    repo.commit(
        &[
            ("ok/secret.yaml", &encrypt("s.yaml", &secret("applied", &in_secret))),
            ("ok/app.env", &encrypt("app.env", &format!("TOKEN={in_env}\n"))),
            (
                "ok/kustomization.yaml",
                "resources: [secret.yaml]\nsecretGenerator:\n  - name: generated\n    envs: [app.env]\n",
            ),
            ("bad/secret.yaml", &tampered),
        ],
        "encrypted markers",
    )
    .expect("commit");

    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.namespace);
    apply_json(
        &secrets,
        serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sops-keys"},
            "stringData": {"key.agekey": key.identity}}),
    )
    .await;
    let mut options = Options::local(env.plane.kubeconfig()).watching(&env.namespace);
    options.log_level = "debug".to_string();
    let controllers = tokio::task::spawn_blocking(move || Controllers::start(&options))
        .await
        .expect("start task")
        .expect("controllers");
    let repos: Api<GitRepository> = Api::namespaced(env.client.clone(), &env.namespace);
    apply_json(
        &repos,
        serde_json::json!({"apiVersion": "source.mooring.dev/v1", "kind": "GitRepository",
            "metadata": {"name": "repo"},
            "spec": {"url": repo.http_url(), "interval": "1h", "ref": {"branch": "main"}}}),
    )
    .await;
    let kss: Api<Kustomization> = Api::namespaced(env.client.clone(), &env.namespace);
    for (name, path) in [("ok", "./ok"), ("bad", "./bad")] {
        apply_json(
            &kss,
            serde_json::json!({"apiVersion": "kustomize.mooring.dev/v1", "kind": "Kustomization",
                "metadata": {"name": name},
                "spec": {"interval": "1h", "prune": true, "path": path,
                    "targetNamespace": env.namespace,
                    "sourceRef": {"kind": "GitRepository", "name": "repo"},
                    "decryption": {"provider": "sops", "secretRef": {"name": "sops-keys"}}}}),
        )
        .await;
    }
    let settled = |want: &'static str| {
        move |k: Option<&Kustomization>| {
            k.and_then(|k| ready(&k.status.as_ref()?.conditions))
                .is_some_and(|(s, r, _)| {
                    s == want || (want == "False" && r == "BuildFailed" && s == "False")
                })
        }
    };
    wait_for(
        &kss,
        "ok",
        "Ready",
        Duration::from_secs(90),
        settled("True"),
    )
    .await;
    let bad = wait_for(
        &kss,
        "bad",
        "refused",
        Duration::from_secs(90),
        settled("False"),
    )
    .await
    .expect("bad");
    let message = ready(&bad.status.clone().unwrap_or_default().conditions)
        .map(|(_, _, m)| m)
        .unwrap_or_default();
    assert!(message.contains("secret.yaml"), "{message}");

    // Positive control: the values are in the applied Secrets.
    let value_of = |s: &Secret, k: &str| {
        s.data
            .as_ref()
            .and_then(|d| d.get(k))
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
    };
    let applied = secrets.get("applied").await.expect("applied Secret");
    assert_eq!(value_of(&applied, "value"), Some(in_secret.clone()));
    let generated = secrets
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .find(|s| {
            s.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("generated-"))
        })
        .expect("generated Secret");
    assert_eq!(value_of(&generated, "TOKEN"), Some(in_env.clone()));

    // Everything else the controllers publish or keep.
    let mut places: BTreeMap<String, String> = BTreeMap::new();
    let statuses: Vec<_> = kss
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|k| k.status)
        .collect();
    places.insert(
        "Kustomization status".into(),
        serde_json::to_string(&statuses).expect("json"),
    );
    let events: Api<Event> = Api::namespaced(env.client.clone(), &env.namespace);
    let events = events
        .list(&ListParams::default())
        .await
        .expect("events")
        .items;
    places.insert(
        "Events".into(),
        serde_json::to_string(&events).expect("json"),
    );
    for s in secrets
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
    {
        let name = s.metadata.name.clone().unwrap_or_default();
        if name != "applied" && !name.starts_with("generated-") {
            places.insert(
                format!("Secret {name}"),
                serde_json::to_string(&s).expect("json"),
            );
        }
    }
    let mut files = Vec::new();
    files_under(controllers.dir(), &mut files);
    assert!(files.len() > 3, "the controllers keep files: {files:?}");
    for file in &files {
        let bytes = std::fs::read(file).unwrap_or_default();
        places.insert(
            file.display().to_string(),
            String::from_utf8_lossy(&bytes).into_owned(),
        );
    }
    for name in [KUSTOMIZE_CONTROLLER, SOURCE_CONTROLLER] {
        let log = places
            .get(&controllers.log_file(name).display().to_string())
            .cloned()
            .unwrap_or_default();
        assert!(
            log.lines().filter(|l| l.contains("DEBUG")).count() > 10,
            "{name} logs at debug"
        );
    }
    let leftovers: Vec<_> = files
        .iter()
        .filter(|f| {
            f.components()
                .any(|c| c.as_os_str().to_string_lossy().starts_with(".build-"))
        })
        .collect();
    assert!(
        leftovers.is_empty(),
        "build working copies left: {leftovers:?}"
    );
    let mut leaks = Vec::new();
    for value in [&in_secret, &in_env, &in_tampered] {
        for form in forms(value) {
            for (place, text) in &places {
                if text.contains(&form) {
                    leaks.push(format!("{value} (as {form}) in {place}"));
                }
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "decrypted values leaked:\n{}",
        leaks.join("\n")
    );
    // The private key stays in its Secret too.
    let secret_line = key
        .identity
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .expect("identity");
    for (place, text) in &places {
        if !place.starts_with("Secret sops-keys") {
            assert!(!text.contains(secret_line), "the age identity in {place}");
        }
    }
}
