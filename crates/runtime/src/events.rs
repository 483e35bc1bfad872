//! Kubernetes Events about reconciled objects.

use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder};

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
