//! `mooring build` decrypts SOPS-encrypted files with the Kustomization's `spec.decryption`
//! keys, read with the caller's credentials, as the kustomize-controller does.

mod common;

use common::{env, kustomization, mooring};
use k8s_openapi::api::core::v1::Secret;
use mooring_testkit::sops::{Encrypt, age_key};

#[tokio::test]
async fn build_decrypts_with_the_key_secret_and_refuses_without_it() {
    let env = env("cli-sops").await;
    let key = age_key().expect("age key");
    let plain = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  \
                 password: cli-marker-7f3a\n";
    let encrypted = Encrypt {
        age: vec![&key],
        ..Encrypt::default()
    }
    .file("db.yaml", plain.as_bytes())
    .expect("sops encrypt");
    let checkout = tempfile::tempdir().expect("tempdir");
    let deploy = checkout.path().join("deploy");
    std::fs::create_dir_all(&deploy).expect("mkdir");
    std::fs::write(deploy.join("db.yaml"), &encrypted).expect("write");
    let path = checkout.path().to_str().expect("utf-8 path");
    let kustomize = mooring_testkit::tools::tool("kustomize").expect("kustomize");
    let kustomize = kustomize.to_str().expect("utf-8 path");
    let build = [
        "build",
        "ks",
        "apps",
        "--path",
        path,
        "--kustomize",
        kustomize,
    ];

    // Without spec.decryption the encrypted Secret is refused, as the controller refuses it.
    kustomization(&env, "apps", "repo", serde_json::json!({})).await;
    let run = mooring(&env, &build).await;
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains("deploy/db.yaml") && run.stderr.contains("spec.decryption"),
        "{run:#?}"
    );

    // With spec.decryption and a key Secret that does not exist yet: the Secret is named.
    kustomization(
        &env,
        "apps",
        "repo",
        serde_json::json!({"decryption": {"provider": "sops", "secretRef": {"name": "keys"}}}),
    )
    .await;
    let run = mooring(&env, &build).await;
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.contains("'keys'"), "{run:#?}");

    // With the key: the Secret as it would be applied, decrypted.
    common::apply::<Secret>(
        &env,
        serde_json::json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "keys"},
            "stringData": {"cli.agekey": key.identity},
        }),
    )
    .await;
    let run = mooring(&env, &build).await;
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stdout.contains("cli-marker-7f3a"), "{}", run.stdout);
    assert!(!run.stdout.contains("ENC["), "{}", run.stdout);
    assert!(!run.stdout.contains("sops:"), "{}", run.stdout);
}
