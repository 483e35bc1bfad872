//! Aggregation of many objects' health into one verdict and message.

use serde_json::json;

use crate::health::{Health, HealthStatus, ObjectLabel, summarize};

fn label(kind: &str, ns: &str, name: &str) -> ObjectLabel {
    ObjectLabel::new(kind, Some(ns), name)
}

#[test]
fn labels_name_kind_namespace_and_name() {
    assert_eq!(
        label("Deployment", "apps", "web").to_string(),
        "Deployment/apps/web"
    );
    let crd = ObjectLabel::new("CustomResourceDefinition", None, "widgets.example.com");
    assert_eq!(
        crd.to_string(),
        "CustomResourceDefinition/widgets.example.com"
    );
    assert_eq!(
        ObjectLabel::new("Namespace", Some(""), "apps").to_string(),
        "Namespace/apps"
    );
    let from_json = ObjectLabel::of(&json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "migrate", "namespace": "apps"}
    }));
    assert_eq!(from_json, label("Job", "apps", "migrate"));
}

#[test]
fn all_current_objects_give_a_current_summary() {
    let objects = vec![
        (
            label("ConfigMap", "apps", "settings"),
            Health::current("no status conditions to wait for"),
        ),
        (
            label("Deployment", "apps", "web"),
            Health::current("3 of 3 replicas available"),
        ),
    ];
    let summary = summarize(&objects);
    assert!(summary.all_current);
    assert!(summary.failed.is_empty() && summary.in_progress.is_empty());
    assert_eq!(summary.message, "all 2 objects are current");
    let empty = summarize(&[]);
    assert!(empty.all_current);
    assert_eq!(empty.message, "no objects to check");
}

#[test]
fn failed_objects_are_named_first_then_pending_ones() {
    let objects = vec![
        (
            label("ConfigMap", "apps", "settings"),
            Health::current("no status conditions to wait for"),
        ),
        (
            label("Deployment", "apps", "web"),
            Health::in_progress("1 of 3 replicas ready"),
        ),
        (
            label("Job", "apps", "migrate"),
            Health::failed("BackoffLimitExceeded: Job has reached the specified backoff limit"),
        ),
    ];
    let summary = summarize(&objects);
    assert!(!summary.all_current);
    assert_eq!(summary.failed.len(), 1);
    assert_eq!(summary.failed[0].0, label("Job", "apps", "migrate"));
    assert_eq!(summary.in_progress.len(), 1);
    assert_eq!(summary.in_progress[0].0, label("Deployment", "apps", "web"));
    assert_eq!(
        summary.message,
        "Job/apps/migrate failed: BackoffLimitExceeded: Job has reached the specified backoff \
         limit; Deployment/apps/web: 1 of 3 replicas ready"
    );
}

#[test]
fn terminating_missing_and_unknown_objects_count_as_pending() {
    let objects = vec![
        (
            label("Deployment", "apps", "old"),
            Health::new(HealthStatus::Terminating, "scheduled for deletion"),
        ),
        (
            label("Service", "apps", "web"),
            Health::new(HealthStatus::NotFound, ""),
        ),
        (
            label("Pod", "apps", "x"),
            Health::new(HealthStatus::Unknown, "unknown pod phase Weird"),
        ),
    ];
    let summary = summarize(&objects);
    assert!(!summary.all_current);
    assert!(summary.failed.is_empty());
    assert_eq!(summary.in_progress.len(), 3);
    assert_eq!(
        summary.message,
        "Deployment/apps/old: scheduled for deletion; Service/apps/web: NotFound; \
         Pod/apps/x: unknown pod phase Weird"
    );
}

#[test]
fn summary_message_is_bounded_in_count_and_length() {
    let long = "x".repeat(5000);
    let objects: Vec<_> = (0..40)
        .map(|i| {
            (
                label("Deployment", "apps", &format!("web-{i}")),
                Health::in_progress(long.clone()),
            )
        })
        .collect();
    let summary = summarize(&objects);
    assert_eq!(summary.in_progress.len(), 40);
    assert!(
        summary.message.chars().count() <= 1024,
        "{}",
        summary.message.len()
    );
    assert!(summary.message.starts_with("Deployment/apps/web-0: xxx"));
    assert!(
        !summary.message.contains("web-4:"),
        "stays within the length bound"
    );
    assert!(
        summary.message.ends_with("; and 36 more"),
        "{}",
        summary.message
    );
}

#[test]
fn summary_names_at_most_five_objects() {
    let objects: Vec<_> = (0..8)
        .map(|i| {
            (
                label("Pod", "apps", &format!("p{i}")),
                Health::in_progress("pending"),
            )
        })
        .collect();
    let summary = summarize(&objects);
    assert_eq!(
        summary.message,
        "Pod/apps/p0: pending; Pod/apps/p1: pending; Pod/apps/p2: pending; Pod/apps/p3: pending; \
         Pod/apps/p4: pending; and 3 more"
    );
}
