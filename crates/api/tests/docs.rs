//! The generated API reference: the checked-in docs/api.md is fresh, names every schema field,
//! and its tables stay tables.

use std::path::PathBuf;

use mooring_api::crds;
use mooring_api::docs::render_markdown;
use serde_json::Value;

fn api_md() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/api.md")
}

#[test]
fn api_reference_is_fresh() {
    let on_disk = std::fs::read_to_string(api_md()).unwrap_or_default();
    assert!(
        on_disk == render_markdown(),
        "docs/api.md is stale: run `make docs`"
    );
}

/// Every field path of a schema, as the reference writes it (`spec.include[].toPath`).
fn field_paths(schema: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            let child_path = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            out.push(child_path.clone());
            field_paths(child, &child_path, out);
        }
    }
    if let Some(items) = schema.get("items") {
        field_paths(items, &format!("{path}[]"), out);
    }
}

#[test]
fn every_spec_and_status_field_has_a_row() {
    let doc = render_markdown();
    for crd in crds() {
        let schema = crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("the CRD has a schema");
        let schema = serde_json::to_value(schema).expect("schema to JSON");
        let mut paths = Vec::new();
        field_paths(&schema, "", &mut paths);
        let documented: Vec<&String> = paths
            .iter()
            .filter(|p| p.starts_with("spec") || p.starts_with("status"))
            .collect();
        // A guard against walking nothing: every kind but the small Receiver has dozens.
        let at_least = if crd.spec.names.kind == "Receiver" {
            15
        } else {
            40
        };
        assert!(documented.len() > at_least, "{}", crd.spec.names.kind);
        for path in documented {
            assert!(
                doc.contains(&format!("\n| `{path}` |")),
                "{}: no row for {path}",
                crd.spec.names.kind
            );
        }
    }
}

#[test]
fn every_table_row_has_six_cells() {
    for line in render_markdown().lines().filter(|l| l.starts_with("| `")) {
        // Unescaped pipes delimit cells: six cells need seven.
        let delimiters = line
            .char_indices()
            .filter(|&(i, c)| c == '|' && !line[..i].ends_with('\\'))
            .count();
        assert_eq!(delimiters, 7, "{line}");
    }
}

#[test]
fn rules_defaults_and_enums_are_shown() {
    let doc = render_markdown();
    for expected in [
        // A default set by the schema.
        "| `spec.timeout` | string |  | `60s` |",
        // An enum.
        "one of `MirrorPrune`, `Delete`, `WaitForTermination`, `Orphan`",
        // A CEL rule with its message, pipes escaped for the table.
        "spec.sourceRef.apiVersion must be source.mooring.dev/v1 when set (CEL: `!has(self.apiVersion) \\|\\| ",
        // Length limits.
        "| `spec.targetNamespace` | string |  |  | 1 to 63 characters |",
        // A required field.
        "| `spec.prune` | boolean | yes |",
    ] {
        assert!(doc.contains(expected), "missing: {expected}");
    }
}
