//! Where the test tools built by `make tools` live.

use std::path::PathBuf;

/// The environment variable that overrides the tools cache directory.
pub const TOOLS_DIR_ENV: &str = "MOORING_TOOLS_DIR";

/// The directory `make tools` builds into: `$MOORING_TOOLS_DIR` or `~/.cache/mooring/tools`.
pub fn tools_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(TOOLS_DIR_ENV) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"));
    home.join(".cache/mooring/tools")
}

/// The path of a built tool (`kube-apiserver`, `etcd`, `kubectl`, `kustomize`, `helm`, ...).
pub fn tool(name: &str) -> Result<PathBuf, MissingTool> {
    let path = tools_dir().join("bin").join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(MissingTool {
            name: name.to_string(),
            path,
        })
    }
}

/// A test tool that has not been built.
#[derive(Debug, thiserror::Error)]
#[error("test tool {name} not found at {}: run `make tools`", path.display())]
pub struct MissingTool {
    /// The tool's name.
    pub name: String,
    /// Where it was expected.
    pub path: PathBuf,
}

/// The workspace root (where `crds/` and `examples/` live).
pub fn workspace_root() -> PathBuf {
    // crates/testkit -> workspace root
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}
