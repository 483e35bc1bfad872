//! `mooring logs [KIND NAME]`: the controllers' logs, read through the API from the pods the
//! chart deploys (or from a file saved with `kubectl logs`), keeping the lines about one
//! GitRepository or Kustomization.
//!
//! The controllers log one JSON object per line (the chart's default `log.format: json`). A
//! line is about an object when the span it was logged in is kube-runtime's `reconciling
//! object` span naming it (`span."object.ref"`: `Kind.version.group/name.namespace`) or, outside
//! such a span, when its fields name it (`object: namespace/name`, or `namespace` and `name`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};
use serde::Serialize;
use serde_json::Value;

use crate::args::{Global, LogsArgs};
use crate::client::connect;
use crate::error::Error;
use crate::kinds::kind_name;
use crate::output::{print_structured, write_stdout};

/// The label selector of the controller pods, from the chart's labels.
pub const POD_SELECTOR: &str = "app.kubernetes.io/part-of=mooring,app.kubernetes.io/component in \
                                (source-controller,kustomize-controller)";

/// The controllers' container in the chart's pods.
pub const CONTAINER: &str = "manager";

/// The object whose lines are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `GitRepository` or `Kustomization`.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// One log line, parsed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LogLine {
    /// The pod it came from (empty for `--from-file`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pod: String,
    /// The JSON object the controller logged.
    #[serde(flatten)]
    pub fields: BTreeMap<String, Value>,
}

/// Runs `logs`.
pub async fn run(global: &Global, args: LogsArgs) -> Result<(), Error> {
    let mut sources: Vec<(String, String)> = Vec::new();
    let mut namespace = global.namespace.clone().unwrap_or_default();
    match &args.from_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::Failed(format!("reading {}: {e}", path.display())))?;
            sources.push((String::new(), text));
        }
        None => {
            let cluster = connect(global).await?;
            namespace = cluster.namespace.clone();
            let pods: Api<Pod> = match &args.controller_namespace {
                Some(ns) => Api::namespaced(cluster.client.clone(), ns),
                None => Api::all(cluster.client.clone()),
            };
            let list = pods
                .list(&ListParams::default().labels(POD_SELECTOR))
                .await
                .map_err(Error::api("listing the controller pods"))?;
            if list.items.is_empty() {
                return Err(Error::Failed(format!(
                    "no controller pods found (label selector {POD_SELECTOR})"
                )));
            }
            for pod in &list.items {
                let name = pod.metadata.name.clone().unwrap_or_default();
                let ns = pod.metadata.namespace.clone().unwrap_or_default();
                let params = LogParams {
                    container: Some(CONTAINER.to_string()),
                    tail_lines: args.tail,
                    ..LogParams::default()
                };
                let text = Api::<Pod>::namespaced(cluster.client.clone(), &ns)
                    .logs(&name, &params)
                    .await
                    .map_err(Error::api(format!("reading the log of pod {ns}/{name}")))?;
                sources.push((name, text));
            }
        }
    }
    let target = match (args.kind, &args.name) {
        (Some(kind), Some(name)) => Some(Target {
            kind: kind_name(kind).to_string(),
            namespace: if namespace.is_empty() {
                "default".to_string()
            } else {
                namespace
            },
            name: name.clone(),
        }),
        _ => None,
    };
    let mut lines: Vec<LogLine> = sources
        .iter()
        .flat_map(|(pod, text)| filter(text, target.as_ref(), pod))
        .collect();
    // Pods' logs interleaved by time (RFC 3339 timestamps in UTC sort as text).
    lines.sort_by(|a, b| timestamp(a).cmp(timestamp(b)));
    match global.output {
        Some(format) => print_structured(format, &lines),
        None => write_stdout(&lines.iter().map(human).collect::<String>()),
    }
}

fn timestamp(line: &LogLine) -> &str {
    line.fields
        .get("timestamp")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The JSON lines of `text` about `target` (all JSON lines when `None`); other lines (text
/// format, a stack trace) are left out.
pub fn filter(text: &str, target: Option<&Target>, pod: &str) -> Vec<LogLine> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<BTreeMap<String, Value>>(l.trim()).ok())
        .filter(|fields| target.is_none_or(|t| is_about(fields, t)))
        .map(|fields| LogLine {
            pod: pod.to_string(),
            fields,
        })
        .collect()
}

/// Whether a parsed line is about `target`: its reconcile span names it, or (outside such a
/// span) its fields do.
pub fn is_about(fields: &BTreeMap<String, Value>, target: &Target) -> bool {
    let object_ref = fields
        .get("span")
        .and_then(|s| s.get("object.ref"))
        .and_then(Value::as_str);
    if let Some(object_ref) = object_ref {
        return parse_object_ref(object_ref).is_some_and(|(kind, namespace, name)| {
            kind == target.kind && namespace == target.namespace && name == target.name
        });
    }
    let field = |key: &str| fields.get(key).and_then(Value::as_str);
    if field("kind").is_some_and(|k| k != target.kind) {
        return false;
    }
    field("object") == Some(&format!("{}/{}", target.namespace, target.name))
        || (field("namespace") == Some(&target.namespace) && field("name") == Some(&target.name))
}

/// (kind, namespace, name) of kube-runtime's `Kind.version.group/name.namespace`. A namespace
/// has no dots, a name may.
fn parse_object_ref(object_ref: &str) -> Option<(&str, &str, &str)> {
    let (kind_part, object) = object_ref.split_once('/')?;
    let kind = kind_part.split('.').next()?;
    let (name, namespace) = object.rsplit_once('.')?;
    Some((kind, namespace, name))
}

/// A line for people: time, level, message, then the other fields as `key=value`.
fn human(line: &LogLine) -> String {
    let get = |key: &str| {
        line.fields
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let mut out = format!("{} {} {}", get("timestamp"), get("level"), get("message"));
    for (key, value) in &line.fields {
        if matches!(
            key.as_str(),
            "timestamp" | "level" | "message" | "span" | "spans" | "target"
        ) {
            continue;
        }
        match value {
            Value::String(s) => out.push_str(&format!(" {key}={s}")),
            other => out.push_str(&format!(" {key}={other}")),
        }
    }
    if !line.pod.is_empty() {
        out.push_str(&format!(" pod={}", line.pod));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(kind: &str, name: &str) -> Target {
        Target {
            kind: kind.into(),
            namespace: "ns".into(),
            name: name.into(),
        }
    }

    #[test]
    fn object_refs_split_into_kind_namespace_and_name() {
        assert_eq!(
            parse_object_ref("Kustomization.v1.kustomize.mooring.dev/my.app.ns"),
            Some(("Kustomization", "ns", "my.app"))
        );
        assert_eq!(parse_object_ref("no slash"), None);
    }

    #[test]
    fn the_span_decides_and_fields_count_only_outside_one() {
        let text = r#"{"timestamp":"t1","level":"INFO","message":"m","span":{"object.ref":"Kustomization.v1.kustomize.mooring.dev/a.ns","name":"reconciling object"}}
{"timestamp":"t2","level":"INFO","message":"m","span":{"object.ref":"GitRepository.v1.source.mooring.dev/a.ns","name":"reconciling object"}}
{"timestamp":"t3","level":"INFO","message":"m","object":"ns/a"}
{"timestamp":"t4","level":"INFO","message":"m","namespace":"ns","name":"a","kind":"GitRepository"}
{"timestamp":"t5","level":"INFO","message":"m","namespace":"ns","name":"b"}
2026-01-01T00:00:00Z  INFO a text line about ns/a
"#;
        let kept: Vec<String> = filter(text, Some(&target("Kustomization", "a")), "")
            .iter()
            .map(|l| timestamp(l).to_string())
            .collect();
        assert_eq!(kept, ["t1", "t3"]);
        assert_eq!(filter(text, None, "").len(), 5);
    }
}
