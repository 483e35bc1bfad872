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
        [format!("main@sha1:{fixed}"), format!("main@sha1:{second}")],
        "{json}"
    );
    drop(controllers);
}
