//! `mooring why` of a three-hop chain with both controllers running against the real git
//! server: Kustomization a depends on b, b on c, and c's GitRepository points at a repository
//! that does not exist. The controller's Ready message of `a` carries the same chain.

mod common;

use std::time::Duration;

use common::{config_map, env, git_repo, git_repository, kustomization, mooring};
use kube::api::Api;
use mooring_api::Kustomization;
use mooring_testkit::controllers::{Controllers, KUSTOMIZE_CONTROLLER, Options, SOURCE_CONTROLLER};

#[tokio::test]
async fn why_follows_dependencies_and_the_source_down_to_the_failing_fetch() {
    let env = env("cli-why").await;
    let ns = env.namespace.clone();
    let (repo, _) = git_repo(
        "cli-why",
        &[
            ("deploy/kustomization.yaml", "resources: [a.yaml]\n"),
            ("deploy/a.yaml", &config_map("a", "1")),
        ],
    );
    // JSON logs, as the chart deploys them, for `mooring logs` below.
    let options = {
        let mut o = Options::local(env.plane.kubeconfig()).watching(&ns);
        o.log_format = "json".to_string();
        o
    };
    let controllers = tokio::task::spawn_blocking(move || Controllers::start(&options))
        .await
        .expect("start task")
        .expect("controllers");
    git_repository(&env, "repo", repo.http_url()).await;
    let missing_url = repo
        .http_url()
        .replace(repo.name(), &format!("{}-missing", repo.name()));
    git_repository(&env, "missing", &missing_url).await;
    let depends =
        |name: &str| serde_json::json!({"dependsOn": [{"name": name}], "targetNamespace": ns});
    kustomization(&env, "a", "repo", depends("b")).await;
    kustomization(&env, "b", "repo", depends("c")).await;
    kustomization(
        &env,
        "c",
        "missing",
        serde_json::json!({"targetNamespace": ns}),
    )
    .await;

    // The controller writes the whole chain into a's Ready message, from the statuses alone.
    let api: Api<Kustomization> = Api::namespaced(env.client.clone(), &ns);
    let chain_start = format!(
        "dependency '{ns}/b' is not ready: dependency '{ns}/c' is not ready: \
         GitRepository '{ns}/missing' has no artifact yet: "
    );
    let a = mooring_testkit::wait::try_wait_for(
        &api,
        "a",
        "a's Ready message names the chain",
        Duration::from_secs(90),
        |k| {
            k.and_then(|k| k.status.as_ref())
                .and_then(|s| mooring_testkit::wait::ready(&s.conditions))
                .is_some_and(|r| r.0 == "False" && r.2.starts_with(&chain_start))
        },
    )
    .await;
    assert!(a.is_ok(), "{a:?}\n{}", controllers.log_tails());

    let run = mooring(&env, &["why", "kustomization", "a"]).await;
    assert_eq!(run.code, 1, "{run:#?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", run.stdout);
    assert_eq!(
        lines[..3],
        [
            format!("Kustomization {ns}/a waits for dependency Kustomization {ns}/b").as_str(),
            format!("  Kustomization {ns}/b waits for dependency Kustomization {ns}/c").as_str(),
            format!("    Kustomization {ns}/c waits for its source GitRepository {ns}/missing")
                .as_str(),
        ],
        "{}",
        run.stdout
    );
    assert_eq!(
        lines[3],
        format!(
            "      GitRepository {ns}/missing is not ready: GitOperationFailed: repository \
             {missing_url} not found"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains(&format!("Kustomization {ns}/a is not ready")),
        "{run:#?}"
    );

    // The same hops as data; the message of each is its own Ready message.
    let (run, json) = common::mooring_json(&env, &["why", "ks", "a", "-o", "json"]).await;
    assert_eq!(run.code, 1, "{run:#?}");
    let hops: Vec<(&str, &str, &str, &str)> = json
        .as_array()
        .expect("a list")
        .iter()
        .map(|h| {
            (
                h["kind"].as_str().unwrap_or(""),
                h["name"].as_str().unwrap_or(""),
                h["ready"].as_str().unwrap_or(""),
                h["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        hops,
        [
            ("Kustomization", "a", "False", "DependencyNotReady"),
            ("Kustomization", "b", "False", "DependencyNotReady"),
            ("Kustomization", "c", "False", "ArtifactFailed"),
            ("GitRepository", "missing", "False", "GitOperationFailed"),
        ],
        "{json}"
    );
    assert!(
        json[0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(&chain_start)),
        "{json}"
    );

    // A Ready object: said so, exit code 0; the failing source alone is one hop.
    let sources: Api<mooring_api::GitRepository> = Api::namespaced(env.client.clone(), &ns);
    let repo_ready = mooring_testkit::wait::try_wait_for(
        &sources,
        "repo",
        "the GitRepository repo Ready",
        Duration::from_secs(60),
        |r| {
            r.and_then(|r| r.status.as_ref())
                .and_then(|s| mooring_testkit::wait::ready(&s.conditions))
                .is_some_and(|r| r.0 == "True")
        },
    )
    .await;
    assert!(
        repo_ready.is_ok(),
        "{repo_ready:?}\n{}",
        controllers.log_tails()
    );
    let run = mooring(&env, &["why", "source", "repo"]).await;
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, format!("GitRepository {ns}/repo is ready\n").as_str()),
        "{run:#?}"
    );
    let run = mooring(&env, &["why", "gitrepository", "missing", "-o", "yaml"]).await;
    assert_eq!(run.code, 1, "{run:#?}");
    assert_eq!(
        run.stdout,
        format!(
            "- kind: GitRepository\n  namespace: {ns}\n  name: missing\n  ready: \"False\"\n  \
             reason: GitOperationFailed\n  message: repository {missing_url} not found\n"
        )
    );

    // `mooring logs` on the controllers' own JSON logs: the lines about `a` are kept, and they
    // say what `a` waits for; lines about b and c are left out.
    let kustomize_log = controllers.log_file(KUSTOMIZE_CONTROLLER);
    let log_text = std::fs::read_to_string(&kustomize_log).expect("log");
    assert!(log_text.contains(&format!("/b.{ns}")), "{log_text}");
    let file = kustomize_log.to_str().expect("utf-8 path");
    let (run, json) = common::mooring_json(
        &env,
        &["logs", "ks", "a", "--from-file", file, "-o", "json"],
    )
    .await;
    assert_eq!(run.code, 0, "{run:#?}");
    let kept = json.as_array().expect("a list");
    assert!(!kept.is_empty(), "{log_text}");
    for line in kept {
        assert_eq!(
            line["span"]["object.ref"],
            format!("Kustomization.v1.kustomize.mooring.dev/a.{ns}"),
            "{json}"
        );
    }
    assert!(
        kept.iter().any(|l| l["error"]
            .as_str()
            .is_some_and(|e| e.starts_with(&chain_start))),
        "{json}"
    );
    let run = mooring(&env, &["logs", "ks", "a", "--from-file", file]).await;
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.stdout.lines().count(), kept.len(), "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!("error={chain_start}")),
        "{}",
        run.stdout
    );
    let source_log = controllers.log_file(SOURCE_CONTROLLER);
    let run = mooring(
        &env,
        &[
            "logs",
            "source",
            "missing",
            "--from-file",
            source_log.to_str().expect("path"),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(
        run.stdout
            .contains(&format!("error=repository {missing_url} not found")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .lines()
            .all(|l| l.contains(&format!("{ns}/missing"))),
        "every line names the object: {}",
        run.stdout
    );
    drop(controllers);
}
