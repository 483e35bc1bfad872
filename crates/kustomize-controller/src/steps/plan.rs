//! The plan: which rendered objects must be applied, decided by comparing the render with the
//! live view and with what our own last writes left. Plain data in, plain data out.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use crate::apply::{SsaMode, ssa_mode};
use crate::inventory::ObjectId;
use crate::live::{Lookup, numeric};
use crate::state::{IdMap, Written};
use crate::steps::render::Render;

/// Why an object is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Why {
    /// Its manifest differs from what we last wrote, or we never wrote it.
    Changed,
    /// We wrote it, but nothing is known of it now (the watch of its kind is starting).
    Unverified,
    /// It does not exist (or lost its ownership labels).
    Missing,
    /// Another field manager changed it outside `status`, or its rendered labels or
    /// annotations are not there as rendered.
    Drifted,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Changed => "changed",
            Self::Unverified => "unverified",
            Self::Missing => "missing",
            Self::Drifted => "drifted",
        })
    }
}

/// The objects to apply this pass; every other rendered object matches the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Per object to apply: why.
    pub apply: BTreeMap<ObjectId, Why>,
}

impl Plan {
    /// Whether `id` is applied this pass.
    pub fn applies(&self, id: &ObjectId) -> bool {
        self.apply.contains_key(id)
    }

    /// The objects applied because they do not exist.
    pub fn absent(&self) -> std::collections::BTreeSet<ObjectId> {
        self.apply
            .iter()
            .filter(|(_, why)| **why == Why::Missing)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// "Kind/ns/name" of the missing objects, for messages.
    pub fn missing(&self) -> Vec<String> {
        self.apply
            .iter()
            .filter(|(_, why)| **why == Why::Missing)
            .map(|(id, _)| id.subject())
            .collect()
    }
}

/// How long a write of ours is trusted while the live view has not caught up with it: watch
/// events follow a write within milliseconds, so a pass that runs in between does not apply
/// again what it just wrote; past this, a write the view never showed is applied again.
pub const WATCH_LAG_GRACE: Duration = Duration::from_secs(10);

/// Compares each rendered object with the live view (`live`) and with what our last write of
/// it left (`written`), at `now`.
pub fn plan(
    render: &Render,
    written: &IdMap<Written>,
    live: impl Fn(&ObjectId) -> Lookup,
    now: Instant,
) -> Plan {
    let mut apply = BTreeMap::new();
    for desired in &render.objects {
        let metadata = desired.metadata();
        let mode = ssa_mode(&metadata);
        if mode == SsaMode::Ignore {
            continue;
        }
        let ours = written.get(&desired.id);
        let view = live(&desired.id);
        // A write of ours that the view has not shown yet is still on its way.
        let in_flight = ours.is_some_and(|ours| {
            now.saturating_duration_since(ours.at) < WATCH_LAG_GRACE
                && match (&view, numeric(&ours.live.resource_version)) {
                    (Lookup::Unknown, _) => true,
                    (Lookup::Absent { seen_up_to }, Some(mine)) => *seen_up_to < mine,
                    (Lookup::Present(now), Some(mine)) => {
                        numeric(&now.resource_version).is_some_and(|theirs| theirs < mine)
                    }
                    (_, None) => false,
                }
        });
        let why = match (view, ours) {
            // Created when missing, otherwise left alone.
            (Lookup::Present(_), _) if mode == SsaMode::IfNotPresent => None,
            (Lookup::Unknown, Some(_)) if mode == SsaMode::IfNotPresent => None,
            (_, Some(ours)) if ours.hash != desired.hash => Some(Why::Changed),
            _ if in_flight => None,
            (Lookup::Absent { .. }, _) => Some(Why::Missing),
            (_, None) => Some(Why::Changed),
            (Lookup::Unknown, Some(_)) => Some(Why::Unverified),
            (Lookup::Present(now), Some(ours)) => {
                let foreign_write = now.resource_version != ours.live.resource_version
                    && (now.writers != ours.live.writers
                        || (now.generation.is_some() && now.generation != ours.live.generation));
                let carried = now.carries(&metadata);
                (foreign_write || !carried).then_some(Why::Drifted)
            }
        };
        if let Some(why) = why {
            apply.insert(desired.id.clone(), why);
        }
    }
    Plan { apply }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::LiveObject;
    use crate::steps::render::Desired;
    use kube::api::{DynamicObject, ObjectMeta};
    use serde_json::json;

    fn desired(name: &str, hash: u64, labels: &[(&str, &str)]) -> Desired {
        desired_annotated(name, hash, labels, None)
    }

    fn desired_annotated(
        name: &str,
        hash: u64,
        labels: &[(&str, &str)],
        ssa: Option<&str>,
    ) -> Desired {
        let mut object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "apps"},
        }))
        .expect("object");
        object.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        object.metadata.annotations =
            ssa.map(|mode| [("kustomize.mooring.dev/ssa".to_string(), mode.to_string())].into());
        let mut desired = Desired::new(ObjectId::of(&object).expect("id"), &object);
        desired.hash = hash;
        desired
    }

    fn live(rv: &str, generation: i64, writers: u64, labels: &[(&str, &str)]) -> LiveObject {
        let mut live = LiveObject::of(&ObjectMeta {
            resource_version: Some(rv.into()),
            generation: Some(generation),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        });
        live.writers = writers;
        live
    }

    fn render(objects: Vec<Desired>) -> Render {
        Render {
            provenance: Default::default(),
            key: 1,
            revision: "main@sha1:0".into(),
            digest: "sha256:0".into(),
            objects,
        }
    }

    #[test]
    fn only_objects_that_differ_from_the_render_are_applied() {
        let app = [("app", "web")];
        let render = render(vec![
            desired("same", 1, &app),
            desired("status-only", 1, &app),
            desired("deleted", 1, &app),
            desired("relabelled", 1, &app),
            desired("spec-edited", 1, &app),
            desired("new-manifest", 2, &app),
            desired("never-written", 1, &app),
            desired("watch-starting", 1, &app),
        ]);
        let long_ago = Instant::now();
        let later = long_ago + WATCH_LAG_GRACE;
        let ours = |rv: &str| Written {
            hash: 1,
            live: live(rv, 1, 10, &app).into(),
            at: long_ago,
        };
        let written: IdMap<Written> = render
            .objects
            .iter()
            .filter(|d| d.id.name != "never-written")
            .map(|d| (d.id.clone(), ours("5")))
            .collect();
        let plan = plan(
            &render,
            &written,
            |id| match id.name.as_str() {
                "same" | "new-manifest" | "never-written" => {
                    Lookup::Present(live("5", 1, 10, &app))
                }
                // A status write: a new resourceVersion, the same writers and generation.
                "status-only" => Lookup::Present(live("6", 1, 10, &app)),
                "deleted" => Lookup::Absent { seen_up_to: 9 },
                // kubectl label: another writer, generation unchanged, value differs.
                "relabelled" => Lookup::Present(live("7", 1, 11, &[("app", "hacked")])),
                "spec-edited" => Lookup::Present(live("8", 2, 12, &app)),
                _ => Lookup::Unknown,
            },
            later,
        );
        let got: Vec<(&str, Why)> = plan
            .apply
            .iter()
            .map(|(id, why)| (id.name.as_str(), *why))
            .collect();
        assert_eq!(
            got,
            vec![
                ("deleted", Why::Missing),
                ("never-written", Why::Changed),
                ("new-manifest", Why::Changed),
                ("relabelled", Why::Drifted),
                ("spec-edited", Why::Drifted),
                ("watch-starting", Why::Unverified),
            ]
        );
        assert_eq!(plan.missing(), vec!["Deployment/apps/deleted".to_string()]);
    }

    #[test]
    fn metadata_is_compared_even_when_the_writers_look_unchanged() {
        let render = render(vec![desired("web", 1, &[("app", "web")])]);
        let written = IdMap::from_iter([(
            render.objects[0].id.clone(),
            Written {
                hash: 1,
                live: live("5", 1, 10, &[("app", "web")]).into(),
                at: Instant::now(),
            },
        )]);
        let edited = plan(
            &render,
            &written,
            |_| Lookup::Present(live("9", 1, 10, &[("app", "other")])),
            Instant::now(),
        );
        assert_eq!(
            edited.apply.values().collect::<Vec<_>>(),
            vec![&Why::Drifted]
        );
    }

    #[test]
    fn a_write_the_view_has_not_shown_yet_is_not_applied_again() {
        let render = render(vec![desired("web", 1, &[("app", "web")])]);
        let wrote = Instant::now();
        let written = IdMap::from_iter([(
            render.objects[0].id.clone(),
            Written {
                hash: 1,
                live: live("50", 1, 10, &[("app", "web")]).into(),
                at: wrote,
            },
        )]);
        let not_yet = |_: &ObjectId| Lookup::Absent { seen_up_to: 49 };
        let older = |_: &ObjectId| Lookup::Present(live("40", 1, 9, &[("app", "old")]));
        assert!(plan(&render, &written, not_yet, wrote).apply.is_empty());
        assert!(plan(&render, &written, older, wrote).apply.is_empty());
        assert!(
            plan(&render, &written, |_| Lookup::Unknown, wrote)
                .apply
                .is_empty()
        );
        // Deleted after our write: the view has seen past it.
        let deleted = |_: &ObjectId| Lookup::Absent { seen_up_to: 51 };
        assert_eq!(plan(&render, &written, deleted, wrote).missing().len(), 1);
        // Never shown within the grace: applied again.
        let late = wrote + WATCH_LAG_GRACE;
        assert_eq!(plan(&render, &written, not_yet, late).missing().len(), 1);
        assert_eq!(
            plan(&render, &written, |_| Lookup::Unknown, late)
                .apply
                .values()
                .collect::<Vec<_>>(),
            vec![&Why::Unverified]
        );
    }

    #[test]
    fn ignored_and_if_not_present_objects_follow_their_mode() {
        let ignored = desired_annotated("ignored", 1, &[], Some("Ignore"));
        let once = desired_annotated("once", 1, &[], Some("IfNotPresent"));
        let render = render(vec![ignored, once]);
        let written = IdMap::from_iter([(
            render.objects[1].id.clone(),
            Written {
                hash: 1,
                live: live("5", 1, 10, &[]).into(),
                at: Instant::now(),
            },
        )]);
        let now = Instant::now();
        let present = plan(
            &render,
            &written,
            |_| Lookup::Present(live("6", 2, 11, &[("edited", "yes")])),
            now,
        );
        assert!(present.apply.is_empty(), "{present:?}");
        let gone = plan(&render, &written, |_| Lookup::Absent { seen_up_to: 9 }, now);
        assert_eq!(gone.missing(), vec!["Deployment/apps/once".to_string()]);
    }
}
