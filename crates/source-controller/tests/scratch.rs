//! What the source-controller binary leaves on disk besides its artifacts and git caches: the
//! empty repository it lists refs from (over SSH, through a proxy) lives in the git cache under
//! one fixed name, and a restarted process uses it again instead of leaving another in its temp
//! dir, which in the chart is an emptyDir that outlives the container.

mod support;

use mooring_testkit::controllers::{Controllers, Options, SOURCE_CONTROLLER};
use mooring_testkit::git::{Auth, GitServer};
use mooring_testkit::test_env;
use serde_json::json;
use support::*;

/// The entries of `dir` whose names start with `prefix`.
fn entries_starting(dir: &std::path::Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|listing| {
            listing
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|name| name.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn the_scratch_repository_for_listings_stays_in_the_git_cache_across_restarts() {
    let env = test_env("src-scratch").await.expect("env");
    let server = GitServer::shared().expect("git server");
    let repo = server
        .create_repo(&format!("scratch-{}", std::process::id()), Auth::None)
        .expect("repo");
    let options = Options::local(env.plane.kubeconfig()).watching(&env.namespace);
    let mut controllers = tokio::task::spawn_blocking(move || Controllers::start(&options))
        .await
        .expect("join")
        .expect("start the controller binaries");
    let api: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(env.client.clone(), &env.namespace);
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": "ssh"},
        "stringData": {"identity": server.user_key_pem(), "known_hosts": server.known_hosts()},
    }))
    .expect("secret");
    api.create(&Default::default(), &secret)
        .await
        .expect("create the SSH secret");

    let scratch = controllers.dir().join("git-cache").join("ls-refs-scratch");
    let temp = controllers.temp_dir(SOURCE_CONTROLLER);
    // A branch that does not exist: the fetch finds no such ref and the pass lists the refs over
    // SSH to name the default branch, which takes the scratch repository.
    for (round, name) in ["first", "after-restart"].into_iter().enumerate() {
        apply_repo(
            &env,
            repo_manifest(
                name,
                repo.ssh_url(),
                json!({"ref": {"branch": "nope"}, "secretRef": {"name": "ssh"}}),
            ),
        )
        .await;
        let failed = wait_for(&env, name, "Ready=False naming the default branch", |r| {
            ready(r).is_some_and(|(s, _, m)| s == "False" && m.contains("'main'"))
        })
        .await;
        let (_, reason, message) = ready(&failed).expect("Ready");
        assert!(
            message.contains("branch 'nope' not found"),
            "{reason}: {message}"
        );
        assert!(
            scratch.join("HEAD").is_file(),
            "round {round}: no scratch repository at {}\n{}",
            scratch.display(),
            controllers.log_tails()
        );
        assert_eq!(
            entries_starting(&temp, "mooring-ls-refs-"),
            Vec::<String>::new(),
            "round {round}: a scratch repository in the temp dir {}",
            temp.display()
        );
        let mut in_cache = entries_starting(&controllers.dir().join("git-cache"), "ls-refs");
        in_cache.sort();
        assert_eq!(
            in_cache,
            vec![
                "ls-refs-scratch".to_string(),
                "ls-refs-scratch.lock".to_string()
            ],
            "round {round}: one scratch repository (and its lock file) in the git cache"
        );
        if round == 1 {
            assert!(
                scratch.join("kept-across-restarts").exists(),
                "the restarted process made another scratch repository"
            );
        }
        if round == 0 {
            // Nothing in it is read or written by a listing: a file left there tells whether the
            // next process used this repository or made another.
            std::fs::write(scratch.join("kept-across-restarts"), "").expect("mark");
            controllers = tokio::task::spawn_blocking(move || {
                controllers.restart_source().expect("restart");
                controllers
            })
            .await
            .expect("join");
        }
    }
    tokio::task::spawn_blocking(move || drop(controllers))
        .await
        .expect("stop");
}
