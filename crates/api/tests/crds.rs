//! The generated CRDs: checked-in files are fresh, the YAML reads back to the same objects, and
//! the schemas are structural and documented.

use std::path::PathBuf;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::core::cel::compile_schema;
use mooring_api::{crds, render_crds};
use serde_json::Value;

fn crds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../crds")
}

fn schema_of(crd: &CustomResourceDefinition) -> Value {
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref());
    serde_json::to_value(schema.expect("the CRD has a schema")).expect("schema to JSON")
}

#[test]
fn crds_are_fresh() {
    let chart_crds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../charts/mooring/crds");
    for dir in [crds_dir(), chart_crds] {
        for (file_name, yaml) in render_crds() {
            let path = dir.join(&file_name);
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                on_disk == yaml,
                "{} is stale: run `make crds` ({file_name} differs)",
                dir.display()
            );
        }
    }
}

#[test]
fn file_names_follow_group_and_plural() {
    let names: Vec<String> = render_crds().into_iter().map(|(name, _)| name).collect();
    assert_eq!(
        names,
        [
            "source.mooring.dev_gitrepositories.yaml",
            "kustomize.mooring.dev_kustomizations.yaml",
            "notification.mooring.dev_receivers.yaml"
        ]
    );
}

#[test]
fn yaml_reads_back_to_the_same_crds() {
    for ((file_name, yaml), crd) in render_crds().into_iter().zip(crds()) {
        let documents: Vec<CustomResourceDefinition> =
            serde_saphyr::from_multiple(&yaml).expect("valid YAML");
        assert_eq!(documents.len(), 1, "{file_name} holds one document");
        assert_eq!(documents[0], crd, "{file_name} does not read back");
    }
}

#[test]
fn every_kind_shares_category_and_status_subresource() {
    for crd in crds() {
        let names = &crd.spec.names;
        assert_eq!(
            names.categories.as_deref(),
            Some(&["mooring".to_owned()][..])
        );
        assert_eq!(crd.spec.scope, "Namespaced");
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1");
        assert!(version.served && version.storage);
        let subresources = version.subresources.as_ref().expect("subresources");
        assert!(
            subresources.status.is_some(),
            "{} has a status subresource",
            names.kind
        );
        let columns: Vec<&str> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        let expected: &[&str] = match names.kind.as_str() {
            "GitRepository" => &["URL", "Ready", "Status", "Revision", "Age"],
            // A Receiver has no revision: it fetches nothing itself.
            "Receiver" => &["Ready", "Status", "Age"],
            _ => &["Ready", "Status", "Revision", "Age"],
        };
        assert_eq!(columns, expected);
        assert_eq!(schema_of(&crd)["required"], serde_json::json!(["spec"]));
    }
}

/// Checks the parts of the structural-schema rules that schema generation could break, and that
/// every field is documented. Returns the offending JSON paths.
fn problems(schema: &Value, path: &str, out: &mut Vec<String>) {
    for keyword in [
        "$ref",
        "anyOf",
        "oneOf",
        "allOf",
        "not",
        "definitions",
        "$defs",
    ] {
        if schema.get(keyword).is_some() {
            out.push(format!("{path}: has {keyword}"));
        }
    }
    let free_form = schema.get("x-kubernetes-preserve-unknown-fields").is_some()
        || schema.get("x-kubernetes-int-or-string").is_some();
    if schema.get("type").is_none() && !free_form {
        out.push(format!("{path}: has no type"));
    }
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            let child = format!("{path}.{name}");
            let described = property.get("description").and_then(Value::as_str);
            if described.is_none_or(str::is_empty) {
                out.push(format!("{child}: has no description"));
            }
            if described.is_some_and(|d| d.replace("\n\n", "").contains('\n')) {
                out.push(format!(
                    "{child}: description has a line break inside a paragraph"
                ));
            }
            problems(property, &child, out);
        }
    }
    if let Some(items) = schema.get("items") {
        problems(items, &format!("{path}[]"), out);
    }
    if let Some(additional) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        problems(additional, &format!("{path}{{}}"), out);
    }
}

#[test]
fn schemas_are_structural_and_documented() {
    for crd in crds() {
        let mut found = Vec::new();
        problems(&schema_of(&crd), &crd.spec.names.kind, &mut found);
        assert!(found.is_empty(), "{found:#?}");
    }
}

#[test]
fn cel_rules_compile() {
    for crd in crds() {
        let compiled = compile_schema(&schema_of(&crd));
        let mut errors = Vec::new();
        collect_errors(&compiled, &mut errors);
        assert!(errors.is_empty(), "{}: {errors:?}", crd.spec.names.kind);
    }
}

fn collect_errors(schema: &kube::core::cel::CompiledSchema, out: &mut Vec<String>) {
    out.extend(schema.compilation_errors().iter().map(|e| e.to_string()));
    for child in schema.properties.values() {
        collect_errors(child, out);
    }
    if let Some(items) = &schema.items {
        collect_errors(items, out);
    }
}

#[test]
fn examples_parse_and_pass_the_cel_rules() {
    use kube::core::cel::Validator;
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for (file, crd) in ["gitrepository.yaml", "kustomization.yaml"]
        .into_iter()
        .zip(crds())
    {
        let text = std::fs::read_to_string(examples.join(file)).expect("example exists");
        let object: Value = serde_saphyr::from_str(&text).expect("valid YAML");
        match crd.spec.names.kind.as_str() {
            "GitRepository" => drop(
                serde_json::from_value::<mooring_api::GitRepository>(object.clone())
                    .expect("a GitRepository"),
            ),
            _ => drop(
                serde_json::from_value::<mooring_api::Kustomization>(object.clone())
                    .expect("a Kustomization"),
            ),
        }
        let result = Validator::new().validate(&schema_of(&crd), &object, None);
        assert!(result.is_ok(), "{file}: {result:?}");
    }
}
