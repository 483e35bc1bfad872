//! What the scenarios put in git and in the cluster, and how they recognise "done".

use kube::api::DynamicObject;
use kube::core::ApiResource;
use serde_json::{Value, json};

/// The files of an app: `count` objects under `deploy/`, ConfigMaps, Services, ServiceAccounts
/// and Roles in equal parts (kinds that become healthy without nodes). ConfigMap `i` carries
/// `values[i]` (or "0").
pub fn app_files(app: &str, count: usize, values: &[String]) -> Vec<(String, String)> {
    let per_kind = count.div_ceil(4).max(1);
    let value = |i: usize| values.get(i).map(String::as_str).unwrap_or("0");
    let docs =
        |make: &dyn Fn(usize) -> String| (0..per_kind).map(make).collect::<Vec<_>>().join("---\n");
    let config_maps = docs(&|i| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {app}-cm-{i}\ndata:\n  value: \"{}\"\n",
            value(i)
        )
    });
    let services = docs(&|i| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {app}-svc-{i}\nspec:\n  selector:\n    app: {app}\n  ports:\n  - port: 80\n    targetPort: 8080\n"
        )
    });
    let accounts = docs(&|i| {
        format!("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {app}-sa-{i}\n")
    });
    let roles = docs(&|i| {
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: {app}-role-{i}\nrules:\n- apiGroups: [\"\"]\n  resources: [\"configmaps\"]\n  verbs: [\"get\"]\n"
        )
    });
    let kustomization = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
resources:\n- configmaps.yaml\n- services.yaml\n- serviceaccounts.yaml\n- roles.yaml\n";
    vec![
        (
            "deploy/kustomization.yaml".to_string(),
            kustomization.to_string(),
        ),
        ("deploy/configmaps.yaml".to_string(), config_maps),
        ("deploy/services.yaml".to_string(), services),
        ("deploy/serviceaccounts.yaml".to_string(), accounts),
        ("deploy/roles.yaml".to_string(), roles),
    ]
}

/// The files of a P1 app for a cluster where workloads run: a Deployment of one replica, the
/// Service in front of it, a ConfigMap it reads and the ServiceAccount it runs as (the shape of
/// the apps in Flux's own benchmark).
pub fn workload_app_files(app: &str) -> Vec<(String, String)> {
    let manifests = format!(
        "apiVersion: v1
kind: ConfigMap
metadata:
  name: {app}-config
data:
  value: \"0\"
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {app}
---
apiVersion: v1
kind: Service
metadata:
  name: {app}
spec:
  selector:
    app: {app}
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {app}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {app}
  template:
    metadata:
      labels:
        app: {app}
    spec:
      serviceAccountName: {app}
      containers:
      - name: web
        image: registry.k8s.io/pause:3.10
        ports:
        - containerPort: 8080
        envFrom:
        - configMapRef:
            name: {app}-config
"
    );
    vec![
        (
            "deploy/kustomization.yaml".to_string(),
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- app.yaml\n"
                .to_string(),
        ),
        ("deploy/app.yaml".to_string(), manifests),
    ]
}

/// The name of ConfigMap `i` of `app`.
pub fn config_map_name(app: &str, i: usize) -> String {
    format!("{app}-cm-{i}")
}

/// A GitRepository following `main` of `url`.
pub fn git_repository(
    ar: &ApiResource,
    name: &str,
    url: &str,
    interval: &str,
    timeout: &str,
) -> Result<DynamicObject, serde_json::Error> {
    serde_json::from_value(json!({
        "apiVersion": ar.api_version, "kind": ar.kind, "metadata": {"name": name},
        "spec": {"url": url, "interval": interval, "timeout": timeout, "ref": {"branch": "main"}}
    }))
}

/// A Kustomization of `path` (e.g. `./deploy`) from GitRepository `source`, into `namespace`,
/// waiting for health.
pub fn kustomization(
    ar: &ApiResource,
    name: &str,
    source: &str,
    path: &str,
    namespace: &str,
    interval: &str,
) -> Result<DynamicObject, serde_json::Error> {
    serde_json::from_value(json!({
        "apiVersion": ar.api_version, "kind": ar.kind, "metadata": {"name": name},
        "spec": {
            "interval": interval, "path": path, "prune": true, "wait": true,
            "timeout": "5m", "targetNamespace": namespace,
            "sourceRef": {"kind": "GitRepository", "name": source}
        }
    }))
}

/// Whether a revision (`main@sha1:<sha>`, `sha1:<sha>` or a bare sha) names commit `sha`.
pub fn names_commit(revision: Option<&str>, sha: &str) -> bool {
    revision.is_some_and(|r| r == sha || r.ends_with(&format!(":{sha}")) || r.ends_with(sha))
}

fn condition_true(obj: &DynamicObject, kind: &str) -> bool {
    obj.data["status"]["conditions"]
        .as_array()
        .is_some_and(|conds| {
            conds
                .iter()
                .any(|c| c["type"] == kind && c["status"] == "True")
        })
}

fn observed_current(obj: &DynamicObject) -> bool {
    let observed = obj.data["status"]["observedGeneration"].as_i64();
    observed.is_some() && observed == obj.metadata.generation
}

/// A Kustomization that is Ready at its current generation with commit `sha` applied.
pub fn applied(obj: &DynamicObject, sha: &str) -> bool {
    condition_true(obj, "Ready")
        && observed_current(obj)
        && names_commit(obj.data["status"]["lastAppliedRevision"].as_str(), sha)
}

/// A GitRepository whose artifact is commit `sha`.
pub fn has_artifact(obj: &DynamicObject, sha: &str) -> bool {
    names_commit(obj.data["status"]["artifact"]["revision"].as_str(), sha)
}

/// The `data.value` of a ConfigMap given as JSON.
pub fn config_map_value(cm: &Value) -> Option<&str> {
    cm["data"]["value"].as_str()
}
