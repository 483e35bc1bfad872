//! The inventory of a Kustomization: object identities in Flux's format, apply stages and their
//! order, the objects to prune, and the digest of a render.
//!
//! An entry id is `<namespace>_<name>_<group>_<kind>` (the cli-utils `ObjMetadata` string Flux
//! stores): the namespace is empty for cluster-scoped objects, the group is empty for the core
//! group, and a `:` in a name (RBAC names such as `system:metrics`) is written `__`, because `_`
//! cannot appear in Kubernetes names. The API version is kept next to the id (`v`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use kube::api::DynamicObject;
use mooring_api::kustomization::{ResourceInventory, ResourceRef};
use mooring_api::{Digest, DigestAlgorithm};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// Separator of the four fields of an id.
const FIELD_SEPARATOR: char = '_';
/// How a `:` of a name is written in an id.
const COLON_TRANSCODED: &str = "__";

/// Why an inventory id or object could not be turned into an [`ObjectId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    /// An id does not have the `<namespace>_<name>_<group>_<kind>` shape.
    #[error("invalid inventory id {id:?}: {problem}")]
    ParseId {
        /// The id as stored.
        id: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// An object lacks the fields its identity is made of.
    #[error("object has no {field}")]
    IncompleteObject {
        /// The missing field.
        field: &'static str,
    },
}

impl InventoryError {
    /// A stable short label for metrics and event reasons.
    pub fn label(&self) -> &'static str {
        match self {
            Self::ParseId { .. } => "InvalidInventoryId",
            Self::IncompleteObject { .. } => "IncompleteObject",
        }
    }
}

/// The identity of an object, without its version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId {
    /// Namespace; empty for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// API group; empty for the core group.
    pub group: String,
    /// Kind.
    pub kind: String,
}

impl ObjectId {
    /// The identity of a built or live object.
    pub fn of(object: &DynamicObject) -> Result<Self, InventoryError> {
        let types = object
            .types
            .as_ref()
            .ok_or(InventoryError::IncompleteObject {
                field: "apiVersion",
            })?;
        let name = object
            .metadata
            .name
            .clone()
            .ok_or(InventoryError::IncompleteObject {
                field: "metadata.name",
            })?;
        Ok(Self {
            namespace: object.metadata.namespace.clone().unwrap_or_default(),
            name,
            group: group_of(&types.api_version).to_owned(),
            kind: types.kind.clone(),
        })
    }

    /// Parses an inventory id.
    pub fn parse(id: &str) -> Result<Self, InventoryError> {
        let error = |problem| InventoryError::ParseId {
            id: id.to_owned(),
            problem,
        };
        let (namespace, rest) = id
            .split_once(FIELD_SEPARATOR)
            .ok_or_else(|| error("expected <namespace>_<name>_<group>_<kind>"))?;
        let (rest, kind) = rest
            .rsplit_once(FIELD_SEPARATOR)
            .ok_or_else(|| error("expected <namespace>_<name>_<group>_<kind>"))?;
        let (name, group) = rest
            .rsplit_once(FIELD_SEPARATOR)
            .ok_or_else(|| error("expected <namespace>_<name>_<group>_<kind>"))?;
        let name = name.replace(COLON_TRANSCODED, ":");
        if name.contains(FIELD_SEPARATOR) {
            return Err(error("too many fields"));
        }
        if name.is_empty() || kind.is_empty() {
            return Err(error("the name and the kind are required"));
        }
        Ok(Self {
            namespace: namespace.to_owned(),
            name,
            group: group.to_owned(),
            kind: kind.to_owned(),
        })
    }

    /// The apply stage of the object.
    pub fn stage(&self) -> Stage {
        stage_of(&self.group, &self.kind)
    }

    /// `Kind/namespace/name` (`Kind/name` when cluster-scoped), as in change-set messages.
    pub fn subject(&self) -> String {
        if self.namespace.is_empty() {
            format!("{}/{}", self.kind, self.name)
        } else {
            format!("{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }
}

impl fmt::Display for ObjectId {
    /// Formats the inventory id.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}_{}_{}_{}",
            self.namespace,
            self.name.replace(':', COLON_TRANSCODED),
            self.group,
            self.kind
        )
    }
}

/// The Kustomization that owns objects, as their ownership labels name it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Owner {
    /// The Kustomization's namespace.
    pub namespace: String,
    /// The Kustomization's name.
    pub name: String,
}

impl Owner {
    /// The owner `namespace/name`.
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The group part of an `apiVersion` (`apps/v1` → `apps`, `v1` → ``).
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

/// One inventory entry: an identity and the API version it was applied with.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InventoryEntry {
    /// Identity.
    pub id: ObjectId,
    /// API version, for example `apps/v1`.
    pub version: String,
}

impl InventoryEntry {
    /// The entry of a built object.
    pub fn of(object: &DynamicObject) -> Result<Self, InventoryError> {
        let id = ObjectId::of(object)?;
        let version = object
            .types
            .as_ref()
            .map(|t| t.api_version.clone())
            .unwrap_or_default();
        Ok(Self { id, version })
    }

    /// Parses a stored entry.
    pub fn parse(entry: &ResourceRef) -> Result<Self, InventoryError> {
        Ok(Self {
            id: ObjectId::parse(&entry.id)?,
            version: entry.v.clone(),
        })
    }

    /// The stored form.
    pub fn to_ref(&self) -> ResourceRef {
        ResourceRef {
            id: self.id.to_string(),
            v: self.version.clone(),
        }
    }
}

/// The inventory of a set of objects, entries sorted by id so that an unchanged set gives an
/// identical status.
pub fn inventory_of(objects: &[DynamicObject]) -> Result<ResourceInventory, InventoryError> {
    let entries = objects
        .iter()
        .map(InventoryEntry::of)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(inventory_from(entries))
}

/// The inventory of `entries`, sorted by id (and without repeats) as [`inventory_of`] records it.
pub fn inventory_from(entries: impl IntoIterator<Item = InventoryEntry>) -> ResourceInventory {
    let entries: BTreeSet<ResourceRef> = entries.into_iter().map(|e| e.to_ref()).collect();
    ResourceInventory {
        entries: entries.into_iter().collect(),
        cluster: None,
    }
}

// One staging rule for apply and prune: the apply engine's.
pub use crate::apply::{Stage, stage_of};

/// Kinds in apply order within a stage; kinds not listed go between `PodDisruptionBudget` and
/// the webhook configurations (which are applied last so that they cannot block the rest).
const KIND_ORDER: &[&str] = &[
    "CustomResourceDefinition",
    "Namespace",
    "ClusterRole",
    "ClusterClass",
    "RuntimeClass",
    "PriorityClass",
    "StorageClass",
    "VolumeSnapshotClass",
    "IngressClass",
    "GatewayClass",
    "ClusterRoleBinding",
    "ResourceQuota",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ConfigMap",
    "Secret",
    "Service",
    "LimitRange",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];

/// Kinds applied after every unknown kind.
const LAST_KINDS: &[&str] = &[
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// Rank of a kind in apply order (lower first).
pub fn kind_rank(kind: &str) -> usize {
    if let Some(i) = KIND_ORDER.iter().position(|k| *k == kind) {
        return i;
    }
    match LAST_KINDS.iter().position(|k| *k == kind) {
        Some(i) => KIND_ORDER.len() + 1 + i,
        None => KIND_ORDER.len(),
    }
}

/// Sort key of apply order: stage, kind rank, then group, kind, namespace, name.
pub fn apply_order_key(id: &ObjectId) -> (Stage, usize, &str, &str, &str, &str) {
    (
        id.stage(),
        kind_rank(&id.kind),
        &id.group,
        &id.kind,
        &id.namespace,
        &id.name,
    )
}

/// The entries of the old inventory that are not among the new objects (compared without
/// version, the version kept from the old entry), in prune order: the reverse of apply order,
/// so that webhooks go first and Namespaces and CRDs last.
pub fn diff(
    old: &ResourceInventory,
    new_objects: &[DynamicObject],
) -> Result<Vec<InventoryEntry>, InventoryError> {
    let current: BTreeSet<ObjectId> = new_objects
        .iter()
        .map(ObjectId::of)
        .collect::<Result<_, _>>()?;
    let mut stale: Vec<InventoryEntry> = old
        .entries
        .iter()
        .map(InventoryEntry::parse)
        .filter(|e| e.as_ref().map_or(true, |e| !current.contains(&e.id)))
        .collect::<Result<_, _>>()?;
    stale.sort_by(|a, b| apply_order_key(&b.id).cmp(&apply_order_key(&a.id)));
    stale.dedup_by(|a, b| a.id == b.id);
    Ok(stale)
}

/// The digest of a render, `sha256:<hex>` of the canonical JSON (keys sorted, no spaces) of the
/// objects sorted by inventory id and version; it is independent of document order and
/// formatting, so an unchanged render has an unchanged digest.
pub fn render_digest(objects: &[DynamicObject]) -> Result<String, serde_json::Error> {
    render_digest_keyed(objects, None)
}

/// [`render_digest`], or with `key` an HMAC-SHA256 of the same bytes: a render holding
/// decrypted Secrets is recorded by a digest that cannot be checked against guessed values
/// without the key.
pub fn render_digest_keyed(
    objects: &[DynamicObject],
    key: Option<&[u8]>,
) -> Result<String, serde_json::Error> {
    let mut keyed: Vec<(String, String, Value)> = objects
        .iter()
        .map(|o| {
            let entry = InventoryEntry::of(o).ok();
            let id = entry
                .as_ref()
                .map(|e| (e.id.to_string(), e.version.clone()))
                .unwrap_or_default();
            serde_json::to_value(o).map(|v| (id.0, id.1, v))
        })
        .collect::<Result<_, _>>()?;
    keyed.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let mut hasher = match key {
        None => Hasher::Plain(Sha256::new()),
        Some(key) => Hasher::Keyed(
            <Hmac<Sha256> as KeyInit>::new_from_slice(key).map_err(serde::ser::Error::custom)?,
        ),
    };
    hasher.update(b"[");
    for (i, (_, _, value)) in keyed.iter().enumerate() {
        if i > 0 {
            hasher.update(b",");
        }
        let mut out = String::new();
        write_canonical(value, &mut out)?;
        hasher.update(out.as_bytes());
    }
    hasher.update(b"]");
    let bytes: Vec<u8> = match hasher {
        Hasher::Plain(h) => h.finalize().to_vec(),
        Hasher::Keyed(h) => h.finalize().into_bytes().to_vec(),
    };
    let digest =
        Digest::from_bytes(DigestAlgorithm::Sha256, &bytes).map_err(serde::ser::Error::custom)?;
    Ok(digest.to_string())
}

enum Hasher {
    Plain(Sha256),
    Keyed(Hmac<Sha256>),
}

impl Hasher {
    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Plain(h) => sha2::Digest::update(h, bytes),
            Hasher::Keyed(h) => Mac::update(h, bytes),
        }
    }
}

/// Canonical JSON: object keys sorted by their bytes whatever map type serde_json was built with.
fn write_canonical(value: &Value, out: &mut String) -> Result<(), serde_json::Error> {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<&String, &Value> = map.iter().collect();
            out.push('{');
            for (i, (key, value)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(key)?);
                out.push(':');
                write_canonical(value, out)?;
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out)?;
            }
            out.push(']');
        }
        scalar => out.push_str(&serde_json::to_string(scalar)?),
    }
    Ok(())
}

/// Sorts ids by reverse apply order (the prune order).
pub fn sort_for_prune(ids: &mut [ObjectId]) {
    ids.sort_by(|a, b| apply_order_key(b).cmp(&apply_order_key(a)));
}

#[cfg(test)]
#[path = "inventory_tests.rs"]
mod tests;
