//! The objects a Kustomization would apply, built from a local checkout of its source or from
//! its current artifact with the kustomize-controller's own code: its kustomize build (same generated
//! kustomization, overrides, sandbox and flags, SOPS decryption with the `spec.decryption` keys),
//! `postBuild` substitution, `commonMetadata`,
//! ownership labels and namespace placement, in the order its render step uses them.

use std::path::{Path, PathBuf};

use kube::api::DynamicObject;
use mooring_api::GitRepository;
use mooring_api::Kustomization;
use mooring_api::conditions::{find_condition, types};
use mooring_kustomize_controller::apply::KindCache;
use mooring_kustomize_controller::artifact::{ArtifactCache, Limits};
use mooring_kustomize_controller::steps::render::{
    place_all, read_keys, scopes_of, still_encrypted,
};
use mooring_kustomize_controller::{build, manifests, substitute};

use crate::client::Cluster;
use crate::error::Error;
use crate::kinds::fetch;

/// Where the manifests come from.
pub enum Origin {
    /// A local checkout of the source, used in place of its artifact: `spec.path` is resolved
    /// inside it, and nothing outside it is read.
    Local(PathBuf),
    /// The current artifact of the Kustomization's GitRepository, downloaded and verified.
    Artifact,
}

/// The render, and the Kustomization's namespace objects default to.
pub struct Rendered {
    /// The objects, in render order, placed in their namespaces.
    pub objects: Vec<DynamicObject>,
    /// Discovery cache filled while placing them.
    pub kinds: KindCache,
    /// Where the artifact was extracted (kept until the render is used).
    _scratch: Option<tempfile::TempDir>,
}

/// Renders `ks` from `origin` with the kustomize binary `kustomize`. Reads the variables of
/// `postBuild.substituteFrom` and discovery from the API server.
pub async fn render(
    cluster: &Cluster,
    ks: &Kustomization,
    origin: &Origin,
    kustomize: &Path,
    strict_substitution: bool,
) -> Result<Rendered, Error> {
    let namespace = ks.metadata.namespace.clone().unwrap_or_default();
    let name = ks.metadata.name.clone().unwrap_or_default();
    let subject = format!("Kustomization {namespace}/{name}");
    let spec = &ks.spec;
    let failed = |message: String| Error::Failed(format!("{subject}: {message}"));
    let (root, scratch) = match origin {
        Origin::Local(dir) => (local_root(dir)?, None),
        Origin::Artifact => {
            let (dir, scratch) = download(cluster, ks).await?;
            (dir, Some(scratch))
        }
    };
    let vars = match &spec.post_build {
        Some(post_build) => substitute::gather_vars(&cluster.client, &namespace, post_build)
            .await
            .map_err(|e| failed(e.to_string()))?,
        None => Default::default(),
    };
    // The keys are read with the caller's credentials: who may not read the key Secret cannot
    // see the decrypted render either.
    let keys = match &spec.decryption {
        Some(decryption) => Some(
            read_keys(&cluster.client, &namespace, decryption)
                .await
                .map_err(failed)?,
        ),
        None => None,
    };
    let kustomize = on_path(kustomize)?;
    let mut input = build::BuildInput::new(&root, &kustomize).with_spec(spec);
    input.timeout = spec.timeout().unwrap_or(input.timeout);
    input.decryption = keys.clone();
    let mut yaml = build::build(input)
        .await
        .map_err(|e| failed(e.to_string()))?;
    if let Some(message) = still_encrypted(&yaml, keys.is_some()) {
        return Err(failed(message));
    }
    if substitute::should_substitute(spec.post_build.as_ref(), &vars) {
        yaml = substitute::substitute(&yaml, &vars, strict_substitution)
            .map_err(|e| failed(substitute::scrub_values(&e.to_string(), &vars)))?;
    }
    let mut objects = manifests::parse(&yaml)
        .map_err(|e| failed(substitute::scrub_values(&e.to_string(), &vars)))?;
    if let Some(common) = &spec.common_metadata {
        manifests::set_common_metadata(&mut objects, common);
    }
    manifests::stamp_owner(&mut objects, &name, &namespace);
    let kinds = KindCache::new();
    let scopes = scopes_of(&cluster.client, &kinds, &objects).await;
    let default_namespace = spec.target_namespace.clone().unwrap_or(namespace);
    place_all(&mut objects, &default_namespace, &scopes);
    Ok(Rendered {
        objects,
        kinds,
        _scratch: scratch,
    })
}

/// `bin` as a path: a bare name is looked up on `PATH` here, because kustomize runs with a
/// cleared environment (the controller's sandbox), where no `PATH` is left to search.
fn on_path(bin: &Path) -> Result<PathBuf, Error> {
    if bin.components().count() > 1 {
        return Ok(bin.to_path_buf());
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(bin))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            Error::Usage(format!(
                "--kustomize {}: not found on PATH; give its path",
                bin.display()
            ))
        })
}

/// A local checkout as a build root: an existing directory, made absolute.
fn local_root(dir: &Path) -> Result<PathBuf, Error> {
    let root = dir
        .canonicalize()
        .map_err(|e| Error::Usage(format!("--path {}: {e}", dir.display())))?;
    if root.is_dir() {
        Ok(root)
    } else {
        Err(Error::Usage(format!(
            "--path {}: not a directory",
            dir.display()
        )))
    }
}

/// Downloads and extracts the current artifact of `ks`'s source, verifying its digest.
async fn download(
    cluster: &Cluster,
    ks: &Kustomization,
) -> Result<(PathBuf, tempfile::TempDir), Error> {
    let namespace = ks.metadata.namespace.clone().unwrap_or_default();
    let source = &ks.spec.source_ref;
    let source_namespace = source.namespace.clone().unwrap_or(namespace);
    let repo: GitRepository = fetch(cluster, &source_namespace, &source.name).await?;
    let subject = format!("GitRepository {source_namespace}/{}", source.name);
    let status = repo.status.clone().unwrap_or_default();
    let Some(artifact) = status.artifact else {
        let why = find_condition(&status.conditions, types::READY)
            .map(|c| format!(": {}", c.message))
            .unwrap_or_default();
        return Err(Error::Failed(format!("{subject} has no artifact{why}")));
    };
    let Some(digest) = artifact.digest else {
        return Err(Error::Failed(format!(
            "{subject}: the artifact has no digest to verify"
        )));
    };
    let scratch = tempfile::tempdir()
        .map_err(|e| Error::Failed(format!("creating a temporary directory: {e}")))?;
    let cache = ArtifactCache::new(scratch.path().to_path_buf(), Limits::default())
        .map_err(|e| Error::Failed(format!("artifact cache: {e}")))?;
    let extracted = cache
        .get(&artifact.url, &digest)
        .await
        .map_err(|e| Error::Failed(format!("{subject}: artifact {}: {e}", artifact.url)))?;
    Ok((extracted.dir.clone(), scratch))
}
