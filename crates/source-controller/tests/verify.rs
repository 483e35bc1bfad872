//! Signature verification end to end: commits and tags signed by the real `gpg` and
//! `ssh-keygen` (through `git commit -S` / `git tag -s`) on the real git server, a real API
//! server, and the controller in-process.

mod support;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, Patch, PatchParams};
use mooring_api::GitRepository;
use mooring_api::conditions::{find_condition, types};
use mooring_testkit::git::{Auth, GitServer, GpgKey, Repo, Signer, SshKey};
use mooring_testkit::test_env;
use serde_json::json;
use support::*;

fn unique(prefix: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Creates or replaces the Secret `name` with `data` (as stringData).
async fn put_keys(env: &mooring_testkit::TestEnv, name: &str, data: &[(&str, String)]) {
    let api: Api<Secret> = Api::namespaced(env.client.clone(), &env.namespace);
    let data: BTreeMap<&str, &str> = data.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // `data: null` first drops entries left from an earlier version.
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque",
        "stringData": data,
    });
    api.patch(name, &PatchParams::apply("test").force(), &Patch::Apply(&secret))
        .await
        .expect("apply Secret");
}

/// Asks for a reconcile now.
async fn request(env: &mooring_testkit::TestEnv, name: &str, token: &str) {
    let api: Api<GitRepository> = Api::namespaced(env.client.clone(), &env.namespace);
    let patch = json!({"metadata": {"annotations": {"reconcile.mooring.dev/requestedAt": token}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("annotate");
}

/// The SourceVerified condition's (status, reason, message).
fn source_verified(repo: &GitRepository) -> Option<(String, String, String)> {
    let c = find_condition(&repo.status.as_ref()?.conditions, types::SOURCE_VERIFIED)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

fn refused_with(repo: &GitRepository, reason: &str, needle: &str) -> bool {
    source_verified(repo).is_some_and(|(s, r, m)| s == "False" && r == reason && m.contains(needle))
        && ready(repo).is_some_and(|(s, _, m)| s == "False" && m.contains(needle))
}

fn served_revision(repo: &GitRepository) -> Option<String> {
    Some(repo.status.as_ref()?.artifact.as_ref()?.revision.clone())
}

fn metadata(repo: &GitRepository) -> BTreeMap<String, String> {
    repo.status
        .as_ref()
        .and_then(|s| s.artifact.as_ref())
        .and_then(|a| a.metadata.clone())
        .unwrap_or_default()
}

fn signed_repo(prefix: &str) -> Repo {
    GitServer::shared()
        .expect("git server")
        .create_repo(&unique(prefix), Auth::None)
        .expect("repo")
}

fn gpg(name: &str) -> GpgKey {
    GpgKey::generate(name, &format!("{}@example.invalid", name.to_lowercase())).expect("gpg key")
}

async fn event_notes(env: &mooring_testkit::TestEnv) -> Vec<(String, String, String)> {
    let events: Api<Event> = Api::namespaced(env.client.clone(), &env.namespace);
    let list = events.list(&Default::default()).await.expect("events");
    list.items
        .into_iter()
        .map(|e| {
            (
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.note.unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn head_mode_serves_only_commits_signed_by_a_trusted_key() {
    let env = test_env("verify-head").await.expect("env");
    let alice = gpg("Alice");
    let old = GpgKey::generate_expired("Old", "old@example.invalid").expect("expired key");
    let bob = gpg("Bob");
    let mallory = gpg("Mallory");
    let dev = SshKey::generate("dev@example.invalid").expect("ssh key");
    let repo = signed_repo("verify-head");
    let good = repo
        .commit_signed(&[("deploy/a.yaml", "a: 1\n")], "by alice", &Signer::Gpg(alice.clone()))
        .expect("commit");
    put_keys(
        &env,
        "keys",
        &[
            ("alice.asc", alice.public_armored().expect("export")),
            ("old.asc", old.public_armored().expect("export")),
            // Bob's key is revoked, but his signing key still works (as a stolen one would).
            ("bob.asc", bob.revoked_public_armored().expect("export")),
            (
                "allowed_signers",
                format!("deployers@example.invalid {}", dev.public),
            ),
        ],
    )
    .await;
    let running = start(&env, None).await;
    let verify = json!({"verify": {"secretRef": {"name": "keys"}}});
    apply_repo(&env, repo_manifest("app", repo.http_url(), verify)).await;
    let served = wait_for(&env, "app", "Ready at alice's commit", |r| {
        is_ready_at(r, &good)
    })
    .await;
    let (status, reason, message) = source_verified(&served).expect("SourceVerified");
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Succeeded"));
    assert_eq!(
        message,
        format!(
            "verified commit {good} signed by OpenPGP key {} (Alice <alice@example.invalid>)",
            alice.fingerprint
        )
    );
    assert_eq!(
        served.status.as_ref().and_then(|s| s.source_verification_mode),
        Some(mooring_api::GitVerificationMode::Head)
    );
    let meta = metadata(&served);
    let expected: BTreeMap<String, String> = [
        ("git.author", "Mooring Test <test@mooring.invalid>"),
        ("git.committer", "Mooring Test <test@mooring.invalid>"),
        ("verify.mode", "HEAD"),
        ("verify.signer.type", "openpgp"),
        ("verify.signer.fingerprint", alice.fingerprint.as_str()),
        ("verify.signer.identity", "Alice <alice@example.invalid>"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (key, value) in &expected {
        assert_eq!(meta.get(key), Some(value), "metadata {key}: {meta:?}");
    }
    let first = served_revision(&served).expect("artifact");

    // Each refused commit names itself and the key, and the verified artifact stays served.
    let cases: Vec<(&str, Box<dyn Fn() -> (String, String)>)> = vec![
        (
            "unsigned",
            Box::new(|| {
                let sha = repo.commit(&[("deploy/a.yaml", "a: 2\n")], "unsigned").expect("c");
                (sha.clone(), format!("commit {sha} is not signed"))
            }),
        ),
        (
            "unknown key",
            Box::new(|| {
                let sha = repo
                    .commit_signed(&[("deploy/a.yaml", "a: 3\n")], "m", &Signer::Gpg(mallory.clone()))
                    .expect("c");
                (sha, format!("OpenPGP key {}, which is not in the verification Secret", mallory.fingerprint))
            }),
        ),
        (
            "expired key",
            Box::new(|| {
                let sha = repo
                    .commit_signed(&[("deploy/a.yaml", "a: 4\n")], "o", &Signer::Gpg(old.clone()))
                    .expect("c");
                (sha, format!("OpenPGP key {} (Old <old@example.invalid>), which expired at 2020-01-02T00:00:00Z", old.fingerprint))
            }),
        ),
        (
            "revoked key",
            Box::new(|| {
                let sha = repo
                    .commit_signed(&[("deploy/a.yaml", "a: 5\n")], "b", &Signer::Gpg(bob.clone()))
                    .expect("c");
                (sha, format!("OpenPGP key {} (Bob <bob@example.invalid>), which is revoked", bob.fingerprint))
            }),
        ),
        (
            "tampered",
            Box::new(|| {
                let signed = repo
                    .commit_signed(&[("deploy/a.yaml", "a: 6\n")], "reviewed", &Signer::Gpg(alice.clone()))
                    .expect("c");
                let forged = repo.forge_signed(&signed, "not what was reviewed").expect("forge");
                (forged.clone(), format!("commit {forged}: the signature by OpenPGP key {}", alice.fingerprint))
            }),
        ),
    ];
    for (n, (what, make)) in cases.iter().enumerate() {
        let (sha, needle) = make();
        request(&env, "app", &format!("now-{n}")).await;
        let refused = wait_for(&env, "app", &format!("{what} refused"), |r| {
            refused_with(r, "InvalidCommitSignature", &sha) && refused_with(r, "InvalidCommitSignature", &needle)
        })
        .await;
        assert_eq!(
            served_revision(&refused).as_deref(),
            Some(first.as_str()),
            "{what}: the last verified artifact stays"
        );
        let notes = event_notes(&env).await;
        assert!(
            notes.iter().any(|(t, r, note)| t == "Warning"
                && r == "InvalidCommitSignature"
                && note.contains(&sha)),
            "{what}: a Warning names the commit: {notes:?}"
        );
    }

    // An SSH-signed commit by a key of allowed_signers is served, naming the principal.
    let ssh_commit = repo
        .commit_signed(&[("deploy/a.yaml", "a: 7\n")], "by dev", &Signer::Ssh(dev.clone()))
        .expect("commit");
    request(&env, "app", "now-ssh").await;
    let served = wait_for(&env, "app", "Ready at the SSH-signed commit", |r| {
        is_ready_at(r, &ssh_commit)
    })
    .await;
    let meta = metadata(&served);
    assert_eq!(meta.get("verify.signer.type").map(String::as_str), Some("ssh"));
    assert_eq!(
        meta.get("verify.signer.fingerprint"),
        Some(&dev.fingerprint)
    );
    assert_eq!(
        meta.get("verify.signer.identity").map(String::as_str),
        Some("deployers@example.invalid")
    );
    let notes = event_notes(&env).await;
    assert!(
        notes.iter().any(|(t, r, note)| t == "Normal"
            && r == "SourceVerified"
            && note.contains(&dev.fingerprint)
            && note.contains(&ssh_commit)),
        "a Normal SourceVerified event names the signer: {notes:?}"
    );
    running.stop().await;
}
