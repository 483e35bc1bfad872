//! What this controller keeps of each GitRepository: the artifact, the conditions, the
//! observed generation and whether it is suspended, which are all that its passes and triggers
//! read. The watch decodes GitRepositories into [`Source`], which has only those fields, so
//! that a thousand sources do not each hold the API type's spec and status (a 1.4 KB struct
//! before any of its strings) in the store.

use std::borrow::Cow;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use kube::Resource;
use mooring_api::GitRepository;
use mooring_api::common::Artifact;
use serde::Deserialize;

/// A GitRepository as this controller keeps it (same kind, same API; other fields are not
/// decoded).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Source {
    /// The object's metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The part of the spec read here.
    #[serde(default)]
    pub spec: SourceSpec,
    /// The part of the status read here.
    #[serde(default)]
    pub status: Option<SourceStatus>,
}

/// `spec` of a [`Source`].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SourceSpec {
    /// `spec.suspend`: a suspended source gets no new artifact.
    #[serde(default)]
    pub suspend: bool,
}

/// `status` of a [`Source`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceStatus {
    /// `status.observedGeneration`.
    #[serde(default)]
    pub observed_generation: Option<i64>,
    /// `status.conditions`: the Ready message says why there is no artifact.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// `status.artifact`.
    #[serde(default)]
    pub artifact: Option<Artifact>,
}

impl Resource for Source {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        GitRepository::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        GitRepository::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        GitRepository::version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        GitRepository::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_read_from_a_git_repository_with_what_passes_read() {
        let value = serde_json::json!({
            "apiVersion": "source.mooring.dev/v1",
            "kind": "GitRepository",
            "metadata": {"name": "app", "namespace": "apps", "generation": 3},
            "spec": {"url": "https://git.example.invalid/app.git", "interval": "1m",
                     "ref": {"branch": "main"}, "suspend": true},
            "status": {
                "observedGeneration": 3,
                "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded",
                                "message": "stored artifact for revision main@sha1:abc",
                                "lastTransitionTime": "2026-12-05T00:00:00Z"}],
                "artifact": {"path": "gitrepository/apps/app/abc.tar.gz",
                             "url": "http://source/gitrepository/apps/app/abc.tar.gz",
                             "revision": "main@sha1:abc", "digest": "sha256:0123",
                             "lastUpdateTime": "2026-12-05T00:00:00Z",
                             "metadata": {"git.author": "Ada <ada@example.invalid>"}},
                "provenance": {"revision": "main@sha1:abc",
                               "author": {"name": "Ada", "email": "ada@example.invalid"}}
            }
        });
        let full: GitRepository = serde_json::from_value(value.clone()).expect("GitRepository");
        let source: Source = serde_json::from_value(value).expect("Source");
        let status = source.status.as_ref().expect("status");
        let full_status = full.status.as_ref().expect("status");
        assert_eq!(status.artifact, full_status.artifact);
        assert_eq!(status.conditions, full_status.conditions);
        assert_eq!(status.observed_generation, Some(3));
        assert!(source.spec.suspend);
        assert_eq!(source.metadata, full.metadata);
        // Same kind and API: the watch and the store's keys are the GitRepository's.
        assert_eq!(Source::api_version(&()), GitRepository::api_version(&()));
        assert_eq!(Source::plural(&()), GitRepository::plural(&()));
        assert_eq!(Source::kind(&()), GitRepository::kind(&()));
        assert_eq!(
            Source::url_path(&(), Some("apps")),
            GitRepository::url_path(&(), Some("apps"))
        );
        // A GitRepository without spec or status (as a watch may show one being created).
        let bare: Source = serde_json::from_value(serde_json::json!({
            "apiVersion": "source.mooring.dev/v1", "kind": "GitRepository",
            "metadata": {"name": "new", "namespace": "apps"}
        }))
        .expect("Source");
        assert!(bare.status.is_none() && !bare.spec.suspend);
    }
}
