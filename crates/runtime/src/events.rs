//! Kubernetes Events about reconciled objects.
//!
//! [`Recorder`] publishes `events.k8s.io/v1` Events and folds a repeat of the same Event (same
//! object, type, reason, action and reporter) within [`FOLD_WITHIN`] into the first one's
//! series, as kube's recorder does. It remembers only what a repeat needs (the Event's name and
//! namespace, a count, a time: ~150 bytes); kube's keeps each whole Event, 3.3 MiB per
//! controller with 1,000 objects in the benchmark, and looks at every one of them on every
//! publish.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource};

pub use kube::runtime::events::{Event, EventType, Reporter};

/// How long a published Event takes its repeats into its series.
pub const FOLD_WITHIN: Duration = Duration::from_secs(6 * 60);
/// How often the remembered Events are swept of those older than [`FOLD_WITHIN`].
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Publishes Events; clones share what was published. See the module doc.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    reporter: Reporter,
    recent: Arc<Mutex<Recent>>,
}

/// The Events published in the last [`FOLD_WITHIN`], by a 128-bit digest of what makes two
/// Events the same.
struct Recent {
    hashers: (RandomState, RandomState),
    published: HashMap<u128, Published>,
    swept: Instant,
}

/// What a repeat of an Event needs of it.
struct Published {
    namespace: Box<str>,
    name: Box<str>,
    /// Occurrences so far (1 for an Event without a series).
    count: i32,
    last: Instant,
}

impl Recorder {
    /// A recorder publishing as `reporter` (its controller name, and its instance, by default the
    /// controller name).
    pub fn new(client: Client, reporter: Reporter) -> Recorder {
        Recorder {
            client,
            reporter,
            recent: Arc::new(Mutex::new(Recent {
                hashers: (RandomState::new(), RandomState::new()),
                published: HashMap::new(),
                swept: Instant::now(),
            })),
        }
    }

    /// How many Events are remembered for folding (for tests and memory accounting).
    pub fn remembered(&self) -> usize {
        self.recent().published.len()
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn instance(&self) -> &str {
        self.reporter
            .instance
            .as_deref()
            .unwrap_or(&self.reporter.controller)
    }

    /// Publishes `event` about `regarding`: a new Event, or, when the same one was published less
    /// than [`FOLD_WITHIN`] ago, one more occurrence in that Event's series. An Event the API
    /// server no longer has (it expires them) is published anew.
    pub async fn publish(
        &self,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let now = Instant::now();
        let (key, repeat) = {
            let mut recent = self.recent();
            if now.duration_since(recent.swept) >= SWEEP_EVERY {
                recent
                    .published
                    .retain(|_, p| now.duration_since(p.last) < FOLD_WITHIN);
                recent.swept = now;
            }
            let key = recent.key(self, event, regarding);
            let repeat = recent
                .published
                .get(&key)
                .filter(|p| now.duration_since(p.last) < FOLD_WITHIN)
                .map(|p| (p.namespace.clone(), p.name.clone(), p.count + 1));
            (key, repeat)
        };
        if let Some((namespace, name, count)) = repeat {
            let series = serde_json::json!({"series": {
                "count": count,
                "lastObservedTime": MicroTime(jiff::Timestamp::now()),
            }});
            let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), &namespace);
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&series))
                .await
            {
                Ok(_) => {
                    if let Some(p) = self.recent().published.get_mut(&key) {
                        p.count = count;
                        p.last = now;
                    }
                    return Ok(());
                }
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let created = self.new_event(event, regarding);
        let namespace = created.metadata.namespace.clone().unwrap_or_default();
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), &namespace);
        api.create(&PostParams::default(), &created).await?;
        let name = created.metadata.name.unwrap_or_default();
        self.recent().published.insert(
            key,
            Published {
                namespace: namespace.into(),
                name: name.into(),
                count: 1,
                last: now,
            },
        );
        Ok(())
    }

    /// The Event to create: named after the object and the time, in the object's namespace
    /// (`default` for a cluster-scoped one).
    fn new_event(&self, event: &Event, regarding: &ObjectReference) -> K8sEvent {
        let now = jiff::Timestamp::now();
        let object = regarding
            .name
            .as_deref()
            .unwrap_or(&self.reporter.controller);
        K8sEvent {
            metadata: ObjectMeta {
                name: Some(format!("{object}.{:x}", now.as_nanosecond())),
                namespace: Some(
                    regarding
                        .namespace
                        .clone()
                        .unwrap_or_else(|| "default".to_owned()),
                ),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            note: event.note.clone(),
            type_: Some(
                match event.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .to_owned(),
            ),
            regarding: Some(regarding.clone()),
            related: event.secondary.clone(),
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(self.instance().to_owned()),
            ..K8sEvent::default()
        }
    }
}

impl Recent {
    /// The digest of what makes two Events the same: the reporter, the type, reason and action,
    /// and the object (and related object) they are about. The note is not part of it (callers
    /// put a digest of it in the action, see [`action_for`]).
    fn key(&self, recorder: &Recorder, event: &Event, regarding: &ObjectReference) -> u128 {
        let digest = |state: &RandomState| {
            let mut hasher = state.build_hasher();
            recorder.reporter.controller.hash(&mut hasher);
            recorder.instance().hash(&mut hasher);
            matches!(event.type_, EventType::Warning).hash(&mut hasher);
            event.reason.hash(&mut hasher);
            event.action.hash(&mut hasher);
            for reference in std::iter::once(Some(regarding)).chain([event.secondary.as_ref()]) {
                match reference {
                    Some(r) => {
                        true.hash(&mut hasher);
                        r.api_version.hash(&mut hasher);
                        r.kind.hash(&mut hasher);
                        r.namespace.hash(&mut hasher);
                        r.name.hash(&mut hasher);
                        r.uid.hash(&mut hasher);
                        r.field_path.hash(&mut hasher);
                    }
                    None => false.hash(&mut hasher),
                }
            }
            hasher.finish()
        };
        (u128::from(digest(&self.hashers.0)) << 64) | u128::from(digest(&self.hashers.1))
    }
}

/// Publishes an Event about `object`; a failure to publish is logged, never fatal.
pub async fn publish<K: Resource<DynamicType = ()>>(
    recorder: &Recorder,
    object: &K,
    type_: EventType,
    reason: &str,
    note: String,
) {
    // Events are for people: 1,000 characters is plenty and stays within the API's limit.
    let note: String = note.chars().take(1000).collect();
    let event = Event {
        type_,
        reason: reason.to_string(),
        action: action_for("Reconcile", &note),
        note: Some(note),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &object.object_ref(&())).await {
        tracing::debug!(error = %e, "publishing an event failed");
    }
}

/// An Event action that is `base` plus a short hash of `note`.
///
/// kube's recorder folds events with the same action and reason into one series and keeps the
/// first note, so a new revision or change set would show the old message "x3". Identical notes
/// still fold; different ones become separate events.
pub fn action_for(base: &str, note: &str) -> String {
    let hash = note.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("{base}-{hash:08x}")
}

#[cfg(test)]
mod tests {
    use super::action_for;

    #[test]
    fn same_note_same_action_different_note_different_action() {
        assert_eq!(action_for("Reconcile", "a"), action_for("Reconcile", "a"));
        assert_ne!(action_for("Reconcile", "a"), action_for("Reconcile", "b"));
        assert!(action_for("Reconcile", "x").len() <= 128);
    }
}
