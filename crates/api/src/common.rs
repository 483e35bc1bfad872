//! Types shared by both kinds: object references and the artifact a source publishes.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A reference to an object in the same namespace as the referrer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct LocalObjectReference {
    /// Name of the referent, in the same namespace as this object.
    pub name: String,
}

/// A reference to one key of a Secret in the same namespace as the referrer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct SecretKeyReference {
    /// Name of the Secret, in the same namespace as this object.
    pub name: String,

    /// Key in the Secret's data to read. When omitted, the key `value` is used, then
    /// `value.yaml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// An archive produced by a source and served over HTTP to the objects that consume it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// Path of the archive relative to the storage root, in the form
    /// `<kind>/<namespace>/<name>/<file>`.
    pub path: String,

    /// HTTP address from which the archive can be downloaded, as advertised by the source
    /// controller. It is refreshed on every reconciliation, so it follows changes of the
    /// advertised address.
    pub url: String,

    /// Human-readable identifier of the content, in the form `[<named pointer>@]<algo>:<hash>`,
    /// for example `main@sha1:<commit>`, `v1.2.3@sha1:<commit>`, `refs/heads/main@sha1:<commit>`
    /// or `sha1:<commit>`.
    pub revision: String,

    /// Digest of the archive file, in the form `<algorithm>:<hex>`, for example `sha256:<hex>`.
    /// Consumers verify the downloaded bytes against it before using them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$"))]
    pub digest: Option<String>,

    /// Time at which the archive was last written.
    pub last_update_time: Time,

    /// Size of the archive file in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,

    /// Provenance of the content. For GitRepository artifacts: `git.author`, `git.authorTime`,
    /// `git.committer`, `git.commitTime` and `git.subject` of the commit (the subject cut to
    /// 256 characters); `git.tagger` and `git.tagTime` of a verified tag; and with
    /// `spec.verify`, `verify.mode` and the verified signer: `verify.signer.type` (`openpgp` or
    /// `ssh`), `verify.signer.fingerprint` (the OpenPGP key fingerprint, or the SSH key's
    /// `SHA256:` fingerprint) and `verify.signer.identity` (the OpenPGP user id, or the SSH
    /// principals), plus `verify.tagSigner.fingerprint` and `verify.tagSigner.identity` in the
    /// tag modes. And when the artifact was built: `source.seenTime` (when the source saw the
    /// revision) and `source.readyTime` (when its artifact was stored), RFC 3339 with
    /// milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// Whether a boolean field holds its default (`false`), so that it can be left out when
/// serializing.
pub(crate) fn is_false(value: &bool) -> bool {
    !*value
}

/// Schema transform for enums: drops the type's own description so that the description of the
/// field using the enum is what `kubectl explain` shows (an optional enum's schema is merged
/// into the field's schema, and the type's description would otherwise replace the field's).
pub(crate) fn without_description(schema: &mut schemars::Schema) {
    if let Some(object) = schema.as_object_mut() {
        object.remove("description");
    }
}
