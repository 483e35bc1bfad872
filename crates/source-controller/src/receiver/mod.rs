//! Webhook receivers: the Receiver reconcile publishes a path, the receiver server answers calls
//! to it, and an authentic call makes the Receiver's GitRepositories fetch at once through the
//! controller's own queue (no API write per object).
//!
//! The paths served live in [`Hooks`], filled by the reconcile; the server checks each call's
//! Receiver against the watch's store too, so a deleted Receiver stops being served at once.

pub mod auth;
pub mod reconciler;
pub mod server;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use mooring_api::constants::{MIN_INTERVAL, SOURCE_API_VERSION};
use mooring_api::fields::{RECEIVER_REFUSED, refused};
use mooring_api::receiver::WEBHOOK_PATH_PREFIX;
use mooring_api::{GitRepository, Receiver, ReceiverResource, ReceiverSpec, ReceiverType};
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc::UnboundedSender;

/// The webhook path of the Receiver `namespace/name` whose token is `token`:
/// `/hook/<sha256 hex of token + name + namespace>`, as Flux computes it.
pub fn webhook_path(token: &[u8], name: &str, namespace: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(token);
    hasher.update(name.as_bytes());
    hasher.update(namespace.as_bytes());
    format!("{WEBHOOK_PATH_PREFIX}{}", hex::encode(hasher.finalize()))
}

/// Why a Receiver's spec cannot be served as written: the condition reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The condition reason.
    pub reason: &'static str,
    /// The message, naming the field.
    pub message: String,
}

/// Checks what the schema cannot: refused fields, types and kinds, `events` with a type whose
/// calls name no event, and namespace-local resources. `namespace` is the Receiver's.
pub fn validate(spec: &ReceiverSpec, namespace: &str) -> Result<(), Refusal> {
    use mooring_api::conditions::reasons::RECONCILIATION_FAILED;
    let refuse = |message: String| {
        Err(Refusal {
            reason: RECONCILIATION_FAILED,
            message,
        })
    };
    if let Some(field) = serde_json::to_value(spec)
        .ok()
        .and_then(|json| refused(&json, RECEIVER_REFUSED))
    {
        return refuse(field.message());
    }
    if !spec.type_.is_implemented() {
        return refuse(format!(
            "spec.type '{}' is not supported: only git servers' webhooks (generic, \
             generic-hmac, github, gitlab, gitea, forgejo, bitbucket) are implemented",
            spec.type_.as_str()
        ));
    }
    // The calls of these types carry no event name (`auth::check` gives `Event(None)`): a
    // non-empty `events` would let no call through, and the Receiver would never fetch.
    if matches!(
        spec.type_,
        ReceiverType::Generic | ReceiverType::GenericHmac
    ) && !spec.events.is_empty()
    {
        return refuse(format!(
            "spec.events is not supported with spec.type '{}': its calls name no event, so \
             none would match and nothing would ever be fetched; remove spec.events",
            spec.type_.as_str()
        ));
    }
    match spec.interval() {
        Err(error) => return refuse(format!("spec.interval: {error}")),
        // The API server refuses these; one stored before that rule would make a loop.
        Ok(interval) if interval < MIN_INTERVAL => {
            return refuse(format!("spec.interval must be at least {MIN_INTERVAL:?}"));
        }
        Ok(_) => {}
    }
    if spec.resources.is_empty() {
        return refuse("spec.resources is empty: name at least one GitRepository".to_string());
    }
    for (i, resource) in spec.resources.iter().enumerate() {
        let at = format!("spec.resources[{i}]");
        if resource.kind != "GitRepository" {
            return refuse(format!(
                "{at}.kind '{}' is not supported: only GitRepository can be triggered",
                resource.kind
            ));
        }
        if let Some(version) = resource
            .api_version
            .as_deref()
            .filter(|v| *v != SOURCE_API_VERSION)
        {
            return refuse(format!(
                "{at}.apiVersion '{version}' is not supported: use {SOURCE_API_VERSION}"
            ));
        }
        if let Some(other) = resource
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty() && *n != namespace)
        {
            return refuse(format!(
                "{at}.namespace '{other}' is not allowed: a Receiver triggers objects in its \
                 own namespace only"
            ));
        }
        if resource.match_labels.is_empty() == (resource.name == "*") {
            return refuse(format!(
                "{at}: give either a name, or name '*' with matchLabels"
            ));
        }
    }
    Ok(())
}

/// Whether `repo` is one of `resources`.
pub fn selects(resources: &[ReceiverResource], repo: &GitRepository) -> bool {
    resources.iter().any(|r| {
        if r.match_labels.is_empty() {
            repo.name_any() == r.name
        } else {
            let labels = repo.labels();
            r.match_labels
                .iter()
                .all(|(k, v)| labels.get(k).is_some_and(|have| have == v))
        }
    })
}

/// One served path.
#[derive(Clone)]
pub struct Hook {
    /// The Receiver.
    pub receiver: ObjectRef<Receiver>,
    /// Its uid: a Receiver deleted and created again under the same name is another one.
    pub uid: Option<String>,
    /// How calls are authenticated.
    pub type_: ReceiverType,
    /// The token (never logged: [`Hook`] has no `Debug`).
    pub token: Vec<u8>,
    /// The events that trigger a fetch.
    pub events: Vec<String>,
    /// The GitRepositories to fetch.
    pub resources: Vec<ReceiverResource>,
}

/// The paths served, by path. Filled by the Receiver reconcile, read by the server.
#[derive(Clone, Default)]
pub struct Hooks {
    by_path: Arc<RwLock<HashMap<String, Hook>>>,
}

impl Hooks {
    /// Serves `hook` at `path`, replacing whatever path its Receiver had before.
    pub fn publish(&self, path: String, hook: Hook) {
        let mut map = self.by_path.write().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, h| h.receiver != hook.receiver);
        map.insert(path, hook);
    }

    /// Stops serving the Receiver's path.
    pub fn withdraw(&self, receiver: &ObjectRef<Receiver>) {
        let mut map = self.by_path.write().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, h| &h.receiver != receiver);
    }

    /// The hook at `path`, if any.
    pub fn find(&self, path: &str) -> Option<Hook> {
        let map = self.by_path.read().unwrap_or_else(PoisonError::into_inner);
        map.get(path).cloned()
    }
}

/// Asks the GitRepository controller to reconcile objects now, without an API write.
#[derive(Clone)]
pub struct Refresh {
    sender: UnboundedSender<ObjectRef<GitRepository>>,
}

impl Refresh {
    /// The sending half; the stream goes to the controller's `reconcile_on`.
    pub fn channel() -> (
        Refresh,
        tokio_stream::wrappers::UnboundedReceiverStream<ObjectRef<GitRepository>>,
    ) {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        (
            Refresh { sender },
            tokio_stream::wrappers::UnboundedReceiverStream::new(receiver),
        )
    }

    /// Queues a reconcile of every GitRepository in `namespace` that `resources` select, after
    /// forgetting the shared listings of their URLs (so the first of them lists again, and the
    /// others share that listing); returns how many.
    pub fn select_and_queue(
        &self,
        repositories: &Store<GitRepository>,
        namespace: &str,
        resources: &[ReceiverResource],
        listings: &crate::git::RefListings,
    ) -> usize {
        let selected: Vec<_> = repositories
            .state()
            .into_iter()
            .filter(|r| r.namespace().as_deref() == Some(namespace) && selects(resources, r))
            .collect();
        let urls: std::collections::BTreeSet<&str> =
            selected.iter().map(|r| r.spec.url.as_str()).collect();
        for url in urls {
            listings.invalidate_url(url);
        }
        let mut queued = 0;
        for repo in selected {
            // The controller stopping closes the channel: nothing left to wake.
            if self.sender.send(ObjectRef::from_obj(&*repo)).is_ok() {
                queued += 1;
            }
        }
        queued
    }
}

/// The labels a `matchLabels` selector asks for, for messages.
pub fn describe(resources: &[ReceiverResource]) -> String {
    resources
        .iter()
        .map(|r| {
            if r.match_labels.is_empty() {
                format!("GitRepository/{}", r.name)
            } else {
                let labels: BTreeMap<_, _> = r.match_labels.iter().collect();
                format!("GitRepository with labels {labels:?}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> ReceiverSpec {
        serde_json::from_value(json).expect("spec")
    }

    #[test]
    fn the_path_hashes_token_name_and_namespace_in_that_order() {
        // `printf %s s3cretwebappapps | sha256sum`
        assert_eq!(
            webhook_path(b"s3cret", "webapp", "apps"),
            "/hook/39093e317d998d5bf3bfa1b17ff9db9f9870032f1270789bd0c3c1df0b76e7da"
        );
    }

    #[test]
    fn refusals_name_the_field() {
        let base = serde_json::json!({"type": "github", "secretRef": {"name": "s"},
            "resources": [{"kind": "GitRepository", "name": "app"}]});
        assert_eq!(validate(&spec(base.clone()), "apps"), Ok(()));
        let cases = [
            (
                "resourceFilter",
                serde_json::json!("true"),
                "spec.resourceFilter",
            ),
            ("type", serde_json::json!("harbor"), "spec.type 'harbor'"),
            (
                "resources",
                serde_json::json!([{"kind": "Kustomization", "name": "app"}]),
                "spec.resources[0].kind 'Kustomization'",
            ),
            (
                "resources",
                serde_json::json!([{"kind": "GitRepository", "name": "app", "namespace": "other"}]),
                "spec.resources[0].namespace 'other'",
            ),
            (
                "resources",
                serde_json::json!([{"kind": "GitRepository", "name": "app", "matchLabels": {"a": "b"}}]),
                "spec.resources[0]: give either",
            ),
        ];
        for (field, value, expected) in cases {
            let mut json = base.clone();
            json[field] = value;
            let refusal = validate(&spec(json), "apps").expect_err(field);
            assert!(refusal.message.starts_with(expected), "{}", refusal.message);
        }
    }

    #[test]
    fn an_interval_under_a_second_is_refused_like_the_other_kinds() {
        let with = |interval: &str| {
            spec(serde_json::json!({"type": "github", "interval": interval,
                "secretRef": {"name": "s"},
                "resources": [{"kind": "GitRepository", "name": "app"}]}))
        };
        for short in ["0s", "500ms"] {
            let refusal = validate(&with(short), "apps").expect_err(short);
            assert_eq!(refusal.reason, "ReconciliationFailed");
            assert_eq!(refusal.message, "spec.interval must be at least 1s");
        }
        assert_eq!(validate(&with("1s"), "apps"), Ok(()));
    }

    #[test]
    fn events_are_refused_with_the_types_whose_calls_name_none() {
        let with = |type_: &str, events: serde_json::Value| {
            spec(serde_json::json!({"type": type_, "events": events,
                "secretRef": {"name": "s"},
                "resources": [{"kind": "GitRepository", "name": "app"}]}))
        };
        for type_ in ["generic", "generic-hmac"] {
            assert_eq!(
                validate(&with(type_, serde_json::json!([])), "apps"),
                Ok(())
            );
            let refusal =
                validate(&with(type_, serde_json::json!(["push"])), "apps").expect_err(type_);
            assert_eq!(refusal.reason, "ReconciliationFailed");
            assert!(
                refusal.message.starts_with(&format!(
                    "spec.events is not supported with spec.type '{type_}'"
                )),
                "{}",
                refusal.message
            );
        }
        for type_ in ["github", "gitlab", "gitea", "forgejo", "bitbucket"] {
            assert_eq!(
                validate(&with(type_, serde_json::json!(["push"])), "apps"),
                Ok(()),
                "{type_}"
            );
        }
    }

    #[test]
    fn selection_by_name_or_labels() {
        let repo: GitRepository = serde_json::from_value(serde_json::json!({
            "apiVersion": "source.mooring.dev/v1", "kind": "GitRepository",
            "metadata": {"name": "app", "namespace": "apps", "labels": {"team": "a"}},
            "spec": {"url": "https://example.com/r.git", "interval": "1m"}}))
        .expect("repo");
        let by_name: Vec<ReceiverResource> =
            serde_json::from_value(serde_json::json!([{"kind": "GitRepository", "name": "app"}]))
                .expect("resources");
        assert!(selects(&by_name, &repo));
        let other_labels: Vec<ReceiverResource> = serde_json::from_value(
            serde_json::json!([{"kind": "GitRepository", "name": "*", "matchLabels": {"team": "b"}}]),
        )
        .expect("resources");
        assert!(!selects(&other_labels, &repo));
    }
}
