//! Objects as a real API server returns them, in a healthy state; tests derive variants.

use serde_json::{Value, json};

/// A Deployment whose rollout completed: 3 of 3 replicas updated, ready and available.
pub(super) fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web", "namespace": "apps", "generation": 2,
            "uid": "0b6c2f5e-3f7d-4a8e-9a57-3a1c2d4e5f60", "resourceVersion": "48213",
            "creationTimestamp": "2025-01-10T09:00:00Z",
            "labels": {"app": "web", "kustomize.mooring.dev/name": "apps"}
        },
        "spec": {
            "replicas": 3, "progressDeadlineSeconds": 600, "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                                         "ports": [{"containerPort": 80}]}]}
            }
        },
        "status": {
            "observedGeneration": 2, "replicas": 3, "updatedReplicas": 3,
            "readyReplicas": 3, "availableReplicas": 3,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                 "message": "Deployment has minimum availability.",
                 "lastTransitionTime": "2025-01-10T09:00:20Z",
                 "lastUpdateTime": "2025-01-10T09:00:20Z"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                 "message": "ReplicaSet \"web-7d9c8b6f5\" has successfully progressed.",
                 "lastTransitionTime": "2025-01-10T09:00:00Z",
                 "lastUpdateTime": "2025-01-10T09:02:11Z"}
            ]
        }
    })
}

/// A StatefulSet with 3 ready replicas at one revision.
pub(super) fn stateful_set() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "apps", "generation": 1},
        "spec": {
            "replicas": 3, "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "podManagementPolicy": "OrderedReady",
            "template": {"metadata": {"labels": {"app": "db"}},
                         "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}}
        },
        "status": {
            "observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "currentReplicas": 3,
            "updatedReplicas": 3, "availableReplicas": 3,
            "currentRevision": "db-5d8f7c9b4", "updateRevision": "db-5d8f7c9b4",
            "collisionCount": 0
        }
    })
}

/// A DaemonSet running on 2 nodes.
pub(super) fn daemon_set() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "node-agent", "namespace": "monitoring", "generation": 4},
        "spec": {
            "selector": {"matchLabels": {"app": "node-agent"}},
            "updateStrategy": {"type": "RollingUpdate",
                               "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
            "template": {"metadata": {"labels": {"app": "node-agent"}},
                         "spec": {"containers": [{"name": "agent", "image": "agent:2.1"}]}}
        },
        "status": {
            "observedGeneration": 4, "desiredNumberScheduled": 2, "currentNumberScheduled": 2,
            "updatedNumberScheduled": 2, "numberAvailable": 2, "numberReady": 2,
            "numberMisscheduled": 0
        }
    })
}

/// A ReplicaSet with 2 available replicas.
pub(super) fn replica_set() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "web-7d9c8b6f5", "namespace": "apps", "generation": 1},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}},
        "status": {"observedGeneration": 1, "replicas": 2, "fullyLabeledReplicas": 2,
                   "readyReplicas": 2, "availableReplicas": 2}
    })
}

/// A Job that is running one pod.
pub(super) fn running_job() -> Value {
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate", "namespace": "apps", "generation": 1},
        "spec": {"backoffLimit": 2, "completions": 1, "parallelism": 1,
                 "template": {"spec": {"restartPolicy": "Never",
                                       "containers": [{"name": "migrate", "image": "app:1"}]}}},
        "status": {"startTime": "2025-01-10T09:00:00Z", "active": 1, "ready": 0,
                   "terminating": 0, "uncountedTerminatedPods": {}}
    })
}

/// A Pod running with all containers ready.
pub(super) fn running_pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-7d9c8b6f5-x2kq9", "namespace": "apps"},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}],
                 "nodeName": "node-1"},
        "status": {
            "phase": "Running", "podIP": "10.244.1.7", "startTime": "2025-01-10T09:00:02Z",
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": "True"},
                {"type": "Initialized", "status": "True"},
                {"type": "Ready", "status": "True"},
                {"type": "ContainersReady", "status": "True"},
                {"type": "PodScheduled", "status": "True"}
            ],
            "containerStatuses": [{
                "name": "web", "image": "nginx:1.27", "ready": true, "restartCount": 0,
                "started": true, "state": {"running": {"startedAt": "2025-01-10T09:00:05Z"}}
            }]
        }
    })
}

/// A Flux-style custom resource: Ready=True, generation observed.
pub(super) fn flux_kustomization() -> Value {
    json!({
        "apiVersion": "kustomize.mooring.dev/v1",
        "kind": "Kustomization",
        "metadata": {"name": "infra", "namespace": "flux-system", "generation": 3},
        "spec": {"interval": "10m", "path": "./infra", "prune": true,
                 "sourceRef": {"kind": "GitRepository", "name": "fleet"}},
        "status": {
            "observedGeneration": 3,
            "lastAppliedRevision": "main@sha1:1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c",
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
                "message": "Applied revision: main@sha1:1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c",
                "observedGeneration": 3, "lastTransitionTime": "2025-01-10T09:00:00Z"
            }]
        }
    })
}
