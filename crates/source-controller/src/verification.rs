//! The signature-verification steps of a GitRepository pass: read the trusted keys, verify the
//! fetched revision before anything is built from it, and decide whether the served artifact
//! still verifies when a new revision does not.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use mooring_api::conditions::reasons;
use mooring_api::{Artifact, GitRepositorySpec, GitVerificationMode};

use crate::context::Context;
use crate::error::Error;
use crate::git;
use crate::verify::{self, Keyring, Revision, SourceSigners};

/// The keys of `spec.verify.secretRef`. A Secret that is missing or holds no usable key fails
/// with `withdraw`: nothing can be verified with it, the served artifact included. A failed
/// API call does not withdraw (it says nothing about the keys). Talks to the API.
pub async fn read_keys(ctx: &Context, ns: &str, name: &str) -> Result<Keyring, Error> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let failed = |message: String, withdraw: bool| Error::Verification {
        reason: reasons::VERIFICATION_ERROR,
        message: format!("spec.verify.secretRef Secret '{name}': {message}"),
        withdraw,
    };
    let secret = api.get_opt(name).await.map_err(|e| {
        let message = match &e {
            kube::Error::Api(status) => status.message.clone(),
            other => other.to_string(),
        };
        failed(message, false)
    })?;
    let secret = secret.ok_or_else(|| failed("not found".into(), true))?;
    let data: BTreeMap<String, Vec<u8>> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    Keyring::from_secret(&data).map_err(|e| failed(e.to_string(), true))
}

/// Verifies `revision` as `mode` asks, with `keys`, now. Reads the cache repository off the
/// async threads.
pub async fn verify_revision(
    revision: Revision,
    mode: GitVerificationMode,
    keys: Keyring,
) -> Result<SourceSigners, verify::VerifyError> {
    let object = format!("commit {}", revision.commit);
    tokio::task::spawn_blocking(move || {
        let now = jiff::Timestamp::now().as_second();
        verify::verify_fetched(&revision, mode, &keys, now)
    })
    .await
    .unwrap_or_else(|e| {
        Err(verify::VerifyError::Read {
            object,
            detail: e.to_string(),
        })
    })
}

/// Whether the served `artifact` still verifies with `keys`, read from the git cache alone.
/// When the cache no longer holds it, it was verified when it was built and stays.
pub async fn served_still_verifies(
    ctx: &Context,
    spec: &GitRepositorySpec,
    artifact: &Artifact,
    mode: GitVerificationMode,
    keys: &Keyring,
    timeout: Duration,
) -> bool {
    let cached = tokio::task::spawn_blocking({
        let url = spec.url.clone();
        let revision = artifact.revision.clone();
        let cache = ctx.settings.git_cache.clone();
        move || git::cached(&url, &revision, &cache, timeout)
    })
    .await;
    let Ok(Ok(fetched)) = cached else {
        return true;
    };
    verify_revision(Revision::from(&fetched), mode, keys.clone())
        .await
        .is_ok()
}
