//! Server-side apply of a rendered revision, and deletion of the objects that left it.
//!
//! # Apply
//! [`apply_all`] applies in three [`Stage`]s: cluster definitions (CRDs, Namespaces,
//! ClusterRoles), then `*Class` kinds and Roles, then the rest. Within a stage objects are
//! applied in parallel (bounded by [`ApplyOptions::concurrency`]) with server-side apply,
//! field manager `mooring-kustomize-controller`, forcing ownership.
//!
//! Validation comes first: every object is dry-run (server-side, forced) **before the first
//! write of the whole apply**, in parallel, so one invalid object leaves the cluster untouched.
//! The limit: an object can only be dry-run once what it needs exists. Those objects are
//! dry-run again right before their own stage is written, after earlier stages wrote:
//! - objects of a kind that a CRD in the same set defines (the CRD is first waited on until
//!   Established, by watching it, bounded by [`ApplyOptions::wait_timeout`]);
//! - objects refused because their namespace is missing, when that Namespace is in the set;
//! - RoleBindings/ClusterRoleBindings refused by RBAC (escalation check under impersonation)
//!   when the Role/ClusterRole they bind is in the set.
//!
//! So an invalid custom resource of a new CRD is only found after stage 1 wrote; the error
//! then carries what was applied before it ([`ApplyError::Partial`]).
//!
//! # Sets that only create
//! The dry-run guards against a half-applied set: an update that was written cannot be taken
//! back. A create can: deleting the object restores the cluster. So when every object to
//! write is one the caller knows does not exist ([`ApplyOptions::absent`]: the live view
//! holds no such managed object), there is no dry run: the objects are applied stage by stage
//! and, when one fails, every object this apply created is deleted again (uid precondition)
//! before the error is returned, so the cluster is left as it was: one request per object
//! instead of two, the case of every first apply. The limit: an object the apply finds
//! existing after all (created by someone else, without our labels, so outside the view) is
//! adopted as any existing object is and not deleted by the undo, so if another object of the
//! set fails, that one keeps the applied fields. A set that mixes creates with updates is
//! dry-run whole, as above.
//!
//! # Created, Configured or Unchanged
//! The dry-run of an object that does not exist returns no resourceVersion: **Created**. The
//! API server does not write a server-side apply that changes nothing (the resourceVersion
//! stays), so an apply returning the dry-run's resourceVersion is **Unchanged**, any other is
//! **Configured**. This costs two requests per applied object (dry-run + apply) and no GET.
//! Objects for which the caller's `unchanged` returns true cost no request at all.
//!
//! # Per-object annotations
//! `kustomize.mooring.dev/ssa`: `Override` (default) takes over fields set by kubectl-like
//! managers first so that undeclared ones are removed ([`takeover`]); `Merge` leaves them;
//! `IfNotPresent` creates a missing object and otherwise reports it Skipped; `Ignore` (and
//! `reconcile: disabled`) is never applied nor pruned. With [`ApplyOptions::force`] or
//! `kustomize.mooring.dev/force: enabled`, an object whose dry-run is refused for an immutable
//! field is deleted (foreground), waited on until gone, and created again (**Recreated**).

mod changeset;
mod discovery;
mod error;
mod object;
mod plan;
mod prune;
mod refusal;
mod run;
mod stages;
pub mod takeover;

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, stream};

use mooring_api::constants::KUSTOMIZE_FIELD_MANAGER;

use crate::inventory::ObjectId;

pub use changeset::{Action, ChangeSet, ChangeSetEntry, ObjectKey, Observed, split_api_version};
pub use discovery::{KindCache, ResolvedKind};
pub use error::ApplyError;
pub use plan::{SsaMode, place, ssa_mode};
pub use prune::{Keep, delete_all, may_delete, prune};
pub use run::apply_all;
pub use stages::{CrdKinds, Stage, stage_of};

/// How [`apply_all`], [`prune`] and [`delete_all`] behave.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Server-side apply field manager.
    pub field_manager: String,
    /// Namespace for namespaced objects that have none (the Kustomization's namespace, or its
    /// `targetNamespace`).
    pub default_namespace: String,
    /// `spec.force`: recreate every object whose change hits an immutable field.
    pub force: bool,
    /// Most requests in flight at once per stage.
    pub concurrency: usize,
    /// Bound of each wait: CRD establishment, and deletion before recreation or on
    /// `WaitForTermination`.
    pub wait_timeout: Duration,
    /// Discovery cache; clone one cache into every options value to share it.
    pub kinds: KindCache,
    /// Objects the caller knows do not exist. When every object to write is one of them, the
    /// set is created without dry runs (see the module doc).
    pub absent: Arc<BTreeSet<ObjectId>>,
}

impl ApplyOptions {
    /// Defaults: Mooring's field manager, no force, 8 requests in flight, 60 s waits, a fresh
    /// discovery cache.
    pub fn new(default_namespace: impl Into<String>) -> Self {
        Self {
            field_manager: KUSTOMIZE_FIELD_MANAGER.to_string(),
            default_namespace: default_namespace.into(),
            force: false,
            concurrency: 8,
            wait_timeout: Duration::from_secs(60),
            kinds: KindCache::new(),
            absent: Arc::default(),
        }
    }
}

/// Runs `futures` with at most `limit` in flight; results in input order.
///
/// Callers collect their futures into a Vec first: a lazy `map` closure kept alive across the
/// await would make the caller's future lose `Send` (a higher-ranked lifetime limitation).
async fn bounded<F: Future>(futures: Vec<F>, limit: usize) -> Vec<F::Output> {
    stream::iter(futures).buffered(limit.max(1)).collect().await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reconciler runs these on a multi-threaded runtime, so their futures must be Send.
    #[allow(dead_code)]
    fn futures_are_send(client: &kube::Client, opts: &ApplyOptions) {
        fn send<T: Send>(_: T) {}
        send(apply_all(client, Vec::new(), opts, &|_| false));
        let owner = crate::inventory::Owner::new("b", "a");
        send(prune(client, Vec::new(), &owner, opts));
        send(delete_all(client, Vec::new(), &owner, opts, true));
    }
}
