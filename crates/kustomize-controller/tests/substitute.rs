//! Gathering `postBuild` variables from ConfigMaps and Secrets of a real API server.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use mooring_api::kustomization::{PostBuild, SubstituteKind, SubstituteReference};
use mooring_kustomize_controller::substitute::gather_vars;

fn reference(kind: SubstituteKind, name: &str, optional: bool) -> SubstituteReference {
    SubstituteReference {
        kind,
        name: name.to_owned(),
        optional,
    }
}

async fn config_map(client: &kube::Client, ns: &str, name: &str, data: &[(&str, &str)]) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        ..ConfigMap::default()
    };
    api.create(&PostParams::default(), &cm)
        .await
        .expect("create ConfigMap");
}

#[tokio::test]
async fn later_sources_override_earlier_and_inline_overrides_all() {
    let env = mooring_testkit::test_env("substitute-vars")
        .await
        .expect("test env");
    let ns = env.namespace.as_str();
    config_map(
        &env.client,
        ns,
        "first",
        &[("region", "eu"), ("size", "small"), ("tier", "1")],
    )
    .await;
    config_map(&env.client, ns, "second", &[("size", "large")]).await;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), ns);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("creds".into()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([
            ("token".to_owned(), ByteString(b"s3cr3t".to_vec())),
            ("tier".to_owned(), ByteString(b"2".to_vec())),
        ])),
        ..Secret::default()
    };
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("create Secret");

    let post_build = PostBuild {
        substitute: Some(BTreeMap::from([("region".to_owned(), "us".to_owned())])),
        substitute_from: vec![
            reference(SubstituteKind::ConfigMap, "first", false),
            reference(SubstituteKind::ConfigMap, "second", false),
            reference(SubstituteKind::Secret, "creds", false),
            reference(SubstituteKind::ConfigMap, "absent", true),
        ],
        substitute_strategy: None,
    };
    let vars = gather_vars(&env.client, ns, &post_build)
        .await
        .expect("vars");
    assert_eq!(
        vars,
        BTreeMap::from([
            ("region".to_owned(), "us".to_owned()),
            ("size".to_owned(), "large".to_owned()),
            ("tier".to_owned(), "2".to_owned()),
            ("token".to_owned(), "s3cr3t".to_owned()),
        ])
    );
}

#[tokio::test]
async fn a_missing_required_source_is_an_error_naming_it() {
    let env = mooring_testkit::test_env("substitute-missing")
        .await
        .expect("test env");
    for (kind, label) in [
        (SubstituteKind::ConfigMap, "ConfigMap/nope"),
        (SubstituteKind::Secret, "Secret/nope"),
    ] {
        let post_build = PostBuild {
            substitute_from: vec![reference(kind, "nope", false)],
            ..PostBuild::default()
        };
        let err = gather_vars(&env.client, &env.namespace, &post_build)
            .await
            .expect_err("missing");
        assert_eq!(err.label(), "SubstituteSourceNotFound");
        assert!(err.to_string().contains(label), "{err}");
    }
}
