//! Command-line flags of the kustomize-controller.

use std::path::PathBuf;

use mooring_runtime::flags::CommonArgs;

/// The Kustomization controller: builds GitRepository artifacts with kustomize and keeps the
/// cluster equal to the result.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "mooring-kustomize-controller", version)]
pub struct Args {
    /// Flags shared by both controllers.
    #[command(flatten)]
    pub common: CommonArgs,

    /// The kustomize binary.
    #[arg(long, env = "MOORING_KUSTOMIZE_PATH", default_value = "kustomize")]
    pub kustomize_path: PathBuf,

    /// Directory for downloaded and extracted artifacts, shared by all Kustomizations.
    #[arg(long, env = "MOORING_ARTIFACT_CACHE_PATH", default_value = "/cache")]
    pub artifact_cache_path: PathBuf,

    /// Allow a Kustomization to name objects of another namespace: a GitRepository in
    /// `spec.sourceRef` or a Kustomization in `spec.dependsOn`. Off by default: a tenant sees
    /// only its own namespace.
    #[arg(long, env = "MOORING_ALLOW_CROSS_NAMESPACE_REFS", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_cross_namespace_refs: bool,

    /// ServiceAccount, in each Kustomization's own namespace, impersonated for a Kustomization
    /// that sets no `spec.serviceAccountName`. Empty: such Kustomizations use the controller's
    /// own identity.
    #[arg(long, env = "MOORING_DEFAULT_SERVICE_ACCOUNT", default_value = "")]
    pub default_service_account: String,

    /// Allow kustomize to fetch remote bases over the network.
    #[arg(long, env = "MOORING_ALLOW_REMOTE_BASES", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_remote_bases: bool,

    /// Fail the build when `postBuild` substitution meets a variable with no value and no
    /// default, instead of substituting an empty string.
    #[arg(long, env = "MOORING_STRICT_SUBSTITUTION", default_value_t = false, action = clap::ArgAction::Set)]
    pub strict_substitution: bool,

    /// Requests in flight at once within one apply stage.
    #[arg(long, env = "MOORING_APPLY_CONCURRENCY", default_value_t = 8)]
    pub apply_concurrency: usize,

    /// Seconds to wait before looking again at a source without an artifact (watches usually
    /// wake the Kustomization sooner).
    #[arg(long, env = "MOORING_REQUEUE_DEPENDENCY_SECONDS", default_value_t = 30)]
    pub requeue_dependency_seconds: u64,

    /// The most objects one Kustomization may render (0: no limit). A larger render is refused
    /// before it is applied, and when its files show it, before kustomize runs.
    #[arg(long, env = "MOORING_MAX_RENDER_OBJECTS", default_value_t = crate::build::DEFAULT_MAX_OBJECTS)]
    pub max_render_objects: usize,

    /// Largest artifact to download, in bytes; 0 means no limit.
    #[arg(long, env = "MOORING_MAX_ARTIFACT_SIZE", default_value_t = 512 * 1024 * 1024)]
    pub max_artifact_size: u64,
}

impl Args {
    /// The download limit `--max-artifact-size` asks for: 0 lifts it.
    pub fn max_download_bytes(&self) -> u64 {
        match self.max_artifact_size {
            0 => u64::MAX,
            limit => limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Args;

    fn parse(flags: &[&str]) -> Args {
        Args::try_parse_from(
            std::iter::once("mooring-kustomize-controller").chain(flags.iter().copied()),
        )
        .expect("flags parse")
    }

    #[test]
    fn max_artifact_size_zero_lifts_the_download_limit() {
        assert_eq!(
            parse(&["--max-artifact-size=0"]).max_download_bytes(),
            u64::MAX
        );
        assert_eq!(
            parse(&["--max-artifact-size=1024"]).max_download_bytes(),
            1024
        );
        assert_eq!(parse(&[]).max_download_bytes(), 512 * 1024 * 1024);
    }
}
