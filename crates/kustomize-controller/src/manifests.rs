//! Turning kustomize's output into objects: document splitting, parsing, `commonMetadata` and
//! the ownership labels.
//!
//! The order Flux uses, and the one the reconciler should follow, is: build, substitute
//! variables (on each document's text), [`parse`], [`set_common_metadata`], [`stamp_owner`].
//! `commonMetadata` is applied here rather than through kustomize's `labels`/`commonAnnotations`
//! because kustomize would also write the annotations into pod templates (restarting workloads)
//! and would run before substitution, while Flux sets them on each object's own metadata only,
//! after substitution, overriding existing keys.

use std::collections::BTreeMap;

use kube::api::DynamicObject;
use mooring_api::constants::{KUSTOMIZE_NAME_LABEL, KUSTOMIZE_NAMESPACE_LABEL};
use mooring_api::kustomization::CommonMetadata;
use serde_json::Value;

/// Why the build output could not be turned into objects.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A document is not valid YAML.
    #[error("document {index}{}: invalid YAML: {message}", describe(.what))]
    ParseYaml {
        /// Index of the document in the output, from 0.
        index: usize,
        /// `Kind/name` when it could be read.
        what: Option<String>,
        /// The parser's message.
        message: String,
    },
    /// A document is not a Kubernetes object.
    #[error("document {index}{}: {problem}", describe(.what))]
    InvalidObject {
        /// Index of the document in the output, from 0.
        index: usize,
        /// `Kind/name` when known.
        what: Option<String>,
        /// What is missing or wrong.
        problem: String,
    },
}

impl ManifestError {
    /// A stable short label for metrics and event reasons.
    pub fn label(&self) -> &'static str {
        match self {
            Self::ParseYaml { .. } => "ParseManifests",
            Self::InvalidObject { .. } => "InvalidObject",
        }
    }
}

fn describe(what: &Option<String>) -> String {
    what.as_ref().map(|w| format!(" ({w})")).unwrap_or_default()
}

/// Splits multi-document YAML on `---` separator lines. Kustomize indents block scalars, so a
/// line starting with `---` is always a separator in its output. Empty documents are dropped.
pub fn split_documents(yaml: &str) -> Vec<&str> {
    let mut documents = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in yaml.split_inclusive('\n') {
        if is_separator(line) {
            documents.push(&yaml[start..offset]);
            start = offset + line.len();
        }
        offset += line.len();
    }
    documents.push(&yaml[start..]);
    documents.retain(|d| !is_blank(d));
    documents
}

fn is_separator(line: &str) -> bool {
    let line = line.trim_end();
    line == "---" || line.starts_with("--- ") || line.starts_with("---\t")
}

/// Whether a document holds only whitespace and comments.
pub fn is_blank(document: &str) -> bool {
    document.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#')
    })
}

/// Parses one YAML document into JSON.
///
/// The error gives the line, column and problem, never the document's text: the document may
/// hold a Secret (one in git, or a value substituted from one), and the message reaches the
/// status, Events and logs.
pub fn parse_document(index: usize, document: &str) -> Result<Value, ManifestError> {
    serde_saphyr::from_str::<Value>(document).map_err(|e| ManifestError::ParseYaml {
        index,
        what: sniff_identity(document),
        message: e.without_snippet().to_string(),
    })
}

/// `Kind/name` from a document that failed to parse, by looking at its top-level lines.
fn sniff_identity(document: &str) -> Option<String> {
    let mut kind = None;
    let mut name = None;
    let mut in_metadata = false;
    for line in document.lines() {
        if let Some(v) = line.strip_prefix("kind:") {
            kind = Some(v.trim().trim_matches('"').to_owned());
        }
        if !line.starts_with(' ') {
            in_metadata = line.starts_with("metadata:");
        } else if in_metadata && let Some(v) = line.trim_start().strip_prefix("name:") {
            name.get_or_insert_with(|| v.trim().trim_matches('"').to_owned());
        }
    }
    match (kind, name) {
        (Some(k), Some(n)) => Some(format!("{k}/{n}")),
        (Some(k), None) => Some(k),
        _ => None,
    }
}

/// `Kind/namespace/name` of a parsed document, as far as it is known.
pub fn identity(value: &Value) -> Option<String> {
    let kind = value.get("kind").and_then(Value::as_str);
    let metadata = value.get("metadata");
    let name = metadata.and_then(|m| m.get("name")).and_then(Value::as_str);
    let namespace = metadata
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str);
    match (kind, namespace, name) {
        (Some(k), Some(ns), Some(n)) => Some(format!("{k}/{ns}/{n}")),
        (Some(k), None, Some(n)) => Some(format!("{k}/{n}")),
        (Some(k), _, None) => Some(k.to_owned()),
        (None, _, Some(n)) => Some(n.to_owned()),
        (None, _, None) => None,
    }
}

/// Checks that a parsed document is an object with `apiVersion`, `kind` and `metadata.name`,
/// and converts it.
pub fn to_object(index: usize, value: Value) -> Result<DynamicObject, ManifestError> {
    let invalid = |problem: &str, value: &Value| ManifestError::InvalidObject {
        index,
        what: identity(value),
        problem: problem.to_owned(),
    };
    if !value.is_object() {
        return Err(invalid("not a mapping", &value));
    }
    for (pointer, field) in [
        ("/apiVersion", "apiVersion"),
        ("/kind", "kind"),
        ("/metadata/name", "metadata.name"),
    ] {
        let present = value
            .pointer(pointer)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty());
        if !present {
            return Err(invalid(&format!("missing {field}"), &value));
        }
    }
    let what = identity(&value);
    serde_json::from_value(value).map_err(|e| ManifestError::InvalidObject {
        index,
        what,
        problem: e.to_string(),
    })
}

/// Parses kustomize's multi-document output into objects; errors name the document index and
/// the object's kind and name when they are known.
pub fn parse(yaml: &str) -> Result<Vec<DynamicObject>, ManifestError> {
    split_documents(yaml)
        .into_iter()
        .enumerate()
        .map(|(index, doc)| to_object(index, parse_document(index, doc)?))
        .collect()
}

/// Sets `commonMetadata` labels and annotations on every object's own metadata, overriding
/// existing keys.
pub fn set_common_metadata(objects: &mut [DynamicObject], common: &CommonMetadata) {
    for object in objects {
        if let Some(labels) = &common.labels {
            merge(&mut object.metadata.labels, labels);
        }
        if let Some(annotations) = &common.annotations {
            merge(&mut object.metadata.annotations, annotations);
        }
    }
}

/// Stamps the ownership labels of the Kustomization `namespace/name` on every object; pruning
/// only deletes objects that carry them.
pub fn stamp_owner(objects: &mut [DynamicObject], name: &str, namespace: &str) {
    let owner = BTreeMap::from([
        (KUSTOMIZE_NAME_LABEL.to_owned(), name.to_owned()),
        (KUSTOMIZE_NAMESPACE_LABEL.to_owned(), namespace.to_owned()),
    ]);
    for object in objects {
        merge(&mut object.metadata.labels, &owner);
    }
}

fn merge(target: &mut Option<BTreeMap<String, String>>, entries: &BTreeMap<String, String>) {
    if entries.is_empty() {
        return;
    }
    let map = target.get_or_insert_with(BTreeMap::new);
    for (k, v) in entries {
        map.insert(k.clone(), v.clone());
    }
}

#[cfg(test)]
#[path = "manifests_tests.rs"]
mod tests;
