//! The chart as `helm template` renders it, parsed, for tests that check what it would create
//! and for running the controllers with the flags its Deployments pass.

use serde_json::Value;

use crate::cli::Error;

/// Flags of the kustomize-controller's container that testkit sets itself: paths and
/// addresses inside the pod, and logging.
const SET_BY_TESTKIT: [&str; 5] = [
    "--kustomize-path",
    "--artifact-cache-path",
    "--metrics-addr",
    "--log-format",
    "--log-level",
];

/// Every object in `yaml` (the output of `helm template`), in order; empty documents dropped.
pub fn parse(yaml: &str) -> Result<Vec<Value>, Error> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(yaml).map_err(|e| Error::Output {
        command: "helm template".to_string(),
        reason: e.to_string(),
    })?;
    Ok(documents.into_iter().filter(|d| !d.is_null()).collect())
}

/// The objects of `kind`.
pub fn of_kind<'a>(objects: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> {
    objects.iter().filter(move |o| o["kind"] == kind)
}

/// The object of `kind` named `name`.
pub fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

/// The `args` of the first container of Deployment `name`.
pub fn container_args(objects: &[Value], deployment: &str) -> Result<Vec<String>, Error> {
    let missing = |what: &str| Error::Output {
        command: "helm template".to_string(),
        reason: format!("{what} of Deployment {deployment}"),
    };
    let deployment = find(objects, "Deployment", deployment).ok_or_else(|| missing("no object"))?;
    let args = deployment
        .pointer("/spec/template/spec/containers/0/args")
        .and_then(Value::as_array)
        .ok_or_else(|| missing("no container args"))?;
    args.iter()
        .map(|a| a.as_str().map(str::to_string))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| missing("an arg that is not a string"))
}

/// The kustomize-controller's flags in `objects` (a render with the Deployments) less those
/// testkit sets itself: what a test passes on so that the binary runs as the chart runs it.
pub fn kustomize_flags(objects: &[Value], deployment: &str) -> Result<Vec<String>, Error> {
    let args = container_args(objects, deployment)?;
    Ok(args
        .into_iter()
        .filter(|arg| {
            let flag = arg.split('=').next().unwrap_or_default();
            !SET_BY_TESTKIT.contains(&flag)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_pod_paths_and_logging_are_left_to_testkit() {
        let yaml = "---
# Source: mooring/templates/kustomize-controller.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: k
spec:
  template:
    spec:
      containers:
        - name: manager
          args:
            - --kustomize-path=/usr/local/bin/kustomize
            - --metrics-addr=0.0.0.0:8080
            - --log-level=info
            - --concurrency=4
            - --default-service-account=default
---
";
        let objects = parse(yaml).expect("parses");
        assert_eq!(objects.len(), 1);
        assert_eq!(
            kustomize_flags(&objects, "k").expect("flags"),
            ["--concurrency=4", "--default-service-account=default"]
        );
        assert!(kustomize_flags(&objects, "other").is_err());
    }
}
