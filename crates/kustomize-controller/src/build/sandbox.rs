//! Checks every kustomization the build can reach before kustomize runs: remote bases and
//! remote files are refused (unless allowed), and every local path must stay inside the
//! artifact.
//!
//! kustomize's own load restrictor (`LoadRestrictionsRootOnly`) confines the *files* a
//! kustomization loads to its directory, but lets `resources` and `components` name
//! kustomization directories anywhere on disk (another tenant's extracted artifact, say) and
//! fetches `https://` files and `git` repositories. This scan closes those holes and gives
//! errors that name the file and the entry; kustomize also runs without `git` on its `PATH`.
//!
//! The same scan counts the documents of the resource files it meets: a lower bound of the
//! render's size, known before kustomize (whose run time grows with the square of the number of
//! objects) is started.

use std::collections::{BTreeSet, VecDeque};
use std::fs;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::BuildError;
use super::kustomization::{display_path, find, parse};
use crate::decrypt::Format;

/// Fields whose entries may be kustomization directories, followed by the scan.
const DIRECTORY_FIELDS: [&str; 3] = ["resources", "components", "bases"];
/// Fields whose string entries are files (or, with a newline, inline content).
const FILE_FIELDS: [&str; 6] = [
    "crds",
    "configurations",
    "generators",
    "transformers",
    "validators",
    "patchesStrategicMerge",
];
/// Fields holding a list of objects with a `path`.
const PATH_OBJECT_FIELDS: [&str; 3] = ["patches", "patchesJson6902", "replacements"];
/// Generator fields holding file lists.
const GENERATOR_FIELDS: [&str; 2] = ["configMapGenerator", "secretGenerator"];
/// The fields of a plain kustomization (see [`Scan::plain`]): none of them renames an object,
/// declares variables, or acts on the build above it (`namespace` moves objects, which the
/// run of several checks for: `batch::apart`).
const PLAIN_FIELDS: [&str; 12] = [
    "apiVersion",
    "kind",
    "metadata",
    "namespace",
    "resources",
    "bases",
    "components",
    "labels",
    "commonLabels",
    "commonAnnotations",
    "images",
    "replicas",
];
/// kustomize's own annotations (origin, local-config, build bookkeeping): a resource file that
/// mentions them is not plain.
const KUSTOMIZE_ANNOTATIONS: &str = "config.kubernetes.io/";

/// Whether a kustomization entry that does not exist locally names a remote location:
/// a URL, a `git@host:` or `git::`/`gh:` reference, a `host.tld/org/repo` path, or a path with
/// kustomize's `//` subdirectory separator or a `?ref=` query.
pub fn is_remote(entry: &str) -> bool {
    if entry.contains("://")
        || entry.starts_with("git@")
        || entry.starts_with("git::")
        || entry.starts_with("gh:")
        || entry.contains("?ref=")
        || entry.contains("?version=")
    {
        return true;
    }
    if entry.starts_with('/') || entry.starts_with('.') {
        return false;
    }
    if entry.contains("//") {
        return true;
    }
    let mut segments = entry.split('/');
    let host = segments.next().unwrap_or_default();
    let hostlike = host.contains('.')
        && !host.starts_with('.')
        && !host.ends_with(".yaml")
        && !host.ends_with(".yml")
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    hostlike && segments.next().is_some_and(|s| !s.is_empty())
}

/// One path entry of a kustomization.
struct Reference<'a> {
    field: &'static str,
    entry: &'a str,
    /// For the files a secretGenerator reads: the SOPS format they would be encrypted in.
    secret_format: Option<Format>,
}

fn strings(value: Option<&Value>) -> Vec<&str> {
    value
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn references(doc: &serde_json::Map<String, Value>) -> Vec<Reference<'_>> {
    let mut refs = Vec::new();
    for field in DIRECTORY_FIELDS.iter().chain(FILE_FIELDS.iter()) {
        for entry in strings(doc.get(*field)) {
            // Inline configuration or patches span several lines and name no file.
            if !entry.contains('\n') {
                refs.push(Reference {
                    field,
                    entry,
                    secret_format: None,
                });
            }
        }
    }
    for field in PATH_OBJECT_FIELDS {
        for item in doc
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(entry) = item.get("path").and_then(Value::as_str) {
                refs.push(Reference {
                    field,
                    entry,
                    secret_format: None,
                });
            }
        }
    }
    for field in GENERATOR_FIELDS {
        for item in doc
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let secret = field == "secretGenerator";
            // A file is decrypted in the format its key names (as Flux does); an env file in
            // its own, dotenv unless it says otherwise.
            let files = strings(item.get("files")).into_iter().map(|f| {
                let (key, path) = f.split_once('=').unwrap_or((f, f));
                (path, Format::for_name(key))
            });
            let envs = strings(item.get("envs"))
                .into_iter()
                .chain(item.get("env").and_then(Value::as_str))
                .map(|path| match Format::for_name(path) {
                    Format::Binary => (path, Format::Dotenv),
                    format => (path, format),
                });
            for (entry, format) in files.chain(envs) {
                refs.push(Reference {
                    field,
                    entry,
                    secret_format: secret.then_some(format),
                });
            }
        }
    }
    if let Some(entry) = doc
        .get("openapi")
        .and_then(|o| o.get("path"))
        .and_then(Value::as_str)
    {
        refs.push(Reference {
            field: "openapi",
            entry,
            secret_format: None,
        });
    }
    refs
}

/// Resolves `entry` against `dir` without touching the disk; `None` when it climbs above `root`.
fn lexical_join(root: &Path, dir: &Path, entry: &str) -> Option<PathBuf> {
    let mut out = dir.strip_prefix(root).ok()?.to_path_buf();
    for component in Path::new(entry).components() {
        match component {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(root.join(out))
}

/// What the scan counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// YAML documents in the resource files the kustomizations list (each at least one object).
    pub documents: usize,
    /// The resource file with the most documents (relative to the artifact), and their number.
    pub largest: Option<(String, usize)>,
    /// The files that may be SOPS-encrypted: resource files, and the files secretGenerators
    /// read, each with the format it would be encrypted in. Paths inside the working copy.
    pub encryptable: Vec<(PathBuf, Format)>,
    /// Every path inside `root` the build can reach: each kustomization directory scanned
    /// (the start as given and as resolved) and each local entry, as written and as resolved
    /// through symbolic links. kustomize, confined to each kustomization's directory, reads
    /// nothing outside the directories and files named here.
    pub reached: Vec<PathBuf>,
    /// Every kustomization reached has only [`PLAIN_FIELDS`], and no resource file mentions
    /// kustomize's own annotations. The objects of such a build keep their names as written,
    /// so kustomize's last steps (fixing references to renamed objects, variables, hash
    /// suffixes) change nothing in them but namespaces in a few references, which
    /// `batch::apart` checks: the build gives the same output inside a larger one
    /// ([`super::batch`]) as on its own.
    pub plain: bool,
}

impl Scan {
    fn count(&mut self, root: &Path, file: &Path) {
        // A file that is not UTF-8 is left to kustomize, which names it.
        let Ok(text) = fs::read_to_string(file) else {
            self.plain = false;
            return;
        };
        if text.contains(KUSTOMIZE_ANNOTATIONS) {
            self.plain = false;
        }
        let documents = crate::manifests::split_documents(&text).len();
        self.documents += documents;
        if self.largest.as_ref().is_none_or(|(_, n)| *n < documents) {
            self.largest = Some((display_path(file, root), documents));
        }
    }
}

/// Scans the kustomizations reachable from `start` (a directory inside `root`).
pub fn check(root: &Path, start: &Path, allow_remote: bool) -> Result<Scan, BuildError> {
    let mut scan = Scan {
        plain: true,
        ..Scan::default()
    };
    let canonical_root =
        fs::canonicalize(root).map_err(|source| BuildError::WorkingCopy { source })?;
    let mut queue = VecDeque::from([start.to_path_buf()]);
    let mut seen = BTreeSet::new();
    if let Ok(resolved) = fs::canonicalize(start)
        && let Ok(inside) = resolved.strip_prefix(&canonical_root)
    {
        scan.reached.push(root.join(inside));
    }
    while let Some(dir) = queue.pop_front() {
        if !seen.insert(dir.clone()) {
            continue;
        }
        scan.reached.push(dir.clone());
        let Some(file) = find(&dir) else {
            // kustomize refuses the directory; it does so on its own build.
            scan.plain = false;
            continue;
        };
        let display = display_path(&file, root);
        let text = fs::read_to_string(&file).map_err(|e| BuildError::InvalidKustomization {
            file: display.clone(),
            message: e.to_string(),
        })?;
        let doc = parse(&text, &display)?;
        if doc.keys().any(|key| !PLAIN_FIELDS.contains(&key.as_str())) {
            scan.plain = false;
        }
        for Reference {
            field,
            entry,
            secret_format,
        } in references(&doc)
        {
            let error = |problem: &'static str| BuildError::Sandbox {
                file: display.clone(),
                field,
                entry: entry.to_owned(),
                problem,
            };
            let local = lexical_join(root, &dir, entry);
            let exists = local.as_ref().is_some_and(|p| p.exists());
            if !exists && is_remote(entry) {
                scan.plain = false;
                if allow_remote {
                    continue;
                }
                return Err(error("remote bases are not allowed"));
            }
            let Some(local) = local else {
                return Err(error("the path leaves the artifact"));
            };
            if !exists {
                // kustomize reports the missing file with its own message.
                scan.plain = false;
                continue;
            }
            let resolved =
                fs::canonicalize(&local).map_err(|source| BuildError::WorkingCopy { source })?;
            if !resolved.starts_with(&canonical_root) {
                return Err(error(
                    "the path leaves the artifact through a symbolic link",
                ));
            }
            if let Ok(inside) = resolved.strip_prefix(&canonical_root) {
                scan.reached.push(root.join(inside));
            }
            scan.reached.push(local.clone());
            if DIRECTORY_FIELDS.contains(&field) && resolved.is_dir() {
                let inside = resolved.strip_prefix(&canonical_root).unwrap_or(&resolved);
                queue.push_back(root.join(inside));
            } else if DIRECTORY_FIELDS.contains(&field) && resolved.is_file() {
                scan.count(root, &local);
                let format = match Format::for_name(entry) {
                    Format::Json => Format::Json,
                    _ => Format::Yaml,
                };
                scan.encryptable.push((local, format));
            } else if let Some(format) = secret_format
                && resolved.is_file()
            {
                scan.encryptable.push((local, format));
            }
        }
    }
    Ok(scan)
}

#[cfg(test)]
#[path = "sandbox_tests.rs"]
mod tests;
