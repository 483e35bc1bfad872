//! Verification of commits and tags made and signed by the real `git`, `gpg` and `ssh-keygen`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

use mooring_testkit::git::{Auth, GitServer, GpgKey, Repo, Signer, SshKey};

use super::*;

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn repo(prefix: &str) -> Repo {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "verify-{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    GitServer::shared()
        .expect("git server")
        .create_repo(&name, Auth::None)
        .expect("repo")
}

fn ring(entries: &[(&str, String)]) -> Keyring {
    let data: BTreeMap<String, Vec<u8>> = entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone().into_bytes()))
        .collect();
    Keyring::from_secret(&data).expect("keyring")
}

fn gpg(name: &str) -> GpgKey {
    GpgKey::generate(name, &format!("{}@example.invalid", name.to_lowercase())).expect("gpg key")
}

fn tag_object(repo: &Repo, name: &str) -> Option<String> {
    let git = gix::open(repo.path()).expect("open");
    let reference = git
        .find_reference(format!("refs/tags/{name}").as_str())
        .expect("tag");
    let id = reference.id().detach();
    let kind = git.find_object(id).expect("object").kind;
    (kind == gix::object::Kind::Tag).then(|| id.to_hex().to_string())
}

#[test]
fn openpgp_commit_signature_names_the_signer() {
    let alice = gpg("Alice");
    let repo = repo("pgp-good");
    let sha = repo
        .commit_signed(
            &[("a.yaml", "a: 1\n")],
            "signed",
            &Signer::Gpg(alice.clone()),
        )
        .expect("commit");
    let keys = ring(&[("alice.asc", alice.public_armored().expect("export"))]);
    let signer = verify_commit(repo.path(), &sha, &keys, now()).expect("verified");
    assert_eq!(
        signer,
        SignerInfo {
            kind: KeyKind::OpenPgp,
            fingerprint: alice.fingerprint.clone(),
            identity: "Alice <alice@example.invalid>".into(),
        }
    );
}

#[test]
fn ssh_commit_signature_names_the_principal() {
    let key = SshKey::generate("dev@example.invalid").expect("ssh key");
    let repo = repo("ssh-good");
    let sha = repo
        .commit_signed(&[("a.yaml", "a: 1\n")], "signed", &Signer::Ssh(key.clone()))
        .expect("commit");
    let plain = ring(&[("dev.pub", key.public.clone())]);
    let signer = verify_commit(repo.path(), &sha, &plain, now()).expect("verified");
    assert_eq!(
        signer,
        SignerInfo {
            kind: KeyKind::Ssh,
            fingerprint: key.fingerprint.clone(),
            identity: "dev@example.invalid".into(),
        }
    );
    let allowed = ring(&[(
        "allowed_signers",
        format!(
            "release-team@example.invalid namespaces=\"git\" {}",
            key.public
        ),
    )]);
    let signer = verify_commit(repo.path(), &sha, &allowed, now()).expect("verified");
    assert_eq!(signer.identity, "release-team@example.invalid");
    // valid-before in the past: the key has expired.
    let lapsed = ring(&[(
        "allowed_signers",
        format!(
            "dev@example.invalid valid-before=\"20200101\" {}",
            key.public
        ),
    )]);
    let err = verify_commit(repo.path(), &sha, &lapsed, now()).expect_err("expired");
    assert!(matches!(err, VerifyError::ExpiredKey { .. }), "{err}");
    assert!(err.to_string().contains(&key.fingerprint), "{err}");
}

#[test]
fn unsigned_and_unknown_keys_are_told_apart() {
    let alice = gpg("Alice");
    let mallory = gpg("Mallory");
    let eve = SshKey::generate("eve@example.invalid").expect("ssh key");
    let repo = repo("unknown");
    let keys = ring(&[
        ("alice.asc", alice.public_armored().expect("export")),
        ("other.pub", SshKey::generate("x").expect("ssh").public),
    ]);

    let unsigned = repo.commit(&[("a", "1")], "unsigned").expect("commit");
    let err = verify_commit(repo.path(), &unsigned, &keys, now()).expect_err("unsigned");
    assert_eq!(
        err,
        VerifyError::Unsigned {
            object: format!("commit {unsigned}")
        }
    );
    assert_eq!(err.reason(), "InvalidCommitSignature");

    let by_mallory = repo
        .commit_signed(&[("a", "2")], "mallory", &Signer::Gpg(mallory.clone()))
        .expect("commit");
    let err = verify_commit(repo.path(), &by_mallory, &keys, now()).expect_err("unknown");
    assert_eq!(
        err,
        VerifyError::UnknownKey {
            object: format!("commit {by_mallory}"),
            key: format!("OpenPGP key {}", mallory.fingerprint),
        }
    );

    let by_eve = repo
        .commit_signed(&[("a", "3")], "eve", &Signer::Ssh(eve.clone()))
        .expect("commit");
    let err = verify_commit(repo.path(), &by_eve, &keys, now()).expect_err("unknown");
    assert_eq!(
        err,
        VerifyError::UnknownKey {
            object: format!("commit {by_eve}"),
            key: format!("SSH key {}", eve.fingerprint),
        }
    );
}

#[test]
fn a_signature_copied_onto_other_content_is_bad() {
    let alice = gpg("Alice");
    let dev = SshKey::generate("dev@example.invalid").expect("ssh key");
    let repo = repo("forged");
    let keys = ring(&[
        ("alice.asc", alice.public_armored().expect("export")),
        ("dev.pub", dev.public.clone()),
    ]);
    let cases = [
        (Signer::Gpg(alice.clone()), alice.fingerprint.clone()),
        (Signer::Ssh(dev.clone()), dev.fingerprint.clone()),
    ];
    for (signer, fingerprint) in cases {
        let signed = repo
            .commit_signed(&[("a", "1")], "reviewed change", &signer)
            .expect("commit");
        verify_commit(repo.path(), &signed, &keys, now()).expect("the original verifies");
        let forged = repo
            .forge_signed(&signed, "something else entirely")
            .expect("forge");
        let err = verify_commit(repo.path(), &forged, &keys, now()).expect_err("forged");
        let VerifyError::BadSignature { object, signer, .. } = &err else {
            panic!("expected a bad signature, got {err}");
        };
        assert_eq!(object, &format!("commit {forged}"));
        assert!(signer.contains(&fingerprint), "{err}");
    }
}

#[test]
fn expired_and_revoked_openpgp_keys_are_refused() {
    let old = GpgKey::generate_expired("Old", "old@example.invalid").expect("expired key");
    let repo = repo("lifecycle");
    let sha = repo
        .commit_signed(
            &[("a", "1")],
            "by an expired key",
            &Signer::Gpg(old.clone()),
        )
        .expect("commit");
    let keys = ring(&[("old.asc", old.public_armored().expect("export"))]);
    let err = verify_commit(repo.path(), &sha, &keys, now()).expect_err("expired");
    assert_eq!(
        err,
        VerifyError::ExpiredKey {
            object: format!("commit {sha}"),
            signer: format!(
                "OpenPGP key {} (Old <old@example.invalid>)",
                old.fingerprint
            ),
            expired_at: "2020-01-02T00:00:00Z".into(),
        }
    );
    // While the key was valid, the same signature verified.
    verify_commit(repo.path(), &sha, &keys, 1_577_840_000).expect("valid in 2020");

    let bob = gpg("Bob");
    let sha = repo
        .commit_signed(
            &[("a", "2")],
            "before the revocation",
            &Signer::Gpg(bob.clone()),
        )
        .expect("commit");
    let keys = ring(&[("bob.asc", bob.revoked_public_armored().expect("export"))]);
    let err = verify_commit(repo.path(), &sha, &keys, now()).expect_err("revoked");
    assert_eq!(
        err,
        VerifyError::RevokedKey {
            object: format!("commit {sha}"),
            signer: format!(
                "OpenPGP key {} (Bob <bob@example.invalid>)",
                bob.fingerprint
            ),
        }
    );
}

#[test]
fn a_signing_subkey_is_named_by_its_own_fingerprint() {
    let carol = gpg("Carol");
    let subkey = carol.add_signing_subkey().expect("subkey");
    assert_ne!(subkey, carol.fingerprint);
    let repo = repo("subkey");
    let sha = repo
        .commit_signed(&[("a", "1")], "by the subkey", &Signer::Gpg(carol.clone()))
        .expect("commit");
    let keys = ring(&[("carol", carol.public_armored().expect("export"))]);
    let signer = verify_commit(repo.path(), &sha, &keys, now()).expect("verified");
    assert_eq!(signer.fingerprint, subkey);
    assert_eq!(signer.identity, "Carol <carol@example.invalid>");
}

#[test]
fn signed_tags_of_both_formats() {
    let alice = gpg("Alice");
    let dev = SshKey::generate_typed("ecdsa", "dev@example.invalid").expect("ssh key");
    let repo = repo("tags");
    let keys = ring(&[
        // Two armored blocks in one entry, and an SSH key in another.
        (
            "team",
            format!(
                "{}{}",
                gpg("Other").public_armored().expect("export"),
                alice.public_armored().expect("export")
            ),
        ),
        ("dev.sshpub", dev.public.clone()),
    ]);
    repo.tag_signed("v1.0.0", "release 1.0.0", &Signer::Gpg(alice.clone()))
        .expect("tag");
    let id = tag_object(&repo, "v1.0.0");
    let (signer, raw) =
        verify_tag(repo.path(), "v1.0.0", id.as_deref(), &keys, now()).expect("verified");
    assert_eq!(signer.fingerprint, alice.fingerprint);
    assert!(header(&raw, "tagger").is_some());

    repo.tag_signed("v1.1.0", "release 1.1.0", &Signer::Ssh(dev.clone()))
        .expect("tag");
    let id = tag_object(&repo, "v1.1.0");
    let (signer, _) =
        verify_tag(repo.path(), "v1.1.0", id.as_deref(), &keys, now()).expect("verified");
    assert_eq!(signer.fingerprint, dev.fingerprint);

    repo.tag("v2.0.0", true, "annotated, unsigned")
        .expect("tag");
    let id = tag_object(&repo, "v2.0.0");
    let err = verify_tag(repo.path(), "v2.0.0", id.as_deref(), &keys, now()).expect_err("unsigned");
    assert_eq!(
        err,
        VerifyError::Unsigned {
            object: "tag 'v2.0.0'".into()
        }
    );
    assert_eq!(err.reason(), "InvalidTagSignature");
    repo.tag("v3.0.0", false, "").expect("tag");
    let id = tag_object(&repo, "v3.0.0");
    assert_eq!(id, None);
    let err = verify_tag(repo.path(), "v3.0.0", None, &keys, now()).expect_err("lightweight");
    assert!(err.to_string().contains("lightweight"), "{err}");
}
