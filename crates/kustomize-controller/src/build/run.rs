//! Running the pinned kustomize binary, sandboxed.
//!
//! `kustomize build <dir> --load-restrictor=LoadRestrictionsRootOnly`, never with
//! `--enable-exec`, `--enable-alpha-plugins` or `--enable-helm`, so only builtin generators and
//! transformers run. The environment is cleared: without remote bases there is no `PATH` (so
//! kustomize cannot find `git`) and HTTP(S) proxies point at a closed port (so it cannot fetch
//! remote files). Each build is its own process: builds run in parallel with no global lock,
//! unlike Flux, which serializes in-process builds around a kustomize data race.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::BuildError;

/// Proxy that refuses every connection (port 9, discard, is not listening).
const DEAD_PROXY: &str = "http://127.0.0.1:9";

/// Environment passed through when remote bases are allowed (kustomize runs `git`).
const REMOTE_ENV: [&str; 9] = [
    "PATH",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// Runs `kustomize build` on `dir` (inside `tree`) and returns its standard output.
/// `scratch` is an empty directory for kustomize's HOME and temp files.
pub async fn kustomize_build(
    bin: &Path,
    tree: &Path,
    dir: &Path,
    scratch: &Path,
    allow_remote: bool,
    timeout: Duration,
) -> Result<String, BuildError> {
    let mut command = Command::new(bin);
    command
        .arg("build")
        .arg(dir)
        .arg("--load-restrictor=LoadRestrictionsRootOnly")
        .current_dir(tree)
        .env_clear()
        .env("HOME", scratch)
        .env("TMPDIR", scratch)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if allow_remote {
        for key in REMOTE_ENV {
            if let Some(value) = std::env::var_os(key) {
                command.env(key, value);
            }
        }
    } else {
        for key in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
            command.env(key, DEAD_PROXY);
        }
    }
    let child = command.spawn().map_err(|source| BuildError::Spawn {
        bin: bin.display().to_string(),
        source,
    })?;
    // On timeout the future is dropped with the child, and `kill_on_drop` kills it.
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| BuildError::Timeout { after: timeout })?
        .map_err(|source| BuildError::Spawn {
            bin: bin.display().to_string(),
            source,
        })?;
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&output.status) {
        return Err(BuildError::Killed { signal });
    }
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(BuildError::Kustomize {
            message: clean_stderr(&stderr, tree),
        });
    }
    String::from_utf8(output.stdout).map_err(|_| BuildError::Kustomize {
        message: "kustomize printed output that is not UTF-8".into(),
    })
}

/// kustomize's error output, trimmed, without its `Error: ` prefix and with the working copy's
/// location removed so that paths read relative to the artifact.
pub fn clean_stderr(stderr: &str, tree: &Path) -> String {
    let tree = tree.to_string_lossy();
    let trimmed = stderr.trim();
    let trimmed = trimmed.strip_prefix("Error: ").unwrap_or(trimmed);
    let mut message = trimmed
        .replace(&format!("{tree}/"), "")
        .replace(tree.as_ref(), ".");
    if message.is_empty() {
        message = "kustomize failed without a message".into();
    }
    const MAX: usize = 4096;
    if message.len() > MAX {
        let cut = (0..=MAX)
            .rev()
            .find(|&i| message.is_char_boundary(i))
            .unwrap_or(0);
        message.truncate(cut);
        message.push_str("...");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_is_trimmed_and_made_relative() {
        let tree = Path::new("/tmp/build-x/tree");
        let stderr = "Error: accumulating resources: accumulating resources from 'bad.yaml': \
                      MalformedYAMLError: yaml: line 4 in File: /tmp/build-x/tree/apps/bad.yaml\n\n";
        assert_eq!(
            clean_stderr(stderr, tree),
            "accumulating resources: accumulating resources from 'bad.yaml': \
             MalformedYAMLError: yaml: line 4 in File: apps/bad.yaml"
        );
        assert_eq!(
            clean_stderr("  \n", tree),
            "kustomize failed without a message"
        );
        let long = "é".repeat(5000);
        assert!(clean_stderr(&long, tree).ends_with("..."));
    }
}
