//! Post-build variable substitution (`spec.postBuild`), with Flux's semantics.
//!
//! Substitution runs on the YAML text of each built object, before it is parsed, exactly as
//! Flux does: `replicas: ${REPLICAS:=1}` becomes the integer `1`, not the string `"1"`. An
//! object labelled or annotated `kustomize.mooring.dev/substitute: disabled` is left untouched.
//! Variable names must match `^[_[:alpha:]][_[:alpha:][:digit:]]*$` (ASCII); newlines are
//! removed from values so that a value cannot add lines (and fields) to an object. The
//! expression syntax is in [`expand`].

mod expand;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use mooring_api::constants::{DISABLED_VALUE, SUBSTITUTE_ANNOTATION};
use mooring_api::kustomization::{PostBuild, SubstituteKind, SubstituteStrategy};
use serde_json::Value;

pub use expand::{ExpandError, expand};

use crate::manifests::{identity, parse_document, split_documents};

/// Why substitution failed.
#[derive(Debug, thiserror::Error)]
pub enum SubstituteError {
    /// A variable name is not a valid identifier.
    #[error("variable name {0:?} is invalid: it must match ^[_[:alpha:]][_[:alpha:][:digit:]]*$")]
    InvalidVariableName(String),
    /// Expanding an object failed (missing variable in strict mode, bad syntax).
    #[error("substitution in {object} failed: {source}")]
    Expand {
        /// `Kind/namespace/name` of the object, or its document index.
        object: String,
        /// What went wrong.
        #[source]
        source: ExpandError,
    },
    /// A built document could not be read to check whether substitution is disabled.
    #[error("substitution: {0}")]
    ReadObject(#[source] crate::manifests::ManifestError),
    /// A ConfigMap or Secret listed in `substituteFrom` does not exist and is not optional.
    #[error("substituteFrom: {kind}/{name} not found")]
    SourceNotFound {
        /// `ConfigMap` or `Secret`.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// Reading a ConfigMap or Secret listed in `substituteFrom` failed.
    #[error("substituteFrom: reading {kind}/{name} failed: {source}")]
    ReadSource {
        /// `ConfigMap` or `Secret`.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The API error (it carries no Secret data).
        #[source]
        source: kube::Error,
    },
}

impl SubstituteError {
    /// A stable short label for metrics and event reasons.
    pub fn label(&self) -> &'static str {
        match self {
            Self::InvalidVariableName(_) => "InvalidVariableName",
            Self::Expand { .. } => "SubstituteVariables",
            Self::ReadObject(_) => "ReadObject",
            Self::SourceNotFound { .. } => "SubstituteSourceNotFound",
            Self::ReadSource { .. } => "ReadSubstituteSource",
        }
    }
}

/// Whether `name` is a valid variable name (`^[_[:alpha:]][_[:alpha:][:digit:]]*$`).
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Whether substitution runs: never without `postBuild`; with the `WithVariables` strategy
/// (the default) only when at least one variable is defined; always with `Always`.
pub fn should_substitute(post_build: Option<&PostBuild>, vars: &BTreeMap<String, String>) -> bool {
    match post_build {
        None => false,
        Some(pb) => match pb.substitute_strategy.unwrap_or_default() {
            SubstituteStrategy::Always => true,
            SubstituteStrategy::WithVariables => !vars.is_empty(),
        },
    }
}

/// Whether an object has substitution turned off, read as the other per-object settings are
/// ([`crate::apply::plan::knob`]): the annotation first, then the label, compared
/// case-insensitively.
fn is_disabled(object: &Value) -> bool {
    let setting = |field: &str| {
        object
            .get("metadata")
            .and_then(|m| m.get(field))
            .and_then(|m| m.get(SUBSTITUTE_ANNOTATION))
            .and_then(Value::as_str)
    };
    setting("annotations")
        .or_else(|| setting("labels"))
        .is_some_and(|v| v.eq_ignore_ascii_case(DISABLED_VALUE))
}

/// Substitutes `vars` in every document of kustomize's multi-document output and returns the
/// result in the same form. In `strict` mode a variable that is not set and has no default is
/// an error naming the variable and the object.
pub fn substitute(
    yaml: &str,
    vars: &BTreeMap<String, String>,
    strict: bool,
) -> Result<String, SubstituteError> {
    if let Some(bad) = vars.keys().find(|k| !is_valid_name(k)) {
        return Err(SubstituteError::InvalidVariableName(bad.clone()));
    }
    let clean: BTreeMap<&str, String> = vars
        .iter()
        .map(|(k, v)| (k.as_str(), v.replace(['\n', '\r'], "")))
        .collect();
    let lookup = |name: &str| clean.get(name).map(String::as_str);
    let mut out = String::with_capacity(yaml.len());
    for (index, document) in split_documents(yaml).into_iter().enumerate() {
        let parsed = parse_document(index, document).map_err(SubstituteError::ReadObject)?;
        let text = if is_disabled(&parsed) {
            document.to_owned()
        } else {
            expand(document, &lookup, strict).map_err(|source| SubstituteError::Expand {
                object: identity(&parsed).unwrap_or_else(|| format!("document {index}")),
                source,
            })?
        };
        if !out.is_empty() {
            out.push_str("---\n");
        }
        out.push_str(&text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

/// Gathers the variables of `postBuild`: the data of each `substituteFrom` ConfigMap and
/// Secret of `namespace` in order (later entries override earlier ones), then the inline
/// `substitute` map, which overrides them all. A missing object is an error unless it is
/// `optional`. Reads the API with `client` (one GET per entry); Secret values are never
/// logged or put into errors.
pub async fn gather_vars(
    client: &kube::Client,
    namespace: &str,
    post_build: &PostBuild,
) -> Result<BTreeMap<String, String>, SubstituteError> {
    let mut vars = BTreeMap::new();
    for reference in &post_build.substitute_from {
        let name = &reference.name;
        let data: Option<BTreeMap<String, String>> = match reference.kind {
            SubstituteKind::ConfigMap => {
                let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
                let found =
                    api.get_opt(name)
                        .await
                        .map_err(|source| SubstituteError::ReadSource {
                            kind: "ConfigMap",
                            name: name.clone(),
                            source,
                        })?;
                found.map(|cm| cm.data.unwrap_or_default())
            }
            SubstituteKind::Secret => {
                let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
                let found =
                    api.get_opt(name)
                        .await
                        .map_err(|source| SubstituteError::ReadSource {
                            kind: "Secret",
                            name: name.clone(),
                            source,
                        })?;
                found.map(|secret| {
                    secret
                        .data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                        .collect()
                })
            }
        };
        match data {
            Some(data) => vars.extend(data),
            None if reference.optional => {}
            None => {
                return Err(SubstituteError::SourceNotFound {
                    kind: kind_name(reference.kind),
                    name: name.clone(),
                });
            }
        }
    }
    if let Some(inline) = &post_build.substitute {
        vars.extend(inline.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    Ok(vars)
}

fn kind_name(kind: SubstituteKind) -> &'static str {
    match kind {
        SubstituteKind::ConfigMap => "ConfigMap",
        SubstituteKind::Secret => "Secret",
    }
}

/// Values shorter than this are not scrubbed from messages: replacing a two-letter value would
/// mangle every word holding it, and tell which letters it has.
const SHORTEST_SCRUBBED: usize = 4;

/// `message` with every variable value (of [`SHORTEST_SCRUBBED`] characters or more) replaced by
/// `***`: for errors about the substituted text, since a value may come from a Secret.
pub fn scrub_values(message: &str, vars: &BTreeMap<String, String>) -> String {
    scrub(message, vars.values().map(String::as_str))
}

/// `message` with each of `values` (of [`SHORTEST_SCRUBBED`] characters or more; line breaks
/// are left out of a value, as messages fold them) replaced by `***`.
pub fn scrub<'a>(message: &str, values: impl Iterator<Item = &'a str>) -> String {
    let mut values: Vec<String> = values
        .map(|v| v.replace(['\n', '\r'], ""))
        .filter(|v| v.chars().count() >= SHORTEST_SCRUBBED)
        .collect();
    // Longest first, so that a value holding another is replaced whole.
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values.iter().fold(message.to_owned(), |text, value| {
        text.replace(value.as_str(), "***")
    })
}

#[cfg(test)]
#[path = "substitute_tests.rs"]
mod tests;
