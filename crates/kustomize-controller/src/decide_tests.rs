use super::*;
use mooring_api::conditions::is_ready;
use mooring_api::kustomization::ResourceRef;

fn time(secs: i64) -> Time {
    Time(jiff::Timestamp::from_second(secs).expect("timestamp"))
}

fn inventory(ids: &[&str]) -> ResourceInventory {
    ResourceInventory {
        entries: ids
            .iter()
            .map(|id| ResourceRef {
                id: id.to_string(),
                v: "v1".into(),
            })
            .collect(),
        cluster: None,
    }
}

fn ready(applied: Option<&str>) -> Outcome {
    Outcome::Ready {
        checked: false,
        revision: "main@sha1:aaaa".into(),
        inventory: inventory(&["ns_cm__ConfigMap"]),
        applied: applied.map(|d| AppliedRender {
            first: true,
            digest: d.into(),
            duration: "1s".into(),
            metadata: [
                ("revision".to_string(), "main@sha1:aaaa".to_string()),
                (
                    "git.author".to_string(),
                    "Alice <alice@example.invalid>".to_string(),
                ),
            ]
            .into(),
        }),
    }
}

#[test]
fn ready_records_revision_inventory_and_history() {
    let status = next_status(
        &KustomizationStatus::default(),
        1,
        &ready(Some("sha256:r1")),
        None,
        &time(10),
    );
    assert!(is_ready(&status.conditions));
    assert_eq!(
        status.last_applied_revision.as_deref(),
        Some("main@sha1:aaaa")
    );
    assert_eq!(status.inventory, Some(inventory(&["ns_cm__ConfigMap"])));
    assert_eq!(status.history.len(), 1);
    assert_eq!(status.history[0].digest, "sha256:r1");
    assert_eq!(
        status.history[0].metadata,
        Some(
            [
                (
                    "git.author".to_string(),
                    "Alice <alice@example.invalid>".to_string()
                ),
                ("revision".to_string(), "main@sha1:aaaa".to_string()),
            ]
            .into()
        ),
        "each applied revision records who made it"
    );
}

#[test]
fn a_no_op_pass_changes_nothing() {
    let first = next_status(
        &KustomizationStatus::default(),
        1,
        &ready(Some("sha256:r1")),
        None,
        &time(10),
    );
    let second = next_status(&first, 1, &ready(None), None, &time(20));
    assert_eq!(first, second);
}

#[test]
fn history_is_bounded_and_newest_first() {
    let mut status = KustomizationStatus::default();
    for i in 0..8 {
        status = next_status(
            &status,
            1,
            &ready(Some(&format!("sha256:{i}"))),
            None,
            &time(i),
        );
    }
    assert_eq!(status.history.len(), HISTORY_LIMIT);
    assert_eq!(status.history[0].digest, "sha256:7");
    status = next_status(&status, 1, &ready(Some("sha256:5")), None, &time(100));
    assert_eq!(status.history[0].digest, "sha256:5");
    assert_eq!(status.history[0].total_reconciliations, 2);
}

#[test]
fn a_render_waiting_for_health_is_one_history_entry_that_turns_ready() {
    let applied = |first: bool| AppliedRender {
        first,
        digest: "sha256:r2".into(),
        duration: "0.500s".into(),
        metadata: [("revision".to_string(), "main@sha1:bbbb".to_string())].into(),
    };
    let pending = |first: bool| Outcome::HealthPending {
        revision: "main@sha1:bbbb".into(),
        inventory: inventory(&[]),
        message: "Deployment/ns/web: 0 of 1 replicas ready".into(),
        applied: Some(applied(first)),
    };
    let before = next_status(
        &KustomizationStatus::default(),
        1,
        &ready(Some("sha256:r1")),
        None,
        &time(1),
    );
    let applying = next_status(&before, 1, &pending(true), None, &time(2));
    assert_eq!(applying.history.len(), 2);
    assert_eq!(applying.history[0].last_reconciled_status, "HealthPending");
    // More passes while the checks are pending record nothing more.
    let waiting = next_status(&applying, 1, &pending(false), None, &time(3));
    assert_eq!(waiting.history, applying.history);
    // The pass that finds them passing turns the entry Ready, without counting another apply.
    let done = Outcome::Ready {
        checked: true,
        revision: "main@sha1:bbbb".into(),
        inventory: inventory(&[]),
        applied: Some(applied(false)),
    };
    let settled = next_status(&waiting, 1, &done, None, &time(4));
    let entry = &settled.history[0];
    assert_eq!(entry.digest, "sha256:r2");
    assert_eq!(entry.last_reconciled_status, "Ready");
    assert_eq!(entry.total_reconciliations, 1);
    assert_eq!(entry.last_reconciled_duration, "0.500s");
    assert_eq!(entry.last_reconciled, time(4));
    assert_eq!(entry.first_reconciled, time(2));
    assert_eq!(settled.history.len(), 2);
}

#[test]
fn failure_keeps_the_last_applied_revision() {
    let good = next_status(
        &KustomizationStatus::default(),
        1,
        &ready(Some("sha256:r1")),
        None,
        &time(10),
    );
    let failed = Outcome::Failed {
        revision: Some("main@sha1:bbbb".into()),
        reason: reasons::BUILD_FAILED.into(),
        message: "kustomize build failed: deploy/kustomization.yaml: bad".into(),
        inventory: None,
    };
    let status = next_status(&good, 2, &failed, None, &time(20));
    assert_eq!(
        status.last_applied_revision.as_deref(),
        Some("main@sha1:aaaa")
    );
    assert_eq!(
        status.last_attempted_revision.as_deref(),
        Some("main@sha1:bbbb")
    );
    assert_eq!(status.inventory, good.inventory);
    let ready = find_condition(&status.conditions, types::READY).expect("Ready");
    assert_eq!(ready.reason, "BuildFailed");
    assert_eq!(status.observed_generation, Some(1));
}

#[test]
fn health_pending_then_ready_marks_healthy() {
    let pending = Outcome::HealthPending {
        revision: "main@sha1:aaaa".into(),
        inventory: inventory(&[]),
        message: "Deployment/ns/web: 0 of 1 replicas ready".into(),
        applied: Some(AppliedRender {
            first: true,
            digest: "sha256:r1".into(),
            duration: "1s".into(),
            metadata: Default::default(),
        }),
    };
    let status = next_status(&KustomizationStatus::default(), 1, &pending, None, &time(1));
    let ready = find_condition(&status.conditions, types::READY).expect("Ready");
    assert_eq!(ready.status, "Unknown");
    assert!(ready.message.contains("Deployment/ns/web"));
    let status = next_status(&status, 1, &ready_outcome_without_apply(), None, &time(2));
    let healthy = find_condition(&status.conditions, types::HEALTHY).expect("Healthy");
    assert_eq!(healthy.status, "True");
    assert!(find_condition(&status.conditions, types::RECONCILING).is_none());
}

#[test]
fn healthy_goes_when_nothing_is_checked_any_more() {
    let pending = Outcome::HealthPending {
        revision: "main@sha1:aaaa".into(),
        inventory: inventory(&[]),
        message: "Deployment/ns/web: 0 of 1 replicas ready".into(),
        applied: None,
    };
    let waited = next_status(&KustomizationStatus::default(), 1, &pending, None, &time(1));
    let checked = next_status(&waited, 1, &ready_outcome_without_apply(), None, &time(2));
    assert!(find_condition(&checked.conditions, types::HEALTHY).is_some());
    // `wait` and `healthChecks` removed: the next Ready pass checks nothing.
    let unchecked = next_status(&checked, 2, &ready(None), None, &time(3));
    assert!(
        find_condition(&unchecked.conditions, types::HEALTHY).is_none(),
        "{:?}",
        unchecked.conditions
    );
}

fn ready_outcome_without_apply() -> Outcome {
    Outcome::Ready {
        checked: true,
        revision: "main@sha1:aaaa".into(),
        inventory: inventory(&[]),
        applied: None,
    }
}

#[test]
fn dependencies_must_be_ready_at_their_generation() {
    let mut dep: Kustomization = serde_json::from_value(serde_json::json!({
        "apiVersion": "kustomize.mooring.dev/v1", "kind": "Kustomization",
        "metadata": {"name": "infra", "namespace": "ns", "generation": 2},
        "spec": {"interval": "1m", "prune": true, "sourceRef": {"kind": "GitRepository", "name": "r"}}
    }))
    .expect("kustomization");
    assert!(
        dependencies_ready(&[("infra".into(), None)])
            .expect_err("a missing dependency")
            .contains("not found")
    );
    assert!(dependencies_ready(&[("infra".into(), Some(&dep))]).is_err());
    dep.status = Some(next_status(
        &KustomizationStatus::default(),
        1,
        &ready(None),
        None,
        &time(1),
    ));
    assert!(
        dependencies_ready(&[("infra".into(), Some(&dep))]).is_err(),
        "generation 2 not observed"
    );
    dep.status = Some(next_status(
        &KustomizationStatus::default(),
        2,
        &ready(None),
        None,
        &time(1),
    ));
    assert_eq!(dependencies_ready(&[("infra".into(), Some(&dep))]), Ok(()));
}

/// A Kustomization `name` at generation 1 whose status was observed, with a Ready condition.
fn with_ready(name: &str, status: &str, reason: &str, message: &str) -> Kustomization {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "kustomize.mooring.dev/v1", "kind": "Kustomization",
        "metadata": {"name": name, "namespace": "ns", "generation": 1},
        "spec": {"interval": "1m", "prune": true, "sourceRef": {"kind": "GitRepository", "name": "r"}},
        "status": {"observedGeneration": 1, "conditions": [{
            "type": "Ready", "status": status, "reason": reason, "message": message,
            "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    }))
    .expect("kustomization")
}

#[test]
fn a_waiting_message_carries_the_chain_down_to_the_cause() {
    // c fails on its own; b waits for c (the message c's controller pass wrote); a waits for b.
    let c = with_ready(
        "c",
        "False",
        "ArtifactFailed",
        "GitRepository 'ns/r' has no artifact yet: authentication\nfailed",
    );
    let b_message = dependencies_ready(&[("ns/c".into(), Some(&c))]).expect_err("c not ready");
    assert_eq!(
        b_message,
        "dependency 'ns/c' is not ready: GitRepository 'ns/r' has no artifact yet: \
         authentication failed"
    );
    let b = with_ready("b", "False", "DependencyNotReady", &b_message);
    let a_message = dependencies_ready(&[("ns/b".into(), Some(&b))]).expect_err("b not ready");
    assert_eq!(
        a_message,
        format!("dependency 'ns/b' is not ready: {b_message}")
    );
    // Ready dependencies are passed over; the first one that is not is named.
    let ready = with_ready("ok", "True", "ReconciliationSucceeded", "Applied");
    assert_eq!(
        dependencies_ready(&[("ns/ok".into(), Some(&ready)), ("ns/b".into(), Some(&b))]),
        Err(a_message)
    );
    // No Ready condition, or an empty message: still says why.
    let mut fresh = with_ready("d", "Unknown", "Progressing", "");
    assert_eq!(
        dependencies_ready(&[("ns/d".into(), Some(&fresh))]),
        Err("dependency 'ns/d' is not ready: Progressing".to_string())
    );
    fresh.status = None;
    assert_eq!(
        dependencies_ready(&[("ns/d".into(), Some(&fresh))]),
        Err("dependency 'ns/d' is not ready: not reconciled yet".to_string())
    );
}

#[test]
fn a_dependency_chain_is_bounded_in_hops_and_length() {
    // Seven Kustomizations, each waiting for the next: the message stops after five hops.
    let mut message = "cannot apply ClusterRole x: forbidden".to_string();
    for i in (0..7).rev() {
        let dep = with_ready(&format!("k{i}"), "False", "DependencyNotReady", &message);
        message = dependencies_ready(&[(format!("ns/k{i}"), Some(&dep))]).expect_err("waiting");
    }
    assert_eq!(
        message.matches("dependency '").count(),
        DEPENDENCY_CHAIN_HOPS
    );
    assert!(message.starts_with("dependency 'ns/k0' is not ready: dependency 'ns/k1'"));
    assert!(
        message.ends_with("dependency 'ns/k4' is not ready:..."),
        "{message}"
    );
    // A long cause is cut at the byte limit, on a character boundary.
    let long = with_ready("l", "False", "BuildFailed", &"é".repeat(2000));
    let message = dependencies_ready(&[("ns/l".into(), Some(&long))]).expect_err("waiting");
    assert!(
        message.len() <= DEPENDENCY_CHAIN_MAX_LEN + 3,
        "{}",
        message.len()
    );
    assert!(message.ends_with("..."));
}

#[test]
fn a_dependency_cycle_settles_on_one_message() {
    // a and b depend on each other: each pass embeds the other's message, and each new message
    // wakes the other. The bound makes the messages stop changing, so the wakeups stop.
    let mut b = "not reconciled yet".to_string();
    let mut history = Vec::new();
    for _ in 0..2 * DEPENDENCY_CHAIN_HOPS + 2 {
        let dep_b = with_ready("b", "False", "DependencyNotReady", &b);
        let a = dependencies_ready(&[("ns/b".into(), Some(&dep_b))]).expect_err("waiting");
        let dep_a = with_ready("a", "False", "DependencyNotReady", &a);
        b = dependencies_ready(&[("ns/a".into(), Some(&dep_a))]).expect_err("waiting");
        history.push((a.clone(), b.clone()));
    }
    let last = history.last().expect("passes");
    assert_eq!(
        &history[history.len() - 2],
        last,
        "still changing: {last:?}"
    );
    assert_eq!(
        last.0.matches("dependency '").count(),
        DEPENDENCY_CHAIN_HOPS
    );
}
