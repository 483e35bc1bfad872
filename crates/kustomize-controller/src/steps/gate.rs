//! The gate: a pass goes on only with a valid spec, a source artifact and ready dependencies.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use mooring_api::Kustomization;
use mooring_api::conditions::{find_condition, reasons, types};
use mooring_api::constants::{KUSTOMIZE_NAME_LABEL, MIN_INTERVAL};
use mooring_api::fields;

use crate::decide::dependencies_ready;
use crate::error::Error;
use crate::source::Source;

/// The longest label value Kubernetes accepts.
const MAX_LABEL_VALUE: usize = 63;

/// The source artifact to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceArtifact {
    /// Its revision, e.g. `main@sha1:…`.
    pub revision: String,
    /// Where to download it.
    pub url: String,
    /// Its digest, checked before a byte is used.
    pub digest: String,
    /// Who made and who signed the revision, from the artifact's metadata, for
    /// `status.history`.
    pub provenance: BTreeMap<String, String>,
}

/// Artifact metadata entries that say who made and who signed a revision, and when the source
/// saw it and had its artifact ready (for the commit-to-applied latency on record).
const PROVENANCE_KEYS: [&str; 11] = [
    "source.seenTime",
    "source.readyTime",
    "git.author",
    "git.authorTime",
    "git.committer",
    "git.commitTime",
    "git.tagger",
    "verify.mode",
    "verify.signer.type",
    "verify.signer.fingerprint",
    "verify.signer.identity",
];

/// The provenance entries of an artifact's metadata.
pub fn provenance(metadata: Option<&BTreeMap<String, String>>) -> BTreeMap<String, String> {
    metadata
        .into_iter()
        .flatten()
        .filter(|(k, _)| PROVENANCE_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// What the gate lets through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    /// `spec.interval`.
    pub interval: Duration,
    /// `spec.timeout` (defaults to the interval).
    pub timeout: Duration,
    /// `spec.retryInterval` (defaults to the interval).
    pub retry: Duration,
    /// The namespace of namespaced objects that name none: `spec.targetNamespace`, else the
    /// Kustomization's own.
    pub default_namespace: String,
    /// The artifact to render.
    pub source: SourceArtifact,
}

/// Checks the spec, the dependencies and the source, from the watch caches; no request.
pub fn gate(
    ks: &Kustomization,
    allow_cross_namespace_refs: bool,
    sources: &Store<Source>,
    kustomizations: &Store<Kustomization>,
) -> Result<Gate, Error> {
    let ns = ks.namespace().unwrap_or_default();
    let spec = &ks.spec;
    let invalid = |message: String| Error::InvalidSpec {
        reason: reasons::RECONCILIATION_FAILED,
        message,
    };
    let json = serde_json::to_value(spec).unwrap_or_default();
    if let Some(refused) = fields::refused(&json, fields::KUSTOMIZATION_REFUSED) {
        return Err(Error::InvalidSpec {
            reason: refused.reason,
            message: refused.message(),
        });
    }
    let name = ks.name_any();
    if name.len() > MAX_LABEL_VALUE {
        return Err(invalid(format!(
            "metadata.name: {name:?} is {} characters long; the ownership label \
             {KUSTOMIZE_NAME_LABEL} holds at most {MAX_LABEL_VALUE}: use a shorter name",
            name.len()
        )));
    }
    let interval = spec
        .interval()
        .map_err(|e| invalid(format!("spec.interval: {e}")))?;
    let timeout = spec
        .timeout()
        .map_err(|e| invalid(format!("spec.timeout: {e}")))?;
    let retry = spec
        .retry_interval()
        .map_err(|e| invalid(format!("spec.retryInterval: {e}")))?;
    for (field, value) in [("spec.interval", interval), ("spec.retryInterval", retry)] {
        if value < MIN_INTERVAL {
            return Err(invalid(format!(
                "{field} must be at least {MIN_INTERVAL:?}"
            )));
        }
    }
    let source_ns = spec
        .source_ref
        .namespace
        .clone()
        .unwrap_or_else(|| ns.clone());
    if source_ns != ns && !allow_cross_namespace_refs {
        return Err(cross_namespace(
            "spec.sourceRef",
            &format!("GitRepository {source_ns}/{}", spec.source_ref.name),
        ));
    }
    if !allow_cross_namespace_refs {
        let other = spec
            .depends_on
            .iter()
            .find(|d| d.namespace.as_deref().is_some_and(|dep_ns| dep_ns != ns));
        if let Some(dep) = other {
            return Err(cross_namespace(
                "spec.dependsOn",
                &format!(
                    "Kustomization {}/{}",
                    dep.namespace.as_deref().unwrap_or_default(),
                    dep.name
                ),
            ));
        }
    }
    check_dependencies(ks, kustomizations, &ns)?;
    let source = source_artifact(sources, &source_ns, &spec.source_ref.name)?;
    Ok(Gate {
        interval,
        timeout,
        retry,
        default_namespace: spec.target_namespace.clone().unwrap_or(ns),
        source,
    })
}

/// The refusal of a reference to another namespace.
fn cross_namespace(field: &str, target: &str) -> Error {
    Error::InvalidSpec {
        reason: reasons::ACCESS_DENIED,
        message: format!(
            "{field}: cross-namespace references are disabled on this controller ({target}); \
             use one in the Kustomization's namespace"
        ),
    }
}

/// Fails with `DependencyNotReady` unless every `dependsOn` Kustomization is Ready.
fn check_dependencies(
    ks: &Kustomization,
    kustomizations: &Store<Kustomization>,
    ns: &str,
) -> Result<(), Error> {
    if ks.spec.depends_on.is_empty() {
        return Ok(());
    }
    let found: Vec<(String, Option<Arc<Kustomization>>)> = ks
        .spec
        .depends_on
        .iter()
        .map(|d| {
            let dep_ns = d.namespace.clone().unwrap_or_else(|| ns.to_string());
            let dep = kustomizations.get(&ObjectRef::new(&d.name).within(&dep_ns));
            (format!("{dep_ns}/{}", d.name), dep)
        })
        .collect();
    let refs: Vec<(String, Option<&Kustomization>)> = found
        .iter()
        .map(|(k, d)| (k.clone(), d.as_deref()))
        .collect();
    dependencies_ready(&refs).map_err(|message| Error::Waiting {
        reason: reasons::DEPENDENCY_NOT_READY,
        message,
    })
}

/// The source's current artifact, from the watch cache.
fn source_artifact(sources: &Store<Source>, ns: &str, name: &str) -> Result<SourceArtifact, Error> {
    let waiting = |message: String| Error::Waiting {
        reason: reasons::ARTIFACT_FAILED,
        message,
    };
    let source = sources
        .get(&ObjectRef::new(name).within(ns))
        .ok_or_else(|| waiting(format!("GitRepository '{ns}/{name}' not found")))?;
    if source.metadata.deletion_timestamp.is_some() {
        return Err(waiting(format!(
            "GitRepository '{ns}/{name}' is being deleted"
        )));
    }
    let artifact = source
        .status
        .as_ref()
        .and_then(|s| s.artifact.clone())
        .ok_or_else(|| {
            // The source's own Ready message says why (a failing fetch), so that the waiting
            // message, and the chain of any Kustomization depending on this one, ends at the cause.
            // A suspended source gets no artifact until it is resumed: that is the cause then.
            let why = if source.spec.suspend {
                ": it is suspended (spec.suspend)".to_owned()
            } else {
                source
                    .status
                    .as_ref()
                    .and_then(|s| find_condition(&s.conditions, types::READY))
                    .filter(|c| c.status == "False" && !c.message.is_empty())
                    .map(|c| format!(": {}", c.message))
                    .unwrap_or_default()
            };
            waiting(format!(
                "GitRepository '{ns}/{name}' has no artifact yet{why}"
            ))
        })?;
    let digest = artifact.digest.clone().ok_or_else(|| {
        waiting(format!(
            "GitRepository '{ns}/{name}' artifact has no digest"
        ))
    })?;
    Ok(SourceArtifact {
        provenance: provenance(artifact.metadata.as_ref()),
        revision: artifact.revision,
        url: artifact.url,
        digest,
    })
}
