//! The kustomization file of the build directory: found, or generated as Flux does, then edited
//! with the Kustomization's overrides.
//!
//! The spec's fields are merged into the user's own kustomization (not into a wrapper around
//! it), as Flux does, because the results differ: a wrapper's `images` would not match names an
//! inner `images` entry already rewrote, and a wrapper's components would run after the inner
//! `namePrefix`. The edited file is written as a new file in the working copy, never through a
//! hard link to the shared artifact.

use std::fs;
use std::path::{Path, PathBuf};

use mooring_api::kustomization::{Image, Patch};
use serde_json::{Map, Value, json};

use super::BuildError;
use crate::manifests::{parse_document, split_documents};

/// File names kustomize recognises, in its order of precedence.
pub const KUSTOMIZATION_FILES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// `apiVersion` and `kind` of a generated kustomization.
const KUSTOMIZATION_API_VERSION: &str = "kustomize.config.k8s.io/v1beta1";
const KUSTOMIZATION_KIND: &str = "Kustomization";

/// The Kustomization fields that change the build.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Overrides {
    /// `spec.targetNamespace` → `namespace`.
    pub target_namespace: Option<String>,
    /// `spec.namePrefix` → `namePrefix`.
    pub name_prefix: Option<String>,
    /// `spec.nameSuffix` → `nameSuffix`.
    pub name_suffix: Option<String>,
    /// `spec.patches`, appended to `patches`.
    pub patches: Vec<Patch>,
    /// `spec.images`, merged by name into `images`.
    pub images: Vec<Image>,
    /// `spec.components`, appended to `components`.
    pub components: Vec<String>,
    /// `spec.buildMetadata` (`originAnnotations`, `transformerAnnotations`), added to
    /// `buildMetadata`.
    pub build_metadata: Vec<String>,
}

impl Overrides {
    /// Whether there is nothing to merge.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The kustomization file in `dir`, if any.
pub fn find(dir: &Path) -> Option<PathBuf> {
    KUSTOMIZATION_FILES
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
}

/// What a `.yaml`/`.yml` file holds, for the generated kustomization.
#[derive(Debug, PartialEq, Eq)]
pub enum YamlFile {
    /// Kubernetes objects (each document has `apiVersion` and `kind`): listed.
    Objects,
    /// Nothing, or YAML that is not Kubernetes objects (CI files, Helm values...): skipped.
    Other,
}

/// Classifies a YAML file's text; `Err` is a message for a file that is not valid YAML or
/// mixes objects with other documents.
pub fn classify(text: &str) -> Result<YamlFile, String> {
    let mut objects = 0;
    let mut others = Vec::new();
    let documents = split_documents(text);
    for (index, doc) in documents.iter().enumerate() {
        let value = parse_document(index, doc).map_err(|e| e.to_string())?;
        let is_object = ["apiVersion", "kind"].iter().all(|f| {
            value
                .get(*f)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        });
        if is_object {
            objects += 1;
        } else {
            others.push(index);
        }
    }
    match (objects, others.first()) {
        (0, _) => Ok(YamlFile::Other),
        (_, None) => Ok(YamlFile::Objects),
        (_, Some(index)) => Err(format!(
            "document {index} is not a Kubernetes object (no apiVersion or kind) while others are"
        )),
    }
}

/// The resources of a generated kustomization for `dir`, as Flux lists them: walking the tree in
/// lexical order, a sub-directory with its own kustomization file is listed as a directory and
/// not descended; every `.yaml`/`.yml` file holding Kubernetes objects is listed; YAML that is
/// not Kubernetes objects is skipped; a file that is not valid YAML is an error naming it.
/// Symbolic links to directories are not followed. Paths are `./`-relative to `dir`;
/// `display_root` is what error messages show paths relative to.
pub fn generate_resources(dir: &Path, display_root: &Path) -> Result<Vec<String>, BuildError> {
    let mut resources = Vec::new();
    walk(dir, dir, display_root, &mut resources)?;
    Ok(resources)
}

fn walk(
    base: &Path,
    dir: &Path,
    display_root: &Path,
    out: &mut Vec<String>,
) -> Result<(), BuildError> {
    let io = |source| BuildError::WorkingCopy { source };
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let file_type = entry.file_type().map_err(io)?;
        let relative = || {
            let rel = path.strip_prefix(base).unwrap_or(&path);
            format!("./{}", rel.to_string_lossy())
        };
        if file_type.is_dir() {
            if find(&path).is_some() {
                out.push(relative());
            } else {
                walk(base, &path, display_root, out)?;
            }
            continue;
        }
        let is_yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        if !is_yaml || path.is_dir() {
            continue;
        }
        let display = display_path(&path, display_root);
        let text = fs::read_to_string(&path).map_err(|e| BuildError::InvalidYaml {
            file: display.clone(),
            message: e.to_string(),
        })?;
        match classify(&text) {
            Ok(YamlFile::Objects) => out.push(relative()),
            Ok(YamlFile::Other) => {}
            Err(message) => {
                return Err(BuildError::InvalidYaml {
                    file: display,
                    message,
                });
            }
        }
    }
    Ok(())
}

/// `path` relative to `root`, for messages.
pub fn display_path(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// A generated kustomization listing `resources`.
pub fn generated(resources: Vec<String>) -> Map<String, Value> {
    let mut doc = Map::new();
    doc.insert("apiVersion".into(), json!(KUSTOMIZATION_API_VERSION));
    doc.insert("kind".into(), json!(KUSTOMIZATION_KIND));
    doc.insert("resources".into(), json!(resources));
    doc
}

/// Parses a kustomization file's text; an empty file gives an empty kustomization.
pub fn parse(text: &str, file: &str) -> Result<Map<String, Value>, BuildError> {
    let invalid = |message: String| BuildError::InvalidKustomization {
        file: file.to_owned(),
        message,
    };
    let documents = split_documents(text);
    match documents.as_slice() {
        [] => Ok(Map::new()),
        [doc] => match parse_document(0, doc).map_err(|e| invalid(e.to_string()))? {
            Value::Object(map) => Ok(map),
            Value::Null => Ok(Map::new()),
            _ => Err(invalid("not a mapping".into())),
        },
        _ => Err(invalid("more than one YAML document".into())),
    }
}

/// Merges the overrides into a kustomization, as Flux does: `namespace`, `namePrefix` and
/// `nameSuffix` are replaced; patches and components are appended; an image whose name is
/// already listed is merged (a new name alone keeps the listed tag or digest; a new tag or
/// digest replaces both; a digest wins over a tag), others are appended.
pub fn apply_overrides(
    doc: &mut Map<String, Value>,
    overrides: &Overrides,
    file: &str,
) -> Result<(), BuildError> {
    if doc.is_empty() {
        doc.insert("apiVersion".into(), json!(KUSTOMIZATION_API_VERSION));
        doc.insert("kind".into(), json!(KUSTOMIZATION_KIND));
    }
    if let Some(ns) = &overrides.target_namespace {
        doc.insert("namespace".into(), json!(ns));
    }
    if let Some(prefix) = &overrides.name_prefix {
        doc.insert("namePrefix".into(), json!(prefix));
    }
    if let Some(suffix) = &overrides.name_suffix {
        doc.insert("nameSuffix".into(), json!(suffix));
    }
    if !overrides.patches.is_empty() {
        let values = overrides
            .patches
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BuildError::InvalidKustomization {
                file: file.to_owned(),
                message: format!("patch: {e}"),
            })?;
        list(doc, "patches", file)?.extend(values);
    }
    if !overrides.components.is_empty() {
        list(doc, "components", file)?.extend(overrides.components.iter().map(|c| json!(c)));
    }
    if !overrides.build_metadata.is_empty() {
        let listed = list(doc, "buildMetadata", file)?;
        for option in &overrides.build_metadata {
            if !listed.iter().any(|v| v.as_str() == Some(option.as_str())) {
                listed.push(json!(option));
            }
        }
    }
    if !overrides.images.is_empty() {
        let images = list(doc, "images", file)?;
        for image in &overrides.images {
            merge_image(images, image);
        }
    }
    Ok(())
}

/// The list in `field` of the kustomization, created when missing.
fn list<'d>(
    doc: &'d mut Map<String, Value>,
    field: &str,
    file: &str,
) -> Result<&'d mut Vec<Value>, BuildError> {
    let entry = doc.entry(field).or_insert_with(|| json!([]));
    if entry.is_null() {
        *entry = json!([]);
    }
    entry
        .as_array_mut()
        .ok_or_else(|| BuildError::InvalidKustomization {
            file: file.to_owned(),
            message: format!("`{field}` is not a list"),
        })
}

fn merge_image(images: &mut Vec<Value>, image: &Image) {
    let existing = images
        .iter_mut()
        .filter_map(Value::as_object_mut)
        .find(|i| i.get("name").and_then(Value::as_str) == Some(image.name.as_str()));
    let entry = match existing {
        Some(entry) => entry,
        None => {
            images.push(json!({ "name": image.name }));
            match images.last_mut().and_then(Value::as_object_mut) {
                Some(entry) => entry,
                None => return,
            }
        }
    };
    if let Some(name) = &image.new_name {
        entry.insert("newName".into(), json!(name));
    }
    if image.new_tag.is_some() || image.digest.is_some() {
        entry.remove("newTag");
        entry.remove("digest");
        match (&image.digest, &image.new_tag) {
            (Some(digest), _) => entry.insert("digest".into(), json!(digest)),
            (None, Some(tag)) => entry.insert("newTag".into(), json!(tag)),
            (None, None) => None,
        };
    }
}

/// Serializes a kustomization. JSON is valid YAML, and writing it loses nothing but comments.
pub fn render(doc: &Map<String, Value>) -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string_pretty(doc)?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
#[path = "kustomization_tests.rs"]
mod tests;
