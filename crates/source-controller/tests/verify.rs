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

/// Creates the Secret `name` with `data` (as stringData), or replaces all its data.
async fn put_keys(env: &mooring_testkit::TestEnv, name: &str, data: &[(&str, String)]) {
    let api: Api<Secret> = Api::namespaced(env.client.clone(), &env.namespace);
    let data: BTreeMap<&str, &str> = data.iter().map(|(k, v)| (*k, v.as_str())).collect();
    if api.get_opt(name).await.expect("get Secret").is_none() {
        let secret: Secret =
            serde_json::from_value(json!({"metadata": {"name": name}, "stringData": data}))
                .expect("secret");
        api.create(&Default::default(), &secret)
            .await
            .expect("create Secret");
        return;
    }
    // `data: null` drops every entry; stringData then becomes the new data, in one write.
    let patch = json!({"data": null, "stringData": data});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("replace the Secret's data");
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

/// The artifact's provenance metadata, without its timing (`source.seenTime`,
/// `source.readyTime`: the receivers' latency test checks those).
fn metadata(repo: &GitRepository) -> BTreeMap<String, String> {
    repo.status
        .as_ref()
        .and_then(|s| s.artifact.as_ref())
        .and_then(|a| a.metadata.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|(key, _)| !key.starts_with("source."))
        .collect()
}

/// Pushes a commit that must be refused; returns its SHA and a text the refusal must hold.
type MakeCommit<'a> = Box<dyn Fn() -> (String, String) + 'a>;

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
        .commit_signed(
            &[("deploy/a.yaml", "a: 1\n")],
            "by alice",
            &Signer::Gpg(alice.clone()),
        )
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
        served
            .status
            .as_ref()
            .and_then(|s| s.source_verification_mode),
        Some(mooring_api::GitVerificationMode::Head)
    );
    let meta = metadata(&served);
    // The test repository dates its n-th change at 1_700_000_000 + 60 n: this is the second.
    let expected: BTreeMap<String, String> = [
        ("git.author", "Mooring Test <test@mooring.invalid>"),
        ("git.authorTime", "2023-11-14T22:15:20Z"),
        ("git.committer", "Mooring Test <test@mooring.invalid>"),
        ("git.commitTime", "2023-11-14T22:15:20Z"),
        ("git.subject", "by alice"),
        ("verify.mode", "HEAD"),
        ("verify.signer.type", "openpgp"),
        ("verify.signer.fingerprint", alice.fingerprint.as_str()),
        ("verify.signer.identity", "Alice <alice@example.invalid>"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(meta, expected, "the provenance of the served artifact");
    let test_person = || {
        Some(mooring_api::GitPerson {
            name: "Mooring Test".into(),
            email: "test@mooring.invalid".into(),
            time: "2023-11-14T22:15:20Z".into(),
        })
    };
    assert_eq!(
        served.status.as_ref().and_then(|s| s.provenance.clone()),
        Some(mooring_api::GitProvenance {
            revision: format!("main@sha1:{good}"),
            author: test_person(),
            committer: test_person(),
            tagger: None,
            signer: Some(mooring_api::GitSigner {
                type_: "openpgp".into(),
                fingerprint: alice.fingerprint.clone(),
                identity: "Alice <alice@example.invalid>".into(),
            }),
        }),
        "status.provenance"
    );
    let first = served_revision(&served).expect("artifact");

    // Each refused commit names itself and the key, and the verified artifact stays served.
    let cases: Vec<(&str, MakeCommit)> = vec![
        (
            "unsigned",
            Box::new(|| {
                let sha = repo
                    .commit(&[("deploy/a.yaml", "a: 2\n")], "unsigned")
                    .expect("c");
                (sha.clone(), format!("commit {sha} is not signed"))
            }),
        ),
        (
            "unknown key",
            Box::new(|| {
                let sha = repo
                    .commit_signed(
                        &[("deploy/a.yaml", "a: 3\n")],
                        "m",
                        &Signer::Gpg(mallory.clone()),
                    )
                    .expect("c");
                (
                    sha,
                    format!(
                        "OpenPGP key {}, which is not in the verification Secret",
                        mallory.fingerprint
                    ),
                )
            }),
        ),
        (
            "expired key",
            Box::new(|| {
                let sha = repo
                    .commit_signed(
                        &[("deploy/a.yaml", "a: 4\n")],
                        "o",
                        &Signer::Gpg(old.clone()),
                    )
                    .expect("c");
                (
                    sha,
                    format!(
                        "OpenPGP key {} (Old <old@example.invalid>), which expired at 2020-01-02T00:00:00Z",
                        old.fingerprint
                    ),
                )
            }),
        ),
        (
            "revoked key",
            Box::new(|| {
                let sha = repo
                    .commit_signed(
                        &[("deploy/a.yaml", "a: 5\n")],
                        "b",
                        &Signer::Gpg(bob.clone()),
                    )
                    .expect("c");
                (
                    sha,
                    format!(
                        "OpenPGP key {} (Bob <bob@example.invalid>), which is revoked",
                        bob.fingerprint
                    ),
                )
            }),
        ),
        (
            "tampered",
            Box::new(|| {
                let signed = repo
                    .commit_signed(
                        &[("deploy/a.yaml", "a: 6\n")],
                        "reviewed",
                        &Signer::Gpg(alice.clone()),
                    )
                    .expect("c");
                let forged = repo
                    .forge_signed(&signed, "not what was reviewed")
                    .expect("forge");
                (
                    forged.clone(),
                    format!(
                        "commit {forged}: the signature by OpenPGP key {}",
                        alice.fingerprint
                    ),
                )
            }),
        ),
    ];
    for (n, (what, make)) in cases.iter().enumerate() {
        let (sha, needle) = make();
        request(&env, "app", &format!("now-{n}")).await;
        let refused = wait_for(&env, "app", &format!("{what} refused"), |r| {
            refused_with(r, "InvalidCommitSignature", &sha)
                && refused_with(r, "InvalidCommitSignature", &needle)
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
        .commit_signed(
            &[("deploy/a.yaml", "a: 7\n")],
            "by dev",
            &Signer::Ssh(dev.clone()),
        )
        .expect("commit");
    request(&env, "app", "now-ssh").await;
    let served = wait_for(&env, "app", "Ready at the SSH-signed commit", |r| {
        is_ready_at(r, &ssh_commit)
    })
    .await;
    let meta = metadata(&served);
    assert_eq!(
        meta.get("verify.signer.type").map(String::as_str),
        Some("ssh")
    );
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

#[tokio::test]
async fn tag_modes_verify_the_tag_object_and_record_the_tagger() {
    let env = test_env("verify-tag").await.expect("env");
    let alice = gpg("Alice");
    let dev = SshKey::generate("dev@example.invalid").expect("ssh key");
    let repo = signed_repo("verify-tag");
    // v1.0.0: a signed tag on an unsigned commit.
    let unsigned = repo
        .commit(&[("a.yaml", "a: 1\n")], "unsigned")
        .expect("commit");
    repo.tag_signed("v1.0.0", "release 1.0.0", &Signer::Gpg(alice.clone()))
        .expect("tag");
    put_keys(
        &env,
        "keys",
        &[
            ("alice.asc", alice.public_armored().expect("export")),
            ("dev.sshpub", dev.public.clone()),
        ],
    )
    .await;
    let running = start(&env, None).await;
    let with = |reference: serde_json::Value, mode: &str| json!({"ref": reference, "verify": {"mode": mode, "secretRef": {"name": "keys"}}});

    // A tag mode on a branch cannot work: Stalled, naming the field.
    apply_repo(
        &env,
        repo_manifest(
            "branch",
            repo.http_url(),
            with(json!({"branch": "main"}), "Tag"),
        ),
    )
    .await;
    let stalled = wait_for(&env, "branch", "Stalled on spec.verify.mode", |r| {
        r.status
            .as_ref()
            .is_some_and(|s| mooring_api::conditions::is_stalled(&s.conditions))
    })
    .await;
    let (_, reason, message) = ready(&stalled).expect("Ready");
    assert_eq!(reason, "InvalidVerificationMode");
    assert!(message.contains("spec.verify.mode"), "{message}");

    // Tag: the tag's signature is enough.
    apply_repo(
        &env,
        repo_manifest(
            "tag",
            repo.http_url(),
            with(json!({"tag": "v1.0.0"}), "Tag"),
        ),
    )
    .await;
    let served = wait_for(&env, "tag", "Ready at v1.0.0", |r| {
        is_ready_at(r, &unsigned)
    })
    .await;
    let (_, _, message) = source_verified(&served).expect("SourceVerified");
    assert_eq!(
        message,
        format!(
            "verified tag 'v1.0.0' signed by OpenPGP key {} (Alice <alice@example.invalid>)",
            alice.fingerprint
        )
    );
    let meta = metadata(&served);
    assert_eq!(
        meta.get("git.tagger").map(String::as_str),
        Some("Mooring Test <test@mooring.invalid>")
    );
    assert_eq!(meta.get("verify.mode").map(String::as_str), Some("Tag"));
    let tagger = served
        .status
        .as_ref()
        .and_then(|s| s.provenance.as_ref())
        .and_then(|p| p.tagger.clone())
        .expect("status.provenance.tagger");
    assert_eq!(
        (tagger.name.as_str(), tagger.email.as_str()),
        ("Mooring Test", "test@mooring.invalid")
    );
    assert_eq!(
        meta.get("verify.tagSigner.fingerprint"),
        Some(&alice.fingerprint)
    );
    assert_eq!(
        served
            .status
            .as_ref()
            .and_then(|s| s.source_verification_mode),
        Some(mooring_api::GitVerificationMode::Tag)
    );

    // TagAndHEAD: the unsigned commit under the signed tag is refused.
    apply_repo(
        &env,
        repo_manifest(
            "both",
            repo.http_url(),
            with(json!({"tag": "v1.0.0"}), "TagAndHEAD"),
        ),
    )
    .await;
    let refused = wait_for(&env, "both", "the unsigned commit refused", |r| {
        refused_with(
            r,
            "InvalidCommitSignature",
            &format!("commit {unsigned} is not signed"),
        )
    })
    .await;
    assert_eq!(served_revision(&refused), None, "nothing was ever served");

    // TagAndHEAD with semver: a signed commit under an SSH-signed tag is served; an annotated
    // but unsigned newer tag is then refused and the verified one stays.
    let signed = repo
        .commit_signed(
            &[("a.yaml", "a: 2\n")],
            "signed",
            &Signer::Gpg(alice.clone()),
        )
        .expect("commit");
    repo.tag_signed("v2.0.0", "release 2.0.0", &Signer::Ssh(dev.clone()))
        .expect("tag");
    apply_repo(
        &env,
        repo_manifest(
            "semver",
            repo.http_url(),
            with(json!({"semver": ">=2.0.0"}), "TagAndHEAD"),
        ),
    )
    .await;
    let served = wait_for(&env, "semver", "Ready at v2.0.0", |r| {
        is_ready_at(r, &signed)
    })
    .await;
    let (_, _, message) = source_verified(&served).expect("SourceVerified");
    assert_eq!(
        message,
        format!(
            "verified tag 'v2.0.0' signed by SSH key {} (dev@example.invalid) and commit {signed} \
             signed by OpenPGP key {} (Alice <alice@example.invalid>)",
            dev.fingerprint, alice.fingerprint
        )
    );
    let meta = metadata(&served);
    assert_eq!(
        meta.get("verify.signer.fingerprint"),
        Some(&alice.fingerprint)
    );
    assert_eq!(
        meta.get("verify.tagSigner.fingerprint"),
        Some(&dev.fingerprint)
    );
    repo.commit_signed(
        &[("a.yaml", "a: 3\n")],
        "signed",
        &Signer::Gpg(alice.clone()),
    )
    .expect("commit");
    repo.tag("v2.1.0", true, "annotated, unsigned")
        .expect("tag");
    request(&env, "semver", "now-1").await;
    let refused = wait_for(&env, "semver", "the unsigned tag refused", |r| {
        refused_with(r, "InvalidTagSignature", "tag 'v2.1.0' is not signed")
    })
    .await;
    assert_eq!(
        served_revision(&refused),
        Some(format!("v2.0.0@sha1:{signed}")),
        "the verified tag stays served"
    );
    running.stop().await;
}

#[tokio::test]
async fn key_rotation_withdraws_or_admits_at_once() {
    let env = test_env("verify-rotate").await.expect("env");
    let alice = gpg("Alice");
    let dev = SshKey::generate("dev@example.invalid").expect("ssh key");
    let repo = signed_repo("verify-rotate");
    let by_dev = repo
        .commit_signed(&[("a.yaml", "a: 1\n")], "by dev", &Signer::Ssh(dev.clone()))
        .expect("commit");
    put_keys(
        &env,
        "keys",
        &[("alice.asc", alice.public_armored().expect("export"))],
    )
    .await;
    let running = start(&env, None).await;
    // A long interval: only the Secret watch can bring the changes below in time.
    let spec = json!({"interval": "1h", "verify": {"mode": "HEAD", "secretRef": {"name": "keys"}}});
    apply_repo(&env, repo_manifest("app", repo.http_url(), spec)).await;
    let refused = wait_for(&env, "app", "dev's commit refused", |r| {
        refused_with(r, "InvalidCommitSignature", &dev.fingerprint)
    })
    .await;
    assert_eq!(served_revision(&refused), None);

    // Adding dev's key lets the pending commit through, without a request.
    put_keys(
        &env,
        "keys",
        &[
            ("alice.asc", alice.public_armored().expect("export")),
            ("dev.pub", dev.public.clone()),
        ],
    )
    .await;
    wait_for(&env, "app", "served once dev's key is added", |r| {
        is_ready_at(r, &by_dev)
    })
    .await;

    // Removing it withdraws the artifact: no consumer applies it again.
    put_keys(
        &env,
        "keys",
        &[("alice.asc", alice.public_armored().expect("export"))],
    )
    .await;
    let withdrawn = wait_for(&env, "app", "withdrawn once dev's key is removed", |r| {
        refused_with(r, "InvalidCommitSignature", &dev.fingerprint) && served_revision(r).is_none()
    })
    .await;
    let (_, _, message) = ready(&withdrawn).expect("Ready");
    assert!(message.contains("withdrawn"), "{message}");
    assert_eq!(
        withdrawn
            .status
            .as_ref()
            .and_then(|s| s.source_verification_mode),
        None
    );

    // Deleting the Secret: nothing can be verified, and the condition names the Secret.
    put_keys(&env, "keys", &[("dev.pub", dev.public.clone())]).await;
    wait_for(&env, "app", "served again", |r| is_ready_at(r, &by_dev)).await;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.namespace);
    secrets
        .delete("keys", &Default::default())
        .await
        .expect("delete");
    wait_for(&env, "app", "withdrawn once the Secret is gone", |r| {
        refused_with(r, "VerificationError", "Secret 'keys': not found")
            && served_revision(r).is_none()
    })
    .await;
    // A Secret whose entries are not keys is named with the entry at fault.
    put_keys(&env, "keys", &[("readme", "these are not keys".into())]).await;
    wait_for(&env, "app", "the entry that is not a key named", |r| {
        refused_with(r, "VerificationError", "entry 'readme'")
    })
    .await;
    let notes = event_notes(&env).await;
    assert!(
        notes.iter().any(|(t, r, note)| t == "Warning"
            && r == "VerificationError"
            && note.contains("entry 'readme'")),
        "a Warning names the Secret's entry: {notes:?}"
    );
    running.stop().await;
}
