//! GitRepository: a Flux v1 manifest round-trips through the types, the schema carries the
//! validation rules, and the CEL rules accept and reject what they should.

use kube::CustomResourceExt;
use kube::core::cel::Validator;
use mooring_api::{GitCheckout, GitProvider, GitRepository, GitRepositoryRef};
use serde_json::{Value, json};

/// A Flux `source.toolkit.fluxcd.io/v1` manifest using every spec and status field, with only
/// its apiVersion changed.
const FLUX_MANIFEST: &str = r#"
apiVersion: source.mooring.dev/v1
kind: GitRepository
metadata:
  name: podinfo
  namespace: flux-system
spec:
  url: https://dev.azure.com/org/project/_git/podinfo
  secretRef:
    name: https-credentials
  provider: azure
  serviceAccountName: git-reader
  interval: 5m0s
  timeout: 90s
  ref:
    branch: main
    commit: 0123456789abcdef0123456789abcdef01234567
  verify:
    mode: TagAndHEAD
    secretRef:
      name: pgp-public-keys
  proxySecretRef:
    name: proxy
  ignore: |
    /*
    !/deploy
  suspend: true
  recurseSubmodules: true
  include:
    - repository:
        name: shared
      fromPath: deploy/base
      toPath: base
  sparseCheckout:
    - deploy
    - ./charts
status:
  observedGeneration: 3
  conditions:
    - type: Ready
      status: "True"
      reason: Succeeded
      message: "stored artifact for revision 'main@sha1:0123456789abcdef0123456789abcdef01234567'"
      observedGeneration: 3
      lastTransitionTime: "2024-05-01T10:00:00Z"
  artifact:
    path: gitrepository/flux-system/podinfo/0123456789abcdef0123456789abcdef01234567.tar.gz
    url: http://source-controller.mooring-system.svc.cluster.local./gitrepository/flux-system/podinfo/0123456789abcdef0123456789abcdef01234567.tar.gz
    revision: main@sha1:0123456789abcdef0123456789abcdef01234567
    digest: sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
    lastUpdateTime: "2024-05-01T10:00:00Z"
    size: 4096
  includedArtifacts:
    - path: gitrepository/flux-system/shared/89abcdef0123456789abcdef0123456789abcdef.tar.gz
      url: http://source-controller/gitrepository/flux-system/shared/89abcdef0123456789abcdef0123456789abcdef.tar.gz
      revision: main@sha1:89abcdef0123456789abcdef0123456789abcdef
      lastUpdateTime: "2024-05-01T09:00:00Z"
      metadata:
        origin: shared
  observedIgnore: |
    /*
    !/deploy
  observedRecurseSubmodules: true
  observedInclude:
    - repository:
        name: shared
      fromPath: deploy/base
      toPath: base
  observedSparseCheckout:
    - deploy
  sourceVerificationMode: TagAndHEAD
  lastHandledReconcileAt: "2024-05-01T09:59:00Z"
"#;

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("valid YAML")
}

fn schema() -> Value {
    let crd = GitRepository::crd();
    let version = &crd.spec.versions[0];
    let schema = version
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref());
    serde_json::to_value(schema.expect("the CRD has a schema")).expect("schema to JSON")
}

/// The CEL failure messages for `object`, empty when every rule passes.
fn cel_errors(object: &Value) -> Vec<String> {
    match Validator::new().validate(&schema(), object, None) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.iter().map(|e| e.message.clone()).collect(),
    }
}

fn with_spec(patch: Value) -> Value {
    let mut object = json!({
        "apiVersion": "source.mooring.dev/v1",
        "kind": "GitRepository",
        "metadata": {"name": "sample", "namespace": "default"},
        "spec": {"url": "https://example.com/repo.git", "interval": "1m"},
    });
    if let (Some(spec), Some(patch)) = (object["spec"].as_object_mut(), patch.as_object()) {
        spec.extend(patch.clone());
    }
    object
}

#[test]
fn flux_manifest_round_trips() {
    let input = yaml(FLUX_MANIFEST);
    let repo: GitRepository = serde_json::from_value(input.clone()).expect("deserializes");
    assert_eq!(repo.spec.provider, Some(GitProvider::Azure));
    assert_eq!(repo.spec.include[0].to_path.as_deref(), Some("base"));
    let output = serde_json::to_value(&repo).expect("serializes");
    assert_eq!(output, input);
}

#[test]
fn flux_manifest_passes_the_cel_rules() {
    assert_eq!(cel_errors(&yaml(FLUX_MANIFEST)), Vec::<String>::new());
}

#[test]
fn minimal_spec_serializes_without_empty_fields() {
    let repo: GitRepository = serde_json::from_value(with_spec(json!({}))).expect("deserializes");
    let spec = serde_json::to_value(&repo.spec).expect("serializes");
    assert_eq!(
        spec,
        json!({"url": "https://example.com/repo.git", "interval": "1m"})
    );
}

#[test]
fn schema_carries_patterns_enums_and_defaults() {
    let spec = &schema()["properties"]["spec"];
    let props = &spec["properties"];
    assert_eq!(props["url"]["pattern"], "^(http|https|ssh)://.*$");
    assert_eq!(
        props["interval"]["pattern"],
        "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
    );
    assert_eq!(
        props["timeout"]["pattern"],
        "^([0-9]+(\\.[0-9]+)?(ms|s|m))+$"
    );
    assert_eq!(props["timeout"]["default"], "60s");
    assert_eq!(
        props["provider"]["enum"],
        json!(["generic", "aws", "azure", "github"])
    );
    let verify = &props["verify"];
    assert_eq!(
        verify["properties"]["mode"]["enum"],
        json!(["head", "HEAD", "Tag", "TagAndHEAD"])
    );
    assert_eq!(verify["properties"]["mode"]["default"], "HEAD");
    assert_eq!(verify["required"], json!(["secretRef"]));
    assert_eq!(spec["required"], json!(["interval", "url"]));
    // Field documentation wins over the enum type's own description.
    let provider_doc = props["provider"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        provider_doc.starts_with("How to authenticate"),
        "{provider_doc}"
    );
}

#[test]
fn status_is_optional_and_defaults_observed_generation() {
    let schema = schema();
    assert_eq!(schema["required"], json!(["spec"]));
    assert_eq!(
        schema["properties"]["status"]["default"],
        json!({"observedGeneration": -1})
    );
}

#[test]
fn ref_accepts_one_pointer_and_commit_with_branch() {
    for reference in [
        json!({"branch": "main"}),
        json!({"tag": "v1.0.0"}),
        json!({"semver": ">=1.0.0"}),
        json!({"name": "refs/pull/1/head"}),
        json!({"commit": "0123456789abcdef0123456789abcdef01234567"}),
        json!({"branch": "main", "commit": "0123456789abcdef0123456789abcdef01234567"}),
    ] {
        let errors = cel_errors(&with_spec(json!({"ref": reference})));
        assert!(errors.is_empty(), "{reference} rejected: {errors:?}");
    }
}

#[test]
fn ref_rejects_two_pointers() {
    for reference in [
        json!({"branch": "main", "tag": "v1.0.0"}),
        json!({"tag": "v1.0.0", "semver": ">=1.0.0"}),
        json!({"semver": ">=1.0.0", "name": "refs/heads/main"}),
    ] {
        let errors = cel_errors(&with_spec(json!({"ref": reference})));
        assert_eq!(
            errors,
            ["only one of spec.ref.branch, tag, semver, name may be set"]
        );
    }
}

#[test]
fn ref_rejects_commit_with_anything_but_branch() {
    let commit = "0123456789abcdef0123456789abcdef01234567";
    for other in ["tag", "semver", "name"] {
        let errors = cel_errors(&with_spec(json!({"ref": {"commit": commit, other: "x"}})));
        assert_eq!(
            errors,
            ["spec.ref.commit may only be combined with spec.ref.branch"]
        );
    }
}

#[test]
fn service_account_needs_a_cloud_provider() {
    let message = "spec.serviceAccountName can only be set when spec.provider is 'aws' or 'azure'";
    for provider in [None, Some("generic"), Some("github")] {
        let mut patch = json!({"serviceAccountName": "reader"});
        if let Some(provider) = provider {
            patch["provider"] = json!(provider);
        }
        assert_eq!(
            cel_errors(&with_spec(patch)),
            [message],
            "provider {provider:?}"
        );
    }
    for provider in ["aws", "azure"] {
        let patch = json!({"serviceAccountName": "reader", "provider": provider});
        assert!(
            cel_errors(&with_spec(patch)).is_empty(),
            "provider {provider}"
        );
    }
}

#[test]
fn checkout_follows_documented_precedence_and_defaults() {
    let repo: GitRepository = serde_json::from_value(with_spec(json!({}))).expect("deserializes");
    assert_eq!(repo.spec.checkout(), GitCheckout::Branch("master".into()));
    assert_eq!(repo.spec.timeout(), Ok(std::time::Duration::from_secs(60)));
    assert_eq!(repo.spec.interval(), Ok(std::time::Duration::from_secs(60)));
    assert_eq!(repo.spec.provider(), GitProvider::Generic);

    let everything = GitRepositoryRef {
        branch: Some("main".into()),
        tag: Some("v1".into()),
        semver: Some("1.x".into()),
        name: Some("refs/heads/dev".into()),
        commit: Some("abc".into()),
    };
    assert_eq!(
        everything.checkout(),
        GitCheckout::Commit {
            commit: "abc".into(),
            branch: Some("main".into())
        }
    );
    let without_commit = GitRepositoryRef {
        commit: None,
        ..everything.clone()
    };
    assert_eq!(
        without_commit.checkout(),
        GitCheckout::Name("refs/heads/dev".into())
    );
    let semver_and_tag = GitRepositoryRef {
        name: None,
        ..without_commit
    };
    assert_eq!(semver_and_tag.checkout(), GitCheckout::Semver("1.x".into()));
}
