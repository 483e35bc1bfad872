//! The observed state of a Kustomization.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The observed state of a Kustomization.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": -1}))]
pub struct KustomizationStatus {
    /// The last generation of the spec that was fully handled (ready, or stalled on an error
    /// that needs a spec change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Current state of the object. `Ready` summarizes it; `Reconciling` and `Stalled` tell
    /// whether work is in progress or blocked. `Healthy` appears once a pass finds a health
    /// check pending (`Unknown`) or failed or timed out (`False`); from then on it is kept up
    /// to date: each such pass sets it again, and a pass that ends Ready sets it `True`, or
    /// removes it when there is nothing left to check (no `wait`, no `healthChecks`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// Source revision of the last reconciliation that applied everything and passed its health
    /// checks, for example `main@sha1:<commit>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_revision: Option<String>,

    /// Kept for compatibility with Flux's schema; Mooring never writes it (GitRepository
    /// artifacts have no origin revision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_origin_revision: Option<String>,

    /// Source revision of the last reconciliation that was attempted, whatever its outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_revision: Option<String>,

    /// The last value of the `reconcile.mooring.dev/requestedAt` annotation that was handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,

    /// The objects applied by the last reconciliation; those that disappear from the manifests
    /// are pruned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<ResourceInventory>,

    /// The five most recent distinct renders applied, newest first, one entry per digest of
    /// the built manifests. A pass that applies a render other than the newest entry's (another
    /// digest, or the same with another source revision) writes its entry, `Ready` or
    /// `HealthPending`; the pass that then finds its health checks passing turns it `Ready`.
    /// Other passes write none. Failed passes are not recorded: they show in the conditions
    /// and in `lastAttemptedRevision`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Snapshot>,
}

/// The set of objects a Kustomization manages.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ResourceInventory {
    /// One entry per object.
    pub entries: Vec<ResourceRef>,

    /// The cluster the entries' objects are on: `local` (this cluster), or the server URL of
    /// the `spec.kubeConfig` cluster they were applied to (a URL written differently, such as
    /// another host name or port for the same cluster, counts as another cluster). Absent in an
    /// inventory written before Mooring recorded it, which is taken to be on the cluster the
    /// spec names. When the spec names another cluster than this, the objects are neither
    /// pruned nor deleted on the cluster named now (the same ids there are other objects): a
    /// pass applies there from an empty inventory and leaves the old objects where they are,
    /// untracked from then on (they keep their labels), with a `PruneFailed` Warning; a
    /// deletion before such a pass deletes nothing and waits, with the same Warning, until the
    /// spec names their cluster again or `suspend: true` or `deletionPolicy: Orphan` leaves
    /// them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

/// [`ResourceInventory::cluster`] of objects on the cluster the controller runs in.
pub const LOCAL_CLUSTER: &str = "local";

/// One object of an inventory.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
pub struct ResourceRef {
    /// Identity of the object, `<namespace>_<name>_<group>_<kind>`; the namespace is empty for
    /// cluster-scoped objects and the group is empty for the core group.
    pub id: String,

    /// API version of the object, for example `v1` or `apps/v1`.
    pub v: String,
}

/// One render that was applied, in `status.history`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// Digest of the built manifests, `sha256:<hex>`: the same digest means the same
    /// manifests.
    pub digest: String,

    /// When this render was first applied.
    pub first_reconciled: Time,

    /// When this entry was last written: the render's last apply, or the pass that found its
    /// health checks passing.
    pub last_reconciled: Time,

    /// How long the pass that last applied this render took, in seconds with three decimals,
    /// for example `1.500s`.
    pub last_reconciled_duration: String,

    /// `Ready` (applied, and healthy when health is checked) or `HealthPending` (applied,
    /// health checks still pending).
    pub last_reconciled_status: String,

    /// How many times this render was applied (see `history`); the pass that finds its health
    /// checks passing does not count.
    pub total_reconciliations: i64,

    /// The source `revision` that was applied, and who made and signed it, from the source
    /// artifact's metadata: `git.author`, `git.authorTime`, `git.committer`, `git.commitTime`,
    /// `git.tagger`, and with a verifying source `verify.mode`, `verify.signer.type`,
    /// `verify.signer.fingerprint` and `verify.signer.identity`; and when the source saw the
    /// revision and had its artifact ready, `source.seenTime` and `source.readyTime`
    /// (`firstReconciled` is when this render was first applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}
