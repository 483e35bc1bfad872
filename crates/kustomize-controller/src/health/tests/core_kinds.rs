//! PersistentVolumeClaim, Service, Namespace, PodDisruptionBudget and CRD rules.

use serde_json::{Value, json};

use super::{expect, expect_exact, with, without};
use crate::health::HealthStatus::{Current, Failed, InProgress, Terminating};

fn pvc(status: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": "apps"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
                 "resources": {"requests": {"storage": "1Gi"}}},
        "status": status
    })
}

#[test]
fn pvc_is_current_once_bound() {
    let bound = pvc(json!({"phase": "Bound", "accessModes": ["ReadWriteOnce"],
                           "capacity": {"storage": "1Gi"}}));
    expect_exact(&bound, Current, "bound");
    expect_exact(
        &pvc(json!({"phase": "Pending"})),
        InProgress,
        "not bound (phase Pending)",
    );
    expect_exact(&pvc(json!({})), InProgress, "not bound yet");
    expect(&pvc(json!({"phase": "Lost"})), Failed, "lost");
}

fn service(spec: Value, status: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": spec, "status": status
    })
}

#[test]
fn cluster_ip_services_are_current() {
    let cluster_ip = service(
        json!({"type": "ClusterIP", "clusterIP": "10.96.12.7",
               "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}],
               "selector": {"app": "web"}}),
        json!({"loadBalancer": {}}),
    );
    expect_exact(&cluster_ip, Current, "ready (ClusterIP)");
    let untyped = service(json!({"ports": [{"port": 80}]}), json!({}));
    expect_exact(&untyped, Current, "ready (ClusterIP)");
    let external = service(
        json!({"type": "ExternalName", "externalName": "db.example.com"}),
        json!({}),
    );
    expect_exact(&external, Current, "ready (ExternalName)");
}

#[test]
fn load_balancer_service_waits_for_an_ingress_address() {
    let spec = json!({"type": "LoadBalancer", "clusterIP": "10.96.12.8",
                      "ports": [{"port": 443, "nodePort": 31443}]});
    let waiting = service(spec.clone(), json!({"loadBalancer": {}}));
    expect_exact(
        &waiting,
        InProgress,
        "waiting for a load balancer ingress address",
    );
    let with_ip = service(
        spec.clone(),
        json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.10", "ipMode": "VIP"}]}}),
    );
    expect_exact(&with_ip, Current, "load balancer ready at 203.0.113.10");
    let with_host = service(
        spec,
        json!({"loadBalancer": {"ingress": [{"hostname": "a1b2.elb.example.com"}]}}),
    );
    expect_exact(
        &with_host,
        Current,
        "load balancer ready at a1b2.elb.example.com",
    );
    let no_ip = service(json!({"type": "LoadBalancer"}), json!({}));
    expect_exact(&no_ip, InProgress, "no cluster IP assigned yet");
}

fn pdb(status: Value) -> Value {
    json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "apps", "generation": 1},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
        "status": status
    })
}

#[test]
fn pdb_is_current_when_the_budget_is_met() {
    let met = pdb(
        json!({"observedGeneration": 1, "currentHealthy": 3, "desiredHealthy": 2,
                         "disruptionsAllowed": 1, "expectedPods": 3,
                         "conditions": [{"type": "DisruptionAllowed", "status": "True",
                                         "reason": "SufficientPods"}]}),
    );
    expect_exact(&met, Current, "1 disruptions allowed");
    let unmet = pdb(
        json!({"observedGeneration": 1, "currentHealthy": 1, "desiredHealthy": 2,
                           "disruptionsAllowed": 0, "expectedPods": 3}),
    );
    expect_exact(&unmet, InProgress, "1 of 2 required pods healthy");
    expect(
        &pdb(json!({})),
        InProgress,
        "not observed by the disruption controller",
    );
}

fn crd(conditions: Value) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com", "generation": 1},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"kind": "Widget", "plural": "widgets", "singular": "widget",
                           "listKind": "WidgetList"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object"}}}]},
        "status": {"conditions": conditions,
                   "acceptedNames": {"kind": "Widget", "plural": "widgets"},
                   "storedVersions": ["v1"]}
    })
}

#[test]
fn crd_is_current_once_established() {
    let established = crd(json!([
        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
         "message": "no conflicts found"},
        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
         "message": "the initial names have been accepted"}
    ]));
    expect_exact(&established, Current, "established");
}

#[test]
fn crd_with_conflicting_names_is_failed() {
    let conflict = crd(json!([
        {"type": "NamesAccepted", "status": "False", "reason": "ListKindConflict",
         "message": "\"WidgetList\" is already in use"},
        {"type": "Established", "status": "False", "reason": "NotAccepted",
         "message": "not all names are accepted"}
    ]));
    expect_exact(
        &conflict,
        Failed,
        "ListKindConflict: \"WidgetList\" is already in use",
    );
}

#[test]
fn crd_being_installed_is_in_progress() {
    let installing = crd(json!([
        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
        {"type": "Established", "status": "False", "reason": "Installing",
         "message": "the initial names have been accepted"}
    ]));
    expect_exact(&installing, InProgress, "not yet established");
    expect_exact(
        &without(&crd(json!([])), "/status"),
        InProgress,
        "not yet established",
    );
}

#[test]
fn namespace_active_is_current_and_terminating_is_terminating() {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": "apps"},
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"}});
    expect_exact(&ns, Current, "active");
    let terminating = with(&ns, "/status/phase", json!("Terminating"));
    expect_exact(&terminating, Terminating, "namespace is terminating");
    let deleted = with(
        &terminating,
        "/metadata/deletionTimestamp",
        json!("2025-01-10T10:00:00Z"),
    );
    expect_exact(&deleted, Terminating, "scheduled for deletion");
}
