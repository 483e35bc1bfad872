//! The read-only commands (`get`, `history`, `tree`, `trace`) and the request timeout, against
//! objects whose status is written as the controllers write it (no controller runs here).

mod common;

use std::time::Duration;

use common::{commit, condition, env, kustomization, mooring, mooring_json, ready_source, row};
use mooring_api::Kustomization;
use tokio::io::{AsyncBufReadExt, BufReader};

/// A Ready source and two Kustomizations: `apps` applied and Ready, `infra` failed and suspended.
async fn scenario(env: &mooring_testkit::TestEnv) -> String {
    let revision = format!("main@sha1:{}", commit('a'));
    ready_source(env, "repo", "http://git.test/repo.git", &revision).await;
    kustomization(env, "apps", "repo", serde_json::json!({})).await;
    common::set_status::<Kustomization>(
        env,
        "apps",
        serde_json::json!({
            "observedGeneration": 1,
            "lastAppliedRevision": revision,
            "conditions": [condition("Ready", "True", "ReconciliationSucceeded",
                &format!("Applied revision: {revision}"))],
        }),
    )
    .await;
    kustomization(env, "infra", "repo", serde_json::json!({"suspend": true})).await;
    common::set_status::<Kustomization>(
        env,
        "infra",
        serde_json::json!({
            "conditions": [condition("Ready", "False", "BuildFailed",
                "kustomize build failed:\naccumulating resources")],
        }),
    )
    .await;
    revision
}

#[tokio::test]
async fn get_all_prints_one_table_per_kind_with_every_column() {
    let env = env("cli-get-all").await;
    let revision = scenario(&env).await;
    let run = mooring(&env, &["get", "all"]).await;
    assert_eq!(run.code, 0, "{run:#?}");
    let header = run.stdout.lines().next().expect("a header");
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["NAME", "READY", "REVISION", "SUSPENDED", "AGE", "MESSAGE"]
    );
    let source = row(&run.stdout, "gitrepository/repo");
    assert_eq!(source[1..4], ["True", revision.as_str(), "false"]);
    assert_eq!(
        source[5..].join(" "),
        format!("stored artifact for revision '{revision}'")
    );
    let apps = row(&run.stdout, "kustomization/apps");
    assert_eq!(apps[1..4], ["True", revision.as_str(), "false"]);
    assert!(apps[4].ends_with('s') || apps[4].ends_with('m'), "{apps:?}");
    // A failed, suspended Kustomization with no applied revision; its message on one line.
    let infra = row(&run.stdout, "kustomization/infra");
    assert_eq!(infra[1..4], ["False", "-", "true"]);
    assert_eq!(
        infra[5..].join(" "),
        "kustomize build failed: accumulating resources"
    );
    // Two tables: a second header for the Kustomizations.
    assert_eq!(run.stdout.matches("NAME ").count(), 2, "{}", run.stdout);
}

#[tokio::test]
async fn get_json_and_yaml_carry_the_same_fields() {
    let env = env("cli-get-json").await;
    let revision = scenario(&env).await;
    let (run, json) = mooring_json(&env, &["get", "kustomizations", "-o", "json"]).await;
    assert_eq!(run.code, 0, "{run:#?}");
    let items = json["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{json}");
    let infra = items.iter().find(|i| i["name"] == "infra").expect("infra");
    assert_eq!(infra["kind"], "Kustomization");
    assert_eq!(infra["namespace"], env.namespace.as_str());
    assert_eq!(infra["ready"], "False");
    assert_eq!(infra["suspended"], true);
    assert_eq!(infra["revision"], serde_json::Value::Null);
    assert!(
        infra["message"]
            .as_str()
            .expect("message")
            .starts_with("kustomize build failed")
    );
    assert!(
        infra["createdAt"]
            .as_str()
            .expect("createdAt")
            .ends_with('Z')
    );

    let yaml = mooring(&env, &["get", "sources", "-o", "yaml"]).await;
    assert_eq!(yaml.code, 0, "{yaml:#?}");
    let value: serde_json::Value = serde_saphyr::from_str(&yaml.stdout).expect("yaml");
    assert_eq!(value["items"][0]["name"], "repo");
    assert_eq!(value["items"][0]["revision"], revision.as_str());
    assert_eq!(value["items"][0]["ready"], "True");
}

#[tokio::test]
async fn get_all_namespaces_adds_the_namespace_column() {
    let env = env("cli-get-a").await;
    scenario(&env).await;
    let run = mooring(&env, &["get", "ks", "-A"]).await;
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(
        run.stdout
            .lines()
            .next()
            .expect("header")
            .split_whitespace()
            .next(),
        Some("NAMESPACE")
    );
    let ours: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with(&format!("{} ", env.namespace)))
        .collect();
    assert_eq!(ours.len(), 2, "{}", run.stdout);
}

#[tokio::test]
async fn empty_namespace_and_bad_usage_exit_codes() {
    let env = env("cli-get-empty").await;
    let run = mooring(&env, &["get", "all"]).await;
    assert_eq!((run.code, run.stdout.as_str()), (0, "No objects found.\n"));

    let usage = mooring(&env, &["get", "helmreleases"]).await;
    assert_eq!(usage.code, 2, "{usage:#?}");
    let usage = mooring(&env, &["get", "all", "-o", "wide"]).await;
    assert_eq!(usage.code, 2, "{usage:#?}");

    let context = mooring(&env, &["get", "all", "--context", "no-such-context"]).await;
    assert_eq!(context.code, 1, "{context:#?}");
    assert!(context.stderr.contains("no-such-context"), "{context:#?}");
}

#[tokio::test]
async fn get_watch_prints_a_line_per_change() {
    let env = env("cli-get-watch").await;
    scenario(&env).await;
    let mut child = common::command(
        &env,
        &["get", "kustomization", "infra", "--watch", "-o", "json"],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::null())
    .spawn();
    // `get` takes no object name: that is a usage error, exit code 2.
    let status = child.as_mut().expect("spawn").wait().await.expect("wait");
    assert_eq!(status.code(), Some(2));

    let mut child = common::command(&env, &["get", "kustomizations", "--watch", "-o", "json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next = async || -> serde_json::Value {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("a line within 60s")
            .expect("read")
            .expect("not closed");
        serde_json::from_str(&line).expect("one JSON object per line")
    };
    let mut initial = [next().await, next().await];
    initial.sort_by_key(|v| v["name"].to_string());
    assert_eq!(initial[0]["name"], "apps");
    assert_eq!(initial[1]["name"], "infra");
    assert_eq!(initial[1]["ready"], "False");

    common::set_status::<Kustomization>(
        &env,
        "infra",
        serde_json::json!({"conditions": [condition("Ready", "True", "ReconciliationSucceeded", "Applied revision: x")]}),
    )
    .await;
    let changed = next().await;
    assert_eq!(changed["name"], "infra");
    assert_eq!(changed["ready"], "True");
    assert_eq!(changed["message"], "Applied revision: x");
    child.kill().await.expect("kill");
}

#[tokio::test]
async fn reconcile_fails_after_the_timeout_when_no_controller_handles_it() {
    let env = env("cli-timeout").await;
    scenario(&env).await;
    let run = mooring(
        &env,
        &["reconcile", "kustomization", "apps", "--timeout", "2s"],
    )
    .await;
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains(&format!(
            "timed out after 2s waiting for Kustomization {}/apps to handle the reconcile request",
            env.namespace
        )),
        "{run:#?}"
    );
    let missing = mooring(&env, &["reconcile", "source", "nope"]).await;
    assert_eq!(missing.code, 1, "{missing:#?}");
    assert!(
        missing
            .stderr
            .contains(&format!("GitRepository {}/nope not found", env.namespace)),
        "{missing:#?}"
    );
    let usage = mooring(&env, &["reconcile", "source", "repo", "--with-source"]).await;
    assert_eq!(usage.code, 2, "{usage:#?}");
}

#[tokio::test]
async fn history_lists_the_applied_renders_newest_first() {
    let env = env("cli-history").await;
    scenario(&env).await;
    let entry = |digit: char, revision: &str, first: &str, last: &str, extra: serde_json::Value| {
        let mut metadata = serde_json::json!({"revision": revision});
        if let (Some(m), Some(e)) = (metadata.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        serde_json::json!({
            "digest": format!("sha256:{}", std::iter::repeat_n(digit, 64).collect::<String>()),
            "firstReconciled": first, "lastReconciled": last,
            "lastReconciledDuration": "1.5s", "lastReconciledStatus": "Ready",
            "totalReconciliations": 2, "metadata": metadata,
        })
    };
    let (new, old) = (
        format!("main@sha1:{}", commit('b')),
        format!("main@sha1:{}", commit('a')),
    );
    common::set_status::<Kustomization>(
        &env,
        "apps",
        serde_json::json!({"history": [
            entry('2', &new, "2026-02-01T10:00:00Z", "2026-02-01T11:00:00Z",
                  serde_json::json!({"git.author": "Ada"})),
            entry('1', &old, "2026-01-01T10:00:00Z", "2026-01-01T10:00:00Z", serde_json::json!({})),
        ]}),
    )
    .await;
    let run = mooring(&env, &["history", "kustomization", "apps"]).await;
    assert_eq!(run.code, 0, "{run:#?}");
    let lines: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        [
            "REVISION", "DIGEST", "FIRST", "APPLIED", "LAST", "APPLIED", "DURATION", "RESULT",
            "PASSES", "METADATA"
        ]
    );
    assert_eq!(
        lines[1],
        [
            new.as_str(),
            "sha256:222222222222",
            "2026-02-01T10:00:00Z",
            "2026-02-01T11:00:00Z",
            "1.5s",
            "Ready",
            "2",
            "git.author=Ada"
        ]
    );
    assert_eq!(lines[2][..2], [old.as_str(), "sha256:111111111111"]);
    assert_eq!(lines.len(), 3);

    let (run, json) = mooring_json(&env, &["history", "ks", "apps", "-o", "json"]).await;
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(json["history"][0]["metadata"]["revision"], new.as_str());
    assert_eq!(
        json["history"][1]["digest"],
        format!("sha256:{}", "1".repeat(64))
    );

    let none = mooring(&env, &["history", "kustomization", "infra"]).await;
    assert_eq!(none.code, 0, "{none:#?}");
    assert!(none.stdout.contains("has no history yet"), "{none:#?}");
    let missing = mooring(&env, &["history", "kustomization", "nope"]).await;
    assert_eq!(missing.code, 1, "{missing:#?}");
}

#[tokio::test]
async fn trace_of_an_object_no_kustomization_manages_fails() {
    let env = env("cli-trace-none").await;
    common::apply::<k8s_openapi::api::core::v1::ConfigMap>(
        &env,
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "handmade"}}),
    )
    .await;
    // Kinds are matched by kind or plural name; kubectl's short names are not known.
    let run = mooring(&env, &["trace", "cm", "handmade"]).await;
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr
            .contains("the server has no resource type \"cm\""),
        "{run:#?}"
    );
    let run = mooring(&env, &["trace", "configmaps", "handmade"]).await;
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains(&format!(
            "ConfigMap/{}/handmade is not managed by a Kustomization",
            env.namespace
        )),
        "{run:#?}"
    );
    let run = mooring(&env, &["trace", "configmap", "absent"]).await;
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.contains("not found"), "{run:#?}");
}

#[tokio::test]
async fn kubectl_runs_the_plugin() {
    let env = env("cli-plugin").await;
    scenario(&env).await;
    let plugin = std::path::Path::new(env!("CARGO_BIN_EXE_kubectl-mooring"));
    let kubectl = mooring_testkit::tools::tool("kubectl").expect("kubectl");
    let path = format!(
        "{}:{}",
        plugin.parent().expect("bin dir").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = tokio::process::Command::new(kubectl)
        .args(["mooring", "get", "ks", "-o", "json", "--kubeconfig"])
        .arg(env.plane.kubeconfig())
        .args(["-n", &env.namespace])
        .env("PATH", path)
        .output()
        .await
        .expect("kubectl");
    assert!(output.status.success(), "{output:#?}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(json["items"].as_array().map(Vec::len), Some(2), "{json}");
}

/// A Deployment (no kube-controller-manager runs here, so it never becomes Current) with the
/// ownership labels of Kustomization `owner`.
async fn managed_deployment(env: &mooring_testkit::TestEnv, name: &str, owner: &str) {
    common::apply::<k8s_openapi::api::apps::v1::Deployment>(
        env,
        serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": {
                "kustomize.mooring.dev/name": owner,
                "kustomize.mooring.dev/namespace": env.namespace}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "c", "image": "registry.invalid/c:1"}]}}},
        }),
    )
    .await;
}

#[tokio::test]
async fn why_of_a_managed_object_leads_to_the_kustomization_that_applies_it() {
    let env = env("cli-why-managed").await;
    let ns = env.namespace.clone();
    scenario(&env).await;
    // Applied by `infra`, which fails to build: the object is stale because of it.
    managed_deployment(&env, "web", "infra").await;
    let run = mooring(&env, &["why", "deployment.apps", "web"]).await;
    assert_eq!(run.code, 1, "{run:#?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    assert!(
        lines[0].starts_with(&format!("Deployment {ns}/web is not ready (InProgress: "))
            && lines[0].ends_with(&format!(
                "), and Kustomization {ns}/infra that applies it is not ready"
            )),
        "{}",
        run.stdout
    );
    assert_eq!(
        lines[1],
        format!(
            "  Kustomization {ns}/infra is not ready: BuildFailed: kustomize build failed: \
             accumulating resources"
        )
    );
    // Applied by `apps`, which is Ready: the object's failure is its own.
    managed_deployment(&env, "api", "apps").await;
    let (run, json) = mooring_json(&env, &["why", "deployments", "api", "-o", "json"]).await;
    assert_eq!(run.code, 1, "{run:#?}");
    let hops = json.as_array().expect("a list");
    assert_eq!(hops.len(), 1, "{json}");
    assert_eq!(
        (
            &hops[0]["kind"],
            &hops[0]["name"],
            &hops[0]["ready"],
            &hops[0]["reason"]
        ),
        (
            &serde_json::json!("Deployment"),
            &serde_json::json!("api"),
            &serde_json::json!("False"),
            &serde_json::json!("InProgress")
        ),
        "{json}"
    );
    // Ready objects: exit code 0.
    let run = mooring(&env, &["why", "ks", "apps"]).await;
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, format!("Kustomization {ns}/apps is ready\n").as_str()),
        "{run:#?}"
    );
    let run = mooring(&env, &["why", "ks", "absent"]).await;
    assert_eq!(run.code, 1, "{run:#?}");
    assert_eq!(
        run.stdout,
        format!("Kustomization {ns}/absent does not exist\n")
    );
}

/// A core/v1 Event `name` about `kind`/`object` of `api_version`, last seen at `at`.
async fn event(
    env: &mooring_testkit::TestEnv,
    name: &str,
    (api_version, kind, object): (&str, &str, &str),
    (type_, reason, message): (&str, &str, &str),
    at: &str,
) {
    common::apply::<k8s_openapi::api::core::v1::Event>(
        env,
        serde_json::json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name},
            "involvedObject": {"apiVersion": api_version, "kind": kind, "name": object,
                               "namespace": env.namespace},
            "type": type_, "reason": reason, "message": message,
            "firstTimestamp": at, "lastTimestamp": at, "count": 1,
            "source": {"component": "test"},
        }),
    )
    .await;
}

#[tokio::test]
async fn events_lists_the_events_about_mooring_objects_newest_last() {
    let env = env("cli-events").await;
    let ns = env.namespace.clone();
    scenario(&env).await;
    let ks = ("kustomize.mooring.dev/v1", "Kustomization");
    event(
        &env,
        "late",
        (ks.0, ks.1, "infra"),
        (
            "Warning",
            "BuildFailed",
            "kustomize build failed:\naccumulating resources",
        ),
        "2026-01-02T03:00:00Z",
    )
    .await;
    event(
        &env,
        "early",
        (ks.0, ks.1, "apps"),
        ("Normal", "Progressing", "ConfigMap/x created"),
        "2026-01-01T03:00:00Z",
    )
    .await;
    event(
        &env,
        "src",
        ("source.mooring.dev/v1", "GitRepository", "repo"),
        ("Normal", "NewArtifact", "stored artifact"),
        "2026-01-01T04:00:00Z",
    )
    .await;
    // About an object that is not Mooring's: left out.
    event(
        &env,
        "other",
        ("v1", "ConfigMap", "x"),
        ("Normal", "Other", "not ours"),
        "2026-01-01T05:00:00Z",
    )
    .await;

    let run = mooring(&env, &["events"]).await;
    assert_eq!(run.code, 0, "{run:#?}");
    let rows: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 4, "{}", run.stdout);
    assert_eq!(
        rows[0],
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    );
    let rest: Vec<Vec<&str>> = rows[1..].iter().map(|r| r[1..].to_vec()).collect();
    assert_eq!(
        rest,
        [
            vec![
                "Normal",
                "Progressing",
                "kustomization/apps",
                "ConfigMap/x",
                "created"
            ],
            vec![
                "Normal",
                "NewArtifact",
                "gitrepository/repo",
                "stored",
                "artifact"
            ],
            vec![
                "Warning",
                "BuildFailed",
                "kustomization/infra",
                "kustomize",
                "build",
                "failed:",
                "accumulating",
                "resources"
            ],
        ],
        "{}",
        run.stdout
    );
    assert!(rows[1][0].ends_with('d'), "an age in days: {}", run.stdout);

    // One object; the data form keeps the message as published.
    let (run, json) = mooring_json(&env, &["events", "kustomization", "infra", "-o", "json"]).await;
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(
        json["items"],
        serde_json::json!([{"namespace": ns, "type": "Warning", "reason": "BuildFailed",
            "kind": "Kustomization", "name": "infra",
            "message": "kustomize build failed:\naccumulating resources", "count": 1,
            "lastSeen": "2026-01-02T03:00:00Z"}])
    );
    let run = mooring(&env, &["events", "kustomization"]).await;
    assert_eq!(
        run.code, 2,
        "a kind without a name is a usage error: {run:#?}"
    );

    // -A adds the namespace; --watch prints the list, then each new Event.
    let run = mooring(&env, &["events", "-A"]).await;
    assert_eq!(
        row(&run.stdout, &ns)[2..4],
        ["Normal", "Progressing"],
        "{}",
        run.stdout
    );
    let mut child = common::command(&env, &["events", "ks", "apps", "--watch", "-o", "json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next = async || -> serde_json::Value {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("a line within 60s")
            .expect("read")
            .expect("not closed");
        serde_json::from_str(&line).expect("one JSON object per line")
    };
    assert_eq!(next().await["reason"], "Progressing");
    event(
        &env,
        "later",
        (ks.0, ks.1, "apps"),
        ("Warning", "HealthCheckFailed", "Deployment/web not ready"),
        "2026-01-03T00:00:00Z",
    )
    .await;
    let new = next().await;
    assert_eq!(
        (&new["reason"], &new["message"]),
        (
            &serde_json::json!("HealthCheckFailed"),
            &serde_json::json!("Deployment/web not ready")
        )
    );
    child.kill().await.expect("kill");
}
