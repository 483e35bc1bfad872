//! The control plane shared by all tests of one test binary, and a fresh namespace per test.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ObjectMeta, PostParams};

use crate::control_plane::{ControlPlane, Error, Options};

static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();
static NAMESPACE_COUNTER: AtomicU32 = AtomicU32::new(0);

/// The control plane shared by every test in this binary, started on first use.
///
/// Its processes stop, and its directory is removed, when the test binary exits (see
/// [`crate::process`]).
pub async fn shared_control_plane() -> Result<&'static ControlPlane, Error> {
    // Start-up blocks for seconds; keep it off the test's async worker.
    let plane = tokio::task::spawn_blocking(|| {
        SHARED.get_or_init(|| {
            ControlPlane::start(&Options::default())
                .and_then(ControlPlane::remove_dir_at_exit)
                .map_err(|e| e.to_string())
        })
    })
    .await
    .map_err(|e| Error::Shared(e.to_string()))?;
    plane.as_ref().map_err(|e| Error::Shared(e.clone()))
}

/// One test's slice of the shared control plane: an admin client and its own namespace.
#[derive(Clone)]
pub struct TestEnv {
    /// The shared control plane.
    pub plane: &'static ControlPlane,
    /// An admin client bound to the test's runtime, defaulting to nothing (use `namespace`).
    pub client: kube::Client,
    /// The namespace created for this test.
    pub namespace: String,
}

impl std::fmt::Debug for TestEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEnv")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// Starts (or reuses) the shared control plane and creates a fresh namespace named after `prefix`.
pub async fn test_env(prefix: &str) -> Result<TestEnv, Error> {
    let plane = shared_control_plane().await?;
    namespace_on(plane, prefix).await
}

/// The control planes of this test binary started with other than the default options, one per
/// distinct options value.
static PLANES: Mutex<Vec<(String, &'static ControlPlane)>> = Mutex::new(Vec::new());

/// [`test_env`] on a control plane started with `options` (for example with
/// kube-controller-manager), shared by every test of this binary that asks for the same options.
pub async fn test_env_with(prefix: &str, options: &Options) -> Result<TestEnv, Error> {
    let key = format!("{options:?}");
    let options = options.clone();
    let plane = tokio::task::spawn_blocking(move || {
        let mut planes = PLANES.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, plane)) = planes.iter().find(|(k, _)| *k == key) {
            return Ok(*plane);
        }
        let plane: &'static ControlPlane = Box::leak(Box::new(
            ControlPlane::start(&options)?.remove_dir_at_exit()?,
        ));
        planes.push((key, plane));
        Ok::<_, Error>(plane)
    })
    .await
    .map_err(|e| Error::Shared(e.to_string()))??;
    namespace_on(plane, prefix).await
}

/// A fresh namespace named after `prefix` on `plane`: for a test that starts a control plane of
/// its own (e.g. to restart its kube-apiserver without disturbing the other tests).
pub async fn test_env_on(plane: &'static ControlPlane, prefix: &str) -> Result<TestEnv, Error> {
    namespace_on(plane, prefix).await
}

async fn namespace_on(plane: &'static ControlPlane, prefix: &str) -> Result<TestEnv, Error> {
    let client = plane.client().await?;
    let n = NAMESPACE_COUNTER.fetch_add(1, Ordering::Relaxed);
    let namespace = namespace_name(prefix, std::process::id(), n);
    let api: kube::Api<Namespace> = kube::Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(namespace.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    api.create(&PostParams::default(), &ns)
        .await
        .map_err(|source| Error::Namespace {
            name: namespace.clone(),
            source,
        })?;
    Ok(TestEnv {
        plane,
        client,
        namespace,
    })
}

/// A DNS-1123 namespace name unique within this machine's test runs.
fn namespace_name(prefix: &str, pid: u32, n: u32) -> String {
    let clean: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let clean = clean.trim_matches('-');
    let clean = &clean[..clean.len().min(40)];
    format!("{}-{pid}-{n}", clean.trim_end_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::namespace_name;

    #[test]
    fn namespace_names_are_dns_labels() {
        let name = namespace_name("Apply_CRD and CR!", 4242, 7);
        assert_eq!(name, "apply-crd-and-cr-4242-7");
        let long = namespace_name(&"x".repeat(100), 1, 2);
        assert!(long.len() <= 63, "{long}");
    }
}
