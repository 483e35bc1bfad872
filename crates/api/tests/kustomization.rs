//! Kustomization: a Flux v1 manifest round-trips through the types, the schema carries the
//! validation rules, and the CEL rules accept and reject what they should.

use std::time::Duration;

use kube::CustomResourceExt;
use kube::core::cel::Validator;
use mooring_api::kustomization::{SourceKind, SubstituteKind};
use mooring_api::{DeletionPolicy, Kustomization};
use serde_json::{Value, json};

/// A Flux `kustomize.toolkit.fluxcd.io/v1` manifest using every spec and status field, with
/// only its apiVersion changed.
const FLUX_MANIFEST: &str = r#"
apiVersion: kustomize.mooring.dev/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  sourceRef:
    kind: GitRepository
    name: podinfo
    namespace: shared
  path: ./deploy/production
  interval: 10m
  retryInterval: 2m
  timeout: 5m
  prune: true
  deletionPolicy: WaitForTermination
  wait: true
  healthChecks:
    - apiVersion: apps/v1
      kind: Deployment
      name: backend
      namespace: dev
  healthCheckExprs:
    - apiVersion: bitnami.com/v1alpha1
      kind: SealedSecret
      current: status.conditions.filter(e, e.type == 'Synced').all(e, e.status == 'True')
      inProgress: "!has(status.conditions)"
      failed: status.conditions.filter(e, e.type == 'Synced').all(e, e.status == 'False')
  dependsOn:
    - name: infrastructure
      namespace: flux-system
      readyExpr: dep.metadata.generation == dep.status.observedGeneration
  targetNamespace: apps
  namePrefix: prod-
  nameSuffix: -v1
  commonMetadata:
    labels:
      team: web
    annotations:
      owner: web@example.com
  patches:
    - patch: |-
        - op: add
          path: /spec/replicas
          value: 3
      target:
        group: apps
        version: v1
        kind: Deployment
        name: podinfo
        namespace: apps
        labelSelector: app=podinfo
        annotationSelector: tier=web
  images:
    - name: podinfo
      newName: registry.example.com/podinfo
      newTag: 6.5.0
      digest: sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3
  components:
    - ../ingress
  ignoreMissingComponents: true
  buildMetadata:
    - originAnnotations
  postBuild:
    substitute:
      cluster_env: prod
    substituteFrom:
      - kind: ConfigMap
        name: cluster-vars
        optional: true
      - kind: Secret
        name: cluster-secret-vars
    substituteStrategy: Always
  decryption:
    provider: sops
    secretRef:
      name: sops-keys
    serviceAccountName: kms-reader
  serviceAccountName: apps-deployer
  kubeConfig:
    secretRef:
      name: prod-kubeconfig
      key: value.yaml
  force: true
  suspend: true
  ignore:
    - paths:
        - /spec/replicas
      target:
        kind: Deployment
status:
  observedGeneration: 7
  conditions:
    - type: Ready
      status: "True"
      reason: ReconciliationSucceeded
      message: "Applied revision: main@sha1:0123456789abcdef0123456789abcdef01234567"
      observedGeneration: 7
      lastTransitionTime: "2024-05-01T10:00:00Z"
  lastAppliedRevision: main@sha1:0123456789abcdef0123456789abcdef01234567
  lastAppliedOriginRevision: v1.2.3@sha1:0123456789abcdef0123456789abcdef01234567
  lastAttemptedRevision: main@sha1:0123456789abcdef0123456789abcdef01234567
  lastHandledReconcileAt: "2024-05-01T09:59:00Z"
  inventory:
    entries:
      - id: apps_podinfo_apps_Deployment
        v: v1
      - id: apps_podinfo__Service
        v: v1
  history:
    - digest: sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
      firstReconciled: "2024-05-01T08:00:00Z"
      lastReconciled: "2024-05-01T10:00:00Z"
      lastReconciledDuration: 1.5s
      lastReconciledStatus: ReconciliationSucceeded
      totalReconciliations: 3
      metadata:
        revision: main@sha1:0123456789abcdef0123456789abcdef01234567
"#;

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("valid YAML")
}

fn schema() -> Value {
    let crd = Kustomization::crd();
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
        "apiVersion": "kustomize.mooring.dev/v1",
        "kind": "Kustomization",
        "metadata": {"name": "sample", "namespace": "default"},
        "spec": {
            "sourceRef": {"kind": "GitRepository", "name": "sample"},
            "interval": "5m",
            "prune": true,
        },
    });
    if let (Some(spec), Some(patch)) = (object["spec"].as_object_mut(), patch.as_object()) {
        spec.extend(patch.clone());
    }
    object
}

fn parse(object: Value) -> Kustomization {
    serde_json::from_value(object).expect("deserializes")
}

#[test]
fn flux_manifest_round_trips() {
    let input = yaml(FLUX_MANIFEST);
    let ks = parse(input.clone());
    assert_eq!(ks.spec.source_ref.kind, SourceKind::GitRepository);
    assert_eq!(
        ks.spec.deletion_policy,
        Some(DeletionPolicy::WaitForTermination)
    );
    let post_build = ks.spec.post_build.as_ref().expect("postBuild");
    assert_eq!(post_build.substitute_from[1].kind, SubstituteKind::Secret);
    let output = serde_json::to_value(&ks).expect("serializes");
    assert_eq!(output, input);
}

#[test]
fn flux_manifest_passes_the_cel_rules() {
    assert_eq!(cel_errors(&yaml(FLUX_MANIFEST)), Vec::<String>::new());
}

#[test]
fn minimal_spec_serializes_without_empty_fields() {
    let ks = parse(with_spec(json!({})));
    let spec = serde_json::to_value(&ks.spec).expect("serializes");
    let expected = json!({
        "sourceRef": {"kind": "GitRepository", "name": "sample"},
        "interval": "5m",
        "prune": true,
    });
    assert_eq!(spec, expected);
}

#[test]
fn prune_is_required() {
    let mut object = with_spec(json!({}));
    object["spec"]
        .as_object_mut()
        .map(|spec| spec.remove("prune"));
    assert!(serde_json::from_value::<Kustomization>(object).is_err());
    assert_eq!(
        schema()["properties"]["spec"]["required"],
        json!(["interval", "prune", "sourceRef"])
    );
}

#[test]
fn schema_carries_patterns_enums_and_defaults() {
    let props = &schema()["properties"]["spec"]["properties"];
    let duration = "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$";
    for field in ["interval", "retryInterval", "timeout"] {
        assert_eq!(props[field]["pattern"], duration, "{field}");
    }
    assert_eq!(
        props["deletionPolicy"]["enum"],
        json!(["MirrorPrune", "Delete", "WaitForTermination", "Orphan"])
    );
    assert_eq!(props["deletionPolicy"]["default"], "MirrorPrune");
    assert_eq!(props["force"]["default"], false);
    assert_eq!(
        props["sourceRef"]["properties"]["kind"]["enum"],
        json!(["GitRepository"])
    );
    assert_eq!(props["sourceRef"]["required"], json!(["kind", "name"]));
    assert_eq!(
        props["decryption"]["properties"]["provider"]["enum"],
        json!(["sops"])
    );
    let substitute_from = &props["postBuild"]["properties"]["substituteFrom"]["items"];
    assert_eq!(
        substitute_from["properties"]["kind"]["enum"],
        json!(["ConfigMap", "Secret"])
    );
    assert_eq!(
        props["patches"]["items"]["properties"]["patch"]["type"],
        "string"
    );
    assert_eq!(props["targetNamespace"]["maxLength"], 63);
}

#[test]
fn other_flux_source_kinds_are_rejected() {
    for kind in ["OCIRepository", "Bucket", "ExternalArtifact"] {
        let object = with_spec(json!({"sourceRef": {"kind": kind, "name": "x"}}));
        assert!(
            serde_json::from_value::<Kustomization>(object).is_err(),
            "{kind}"
        );
    }
}

#[test]
fn source_api_version_must_be_mooring_when_set() {
    let ok = with_spec(json!({"sourceRef": {
        "apiVersion": "source.mooring.dev/v1", "kind": "GitRepository", "name": "x"}}));
    assert!(cel_errors(&ok).is_empty());
    let flux = with_spec(json!({"sourceRef": {
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "name": "x"}}));
    assert_eq!(
        cel_errors(&flux),
        ["spec.sourceRef.apiVersion must be source.mooring.dev/v1 when set"]
    );
}

#[test]
fn kube_config_needs_exactly_one_reference() {
    let message =
        "exactly one of spec.kubeConfig.secretRef and spec.kubeConfig.configMapRef must be set";
    let neither = with_spec(json!({"kubeConfig": {}}));
    assert_eq!(cel_errors(&neither), [message]);
    let both = with_spec(json!({"kubeConfig": {
        "secretRef": {"name": "a"}, "configMapRef": {"name": "b"}}}));
    assert_eq!(cel_errors(&both), [message]);
    let secret = with_spec(json!({"kubeConfig": {"secretRef": {"name": "a"}}}));
    assert!(cel_errors(&secret).is_empty());
}

#[test]
fn accessors_apply_documented_defaults() {
    let ks = parse(with_spec(json!({})));
    assert_eq!(ks.spec.interval(), Ok(Duration::from_secs(300)));
    assert_eq!(ks.spec.retry_interval(), Ok(Duration::from_secs(300)));
    assert_eq!(ks.spec.timeout(), Ok(Duration::from_secs(300)));
    assert_eq!(ks.spec.deletion_policy(), DeletionPolicy::MirrorPrune);
    assert!(ks.spec.deletes_on_removal());

    let ks = parse(with_spec(
        json!({"retryInterval": "30s", "timeout": "2m", "prune": false}),
    ));
    assert_eq!(ks.spec.retry_interval(), Ok(Duration::from_secs(30)));
    assert_eq!(ks.spec.timeout(), Ok(Duration::from_secs(120)));
    assert!(!ks.spec.deletes_on_removal());
}

#[test]
fn deletion_policy_decides_what_is_deleted() {
    for (policy, prune, deletes) in [
        ("MirrorPrune", true, true),
        ("MirrorPrune", false, false),
        ("Delete", false, true),
        ("WaitForTermination", false, true),
        ("Orphan", true, false),
    ] {
        let ks = parse(with_spec(json!({"deletionPolicy": policy, "prune": prune})));
        assert_eq!(
            ks.spec.deletes_on_removal(),
            deletes,
            "{policy} prune={prune}"
        );
    }
}
