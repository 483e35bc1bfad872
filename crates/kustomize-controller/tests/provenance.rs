//! Who changed what: a GitRepository that verifies signatures feeds a Kustomization, whose
//! `status.history` records for each applied revision its author and verified signer, and an
//! unverified revision is never applied.

mod flow;

use std::collections::BTreeMap;
use std::time::Duration;

use flow::*;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use mooring_api::{GitRepository, Kustomization};
use mooring_testkit::git::{Auth, GitServer, GpgKey, Signer};
use mooring_testkit::test_env;
use serde_json::json;

/// The history entry of `commit`, if the Kustomization recorded one.
/// The history metadata of `commit`'s entry, without the source's timing (which is checked
/// here to be present and ordered: seen, then ready).
fn history_of(ks: &Kustomization, commit: &str) -> Option<BTreeMap<String, String>> {
    let mut entry = ks
        .status
        .as_ref()?
        .history
        .iter()
        .filter_map(|h| h.metadata.clone())
        .find(|m| m.get("revision").is_some_and(|r| r.ends_with(commit)))?;
    let seen = entry.remove("source.seenTime");
    let ready = entry.remove("source.readyTime");
    assert!(
        seen.is_some() && ready.is_some() && seen <= ready,
        "the source's timing in the history: seen {seen:?}, ready {ready:?}"
    );
    Some(entry)
}

#[tokio::test]
async fn history_names_author_and_signer_and_unverified_revisions_are_never_applied() {
    let env = test_env("provenance").await.expect("env");
    let alice = GpgKey::generate("Alice", "alice@example.invalid").expect("gpg key");
    let repo = GitServer::shared()
        .expect("git server")
        .create_repo(&unique("provenance"), Auth::None)
        .expect("repo");
    let signer = Signer::Gpg(alice.clone());
    let first = repo
        .commit_signed(
            &[("deploy/cm.yaml", &config_map_yaml("app", "one"))],
            "one",
            &signer,
        )
        .expect("commit");
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.namespace);
    let keys: Secret = serde_json::from_value(json!({
        "metadata": {"name": "keys"},
        "stringData": {"alice.asc": alice.public_armored().expect("export")},
    }))
    .expect("secret");
    secrets
        .create(&PostParams::default(), &keys)
        .await
        .expect("create Secret");
    let controllers = start(&env, Duration::from_secs(3600)).await;
    let sources: Api<GitRepository> = Api::namespaced(env.client.clone(), &env.namespace);
    apply_json(&sources, json!({
        "apiVersion": "source.mooring.dev/v1", "kind": "GitRepository", "metadata": {"name": "repo"},
        "spec": {"url": repo.http_url(), "interval": "10m", "ref": {"branch": "main"},
                 "verify": {"mode": "HEAD", "secretRef": {"name": "keys"}}}
    }))
    .await;
    kustomization(&env, "app", json!({"path": "./deploy"})).await;
    let ks = wait_ks(&env, "app", "the signed commit applied", 60, |k| {
        applied(k, &first)
    })
    .await;
    // The test repository dates its n-th change at 1_700_000_000 + 60 n: this is the second.
    let expected: BTreeMap<String, String> = [
        ("revision", format!("main@sha1:{first}")),
        ("git.author", "Mooring Test <test@mooring.invalid>".into()),
        ("git.authorTime", "2023-11-14T22:15:20Z".into()),
        (
            "git.committer",
            "Mooring Test <test@mooring.invalid>".into(),
        ),
        ("git.commitTime", "2023-11-14T22:15:20Z".into()),
        ("verify.mode", "HEAD".into()),
        ("verify.signer.type", "openpgp".into()),
        ("verify.signer.fingerprint", alice.fingerprint.clone()),
        (
            "verify.signer.identity",
            "Alice <alice@example.invalid>".into(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(history_of(&ks, &first), Some(expected));

    // An unsigned commit: the source refuses it, and the Kustomization keeps the verified state.
    let unsigned = repo
        .commit(&[("deploy/cm.yaml", &config_map_yaml("app", "two"))], "two")
        .expect("commit");
    poke_source(&env, "repo", "now-1").await;
    let api: Api<GitRepository> = Api::namespaced(env.client.clone(), &env.namespace);
    wait_for(
        &api,
        "repo",
        "the unsigned commit refused",
        Duration::from_secs(60),
        |r| {
            r.and_then(|r| r.status.as_ref())
                .and_then(|s| {
                    mooring_api::conditions::find_condition(&s.conditions, "SourceVerified")
                })
                .is_some_and(|c| c.status == "False" && c.message.contains(&unsigned))
        },
    )
    .await;
    poke_kustomization(&env, "app", "now-1").await;
    let ks = wait_ks(&env, "app", "a pass after the refusal", 60, |k| {
        k.status
            .as_ref()
            .and_then(|s| s.last_handled_reconcile_at.as_deref())
            == Some("now-1")
    })
    .await;
    assert!(applied(&ks, &first), "still at the verified revision");
    assert!(
        !attempted(&ks, &unsigned),
        "the unverified revision was never tried"
    );
    assert_eq!(history_of(&ks, &unsigned), None);
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(env.client.clone(), &env.namespace);
    let cm = cms.get_opt("app").await.expect("get");
    assert_eq!(data_of(cm.as_ref(), "value").as_deref(), Some("one"));

    // The next signed commit is applied and recorded, newest first.
    let third = repo
        .commit_signed(
            &[("deploy/cm.yaml", &config_map_yaml("app", "three"))],
            "three",
            &signer,
        )
        .expect("commit");
    poke_source(&env, "repo", "now-2").await;
    let ks = wait_ks(&env, "app", "the next signed commit applied", 60, |k| {
        applied(k, &third)
    })
    .await;
    let history = &ks.status.as_ref().expect("status").history;
    let revisions: Vec<_> = history
        .iter()
        .filter_map(|h| h.metadata.as_ref()?.get("revision").cloned())
        .collect();
    assert_eq!(
        revisions,
        [format!("main@sha1:{third}"), format!("main@sha1:{first}")]
    );
    assert_eq!(
        history_of(&ks, &third).and_then(|m| m.get("verify.signer.fingerprint").cloned()),
        Some(alice.fingerprint.clone())
    );
    controllers.stop().await;
}
