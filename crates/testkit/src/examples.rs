//! The sample in `examples/`: the app in `examples/sample-app/` committed to a git repository,
//! and the example GitRepository and Kustomization pointed at that repository.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::Api;
use mooring_api::Kustomization;
use serde_json::Value;

use crate::tools::workspace_root;

/// The sample app's directory under the workspace root; its content is the repository's root.
pub const SAMPLE_APP_DIR: &str = "examples/sample-app";
/// The example GitRepository.
pub const GIT_REPOSITORY_EXAMPLE: &str = "examples/gitrepository.yaml";
/// The example Kustomization.
pub const KUSTOMIZATION_EXAMPLE: &str = "examples/kustomization.yaml";

/// Why the examples could not be read or used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a file or directory failed.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An example is not the single YAML object expected.
    #[error("{}: {reason}", path.display())]
    Invalid {
        /// The example file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Watching the Kustomization failed.
    #[error("watching Kustomization {name}: {reason}")]
    Watch {
        /// The Kustomization.
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// The Kustomization was not Ready in time.
    #[error("Kustomization {name} not Ready after {timeout:?}; last status: {status}")]
    NotReady {
        /// The Kustomization.
        name: String,
        /// How long was waited.
        timeout: Duration,
        /// Its last observed status, as JSON.
        status: String,
    },
}

/// The files of `examples/sample-app/` as (path relative to it, content), sorted by path.
pub fn sample_app_files() -> Result<Vec<(String, String)>, Error> {
    let root = workspace_root().join(SAMPLE_APP_DIR);
    let mut files = Vec::new();
    collect(&root, &root, &mut files)?;
    files.sort();
    Ok(files)
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> Result<(), Error> {
    let read = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Read { path, source }
    };
    for entry in std::fs::read_dir(dir).map_err(read(dir))? {
        let path = entry.map_err(read(dir))?.path();
        if path.is_dir() {
            collect(root, &path, out)?;
        } else {
            let content = std::fs::read_to_string(&path).map_err(read(&path))?;
            let relative = path.strip_prefix(root).unwrap_or(&path);
            out.push((relative.display().to_string(), content));
        }
    }
    Ok(())
}

/// The example GitRepository and Kustomization as one JSON `List` for `kubectl apply -f -`, with
/// the GitRepository's `spec.url` set to `git_url` (the file holds a placeholder).
pub fn example_manifests(git_url: &str) -> Result<String, Error> {
    let mut source = read_object(GIT_REPOSITORY_EXAMPLE)?;
    let invalid = |reason: &str| Error::Invalid {
        path: workspace_root().join(GIT_REPOSITORY_EXAMPLE),
        reason: reason.to_string(),
    };
    let spec = source
        .get_mut("spec")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| invalid("no spec"))?;
    spec.insert("url".to_string(), Value::String(git_url.to_string()));
    let kustomization = read_object(KUSTOMIZATION_EXAMPLE)?;
    let list = serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [source, kustomization],
    });
    Ok(list.to_string())
}

fn read_object(relative: &str) -> Result<Value, Error> {
    let path = workspace_root().join(relative);
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
        path: path.clone(),
        source,
    })?;
    let value: Value = serde_saphyr::from_str(&text).map_err(|e| Error::Invalid {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(Error::Invalid {
            path,
            reason: "not a single YAML object".to_string(),
        })
    }
}

/// Watches the Kustomization `name` until it is Ready for its current generation, up to `timeout`.
pub async fn wait_ready(
    api: &Api<Kustomization>,
    name: &str,
    timeout: Duration,
) -> Result<Kustomization, Error> {
    let ready = |ks: Option<&Kustomization>| ks.is_some_and(is_ready);
    let watch = kube::runtime::wait::await_condition(api.clone(), name, ready);
    match tokio::time::timeout(timeout, watch).await {
        Ok(Ok(Some(ks))) => Ok(ks),
        Ok(Ok(None)) => Err(Error::Watch {
            name: name.to_string(),
            reason: "deleted while waiting".to_string(),
        }),
        Ok(Err(e)) => Err(Error::Watch {
            name: name.to_string(),
            reason: e.to_string(),
        }),
        Err(_) => {
            let status = match api.get_opt(name).await {
                Ok(Some(ks)) => serde_json::to_string(&ks.status).unwrap_or_default(),
                Ok(None) => "(not found)".to_string(),
                Err(e) => format!("(unreadable: {e})"),
            };
            Err(Error::NotReady {
                name: name.to_string(),
                timeout,
                status,
            })
        }
    }
}

/// Whether the Kustomization reports Ready for the generation it was given.
fn is_ready(ks: &Kustomization) -> bool {
    let Some(status) = &ks.status else {
        return false;
    };
    status.observed_generation == ks.metadata.generation
        && mooring_api::conditions::is_ready(&status.conditions)
}
