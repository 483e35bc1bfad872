//! Wake-ups of Kustomizations, less the echoes of their own passes.
//!
//! A pass's writes come back as watch events: the finalizer it added to the Kustomization, and
//! each object it applied. Such an event shows the state the pass already has (the answer to
//! its write), so a pass woken by it finds nothing to do. The events mostly arrive before the
//! answers, so a change for a Kustomization that is in a pass is held until the pass ends, and
//! is then dropped when it is the state the pass wrote (the same resourceVersion, compared for
//! equality only) and sent on otherwise. A change that arrives when no pass runs is checked the
//! same way at once, and so is each object of a listing (the first listing of a kind may come
//! after the pass that made the view watch it applied its objects). Anything else wakes the
//! Kustomization as before: a change by someone else, a deletion, an object that changed owner.
//!
//! One exception: a pass that ended waiting for the health of what it applied
//! ([`Wakes::awaits_view`]) waits for the view of managed objects to show them, so every change
//! of its objects wakes it, echoes included, until its next pass starts.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use kube::runtime::reflector::ObjectRef;
use mooring_api::Kustomization;
use tokio::sync::mpsc;

use crate::inventory::{ObjectId, Owner};
use crate::state::Memories;

/// One change that wakes a Kustomization unless it is the echo of its own write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The Kustomization itself changed (spec, reconcile request, deletion or finalizers) and
    /// is now at this resourceVersion.
    Itself(String),
    /// A managed object on the cluster with this fingerprint is now at `resource_version`.
    Object {
        /// The cluster's fingerprint (see [`crate::target::Cluster`]).
        cluster: u64,
        /// The object.
        id: ObjectId,
        /// Its resourceVersion in the event.
        resource_version: String,
    },
    /// Anything else: a deletion, an object that changed owner. Always wakes.
    Other,
}

#[derive(Debug, Default)]
struct Inner {
    /// The Kustomizations in a pass, each with the changes held until the pass ends.
    running: HashMap<Owner, Vec<Change>>,
    /// Per Kustomization, the resourceVersion our last finalizer write left.
    finalized: HashMap<Owner, String>,
    /// The Kustomizations whose last pass ended waiting for health.
    awaiting: HashSet<Owner>,
}

/// The wake-ups of Kustomizations, sent to the controller loop.
#[derive(Debug)]
pub struct Wakes {
    send: mpsc::UnboundedSender<ObjectRef<Kustomization>>,
    memories: Arc<Memories>,
    inner: Mutex<Inner>,
}

impl Wakes {
    /// Wake-ups sent on `send`; `memories` tells which object states a pass wrote.
    pub fn new(
        send: mpsc::UnboundedSender<ObjectRef<Kustomization>>,
        memories: Arc<Memories>,
    ) -> Self {
        Self {
            send,
            memories,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Reports `change` for `owner`: sent now, held for the end of its pass, or dropped as the
    /// echo of its own write. Returns whether it was sent now.
    pub fn change(&self, owner: &Owner, change: Change) -> bool {
        self.changes(owner, [change])
    }

    /// Reports several changes for `owner` at once (a listing's): held for the end of its
    /// pass, or dropped when each is the echo of its own write; otherwise one wake-up. Returns
    /// whether it was sent now.
    pub fn changes(&self, owner: &Owner, changes: impl IntoIterator<Item = Change>) -> bool {
        let mut inner = self.lock();
        if let Some(held) = inner.running.get_mut(owner) {
            held.extend(changes);
            return false;
        }
        let mut changes = changes.into_iter();
        if changes.all(|change| self.is_echo(&inner, owner, &change)) {
            return false;
        }
        drop(inner);
        self.wake(owner);
        true
    }

    /// Reports a change of the Kustomization itself, seen on its watch: true when it should
    /// start a pass now. A held or dropped one returns false; a held one that is not an echo
    /// is sent when the running pass ends.
    pub fn itself(&self, ks: &Kustomization) -> bool {
        let owner = Owner::new(
            ks.metadata.namespace.as_deref().unwrap_or_default(),
            ks.metadata.name.as_deref().unwrap_or_default(),
        );
        let resource_version = ks.metadata.resource_version.clone().unwrap_or_default();
        let mut inner = self.lock();
        if let Some(held) = inner.running.get_mut(&owner) {
            held.push(Change::Itself(resource_version));
            return false;
        }
        !self.is_echo(&inner, &owner, &Change::Itself(resource_version))
    }

    /// Marks the start of a pass of `owner`: its changes are held until the guard is dropped.
    pub fn pass(self: &Arc<Self>, owner: &Owner) -> PassGuard {
        let mut inner = self.lock();
        inner.awaiting.remove(owner);
        inner.running.entry(owner.clone()).or_default();
        PassGuard {
            wakes: self.clone(),
            owner: owner.clone(),
        }
    }

    /// Records that our finalizer write left `owner` at `resource_version`.
    pub fn wrote_finalizer(&self, owner: &Owner, resource_version: String) {
        self.lock()
            .finalized
            .insert(owner.clone(), resource_version);
    }

    /// Records that the pass of `owner` under way ends waiting for the health of its objects:
    /// until its next pass starts, a change of any of them wakes it, even the echo of its own
    /// write (the pass may have looked before the view showed that write).
    pub fn awaits_view(&self, owner: &Owner) {
        self.lock().awaiting.insert(owner.clone());
    }

    /// Forgets `owner` (deleted).
    pub fn forget(&self, owner: &Owner) {
        let mut inner = self.lock();
        inner.finalized.remove(owner);
        inner.awaiting.remove(owner);
    }

    /// Ends the pass of `owner`: wakes it once if any held change is not an echo.
    fn end(&self, owner: &Owner) {
        let mut inner = self.lock();
        let held = inner.running.remove(owner).unwrap_or_default();
        let wake = held.iter().any(|c| !self.is_echo(&inner, owner, c));
        drop(inner);
        if wake {
            self.wake(owner);
        }
    }

    /// Whether `change` is the state a pass of `owner` wrote. `inner` is held: the memories'
    /// lock is always taken after it, never before.
    fn is_echo(&self, inner: &Inner, owner: &Owner, change: &Change) -> bool {
        match change {
            Change::Itself(rv) => inner.finalized.get(owner) == Some(rv),
            Change::Object { .. } if inner.awaiting.contains(owner) => false,
            Change::Object {
                cluster,
                id,
                resource_version,
            } => self.memories.wrote(owner, *cluster, id, resource_version),
            Change::Other => false,
        }
    }

    fn wake(&self, owner: &Owner) {
        // The receiver is gone only when the controller loop has stopped.
        let _ = self
            .send
            .send(ObjectRef::new(&owner.name).within(&owner.namespace));
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The maps hold plain values: a panic elsewhere cannot leave them inconsistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A pass in progress (see [`Wakes::pass`]). Dropping it ends the pass, also when the pass's
/// future is dropped midway.
#[derive(Debug)]
pub struct PassGuard {
    wakes: Arc<Wakes>,
    owner: Owner,
}

impl Drop for PassGuard {
    fn drop(&mut self) {
        self.wakes.end(&self.owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::{LiveObject, relisted};
    use crate::state::Written;
    use std::time::Instant;

    fn id(name: &str) -> ObjectId {
        ObjectId {
            namespace: "apps".into(),
            name: name.into(),
            group: String::new(),
            kind: "ConfigMap".into(),
        }
    }

    fn object(name: &str, rv: &str) -> Change {
        Change::Object {
            cluster: 0,
            id: id(name),
            resource_version: rv.into(),
        }
    }

    fn setup() -> (
        Arc<Wakes>,
        Arc<Memories>,
        mpsc::UnboundedReceiver<ObjectRef<Kustomization>>,
    ) {
        let (send, receive) = mpsc::unbounded_channel();
        let memories = Arc::new(Memories::default());
        (
            Arc::new(Wakes::new(send, memories.clone())),
            memories,
            receive,
        )
    }

    /// An object of `owner` at `rv`, as the view or a write's answer shows it.
    fn live_at(rv: &str, owner: &Owner) -> LiveObject {
        LiveObject {
            resource_version: rv.into(),
            generation: None,
            owner: Some(owner.clone()),
            writers: 0,
            metadata: Box::new([]),
        }
    }

    fn remember_write(memories: &Memories, owner: &Owner, name: &str, rv: &str) {
        let mut memory = memories.get(owner);
        let live = live_at(rv, owner);
        memory.written.insert(
            id(name),
            Written {
                hash: 0,
                live: live.into(),
                at: Instant::now(),
            },
        );
        memories.put(owner.clone(), memory);
    }

    fn sent(receive: &mut mpsc::UnboundedReceiver<ObjectRef<Kustomization>>) -> Vec<String> {
        let mut names = Vec::new();
        while let Ok(r) = receive.try_recv() {
            names.push(r.name);
        }
        names
    }

    #[test]
    fn a_change_during_a_pass_waits_for_its_end_and_an_echo_of_its_write_is_dropped() {
        let (wakes, memories, mut receive) = setup();
        let owner = Owner::new("apps", "app");
        let pass = wakes.pass(&owner);
        // The watch event of the apply arrives before the apply's answer is recorded.
        assert!(!wakes.change(&owner, object("cm", "7")));
        remember_write(&memories, &owner, "cm", "7");
        assert!(sent(&mut receive).is_empty(), "held while the pass runs");
        drop(pass);
        assert!(
            sent(&mut receive).is_empty(),
            "the echo of the pass's own write"
        );
    }

    #[test]
    fn a_change_by_someone_else_during_a_pass_wakes_once_when_it_ends() {
        let (wakes, memories, mut receive) = setup();
        let owner = Owner::new("apps", "app");
        let pass = wakes.pass(&owner);
        wakes.change(&owner, object("cm", "7"));
        wakes.change(&owner, object("cm", "8"));
        wakes.change(&owner, object("other", "9"));
        remember_write(&memories, &owner, "cm", "7");
        drop(pass);
        assert_eq!(sent(&mut receive), ["app"]);
    }

    #[test]
    fn without_a_pass_an_echo_is_dropped_and_anything_else_wakes_at_once() {
        let (wakes, memories, mut receive) = setup();
        let owner = Owner::new("apps", "app");
        remember_write(&memories, &owner, "cm", "7");
        assert!(!wakes.change(&owner, object("cm", "7")));
        assert!(wakes.change(&owner, object("cm", "8")));
        assert!(wakes.change(&owner, Change::Other));
        // Another cluster's object of the same name is not ours.
        let remote = Change::Object {
            cluster: 5,
            id: id("cm"),
            resource_version: "7".into(),
        };
        assert!(wakes.change(&owner, remote));
        assert_eq!(sent(&mut receive), ["app", "app", "app"]);
    }

    #[test]
    fn a_listing_that_shows_what_the_passes_wrote_wakes_nothing_and_any_other_wakes_once() {
        let (wakes, memories, mut receive) = setup();
        let owner = Owner::new("apps", "app");
        let listed = |name: &str, rv: &str, owner: &Owner| (id(name), live_at(rv, owner));
        let report = |changes: HashMap<Owner, Vec<Change>>| {
            for (owner, changes) in changes {
                wakes.changes(&owner, changes);
            }
        };
        remember_write(&memories, &owner, "cm", "7");
        remember_write(&memories, &owner, "other", "8");
        remember_write(&memories, &owner, "gone", "5");
        // The first listing of the kind ends after the pass that started its watch applied:
        // the view held nothing, the listing shows the pass's writes.
        let first: HashMap<_, _> = [
            listed("cm", "7", &owner),
            listed("other", "8", &owner),
            listed("gone", "5", &owner),
        ]
        .into();
        report(relisted(&HashMap::new(), &first, 0));
        assert!(sent(&mut receive).is_empty(), "echoes of the pass's writes");
        // A relist after the watch was down: one object changed by someone else, one gone,
        // one now labelled for another Kustomization.
        let moved = Owner::new("apps", "new-owner");
        let later: HashMap<_, _> = [listed("cm", "9", &owner), listed("other", "8", &moved)].into();
        let changes = relisted(&first, &later, 0);
        assert_eq!(changes[&owner].len(), 3, "{changes:?}");
        report(changes);
        let mut woken = sent(&mut receive);
        woken.sort();
        assert_eq!(woken, ["app", "new-owner"], "each owner once");
        // The same listing again changes nothing.
        assert!(relisted(&later, &later, 0).is_empty());
    }

    #[test]
    fn a_pass_waiting_for_health_is_woken_by_the_echo_of_its_write_until_its_next_pass() {
        let (wakes, memories, mut receive) = setup();
        let owner = Owner::new("apps", "app");
        let pass = wakes.pass(&owner);
        // The view showed the object only after the pass assessed health: the event is the
        // echo of its write, and the one thing the pass waits for.
        wakes.change(&owner, object("cm", "7"));
        remember_write(&memories, &owner, "cm", "7");
        wakes.awaits_view(&owner);
        drop(pass);
        assert_eq!(sent(&mut receive), ["app"], "held, then sent");
        assert!(wakes.change(&owner, object("cm", "7")), "after the pass");
        assert_eq!(sent(&mut receive), ["app"]);
        // The next pass found everything healthy: echoes are echoes again.
        drop(wakes.pass(&owner));
        assert!(!wakes.change(&owner, object("cm", "7")));
        assert!(sent(&mut receive).is_empty());
    }

    #[test]
    fn the_event_of_our_finalizer_is_an_echo_and_a_later_change_is_not() {
        let (wakes, _memories, mut receive) = setup();
        let owner = Owner::new("apps", "app");
        let mut ks: Kustomization = serde_json::from_value(serde_json::json!({
            "apiVersion": "kustomize.mooring.dev/v1",
            "kind": "Kustomization",
            "metadata": {"name": "app", "namespace": "apps", "resourceVersion": "11"},
            "spec": {"interval": "1m", "prune": true, "sourceRef": {"kind": "GitRepository", "name": "repo"}},
        }))
        .expect("a Kustomization");
        let pass = wakes.pass(&owner);
        assert!(!wakes.itself(&ks), "held during the pass");
        wakes.wrote_finalizer(&owner, "11".into());
        drop(pass);
        assert!(sent(&mut receive).is_empty());
        assert!(!wakes.itself(&ks), "the same event again after the pass");
        ks.metadata.resource_version = Some("12".into());
        assert!(wakes.itself(&ks), "a later change starts a pass");
    }
}
