//! `kustomize build` of a Kustomization's path inside an extracted artifact.
//!
//! Steps: resolve `spec.path` inside the artifact; mirror the shared artifact into a private
//! working copy (hard links); find the kustomization file or generate one as Flux does; merge
//! the spec's `targetNamespace`, `namePrefix`, `nameSuffix`, `patches`, `images` and
//! `components` into it (written as a new file); check every reachable kustomization for
//! remote bases and paths leaving the artifact; run the pinned kustomize, sandboxed, with a
//! timeout. `commonMetadata` is not a kustomize field: it is applied to the parsed objects after
//! substitution (see [`crate::manifests`]), which is when Flux applies it.

mod batch;
pub mod cache;
mod kustomization;
mod run;
mod sandbox;
mod workcopy;

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mooring_api::KustomizationSpec;
use mooring_api::kustomization::{Image, Patch};

use crate::decrypt::{self, DecryptError, Keys};

pub use batch::{Batcher, LINGER};
pub use kustomization::{KUSTOMIZATION_FILES, Overrides, YamlFile, classify};
pub use sandbox::is_remote;

/// Default `kustomize build` timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Default largest number of objects in one render. Every object is an entry of
/// `status.inventory` (about 100 bytes), which must fit in one etcd object (1.5 MiB) with the
/// rest of the Kustomization; and kustomize's run time grows with the square of the number of
/// objects (5000 ConfigMaps took a minute of CPU).
pub const DEFAULT_MAX_OBJECTS: usize = 10_000;

/// Everything a build needs.
#[derive(Debug, Clone)]
pub struct BuildInput {
    /// The extracted artifact (shared; never modified).
    pub artifact_dir: PathBuf,
    /// `spec.path`: a directory relative to the artifact root; empty means the root.
    pub path: String,
    /// The kustomize binary.
    pub kustomize_bin: PathBuf,
    /// `spec.targetNamespace`.
    pub target_namespace: Option<String>,
    /// `spec.namePrefix`.
    pub name_prefix: Option<String>,
    /// `spec.nameSuffix`.
    pub name_suffix: Option<String>,
    /// `spec.patches`.
    pub patches: Vec<Patch>,
    /// `spec.images`.
    pub images: Vec<Image>,
    /// `spec.components`.
    pub components: Vec<String>,
    /// `spec.ignoreMissingComponents`: leave out the entries of `components` that do not
    /// exist.
    pub ignore_missing_components: bool,
    /// `spec.buildMetadata`, as kustomize names the options.
    pub build_metadata: Vec<String>,
    /// Let kustomize fetch remote bases and files (off by default).
    pub allow_remote_bases: bool,
    /// Kill kustomize after this long.
    pub timeout: Duration,
    /// Refuse a render of more objects than this; 0: no limit. Checked before kustomize runs,
    /// on the documents of the resource files, and by the caller on kustomize's output.
    pub max_objects: usize,
    /// Where working copies go; on the artifact's filesystem so that files can be hard-linked
    /// (see `ArtifactCache::scratch_dir`). `None`: the system temp directory.
    pub work_root: Option<PathBuf>,
    /// `spec.decryption`: the keys that SOPS-encrypted resource files and secretGenerator
    /// files are decrypted with, inside the private working copy, before kustomize runs.
    pub decryption: Option<Arc<Keys>>,
    /// Runs the build's kustomize process and counts it; with `together`, the build may wait
    /// for others and run with them in one process (see [`Batcher`]). `None`: its own process,
    /// not counted.
    pub batcher: Option<Arc<Batcher>>,
    /// Let the build wait for others and run with them (a build ahead of its pass).
    pub together: bool,
}

impl BuildInput {
    /// A build of the artifact root with no overrides.
    pub fn new(artifact_dir: impl Into<PathBuf>, kustomize_bin: impl Into<PathBuf>) -> Self {
        Self {
            artifact_dir: artifact_dir.into(),
            path: String::new(),
            kustomize_bin: kustomize_bin.into(),
            target_namespace: None,
            name_prefix: None,
            name_suffix: None,
            patches: Vec::new(),
            images: Vec::new(),
            components: Vec::new(),
            ignore_missing_components: false,
            build_metadata: Vec::new(),
            allow_remote_bases: false,
            timeout: DEFAULT_TIMEOUT,
            max_objects: DEFAULT_MAX_OBJECTS,
            work_root: None,
            decryption: None,
            batcher: None,
            together: false,
        }
    }

    /// Takes the path and the build overrides from a Kustomization spec.
    pub fn with_spec(mut self, spec: &KustomizationSpec) -> Self {
        self.path = spec.path.clone().unwrap_or_default();
        self.target_namespace = spec.target_namespace.clone();
        self.name_prefix = spec.name_prefix.clone();
        self.name_suffix = spec.name_suffix.clone();
        self.patches = spec.patches.clone();
        self.images = spec.images.clone();
        self.components = spec.components.clone();
        self.ignore_missing_components = spec.ignore_missing_components;
        self.build_metadata = spec
            .build_metadata
            .iter()
            .filter_map(|m| serde_json::to_value(m).ok())
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        self
    }

    fn overrides(&self) -> Overrides {
        Overrides {
            target_namespace: self.target_namespace.clone(),
            name_prefix: self.name_prefix.clone(),
            name_suffix: self.name_suffix.clone(),
            patches: self.patches.clone(),
            images: self.images.clone(),
            components: self.components.clone(),
            build_metadata: self.build_metadata.clone(),
        }
    }
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// `spec.path` climbs out of the artifact.
    #[error("invalid path {path:?}: it leaves the artifact")]
    InvalidPath {
        /// The path as given.
        path: String,
    },
    /// `spec.path` does not exist in the artifact.
    #[error("kustomization path not found: {path:?}")]
    PathNotFound {
        /// The path as given.
        path: String,
    },
    /// `spec.path` is not a directory.
    #[error("kustomization path {path:?} is not a directory")]
    PathNotDirectory {
        /// The path as given.
        path: String,
    },
    /// Preparing the working copy failed.
    #[error("preparing the working copy failed: {source}")]
    WorkingCopy {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A kustomization file is invalid.
    #[error("invalid kustomization {file}: {message}")]
    InvalidKustomization {
        /// Path relative to the artifact root.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A YAML file listed in a generated kustomization is invalid.
    #[error("invalid YAML in {file}: {message}")]
    InvalidYaml {
        /// Path relative to the artifact root.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A kustomization names something outside the sandbox (remote, or outside the artifact).
    #[error("{file}: {field} entry {entry:?} refused: {problem}")]
    Sandbox {
        /// The kustomization file, relative to the artifact root.
        file: String,
        /// The field holding the entry.
        field: &'static str,
        /// The entry.
        entry: String,
        /// Why it is refused.
        problem: &'static str,
    },
    /// kustomize could not be started (or waited for).
    #[error("running {bin} failed: {source}")]
    Spawn {
        /// The binary.
        bin: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The render would hold more objects than allowed.
    #[error(
        "the render has {count} objects or more ({file} alone has {in_file}), over the limit of \
         {limit} objects per Kustomization: split it into several Kustomizations"
    )]
    TooManyObjects {
        /// Objects counted (a lower bound).
        count: usize,
        /// The limit.
        limit: usize,
        /// The file with the most objects, relative to the artifact root.
        file: String,
        /// Objects in that file.
        in_file: usize,
    },
    /// kustomize was killed by a signal (out of memory, for one) before it finished.
    #[error("kustomize was killed by signal {signal} before it finished")]
    Killed {
        /// The signal's number.
        signal: i32,
    },
    /// kustomize ran past the timeout and was killed.
    #[error("kustomize build timed out after {after:?}")]
    Timeout {
        /// The timeout.
        after: Duration,
    },
    /// kustomize failed; its error output, relative to the artifact root.
    #[error("kustomize build failed: {message}")]
    Kustomize {
        /// kustomize's trimmed error output.
        message: String,
    },
    /// A SOPS-encrypted file could not be decrypted (names the file, never a secret).
    #[error("decryption failed: {0}")]
    Decrypt(#[from] DecryptError),
}

impl BuildError {
    /// Whether running the same build again would fail the same way: it depends only on the
    /// build's input (the artifact, the path, the overrides), not on the moment. A timeout, a
    /// killed or unstartable process, a working copy that could not be written and a failed
    /// decryption may pass next time; so may anything kustomize reports when it may fetch
    /// remote bases (`allow_remote`).
    pub fn repeats(&self, allow_remote: bool) -> bool {
        match self {
            Self::InvalidPath { .. }
            | Self::PathNotFound { .. }
            | Self::PathNotDirectory { .. }
            | Self::InvalidKustomization { .. }
            | Self::InvalidYaml { .. }
            | Self::Sandbox { .. }
            | Self::TooManyObjects { .. } => true,
            Self::Kustomize { .. } => !allow_remote,
            Self::WorkingCopy { .. }
            | Self::Spawn { .. }
            | Self::Killed { .. }
            | Self::Timeout { .. }
            | Self::Decrypt(_) => false,
        }
    }

    /// A stable short label for metrics and event reasons.
    pub fn label(&self) -> &'static str {
        match self {
            Self::InvalidPath { .. } => "InvalidPath",
            Self::PathNotFound { .. } => "PathNotFound",
            Self::PathNotDirectory { .. } => "PathNotDirectory",
            Self::WorkingCopy { .. } => "WorkingCopy",
            Self::InvalidKustomization { .. } => "InvalidKustomization",
            Self::InvalidYaml { .. } => "InvalidYaml",
            Self::Sandbox { .. } => "SandboxViolation",
            Self::Spawn { .. } => "SpawnKustomize",
            Self::TooManyObjects { .. } => "TooManyObjects",
            Self::Killed { .. } => "KustomizeKilled",
            Self::Timeout { .. } => "BuildTimeout",
            Self::Kustomize { .. } => "KustomizeBuild",
            Self::Decrypt(_) => "DecryptionFailed",
        }
    }
}

/// `mutex` locked, also after a panic of another holder (the data stays consistent: every
/// holder's change is one insert or removal).
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `spec.path` as a normalized relative path; a leading `/` means the artifact root, as in
/// Flux. `None` when `..` climbs above the root.
pub fn normalize_path(path: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(c) => out.push(c),
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Some(out)
}

/// Builds `input.path` of the artifact and returns kustomize's multi-document YAML.
pub async fn build(input: BuildInput) -> Result<String, BuildError> {
    build_revealing(input).await.map(|built| built.yaml)
}

/// A render, and what SOPS decryption revealed in it.
#[derive(Debug, Clone, Default)]
pub struct Built {
    /// The rendered YAML.
    pub yaml: String,
    /// Texts that decryption revealed (values and their base64 forms): whoever reports an
    /// error about the render scrubs them out, as the build's own errors already are.
    pub revealed: Vec<String>,
}

/// [`build`], also returning what decryption revealed; an error of the build has it scrubbed.
pub async fn build_revealing(input: BuildInput) -> Result<Built, BuildError> {
    let relative = normalize_path(&input.path).ok_or_else(|| BuildError::InvalidPath {
        path: input.path.clone(),
    })?;
    let work_root = input.work_root.clone().unwrap_or_else(std::env::temp_dir);
    let mut prepared = tokio::task::spawn_blocking({
        let input = input.clone();
        let work_root = work_root.clone();
        move || prepare(&input, &relative, &work_root)
    })
    .await
    .map_err(|e| BuildError::WorkingCopy {
        source: std::io::Error::other(e),
    })??;
    let member = batch::Member {
        bin: input.kustomize_bin.clone(),
        tree: prepared.tree.clone(),
        build_dir: prepared.build_dir.clone(),
        owns: prepared.owns.clone(),
        scratch: prepared.scratch.clone(),
        work_root: work_root.clone(),
        timeout: input.timeout,
        documents: prepared.documents,
        allow_remote: input.allow_remote_bases,
    };
    let result = match &input.batcher {
        // Decrypted values stay in this build's own process and output.
        Some(batcher) if input.together && prepared.plain && prepared.revealed.is_empty() => {
            batcher.build(member).await
        }
        Some(batcher) => batcher.alone(&member).await,
        None => batch::alone(&member).await,
    }
    .map_err(|e| name_top_kustomization(e, &prepared))
    .map_err(|e| scrub_error(e, &prepared.revealed));
    let revealed = std::mem::take(&mut prepared.revealed);
    // Removing a large working copy is blocking work; it only unlinks our own links.
    if let Some(dir) = prepared.dir {
        let cleanup = tokio::task::spawn_blocking(move || dir.close()).await;
        if let Ok(Err(e)) | Err(e) = cleanup.map_err(std::io::Error::other) {
            tracing::warn!(error = %e, "removing a build working copy failed");
        }
    }
    result.map(|mut yaml| {
        // Outputs are kept (the build cache): without the spare capacity of the reads.
        yaml.shrink_to_fit();
        Built { yaml, revealed }
    })
}

/// kustomize prints whole objects in some errors (`missing metadata.name in object ...`): with
/// decrypted files in the build, its message has what they revealed replaced by `***`.
fn scrub_error(error: BuildError, revealed: &[String]) -> BuildError {
    match error {
        BuildError::Kustomize { message } if !revealed.is_empty() => BuildError::Kustomize {
            message: crate::substitute::scrub(&message, revealed.iter().map(String::as_str)),
        },
        other => other,
    }
}

/// kustomize reports a kustomization it cannot decode (an unknown field, say) without naming
/// the file when it is the one being built; nested ones are named by the "accumulating
/// resources from" part of the message.
fn name_top_kustomization(error: BuildError, prepared: &Prepared) -> BuildError {
    match error {
        BuildError::Kustomize { message } if message.starts_with("invalid Kustomization") => {
            let file = kustomization::find(&prepared.build_dir)
                .map(|f| kustomization::display_path(&f, &prepared.tree))
                .unwrap_or_default();
            BuildError::Kustomize {
                message: format!("{file}: {message}"),
            }
        }
        other => other,
    }
}

struct Prepared {
    /// The working copy, removed after the build; None when the build reads the shared
    /// artifact in place.
    dir: Option<tempfile::TempDir>,
    tree: PathBuf,
    build_dir: PathBuf,
    scratch: PathBuf,
    /// What decrypting the files revealed: never shown in an error.
    revealed: Vec<String>,
    /// The sandbox check found the build plain (`Scan::plain`).
    plain: bool,
    /// The directory holding everything the build reaches (`batch::Member::owns`).
    owns: PathBuf,
    /// The resource documents the build reaches.
    documents: usize,
}

impl Prepared {
    fn new(tree: PathBuf, build_dir: PathBuf, scratch: PathBuf, scan: &sandbox::Scan) -> Self {
        let owns = if scan.reached.iter().all(|p| p.starts_with(&build_dir)) {
            build_dir.clone()
        } else {
            tree.clone()
        };
        Self {
            dir: None,
            tree,
            build_dir,
            scratch,
            revealed: Vec::new(),
            plain: scan.plain,
            owns,
            documents: scan.documents,
        }
    }
}

fn prepare(input: &BuildInput, relative: &Path, work_root: &Path) -> Result<Prepared, BuildError> {
    let io = |source| BuildError::WorkingCopy { source };
    let source_dir = input.artifact_dir.join(relative);
    let meta = std::fs::metadata(&source_dir).map_err(|_| BuildError::PathNotFound {
        path: input.path.clone(),
    })?;
    if !meta.is_dir() {
        return Err(BuildError::PathNotDirectory {
            path: input.path.clone(),
        });
    }
    std::fs::create_dir_all(work_root).map_err(io)?;
    if let Some(prepared) = in_place(input, &source_dir, work_root) {
        return Ok(prepared);
    }
    let dir = tempfile::Builder::new()
        .prefix(".build-")
        .tempdir_in(work_root)
        .map_err(io)?;
    let tree = dir.path().join("tree");
    let scratch = dir.path().join("scratch");
    std::fs::create_dir(&tree).map_err(io)?;
    std::fs::create_dir(&scratch).map_err(io)?;
    // Only the part of the artifact the build can reach is mirrored: in a monorepo with a
    // directory per app, mirroring everything cost more than the build.
    let subtree = reached_subtree(input, relative).unwrap_or_default();
    std::fs::create_dir_all(tree.join(&subtree)).map_err(io)?;
    workcopy::mirror(&input.artifact_dir.join(&subtree), &tree.join(&subtree)).map_err(io)?;
    let build_dir = tree.join(relative);
    // A path through a symbolic link must still land inside the artifact.
    if !lands_inside(&tree, &build_dir).map_err(io)? {
        return Err(BuildError::InvalidPath {
            path: input.path.clone(),
        });
    }
    write_kustomization(&build_dir, &tree, &overrides_at(input, &build_dir))?;
    let scan = sandbox::check(&tree, &build_dir, input.allow_remote_bases)?;
    let revealed = decrypt_files(&tree, &scan.encryptable, input.decryption.as_deref())?;
    if input.max_objects > 0
        && scan.documents > input.max_objects
        && let Some((file, in_file)) = scan.largest
    {
        return Err(BuildError::TooManyObjects {
            count: scan.documents,
            limit: input.max_objects,
            file,
            in_file,
        });
    }
    Ok(Prepared {
        dir: Some(dir),
        revealed,
        ..Prepared::new(tree, build_dir, scratch, &scan)
    })
}

/// The build of `build_dir` as the artifact has it, without a working copy, when the build
/// changes no file: the directory's own kustomization (not empty) is built as written (no
/// overrides, no components), nothing in reach is encrypted, remote bases are off, and the
/// sandbox check passes on the shared artifact. kustomize only reads; the artifact stays in the
/// cache while its render holds it (see `ArtifactCache::retain`). Creating and removing a
/// working copy per build was a fifth of the controller's CPU at a cold start (ext4 allocating
/// and freeing directory inodes). None: build in a working copy, which also reports whatever
/// made this one decline.
fn in_place(input: &BuildInput, build_dir: &Path, work_root: &Path) -> Option<Prepared> {
    if input.allow_remote_bases || !overrides_at(input, build_dir).is_empty() {
        return None;
    }
    let tree = &input.artifact_dir;
    let file = kustomization::find(build_dir)?;
    let text = std::fs::read_to_string(&file).ok()?;
    let display = kustomization::display_path(&file, tree);
    if kustomization::parse(&text, &display).ok()?.is_empty()
        || !lands_inside(tree, build_dir).ok()?
    {
        return None;
    }
    let scan = sandbox::check(tree, build_dir, false).ok()?;
    if input.max_objects > 0 && scan.documents > input.max_objects {
        return None;
    }
    let encrypted = |(path, format): &(PathBuf, decrypt::Format)| match std::fs::read(path) {
        Ok(bytes) => decrypt::is_encrypted(&bytes, *format),
        // Not a file kustomize can read: the working copy's check names it.
        Err(_) => true,
    };
    if scan.encryptable.iter().any(encrypted) {
        return None;
    }
    // kustomize's HOME and TMPDIR: a builtin-only build writes nothing there, so one
    // directory serves every such build.
    let scratch = work_root.join(".in-place-home");
    std::fs::create_dir_all(&scratch).ok()?;
    Some(Prepared::new(
        tree.clone(),
        build_dir.to_path_buf(),
        scratch,
        &scan,
    ))
}

/// The spec's overrides for a build of `build_dir`, less the components that
/// `spec.ignoreMissingComponents` leaves out there.
fn overrides_at(input: &BuildInput, build_dir: &Path) -> Overrides {
    let mut overrides = input.overrides();
    if input.ignore_missing_components {
        overrides
            .components
            .retain(|component| build_dir.join(component).exists());
    }
    overrides
}

/// Whether `dir`, with its symbolic links resolved, is inside `tree`.
fn lands_inside(tree: &Path, dir: &Path) -> std::io::Result<bool> {
    Ok(std::fs::canonicalize(dir)?.starts_with(std::fs::canonicalize(tree)?))
}

/// The smallest directory of the artifact (relative to it) that holds everything the build
/// can reach: the build directory, the components `spec.components` adds, and what the
/// kustomizations reachable from them name, as written and as resolved through symbolic
/// links. Scanned on the shared artifact, before the build's own kustomization is written;
/// the build's sandbox check then runs on the working copy as always. `None` (mirror it all)
/// when the scan fails (the check on the full copy reports why) or when the directory has no
/// kustomization file.
fn reached_subtree(input: &BuildInput, relative: &Path) -> Option<PathBuf> {
    let root = &input.artifact_dir;
    let start = root.join(relative);
    // A kustomization generated for the directory may list any of its subdirectories' own
    // kustomizations; the scan cannot see those before it is written.
    kustomization::find(&start)?;
    let mut reached = sandbox::check(root, &start, input.allow_remote_bases)
        .ok()?
        .reached;
    reached.push(start.clone());
    for component in &input.components {
        let dir = root.join(normalize_path(&relative.join(component).to_string_lossy())?);
        if dir.is_dir() {
            reached.extend(
                sandbox::check(root, &dir, input.allow_remote_bases)
                    .ok()?
                    .reached,
            );
        }
        reached.push(dir);
    }
    let mut common: Option<PathBuf> = None;
    for path in reached {
        let inside = path.strip_prefix(root).ok()?.to_path_buf();
        common = Some(match common {
            None => inside,
            Some(prefix) => prefix
                .components()
                .zip(inside.components())
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| a)
                .collect(),
        });
    }
    let common = common?;
    // The directory itself must be a real directory of the artifact, not a link.
    let meta = std::fs::symlink_metadata(root.join(&common)).ok()?;
    meta.is_dir().then_some(common)
}

/// Replaces every SOPS-encrypted file among `files` (inside the working copy `tree`) with its
/// decrypted form, and returns what the decryption revealed (see [`decrypt::Decrypted`]). The working copy is private to this build and removed after it. Without
/// `keys` (no `spec.decryption`) an encrypted file is refused: applied as it is, its
/// ciphertext would land in the cluster.
fn decrypt_files(
    tree: &Path,
    files: &[(PathBuf, decrypt::Format)],
    keys: Option<&Keys>,
) -> Result<Vec<String>, BuildError> {
    let mut revealed = Vec::new();
    let mut done = std::collections::BTreeSet::new();
    for (path, format) in files {
        if !done.insert(path) {
            continue;
        }
        let display = kustomization::display_path(path, tree);
        // A link (checked to stay inside the tree) is followed, and replaced by the file.
        let meta = std::fs::metadata(path).map_err(|source| BuildError::WorkingCopy { source })?;
        if !meta.is_file() {
            continue;
        }
        let bytes = std::fs::read(path).map_err(|source| BuildError::WorkingCopy { source })?;
        let Some(keys) = keys else {
            if decrypt::is_encrypted(&bytes, *format) {
                return Err(BuildError::Decrypt(DecryptError {
                    file: display,
                    reason: "SOPS-encrypted, but spec.decryption is not set: refusing to apply \
                             it encrypted"
                        .into(),
                }));
            }
            continue;
        };
        if let Some(plain) = decrypt::decrypt_revealing(&bytes, *format, keys, &display)? {
            workcopy::write_new_bytes(path, &plain.bytes)
                .map_err(|source| BuildError::WorkingCopy { source })?;
            revealed.extend(plain.revealed);
        }
    }
    Ok(revealed)
}

/// Generates the kustomization when there is none, and merges the overrides into it.
fn write_kustomization(
    build_dir: &Path,
    tree: &Path,
    overrides: &Overrides,
) -> Result<(), BuildError> {
    let (file, mut doc) = match kustomization::find(build_dir) {
        Some(file) => {
            let display = kustomization::display_path(&file, tree);
            let text =
                std::fs::read_to_string(&file).map_err(|e| BuildError::InvalidKustomization {
                    file: display.clone(),
                    message: e.to_string(),
                })?;
            let doc = kustomization::parse(&text, &display)?;
            // An untouched, non-empty kustomization is left exactly as written.
            if overrides.is_empty() && !doc.is_empty() {
                return Ok(());
            }
            (file, doc)
        }
        None => {
            let resources = kustomization::generate_resources(build_dir, tree)?;
            (
                build_dir.join(KUSTOMIZATION_FILES[0]),
                kustomization::generated(resources),
            )
        }
    };
    let display = kustomization::display_path(&file, tree);
    kustomization::apply_overrides(&mut doc, overrides, &display)?;
    let text = kustomization::render(&doc).map_err(|e| BuildError::InvalidKustomization {
        file: display,
        message: e.to_string(),
    })?;
    workcopy::write_new(&file, &text).map_err(|source| BuildError::WorkingCopy { source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_path_is_normalized_inside_the_root() {
        assert_eq!(normalize_path(""), Some(PathBuf::new()));
        assert_eq!(normalize_path("./"), Some(PathBuf::new()));
        assert_eq!(
            normalize_path("./apps/prod"),
            Some(PathBuf::from("apps/prod"))
        );
        assert_eq!(
            normalize_path("/clusters/a/"),
            Some(PathBuf::from("clusters/a"))
        );
        assert_eq!(normalize_path("apps/../base"), Some(PathBuf::from("base")));
        assert_eq!(normalize_path("../secrets"), None);
        assert_eq!(normalize_path("apps/../../x"), None);
    }

    #[test]
    fn error_labels_are_distinct() {
        let errors = [
            BuildError::InvalidPath {
                path: String::new(),
            },
            BuildError::PathNotFound {
                path: String::new(),
            },
            BuildError::Timeout {
                after: Duration::from_secs(1),
            },
            BuildError::Kustomize {
                message: String::new(),
            },
        ];
        let labels: std::collections::BTreeSet<_> = errors.iter().map(BuildError::label).collect();
        assert_eq!(labels.len(), errors.len());
    }

    fn artifact(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        dir
    }

    fn subtree_of(root: &Path, path: &str, components: &[&str]) -> Option<String> {
        let mut input = BuildInput::new(root, "/kustomize");
        input.path = path.to_owned();
        input.components = components.iter().map(|c| c.to_string()).collect();
        reached_subtree(&input, &normalize_path(path).expect("path"))
            .map(|p| p.display().to_string())
    }

    #[test]
    fn only_what_the_build_can_reach_is_mirrored() {
        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n";
        let root = artifact(&[
            ("app-1/deploy/kustomization.yaml", "resources: [cm.yaml]\n"),
            ("app-1/deploy/cm.yaml", cm),
            ("app-2/deploy/kustomization.yaml", "resources: [cm.yaml]\n"),
            ("app-2/deploy/cm.yaml", cm),
            ("apps/base/kustomization.yaml", "resources: [cm.yaml]\n"),
            ("apps/base/cm.yaml", cm),
            ("apps/prod/kustomization.yaml", "resources: [../base]\n"),
            ("apps/comp/kustomization.yaml", "kind: Component\n"),
            ("plain/cm.yaml", cm),
        ]);
        let root = root.path();
        // A directory per app: only that app's directory.
        assert_eq!(
            subtree_of(root, "app-1/deploy", &[]).as_deref(),
            Some("app-1/deploy")
        );
        // An overlay over a base: both, through their common parent.
        assert_eq!(subtree_of(root, "apps/prod", &[]).as_deref(), Some("apps"));
        // A component that spec.components adds counts too.
        assert_eq!(
            subtree_of(root, "app-1/deploy", &["../../apps/comp"]).as_deref(),
            Some("")
        );
        // A directory whose kustomization is generated, and a scan that fails: all of it.
        assert_eq!(subtree_of(root, "plain", &[]), None);
        std::fs::write(
            root.join("apps/prod/kustomization.yaml"),
            "resources: [../../..]\n",
        )
        .expect("write");
        assert_eq!(subtree_of(root, "apps/prod", &[]), None);

        // A link inside the app to a file elsewhere: the link's target is reached too.
        std::os::unix::fs::symlink(
            "../../apps/base/cm.yaml",
            root.join("app-2/deploy/shared.yaml"),
        )
        .expect("symlink");
        std::fs::write(
            root.join("app-2/deploy/kustomization.yaml"),
            "resources: [shared.yaml]\n",
        )
        .expect("write");
        assert_eq!(subtree_of(root, "app-2/deploy", &[]).as_deref(), Some(""));

        // The working copy of app-1 (a name prefix changes its kustomization) holds app-1 and
        // nothing of its siblings.
        let work = tempfile::tempdir().expect("work");
        let mut input = BuildInput::new(root, "/kustomize");
        input.path = "app-1/deploy".into();
        input.name_prefix = Some("x-".into());
        let prepared = prepare(&input, Path::new("app-1/deploy"), work.path()).expect("prepare");
        assert!(prepared.dir.is_some());
        assert!(prepared.build_dir.join("cm.yaml").is_file());
        assert!(!prepared.tree.join("app-2").exists());
        assert!(!prepared.tree.join("apps").exists());
    }

    #[test]
    fn a_build_that_changes_no_file_reads_the_artifact_in_place() {
        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n";
        let root = artifact(&[
            ("app/kustomization.yaml", "resources: [cm.yaml]\n"),
            ("app/cm.yaml", cm),
            ("overlay/kustomization.yaml", "resources: [../app]\n"),
            ("plain/cm.yaml", cm),
            ("empty/kustomization.yaml", ""),
            ("sealed/kustomization.yaml", "resources: [secret.yaml]\n"),
            ("sealed/secret.yaml", "kind: Secret\nsops: {}\n"),
        ]);
        let root = root.path();
        let work = tempfile::tempdir().expect("work");
        let prepare_at = |path: &str, change: &dyn Fn(&mut BuildInput)| {
            let mut input = BuildInput::new(root, "/kustomize");
            input.path = path.into();
            change(&mut input);
            prepare(&input, Path::new(path), work.path())
        };
        let keep = |_: &mut BuildInput| {};
        for path in ["app", "overlay"] {
            let prepared = prepare_at(path, &keep).expect("prepare");
            assert!(prepared.dir.is_none(), "{path}: no working copy");
            assert_eq!(prepared.tree, root);
            assert_eq!(prepared.build_dir, root.join(path));
        }
        let entries: Vec<_> = std::fs::read_dir(work.path())
            .expect("work root")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(entries, [".in-place-home"], "nothing per build");

        // A build that writes a file, or may, gets a working copy: overrides, a generated or
        // empty kustomization, remote bases, an encrypted file (refused here: no keys).
        type Change<'a> = &'a dyn Fn(&mut BuildInput);
        let copies: [(&str, Change); 5] = [
            ("app", &|i| i.target_namespace = Some("apps".into())),
            ("app", &|i| i.components = vec!["../overlay".into()]),
            ("app", &|i| i.allow_remote_bases = true),
            ("plain", &keep),
            ("empty", &keep),
        ];
        for (path, change) in copies {
            let prepared = prepare_at(path, change).expect("prepare");
            assert!(prepared.dir.is_some(), "{path}: a working copy");
            assert!(prepared.tree.starts_with(work.path()));
        }
        let refused = prepare_at("sealed", &keep).err().expect("refused");
        assert!(
            matches!(&refused, BuildError::Decrypt(e) if e.file.contains("secret.yaml")),
            "{refused:?}"
        );
    }
}
