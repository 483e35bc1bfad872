//! Running the real `kubectl` and `helm`, and what can go wrong in the harness.

use std::path::Path;
use std::process::{Command, Stdio};

/// A failed step of the harness.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command ran and failed.
    #[error("`{command}` failed ({status}):\n{stderr}")]
    CommandFailed {
        /// The command line (it never carries secrets: tokens travel in files).
        command: String,
        /// The exit status.
        status: String,
        /// What it printed on stderr (and stdout, which `kubectl wait` uses for progress).
        stderr: String,
    },
    /// A command could not be started.
    #[error("running {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Writing a file of the harness failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A command printed something the harness cannot use.
    #[error("unexpected output of `{command}`: {reason}")]
    Output {
        /// The command line.
        command: String,
        /// What is wrong.
        reason: String,
    },
    /// A tool binary is missing.
    #[error(transparent)]
    MissingTool(#[from] mooring_testkit::tools::MissingTool),
    /// The control plane failed.
    #[error(transparent)]
    ControlPlane(#[from] mooring_testkit::control_plane::Error),
    /// The controller processes failed.
    #[error(transparent)]
    Controllers(#[from] mooring_testkit::controllers::Error),
    /// The git server failed.
    #[error(transparent)]
    Git(#[from] mooring_testkit::git::Error),
    /// The examples could not be read.
    #[error(transparent)]
    Examples(#[from] mooring_testkit::examples::Error),
}

/// Runs `program args..` with `envs`, returning stdout; an error carries stderr and stdout.
pub fn run(program: &Path, args: &[&str], envs: &[(&str, &Path)]) -> Result<String, Error> {
    run_capturing(program, args, envs).map(|(stdout, _)| stdout)
}

/// [`run`], returning stdout and stderr (where kubectl prints the API server's warnings).
pub fn run_capturing(
    program: &Path,
    args: &[&str],
    envs: &[(&str, &Path)],
) -> Result<(String, String), Error> {
    let name = program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null());
    for (key, value) in envs {
        cmd.env(key, value);
    }
    let out = cmd.output().map_err(|source| Error::Spawn {
        program: name.clone(),
        source,
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        return Ok((stdout, stderr));
    }
    Err(Error::CommandFailed {
        command: format!("{name} {}", args.join(" ")),
        status: out.status.to_string(),
        stderr: format!("{}\n{}", stderr.trim_end(), stdout.trim_end())
            .trim()
            .to_string(),
    })
}
