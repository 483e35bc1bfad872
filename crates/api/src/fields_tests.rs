use serde_json::{Map, json};

use super::*;

/// Kustomization fields the kustomize-controller implements (the claim this test keeps).
const KUSTOMIZATION_IMPLEMENTED: &[&str] = &[
    "spec.buildMetadata",
    "spec.commonMetadata.annotations",
    "spec.commonMetadata.labels",
    "spec.components",
    "spec.decryption.provider",
    "spec.decryption.secretRef.name",
    "spec.deletionPolicy",
    "spec.dependsOn[].name",
    "spec.dependsOn[].namespace",
    "spec.force",
    "spec.healthChecks[].apiVersion",
    "spec.healthChecks[].kind",
    "spec.healthChecks[].name",
    "spec.healthChecks[].namespace",
    "spec.ignoreMissingComponents",
    "spec.images[].digest",
    "spec.images[].name",
    "spec.images[].newName",
    "spec.images[].newTag",
    "spec.interval",
    "spec.kubeConfig.secretRef.key",
    "spec.kubeConfig.secretRef.name",
    "spec.namePrefix",
    "spec.nameSuffix",
    "spec.patches[].patch",
    "spec.patches[].target.annotationSelector",
    "spec.patches[].target.group",
    "spec.patches[].target.kind",
    "spec.patches[].target.labelSelector",
    "spec.patches[].target.name",
    "spec.patches[].target.namespace",
    "spec.patches[].target.version",
    "spec.path",
    "spec.postBuild.substitute",
    "spec.postBuild.substituteFrom[].kind",
    "spec.postBuild.substituteFrom[].name",
    "spec.postBuild.substituteFrom[].optional",
    "spec.postBuild.substituteStrategy",
    "spec.prune",
    "spec.retryInterval",
    "spec.serviceAccountName",
    "spec.sourceRef.apiVersion",
    "spec.sourceRef.kind",
    "spec.sourceRef.name",
    "spec.sourceRef.namespace",
    "spec.suspend",
    "spec.targetNamespace",
    "spec.timeout",
    "spec.wait",
];

/// GitRepository fields the source-controller implements. `spec.provider` is implemented for
/// `generic` and refused with any other value; `spec.serviceAccountName` is only valid with
/// those other providers (the schema says so), so it is refused with them.
const GITREPOSITORY_IMPLEMENTED: &[&str] = &[
    "spec.ignore",
    "spec.include[].fromPath",
    "spec.include[].repository.name",
    "spec.include[].toPath",
    "spec.interval",
    "spec.provider",
    "spec.proxySecretRef.name",
    "spec.ref.branch",
    "spec.ref.commit",
    "spec.ref.name",
    "spec.ref.semver",
    "spec.ref.tag",
    "spec.secretRef.name",
    "spec.serviceAccountName",
    "spec.sparseCheckout",
    "spec.suspend",
    "spec.timeout",
    "spec.url",
    "spec.verify.mode",
    "spec.verify.secretRef.name",
];

/// Receiver fields the source-controller implements. `spec.type` is implemented for the git
/// servers' types and refused (naming the value) for the registries'; `spec.events` is refused
/// with `generic` and `generic-hmac`, whose calls name no event; `spec.resources[].kind` for
/// `GitRepository` only, and `spec.resources[].namespace` only when it is the Receiver's.
const RECEIVER_IMPLEMENTED: &[&str] = &[
    "spec.events",
    "spec.interval",
    "spec.resources[].apiVersion",
    "spec.resources[].kind",
    "spec.resources[].matchLabels",
    "spec.resources[].name",
    "spec.resources[].namespace",
    "spec.secretRef.name",
    "spec.suspend",
    "spec.type",
];

fn crd(kind: &str) -> CustomResourceDefinition {
    crate::crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .expect("CRD")
}

/// Whether `field` is `under` itself, or a field inside it.
fn within(field: &str, under: &str) -> bool {
    field == under
        || field
            .strip_prefix(under)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with("[]"))
}

fn check_every_field_is_implemented_or_refused(
    kind: &str,
    implemented: &[&str],
    refused: &[Refused],
) {
    let fields = spec_fields(&crd(kind));
    let paths: Vec<&str> = fields.iter().map(|f| f.path.as_str()).collect();
    let neither: Vec<&str> = paths
        .iter()
        .copied()
        .filter(|p| !implemented.contains(p) && !refused.iter().any(|r| within(p, r.path)))
        .collect();
    assert!(
        neither.is_empty(),
        "{kind} fields neither implemented nor refused: {neither:?}"
    );
    let both: Vec<&str> = paths
        .iter()
        .copied()
        .filter(|p| implemented.contains(p) && refused.iter().any(|r| within(p, r.path)))
        .collect();
    assert!(both.is_empty(), "{kind} fields listed twice: {both:?}");
    for listed in implemented {
        assert!(paths.contains(listed), "{kind} has no field {listed}");
    }
    for r in refused {
        assert!(
            paths.iter().any(|p| within(p, r.path)),
            "{kind} has no field {}",
            r.path
        );
    }
}

#[test]
fn every_kustomization_field_is_implemented_or_refused() {
    check_every_field_is_implemented_or_refused(
        "Kustomization",
        KUSTOMIZATION_IMPLEMENTED,
        KUSTOMIZATION_REFUSED,
    );
}

#[test]
fn every_gitrepository_field_is_implemented_or_refused() {
    check_every_field_is_implemented_or_refused(
        "GitRepository",
        GITREPOSITORY_IMPLEMENTED,
        GITREPOSITORY_REFUSED,
    );
}

#[test]
fn every_receiver_field_is_implemented_or_refused() {
    check_every_field_is_implemented_or_refused("Receiver", RECEIVER_IMPLEMENTED, RECEIVER_REFUSED);
}

/// A spec (as JSON) that sets `field` to a value of its type.
fn setting(field: &Field) -> Value {
    let value = match field.type_.as_str() {
        "boolean" => json!(true),
        "integer" | "number" => json!(1),
        "array" => json!(["x"]),
        "object" => json!({"k": "v"}),
        _ => json!("x"),
    };
    let segments: Vec<&str> = field
        .path
        .strip_prefix("spec.")
        .expect("spec field")
        .split('.')
        .collect();
    segments.iter().rev().fold(value, |inner, segment| {
        let mut object = Map::new();
        match segment.strip_suffix("[]") {
            Some(name) => object.insert(name.to_string(), json!([inner])),
            None => object.insert(segment.to_string(), inner),
        };
        Value::Object(object)
    })
}

fn check_every_refused_field_is_refused(kind: &str, list: &[Refused]) {
    let fields = spec_fields(&crd(kind));
    for field in &fields {
        let found = refused(&setting(field), list);
        match list.iter().find(|r| within(&field.path, r.path)) {
            Some(expected) => {
                let found = found.unwrap_or_else(|| panic!("{kind} {} not refused", field.path));
                assert_eq!(found, expected, "{kind} {}", field.path);
                assert!(found.message().starts_with(expected.path));
            }
            None => assert!(found.is_none(), "{kind} {} refused", field.path),
        }
    }
}

#[test]
fn a_spec_setting_a_refused_field_is_refused_naming_it() {
    check_every_refused_field_is_refused("Kustomization", KUSTOMIZATION_REFUSED);
    check_every_refused_field_is_refused("GitRepository", GITREPOSITORY_REFUSED);
    check_every_refused_field_is_refused("Receiver", RECEIVER_REFUSED);
}

#[test]
fn unset_or_default_values_are_not_refusals() {
    let unset = json!({
        "recurseSubmodules": false,
        "ignore": [],
        "dependsOn": [{"name": "a"}, {"name": "b", "readyExpr": ""}],
        "decryption": null,
    });
    assert_eq!(refused(&unset, KUSTOMIZATION_REFUSED), None);
    assert_eq!(refused(&unset, GITREPOSITORY_REFUSED), None);
    let second = json!({"dependsOn": [{"name": "a"}, {"name": "b", "readyExpr": "true"}]});
    assert_eq!(
        refused(&second, KUSTOMIZATION_REFUSED).map(|r| r.path),
        Some("spec.dependsOn[].readyExpr")
    );
}

/// The rows of the migration guide's table of section 3 that say **Stalled**, as
/// (kind, field) pairs.
fn stalled_rows_of_the_migration_guide() -> Vec<(String, String)> {
    let guide = include_str!("../../../docs/migrating-from-flux.md");
    let section = guide
        .split("\n## 3. ")
        .nth(1)
        .and_then(|s| s.split("\n## 4. ").next())
        .expect("section 3 of docs/migrating-from-flux.md");
    section
        .lines()
        .filter(|line| line.starts_with("| ") && line.contains("**Stalled**"))
        .filter_map(|line| {
            let cell = line.split('|').nth(1)?.trim();
            let (kind, rest) = cell.split_once(' ')?;
            let field = rest.split('`').nth(1)?.split(' ').next()?;
            Some((kind.to_string(), field.to_string()))
        })
        .collect()
}

#[test]
fn the_migration_guide_lists_exactly_the_refused_fields() {
    let rows = stalled_rows_of_the_migration_guide();
    let mut expected: Vec<(String, String)> = KUSTOMIZATION_REFUSED
        .iter()
        .map(|r| ("Kustomization".to_string(), r.path.to_string()))
        .chain(
            GITREPOSITORY_REFUSED
                .iter()
                .map(|r| ("GitRepository".to_string(), r.path.to_string())),
        )
        .chain(
            RECEIVER_REFUSED
                .iter()
                .map(|r| ("Receiver".to_string(), r.path.to_string())),
        )
        .collect();
    // Refused for some values only, by the source-controller's own check.
    expected.push(("GitRepository".to_string(), "spec.provider".to_string()));
    expected.push(("Receiver".to_string(), "spec.type".to_string()));
    expected.push(("Receiver".to_string(), "spec.events".to_string()));
    expected.push(("Receiver".to_string(), "spec.resources[].kind".to_string()));
    let mut found = rows.clone();
    found.sort();
    expected.sort();
    assert_eq!(found, expected, "section 3 of docs/migrating-from-flux.md");
}
