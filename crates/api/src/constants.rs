//! Names shared by the controllers and by users: API groups, annotations, labels, the finalizer
//! and the server-side apply field managers.

/// API group of the source kinds (GitRepository).
pub const SOURCE_GROUP: &str = "source.mooring.dev";

/// API group of the Kustomization kind.
pub const KUSTOMIZE_GROUP: &str = "kustomize.mooring.dev";

/// The only served and stored version of both groups.
pub const API_VERSION: &str = "v1";

/// `apiVersion` of GitRepository objects.
pub const SOURCE_API_VERSION: &str = "source.mooring.dev/v1";

/// `apiVersion` of Kustomization objects.
pub const KUSTOMIZE_API_VERSION: &str = "kustomize.mooring.dev/v1";

/// Annotation whose (any, changing) value asks for a reconcile now; the value handled last is
/// echoed in `status.lastHandledReconcileAt`.
pub const RECONCILE_REQUESTED_AT_ANNOTATION: &str = "reconcile.mooring.dev/requestedAt";

/// Label stamped on every object applied by a Kustomization: the Kustomization's name.
pub const KUSTOMIZE_NAME_LABEL: &str = "kustomize.mooring.dev/name";

/// Label stamped on every object applied by a Kustomization: the Kustomization's namespace.
pub const KUSTOMIZE_NAMESPACE_LABEL: &str = "kustomize.mooring.dev/namespace";

/// Per-object annotation: `disabled` keeps the object when it leaves the manifests.
pub const PRUNE_ANNOTATION: &str = "kustomize.mooring.dev/prune";

/// Per-object annotation: `disabled` stops both applying and pruning the object.
pub const RECONCILE_ANNOTATION: &str = "kustomize.mooring.dev/reconcile";

/// Per-object annotation choosing the apply behaviour: `Override` (default), `Merge`,
/// `IfNotPresent` or `Ignore`.
pub const SSA_ANNOTATION: &str = "kustomize.mooring.dev/ssa";

/// Per-object annotation: `enabled` recreates the object when an immutable field changed.
pub const FORCE_ANNOTATION: &str = "kustomize.mooring.dev/force";

/// Per-object annotation (or label): `disabled` leaves the object out of post-build variable
/// substitution.
pub const SUBSTITUTE_ANNOTATION: &str = "kustomize.mooring.dev/substitute";

/// Value of [`PRUNE_ANNOTATION`] and [`RECONCILE_ANNOTATION`] that turns the behaviour off.
pub const DISABLED_VALUE: &str = "disabled";

/// Value of [`FORCE_ANNOTATION`] that turns recreation on.
pub const ENABLED_VALUE: &str = "enabled";

/// [`SSA_ANNOTATION`] value: apply and take ownership of every field (the default).
pub const SSA_OVERRIDE: &str = "Override";

/// [`SSA_ANNOTATION`] value: apply, but keep fields that other managers set.
pub const SSA_MERGE: &str = "Merge";

/// [`SSA_ANNOTATION`] value: create the object when missing, never update it.
pub const SSA_IF_NOT_PRESENT: &str = "IfNotPresent";

/// [`SSA_ANNOTATION`] value: neither apply nor prune the object.
pub const SSA_IGNORE: &str = "Ignore";

/// Finalizer both controllers put on the objects they own, so that deletion can clean up.
pub const FINALIZER: &str = "finalizers.mooring.dev";

/// Server-side apply field manager of the source controller.
pub const SOURCE_FIELD_MANAGER: &str = "mooring-source-controller";

/// Server-side apply field manager of the kustomize controller.
pub const KUSTOMIZE_FIELD_MANAGER: &str = "mooring-kustomize-controller";

/// Default `spec.timeout` of a GitRepository.
pub const DEFAULT_GIT_TIMEOUT: &str = "60s";

/// Branch checked out when a GitRepository has no `spec.ref`.
pub const DEFAULT_GIT_BRANCH: &str = "master";

/// Regular expression every duration field must match (units ms, s, m, h).
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";

/// Regular expression of the GitRepository timeout (units ms, s, m; no hours).
pub const SHORT_DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$";

/// Regular expression of a GitRepository URL.
pub const GIT_URL_PATTERN: &str = r"^(http|https|ssh)://.*$";

/// The shortest `interval` (and Kustomization `retryInterval`) accepted: shorter ones would
/// reconcile in a loop. The schema refuses them; the controllers refuse objects stored before.
pub const MIN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
