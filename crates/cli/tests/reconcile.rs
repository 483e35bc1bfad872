//! `mooring reconcile`, `suspend` and `resume` with both controllers running against the real
//! git server: the request is handled, the outcome (revision, change set, failure) is printed,
//! and the exit code says whether it worked.

mod common;

use common::{
    config_map, controllers, env, git_repo, git_repository, kustomization, mooring, mooring_json,
    wait_applied,
};
use kube::api::Api;
use mooring_api::Kustomization;

#[tokio::test]
async fn reconcile_reports_revision_changes_and_failures_suspend_and_resume() {
    let env = env("cli-reconcile").await;
    let ns = env.namespace.clone();
    let (repo, first) = git_repo(
        "cli-reconcile",
        &[
            ("deploy/kustomization.yaml", "resources: [a.yaml]\n"),
            ("deploy/a.yaml", &config_map("a", "1")),
        ],
    );
    let controllers = controllers(&env).await;
    git_repository(&env, "repo", repo.http_url()).await;
    kustomization(
        &env,
        "apps",
        "repo",
        serde_json::json!({"targetNamespace": ns}),
    )
    .await;
    wait_applied(&env, "apps", &first).await;

    // A new commit: the source is fetched on request, then the Kustomization applies it.
    let second = repo
        .commit(
            &[
                ("deploy/kustomization.yaml", "resources: [a.yaml, b.yaml]\n"),
                ("deploy/a.yaml", &config_map("a", "2")),
                ("deploy/b.yaml", &config_map("b", "1")),
            ],
            "second",
        )
        .expect("commit");
    let run = mooring(
        &env,
        &["reconcile", "kustomization", "apps", "--with-source"],
    )
    .await;
    assert_eq!(run.code, 0, "{run:#?}\n{}", controllers.log_tails());
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            format!("✔ GitRepository {ns}/repo: fetched revision main@sha1:{second}").as_str(),
            format!("✔ Kustomization {ns}/apps: applied revision main@sha1:{second}").as_str(),
            format!("  ConfigMap/{ns}/a configured").as_str(),
            format!("  ConfigMap/{ns}/b created").as_str(),
        ],
        "{run:#?}"
    );
    assert!(
        run.stderr.contains(&format!(
            "► requested a reconcile of Kustomization {ns}/apps"
        )),
        "{run:#?}"
    );

    // Nothing new: handled again, no change set.
    let (run, json) = mooring_json(&env, &["reconcile", "ks", "apps", "-o", "json"]).await;
    assert_eq!(run.code, 0, "{run:#?}");
    let outcome = &json["items"][0];
    assert_eq!(outcome["succeeded"], true);
    assert_eq!(outcome["revision"], format!("main@sha1:{second}"));
    assert_eq!(outcome["reason"], "ReconciliationSucceeded");
    assert!(outcome.get("changes").is_none(), "{json}");
    let api: Api<Kustomization> = Api::namespaced(env.client.clone(), &ns);
    let ks = api.get("apps").await.expect("apps");
    let handled = ks
        .status
        .as_ref()
        .and_then(|s| s.last_handled_reconcile_at.clone());
    assert_eq!(handled.as_deref(), outcome["requestedAt"].as_str());

    // A broken revision: exit code 1, the failure named, the last good revision kept.
    let broken = repo
        .commit(
            &[("deploy/kustomization.yaml", "resources: [missing.yaml]\n")],
            "broken",
        )
        .expect("commit");
    let (run, json) = mooring_json(
        &env,
        &["reconcile", "ks", "apps", "--with-source", "-o", "json"],
    )
    .await;
    assert_eq!(run.code, 1, "{run:#?}");
    assert_eq!(json["items"][0]["revision"], format!("main@sha1:{broken}"));
    let failed = &json["items"][1];
    assert_eq!(failed["succeeded"], false, "{json}");
    assert!(
        failed["message"]
            .as_str()
            .expect("message")
            .contains("missing.yaml"),
        "{json}"
    );
    assert_eq!(failed["revision"], format!("main@sha1:{second}"));
    assert!(
        run.stderr.contains(&format!(
            "error: reconciliation of Kustomization {ns}/apps failed"
        )),
        "{run:#?}"
    );

    // Suspended: a reconcile request is refused (exit 1), `get` shows it.
    let run = mooring(&env, &["suspend", "kustomization", "apps"]).await;
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, format!("✔ Kustomization {ns}/apps suspended\n").as_str())
    );
    assert!(api.get("apps").await.expect("apps").spec.suspend);
    let run = mooring(&env, &["reconcile", "kustomization", "apps"]).await;
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.contains("is suspended"), "{run:#?}");

    // Fixed in git; resume waits for the pass and prints it.
    let fixed = repo
        .commit(
            &[("deploy/kustomization.yaml", "resources: [a.yaml]\n")],
            "fixed",
        )
        .expect("commit");
    let run = mooring(&env, &["reconcile", "source", "repo"]).await;
    assert_eq!(run.code, 0, "{run:#?}");
    let run = mooring(&env, &["resume", "kustomization", "apps"]).await;
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(
        run.stdout.lines().collect::<Vec<_>>(),
        [
            format!("✔ Kustomization {ns}/apps: applied revision main@sha1:{fixed}").as_str(),
            format!("  ConfigMap/{ns}/b deleted").as_str(),
        ],
        "{run:#?}"
    );
    assert!(!api.get("apps").await.expect("apps").spec.suspend);

    // The history the controller recorded names each render's revision.
    let (run, json) = mooring_json(&env, &["history", "kustomization", "apps", "-o", "json"]).await;
    assert_eq!(run.code, 0, "{run:#?}");
    let revisions: Vec<&str> = json["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|h| h["metadata"]["revision"].as_str())
        .collect();
    assert_eq!(
        revisions,
        [
            format!("main@sha1:{fixed}"),
            format!("main@sha1:{second}"),
            format!("main@sha1:{first}")
        ],
        "{json}"
    );
    drop(controllers);
}

#[tokio::test]
async fn tree_and_trace_follow_nested_kustomizations_to_the_source() {
    let env = env("cli-tree").await;
    let ns = env.namespace.clone();
    let child = format!(
        "apiVersion: kustomize.mooring.dev/v1\nkind: Kustomization\nmetadata:\n  name: child\n\
         spec:\n  interval: 10m\n  prune: true\n  path: ./deploy/child\n  targetNamespace: {ns}\n\
         \x20 sourceRef:\n    kind: GitRepository\n    name: repo\n"
    );
    let web = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n\
               \x20 selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n\
               \x20   spec:\n      containers:\n      - name: web\n        image: registry.invalid/web:1\n";
    let (repo, commit) = git_repo(
        "cli-tree",
        &[
            (
                "deploy/root/kustomization.yaml",
                "resources: [r.yaml, child.yaml]\n",
            ),
            ("deploy/root/r.yaml", &config_map("r", "1")),
            ("deploy/root/child.yaml", &child),
            (
                "deploy/child/kustomization.yaml",
                "resources: [c.yaml, web.yaml]\n",
            ),
            ("deploy/child/c.yaml", &config_map("c", "1")),
            ("deploy/child/web.yaml", web),
        ],
    );
    let controllers = controllers(&env).await;
    git_repository(&env, "repo", repo.http_url()).await;
    kustomization(
        &env,
        "root",
        "repo",
        serde_json::json!({"targetNamespace": ns, "path": "./deploy/root"}),
    )
    .await;
    wait_applied(&env, "root", &commit).await;
    wait_applied(&env, "child", &commit).await;

    let run = mooring(&env, &["tree", "kustomization", "root"]).await;
    assert_eq!(run.code, 0, "{run:#?}\n{}", controllers.log_tails());
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[0],
        format!("Kustomization/{ns}/root  Current"),
        "{}",
        run.stdout
    );
    let find = |label: &str| {
        lines
            .iter()
            .find(|l| l.contains(label))
            .unwrap_or_else(|| panic!("no {label} in\n{}", run.stdout))
            .to_string()
    };
    // Where the label starts tells the depth: 4 characters of branch per level.
    let depth = |label: &str| {
        find(label)
            .chars()
            .take_while(|c| !c.is_ascii_alphabetic())
            .count()
            / 4
    };
    assert_eq!(
        depth(&format!("ConfigMap/{ns}/r  Current")),
        1,
        "{}",
        run.stdout
    );
    assert_eq!(
        depth(&format!("Kustomization/{ns}/child  Current")),
        1,
        "{}",
        run.stdout
    );
    assert_eq!(
        depth(&format!("ConfigMap/{ns}/c  Current")),
        2,
        "{}",
        run.stdout
    );
    // No kube-controller-manager runs here: the Deployment never gets replicas, and the tree
    // shows that from the live object.
    assert_eq!(
        depth(&format!("Deployment/{ns}/web  InProgress")),
        2,
        "{}",
        run.stdout
    );
    assert_eq!(lines.len(), 5, "{}", run.stdout);

    let (run, json) = mooring_json(&env, &["tree", "ks", "root", "-o", "json"]).await;
    assert_eq!(run.code, 0, "{run:#?}");
    let child = json["children"]
        .as_array()
        .expect("children")
        .iter()
        .find(|c| c["kind"] == "Kustomization")
        .expect("child node");
    assert_eq!(
        child["children"].as_array().map(Vec::len),
        Some(2),
        "{json}"
    );

    // trace: the ConfigMap was applied by child, which root applied; both from repo.
    let revision = format!("main@sha1:{commit}");
    let (run, json) = mooring_json(&env, &["trace", "configmap", "c", "-o", "json"]).await;
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(json["object"]["kind"], "ConfigMap");
    assert_eq!(json["object"]["health"], "Current");
    assert!(
        json["object"]["appliedAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{json}"
    );
    let chain = json["appliedBy"].as_array().expect("appliedBy");
    assert_eq!(chain.len(), 2, "{json}");
    assert_eq!(
        (chain[0]["name"].as_str(), chain[1]["name"].as_str()),
        (Some("child"), Some("root"))
    );
    for link in chain {
        assert_eq!(link["inInventory"], true, "{json}");
        assert_eq!(link["lastAppliedRevision"], revision.as_str());
        assert_eq!(link["source"]["url"], repo.http_url());
        assert_eq!(link["source"]["revision"], revision.as_str());
        assert!(
            link["source"]["author"]
                .as_str()
                .is_some_and(|a| !a.is_empty()),
            "{json}"
        );
        assert_eq!(link["source"]["signature"], serde_json::Value::Null);
    }

    let run = mooring(&env, &["trace", "deployment.apps", "web"]).await;
    assert_eq!(run.code, 0, "{run:#?}");
    let text = run.stdout;
    // `  name:` padded to 12 characters, then the value.
    let f = |name: &str, value: &str| format!("  {:<12}{value}\n", format!("{name}:"));
    assert!(
        text.starts_with(&format!(
            "Deployment/{ns}/web\n{}",
            f("health", "InProgress").trim_end()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "\n{}2",
            f("applied at", "").trim_end_matches('\n')
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "applied by Kustomization {ns}/child\n{}",
            f("path", "./deploy/child")
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{}{}",
            f("revision", &revision),
            f("inventory", "lists the object")
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{}{}{}",
            f("source", &format!("GitRepository {ns}/repo")),
            f("url", repo.http_url()),
            f("artifact", &revision)
        )),
        "{text}"
    );
    assert!(text.contains(&f("signature", "not recorded")), "{text}");
    assert!(
        text.contains(&format!("applied by Kustomization {ns}/root\n")),
        "{text}"
    );
    drop(controllers);
}

#[tokio::test]
async fn diff_shows_created_configured_and_pruned_objects_and_build_renders_them() {
    let env = env("cli-diff").await;
    let ns = env.namespace.clone();
    let (repo, commit) = git_repo(
        "cli-diff",
        &[
            ("deploy/kustomization.yaml", "resources: [a.yaml, b.yaml]\n"),
            ("deploy/a.yaml", &config_map("a", "1")),
            ("deploy/b.yaml", &config_map("b", "1")),
        ],
    );
    let controllers = controllers(&env).await;
    git_repository(&env, "repo", repo.http_url()).await;
    kustomization(
        &env,
        "apps",
        "repo",
        serde_json::json!({"targetNamespace": ns}),
    )
    .await;
    wait_applied(&env, "apps", &commit).await;
    let kustomize = mooring_testkit::tools::tool("kustomize").expect("kustomize");
    let kustomize = kustomize.to_str().expect("utf-8 path");

    // The current artifact matches the cluster: nothing to show, exit code 0.
    let run = mooring(
        &env,
        &["diff", "kustomization", "apps", "--kustomize", kustomize],
    )
    .await;
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "✔ no changes\n"),
        "{run:#?}"
    );

    // A local checkout where a changes, b is gone and c is new; spec.path (./deploy) is
    // resolved inside it.
    let checkout = tempfile::tempdir().expect("tempdir");
    let deploy = checkout.path().join("deploy");
    std::fs::create_dir_all(&deploy).expect("mkdir");
    for (file, text) in [
        (
            "kustomization.yaml",
            "resources: [a.yaml, c.yaml]\n".to_string(),
        ),
        ("a.yaml", config_map("a", "2")),
        ("c.yaml", config_map("c", "1")),
    ] {
        std::fs::write(deploy.join(file), text).expect("write");
    }
    let path = checkout.path().to_str().expect("utf-8 path");
    let (run, json) = mooring_json(
        &env,
        &[
            "diff",
            "ks",
            "apps",
            "--path",
            path,
            "--kustomize",
            kustomize,
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{run:#?}");
    let changes = json["changes"].as_array().expect("changes");
    let action = |object: &str| {
        changes
            .iter()
            .find(|c| c["object"] == object)
            .unwrap_or_else(|| panic!("no change of {object} in {json}"))
    };
    let a = action(&format!("ConfigMap/{ns}/a"));
    assert_eq!(a["action"], "configured");
    let diff = a["diff"].as_str().expect("diff");
    let changed: Vec<&str> = diff.lines().filter(|l| l.starts_with(['-', '+'])).collect();
    assert_eq!(changed.len(), 2, "{diff}");
    assert!(
        changed[0].starts_with("- ") && changed[0].contains('1'),
        "{diff}"
    );
    assert!(
        changed[1].starts_with("+ ") && changed[1].contains('2'),
        "{diff}"
    );
    assert_eq!(action(&format!("ConfigMap/{ns}/c"))["action"], "created");
    assert_eq!(action(&format!("ConfigMap/{ns}/b"))["action"], "deleted");
    assert_eq!(changes.len(), 3, "{json}");
    assert!(run.stderr.contains("3 object(s) would change"), "{run:#?}");

    // A dry run: the cluster is untouched.
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    let a = cms.get("a").await.expect("a");
    assert_eq!(
        a.data.and_then(|d| d.get("value").cloned()).as_deref(),
        Some("1")
    );
    assert!(cms.get_opt("c").await.expect("get").is_none());
    assert!(cms.get_opt("b").await.expect("get").is_some());

    // build: the same render, as applied: in the namespace, with the ownership labels.
    let (run, json) = mooring_json(
        &env,
        &[
            "build",
            "kustomization",
            "apps",
            "--path",
            path,
            "--kustomize",
            kustomize,
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{run:#?}");
    let items = json["items"].as_array().expect("items");
    let names: Vec<&str> = items
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["a", "c"], "{json}");
    for item in items {
        assert_eq!(item["metadata"]["namespace"], ns.as_str());
        assert_eq!(
            item["metadata"]["labels"]["kustomize.mooring.dev/name"],
            "apps"
        );
        assert_eq!(
            item["metadata"]["labels"]["kustomize.mooring.dev/namespace"],
            ns.as_str()
        );
    }
    // Without --kustomize, `kustomize` is looked up on PATH (kustomize itself runs with a
    // cleared environment).
    let kustomize_dir = std::path::Path::new(kustomize).parent().expect("tools dir");
    let output = common::command(&env, &["build", "ks", "apps", "--path", path])
        .env("PATH", kustomize_dir)
        .output()
        .await
        .expect("run");
    let run = common::Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.stdout.matches("---\n").count(), 2, "{}", run.stdout);
    assert!(run.stdout.contains("kind: ConfigMap"), "{}", run.stdout);
    drop(controllers);
}
