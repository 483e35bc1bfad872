//! How a Kustomization changes the build: patches, images, metadata, variable substitution and
//! fields ignored when correcting drift.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{is_false, without_description};

/// Labels and annotations set on every applied object.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct CommonMetadata {
    /// Labels to set, overriding labels with the same key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,

    /// Annotations to set, overriding annotations with the same key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A kustomize patch and the objects it applies to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct Patch {
    /// The patch, as YAML text: either a strategic merge patch (a partial object) or a JSON 6902
    /// patch (a list of operations).
    pub patch: String,

    /// The objects to patch. When omitted, a strategic merge patch applies to the object it
    /// names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Selector>,
}

/// Selects objects of the build, with kustomize's matching rules (names and namespaces are
/// regular expressions).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    /// API group of the objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,

    /// API version of the objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,

    /// Kind of the objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,

    /// Name of the objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,

    /// Namespace of the objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,

    /// Label selector the objects' labels must match, for example `app=web,tier!=db`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,

    /// Selector the objects' annotations must match, in label-selector syntax.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation_selector: Option<String>,
}

/// A container image override.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    /// Image name to match in the manifests, without tag or digest.
    pub name: String,

    /// Name to replace it with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_name: Option<String>,

    /// Tag to use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_tag: Option<String>,

    /// Digest to use; it takes precedence over `newTag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// Kustomize build metadata recorded as annotations on the objects.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = without_description)]
pub enum BuildMetadata {
    /// The file each object came from.
    OriginAnnotations,
    /// The transformers that changed each object.
    TransformerAnnotations,
}

/// Variable substitution applied to the built manifests: `${var}`, `${var:=default}` and other
/// bash-like forms are replaced; `$${var}` gives a literal `${var}`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostBuild {
    /// Variables and their values. They take precedence over `substituteFrom`. Names must match
    /// `^[_[:alpha:]][_[:alpha:][:digit:]]*$`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substitute: Option<BTreeMap<String, String>>,

    /// ConfigMaps and Secrets, in the same namespace, whose data keys and values are used as
    /// variables. Later entries override earlier ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub substitute_from: Vec<SubstituteReference>,

    /// When substitution runs: `WithVariables` (default; only when at least one variable is
    /// defined) or `Always` (even without variables, so that `${var:=default}` takes effect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substitute_strategy: Option<SubstituteStrategy>,
}

/// A ConfigMap or Secret holding substitution variables.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct SubstituteReference {
    /// Kind of the object: `ConfigMap` or `Secret`.
    pub kind: SubstituteKind,

    /// Name of the object, in the same namespace as the Kustomization.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// Tolerate a missing object, as if it defined no variables. A missing object is an error
    /// otherwise.
    #[serde(default, skip_serializing_if = "is_false")]
    #[schemars(extend("default" = false))]
    pub optional: bool,
}

/// Kind of an object holding substitution variables.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[schemars(transform = without_description)]
pub enum SubstituteKind {
    /// A ConfigMap.
    ConfigMap,
    /// A Secret.
    Secret,
}

/// When variable substitution runs.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = without_description)]
pub enum SubstituteStrategy {
    /// Only when at least one variable is defined.
    #[default]
    WithVariables,
    /// Always, even without variables.
    Always,
}

/// Fields to leave out of drift correction, for the objects a selector matches.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct IgnoreRule {
    /// JSON pointers (RFC 6901) of the fields to ignore, for example `/spec/replicas`.
    pub paths: Vec<String>,

    /// The objects the rule applies to. When omitted, it applies to every object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Selector>,
}
