//! What an apply or a prune did to each object: the change set reported in events and logs.

use std::fmt;

use kube::api::DynamicObject;

use crate::health::Health;
use crate::inventory::{InventoryEntry, ObjectId};
use crate::live::LiveObject;

/// What the apply engine addresses: an object's identity ([`ObjectId`]) plus the version to
/// send requests with. Maps of the reconciler are keyed by [`ObjectKey::id`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// API group, empty for the core group.
    pub group: String,
    /// API version within the group.
    pub version: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Namespace, None for cluster-scoped objects.
    pub namespace: Option<String>,
    /// Object name.
    pub name: String,
}

impl ObjectKey {
    /// The key of `obj` as written (no namespace defaulting); None when apiVersion, kind or
    /// name is missing.
    pub fn of(obj: &DynamicObject) -> Option<Self> {
        let types = obj.types.as_ref()?;
        let name = obj.metadata.name.clone().filter(|n| !n.is_empty())?;
        if types.kind.is_empty() || types.api_version.is_empty() {
            return None;
        }
        let (group, version) = split_api_version(&types.api_version);
        Some(Self {
            group: group.to_string(),
            version: version.to_string(),
            kind: types.kind.clone(),
            namespace: obj.metadata.namespace.clone().filter(|n| !n.is_empty()),
            name,
        })
    }

    /// The key of an inventory entry (whose `v` is an apiVersion such as `apps/v1`).
    pub fn of_entry(entry: &InventoryEntry) -> Self {
        let (_, version) = split_api_version(&entry.version);
        Self {
            group: entry.id.group.clone(),
            version: version.to_string(),
            kind: entry.id.kind.clone(),
            namespace: (!entry.id.namespace.is_empty()).then(|| entry.id.namespace.clone()),
            name: entry.id.name.clone(),
        }
    }

    /// The object's identity, without the version.
    pub fn id(&self) -> ObjectId {
        ObjectId {
            namespace: self.namespace.clone().unwrap_or_default(),
            name: self.name.clone(),
            group: self.group.clone(),
            kind: self.kind.clone(),
        }
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// Splits `apps/v1` into (`apps`, `v1`) and `v1` into (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

impl fmt::Display for ObjectKey {
    /// `Kind/namespace/name`, or `Kind/name` for cluster-scoped objects.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// The object did not exist and was created.
    Created,
    /// The object existed and the apply changed it.
    Configured,
    /// The object already matched: nothing was written.
    Unchanged,
    /// The object was left alone on purpose (`ssa: Ignore`, `reconcile: disabled`,
    /// `ssa: IfNotPresent` on an existing object, or a prune guard).
    Skipped,
    /// The object was deleted.
    Deleted,
    /// An immutable field changed, so the object was deleted and created again.
    Recreated,
}

impl Action {
    /// The lowercase word used in change-set lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Configured => "configured",
            Self::Unchanged => "unchanged",
            Self::Skipped => "skipped",
            Self::Deleted => "deleted",
            Self::Recreated => "recreated",
        }
    }

    /// Whether the cluster was written to.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Self::Created | Self::Configured | Self::Deleted | Self::Recreated
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of a change set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSetEntry {
    /// The object.
    pub key: ObjectKey,
    /// What happened to it.
    pub action: Action,
    /// What the server returned after our write, when it returned the object.
    pub observed: Option<Observed>,
}

/// The object as the API server returned it after our write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Its metadata, as the live view would show it.
    pub live: LiveObject,
    /// Its health at that moment.
    pub health: Health,
}

impl fmt::Display for ChangeSetEntry {
    /// `Deployment/ns/name configured`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.key, self.action)
    }
}

/// Everything an apply or prune did, in the order the objects were handled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// One entry per object.
    pub entries: Vec<ChangeSetEntry>,
}

impl ChangeSet {
    /// Adds one entry.
    pub fn push(&mut self, key: ObjectKey, action: Action) {
        self.entries.push(ChangeSetEntry {
            key,
            action,
            observed: None,
        });
    }

    /// The action recorded for `key`, if any.
    pub fn action_of(&self, key: &ObjectKey) -> Option<Action> {
        self.entries
            .iter()
            .find(|e| &e.key == key)
            .map(|e| e.action)
    }

    /// Whether any entry wrote to the cluster.
    pub fn has_writes(&self) -> bool {
        self.entries.iter().any(|e| e.action.is_write())
    }

    /// Entries that wrote to the cluster, for events (unchanged and skipped lines are noise there).
    pub fn writes(&self) -> impl Iterator<Item = &ChangeSetEntry> {
        self.entries.iter().filter(|e| e.action.is_write())
    }

    /// Appends all entries of `other`.
    pub fn extend(&mut self, other: ChangeSet) {
        self.entries.extend(other.entries);
    }
}

impl fmt::Display for ChangeSet {
    /// One `Kind/ns/name action` line per entry.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, entry) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{entry}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ns: Option<&str>) -> ObjectKey {
        ObjectKey {
            group: "apps".into(),
            version: "v1".into(),
            kind: "Deployment".into(),
            namespace: ns.map(str::to_string),
            name: "web".into(),
        }
    }

    #[test]
    fn change_set_lines_name_kind_namespace_and_action() {
        let mut set = ChangeSet::default();
        set.push(key(Some("apps")), Action::Configured);
        set.push(key(None), Action::Created);
        assert_eq!(
            set.to_string(),
            "Deployment/apps/web configured\nDeployment/web created"
        );
        assert!(set.has_writes());
        assert_eq!(set.action_of(&key(None)), Some(Action::Created));
    }

    #[test]
    fn api_versions_split_into_group_and_version() {
        assert_eq!(split_api_version("v1"), ("", "v1"));
        assert_eq!(split_api_version("apps/v1"), ("apps", "v1"));
        assert_eq!(key(None).api_version(), "apps/v1");
    }

    #[test]
    fn inventory_entries_give_keys_with_the_bare_version() {
        let entry = InventoryEntry {
            id: ObjectId::parse("default_reader_rbac.authorization.k8s.io_Role").expect("id"),
            version: "rbac.authorization.k8s.io/v1".into(),
        };
        let key = ObjectKey::of_entry(&entry);
        assert_eq!(key.version, "v1");
        assert_eq!(key.api_version(), "rbac.authorization.k8s.io/v1");
        assert_eq!(key.id(), entry.id);
        let cluster = InventoryEntry {
            id: ObjectId::parse("_apps__Namespace").expect("id"),
            version: "v1".into(),
        };
        assert_eq!(ObjectKey::of_entry(&cluster).namespace, None);
        assert_eq!(ObjectKey::of_entry(&cluster).api_version(), "v1");
    }
}
