//! The chart's Grafana dashboard (`dashboard.enabled`) queries only metrics the controllers
//! export: every metric name in every PromQL expression of the rendered ConfigMap is served on
//! the `/metrics` of the running controller binaries after they have reconciled an app.

use std::collections::BTreeSet;

use mooring_e2e::chart;
use mooring_e2e::cli::run;
use mooring_e2e::cluster::chart_dir;
use mooring_testkit::control_plane::{ControlPlane, Options};
use mooring_testkit::controllers::{self, Controllers, KUSTOMIZE_CONTROLLER, SOURCE_CONTROLLER};
use mooring_testkit::git::{Auth, GitServer};
use mooring_testkit::tools::tool;
use serde_json::Value;

/// PromQL functions, aggregations and keywords: words that are not metric names.
const PROMQL_WORDS: &[&str] = &[
    "sum",
    "max",
    "min",
    "avg",
    "count",
    "topk",
    "bottomk",
    "by",
    "without",
    "rate",
    "irate",
    "increase",
    "histogram_quantile",
    "and",
    "or",
    "unless",
    "offset",
    "bool",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The ConfigMaps labelled `grafana_dashboard: "1"` that the chart renders with `values`.
fn dashboard_config_maps(values: &[&str]) -> Vec<Value> {
    let home = tempfile::tempdir().expect("temp dir");
    let envs = [
        ("HELM_CACHE_HOME", home.path()),
        ("HELM_CONFIG_HOME", home.path()),
        ("HELM_DATA_HOME", home.path()),
    ];
    let helm = tool("helm").expect("helm: run `make tools`");
    let chart = chart_dir();
    let args = [
        "template",
        "mooring",
        chart.as_str(),
        "--namespace",
        "mooring-system",
    ];
    let args: Vec<&str> = args.iter().chain(values).copied().collect();
    let yaml = run(&helm, &args, &envs).expect("helm template");
    let objects = chart::parse(&yaml).expect("rendered objects");
    chart::of_kind(&objects, "ConfigMap")
        .filter(|cm| cm["metadata"]["labels"]["grafana_dashboard"] == "1")
        .cloned()
        .collect()
}

/// The dashboard JSON from the ConfigMap the chart renders with `dashboard.enabled=true`.
fn rendered_dashboard() -> Value {
    let config_maps = dashboard_config_maps(&["--set", "dashboard.enabled=true"]);
    assert_eq!(config_maps.len(), 1, "one dashboard ConfigMap");
    let json = config_maps[0]["data"]["mooring.json"]
        .as_str()
        .expect("data.mooring.json");
    serde_json::from_str(json).expect("the dashboard is JSON")
}

/// Every `expr` of every panel (rows included).
fn expressions(dashboard: &Value) -> Vec<String> {
    fn walk(panels: &Value, out: &mut Vec<String>) {
        for panel in panels.as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                out.push(target["expr"].as_str().expect("a PromQL expr").to_string());
            }
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// The metric names a PromQL expression selects: identifiers outside label matchers, range
/// selectors, `by (...)` groupings and strings, that are neither called (functions) nor PromQL
/// words.
fn metric_names(expr: &str) -> BTreeSet<String> {
    // Blank out what holds label names or values: "...", {...}, [...].
    let mut plain = String::new();
    let mut closing: Option<char> = None;
    for c in expr.chars() {
        match closing {
            Some(end) if c == end => closing = None,
            Some(_) => {}
            None => match c {
                '"' => closing = Some('"'),
                '{' => closing = Some('}'),
                '[' => closing = Some(']'),
                _ => {
                    plain.push(c);
                    continue;
                }
            },
        }
        plain.push(' ');
    }
    let chars: Vec<char> = plain.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut after_grouping = false;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            if word == "by" || word == "without" {
                // Skip the parenthesised label list that follows.
                after_grouping = true;
                continue;
            }
            if next != Some(&'(') && !PROMQL_WORDS.contains(&word.as_str()) {
                names.insert(word);
            }
            continue;
        }
        if c == '(' && after_grouping {
            after_grouping = false;
            while i < chars.len() && chars[i] != ')' {
                i += 1;
            }
        }
        i += 1;
    }
    names
}

/// The metric names of a Prometheus text exposition.
fn exported_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_dashboard_is_off_by_default() {
    assert!(dashboard_config_maps(&[]).is_empty());
}

#[test]
fn metric_names_are_read_from_promql() {
    let names = metric_names(
        r#"histogram_quantile(0.95, sum by (le, operation) (rate(a_seconds_bucket{x="y"}[5m]))) / sum(b_total) by (z)"#,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["a_seconds_bucket", "b_total"]
    );
}

#[test]
fn every_metric_in_the_dashboard_is_exported_by_the_controllers() {
    let dashboard = rendered_dashboard();
    let exprs = expressions(&dashboard);
    assert!(exprs.len() >= 8, "{exprs:?}");
    let mut wanted = BTreeSet::new();
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "no metric in {expr}");
        wanted.extend(names);
    }

    // The controller binaries, after one app has been fetched, applied and found Ready.
    let plane = ControlPlane::start(&Options::default()).expect("control plane");
    let git = GitServer::shared().expect("git server");
    let repo = git
        .create_repo("dashboard-app", Auth::None)
        .expect("repository");
    let app =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  level: info\n";
    repo.commit(&[("deploy/settings.yaml", app)], "an app")
        .expect("commit");
    let controllers = Controllers::start(&controllers::Options::local(plane.kubeconfig()))
        .expect("controllers (cargo build --bins)");
    let objects = format!(
        "apiVersion: source.mooring.dev/v1
kind: GitRepository
metadata:
  name: app
  namespace: default
spec:
  url: {url}
  interval: 1m
  ref:
    branch: main
---
apiVersion: kustomize.mooring.dev/v1
kind: Kustomization
metadata:
  name: app
  namespace: default
spec:
  sourceRef:
    kind: GitRepository
    name: app
  path: ./deploy
  prune: true
  interval: 1m
",
        url = repo.http_url()
    );
    plane
        .run_kubectl_with_input(&["apply", "-f", "-"], &objects)
        .expect("apply");
    plane
        .run_kubectl(&[
            "wait",
            "-n",
            "default",
            "--for=condition=Ready",
            "--timeout=120s",
            "gitrepository/app",
            "kustomization/app",
        ])
        .unwrap_or_else(|e| panic!("Ready: {e}\n{}", controllers.log_tails()));

    let mut exported = BTreeSet::new();
    for name in [SOURCE_CONTROLLER, KUSTOMIZE_CONTROLLER] {
        let text = controllers.metrics(name).expect("scrape /metrics");
        exported.extend(exported_names(&text));
    }
    let missing: Vec<&String> = wanted.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics no controller exports: {missing:?}\nexported: {exported:?}"
    );
}
