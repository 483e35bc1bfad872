//! Sharding with `--watch-label-selector`, as docs/migrating-from-flux.md describes it: two
//! shards (each a source-controller and a kustomize-controller, as processes) share one
//! namespace; each reconciles only the objects its selector matches, each holds its own Leases,
//! a Kustomization may use a GitRepository of the other shard, and an object no shard selects is
//! left alone.

mod flow;

use flow::{applied, apply_json, config_map_yaml, unique, wait_config_map, wait_ks};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, ListParams};
use mooring_api::{GitRepository, Kustomization};
use mooring_testkit::controllers::{Controllers, KUSTOMIZE_CONTROLLER, Options, SOURCE_CONTROLLER};
use mooring_testkit::git::{Auth, GitServer};
use mooring_testkit::test_env;

const SHARD_LABEL: &str = "sharding.mooring.dev/shard";

async fn start_shard(kubeconfig: &std::path::Path, namespace: &str, shard: &str) -> Controllers {
    let mut options = Options::local(kubeconfig).watching(namespace);
    options.leader_election_namespace = Some(namespace.to_string());
    let selector = format!("--watch-label-selector={SHARD_LABEL}={shard}");
    options.source_flags.push(selector.clone());
    options.kustomize_flags.push(selector);
    tokio::task::spawn_blocking(move || Controllers::start(&options))
        .await
        .expect("start task")
        .expect("controllers")
}

fn labels(shard: Option<&str>) -> serde_json::Value {
    match shard {
        Some(shard) => serde_json::json!({ SHARD_LABEL: shard }),
        None => serde_json::json!({}),
    }
}

#[tokio::test]
async fn each_shard_reconciles_its_own_objects_under_its_own_leases() {
    let env = test_env("shard").await.expect("env");
    let ns = env.namespace.clone();
    let repo = GitServer::shared()
        .expect("git server")
        .create_repo(&unique("shard"), Auth::None)
        .expect("repo");
    let commit = repo
        .commit(
            &[
                ("a/a.yaml", config_map_yaml("from-a", "1").as_str()),
                ("b/b.yaml", config_map_yaml("from-b", "1").as_str()),
                ("none/n.yaml", config_map_yaml("from-none", "1").as_str()),
            ],
            "three paths",
        )
        .expect("commit");
    let kubeconfig = env.plane.kubeconfig().to_path_buf();
    let shard_a = start_shard(&kubeconfig, &ns, "a").await;
    let shard_b = start_shard(&kubeconfig, &ns, "b").await;

    let sources: Api<GitRepository> = Api::namespaced(env.client.clone(), &ns);
    apply_json(
        &sources,
        serde_json::json!({
            "apiVersion": "source.mooring.dev/v1", "kind": "GitRepository",
            "metadata": {"name": "repo", "labels": labels(Some("a"))},
            "spec": {"url": repo.http_url(), "interval": "10m", "ref": {"branch": "main"}}
        }),
    )
    .await;
    let kustomizations: Api<Kustomization> = Api::namespaced(env.client.clone(), &ns);
    // ks-none first: once the others are applied, both shards have seen it.
    for (name, shard) in [("ks-none", None), ("ks-a", Some("a")), ("ks-b", Some("b"))] {
        let path = format!("./{}", shard.unwrap_or("none"));
        apply_json(
            &kustomizations,
            serde_json::json!({
                "apiVersion": "kustomize.mooring.dev/v1", "kind": "Kustomization",
                "metadata": {"name": name, "labels": labels(shard)},
                "spec": {"interval": "10m", "prune": true, "targetNamespace": ns, "path": path,
                         "sourceRef": {"kind": "GitRepository", "name": "repo"}}
            }),
        )
        .await;
    }
    // ks-b (shard b) uses the GitRepository of shard a: the kustomize-controllers watch every
    // GitRepository, whatever their selector.
    wait_ks(&env, "ks-a", "applied by shard a", 60, |k| {
        applied(k, &commit)
    })
    .await;
    wait_ks(&env, "ks-b", "applied by shard b", 60, |k| {
        applied(k, &commit)
    })
    .await;
    wait_config_map(&env, "from-b", "applied", 10, |cm| cm.is_some()).await;

    // Each controller of each shard holds a Lease of its own, named after its selector.
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &ns);
    let held: Vec<(String, String)> = leases
        .list(&ListParams::default())
        .await
        .expect("list Leases")
        .items
        .into_iter()
        .filter_map(|lease| {
            let holder = lease.spec?.holder_identity?;
            Some((lease.metadata.name?, holder))
        })
        .collect();
    for (shard, controllers) in [("a", &shard_a), ("b", &shard_b)] {
        for identity in [
            controllers.source_identity(),
            controllers.kustomize_identity(),
        ] {
            let leases: Vec<_> = held.iter().filter(|(_, h)| h == identity).collect();
            assert_eq!(
                leases.len(),
                1,
                "shard {shard}'s {identity} holds one Lease: {held:?}"
            );
            let (name, _) = leases[0];
            let hash = name
                .rsplit_once('-')
                .map(|(_, hash)| hash)
                .unwrap_or_default();
            assert!(
                hash.len() == 8 && hash.chars().all(|c| c.is_ascii_hexdigit()),
                "shard {shard}'s Lease {name} ends in 8 hex digits of its selector's hash"
            );
        }
    }
    assert_eq!(
        held.len(),
        4,
        "four Leases, one per controller and shard: {held:?}"
    );

    // No shard selects ks-none: nothing reconciles it, and its object is never applied. Both
    // shards have applied Kustomizations created after it, so neither is merely slow.
    let untouched = kustomizations.get("ks-none").await.expect("ks-none");
    assert!(
        untouched
            .status
            .as_ref()
            .is_none_or(|s| s.conditions.is_empty() && s.last_attempted_revision.is_none()),
        "ks-none was reconciled: {:?}",
        untouched.status
    );
    let maps: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    assert!(
        maps.get_opt("from-none").await.expect("read").is_none(),
        "the object of an unselected Kustomization was applied"
    );
}

/// Polls the log of `name` (every 100 ms, up to `secs`) until a line holds every one of
/// `parts`; the line, if one did.
async fn log_line(
    controllers: &Controllers,
    name: &str,
    parts: &[&str],
    secs: u64,
) -> Option<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        let log = std::fs::read_to_string(controllers.log_file(name)).unwrap_or_default();
        if let Some(line) = log.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
            return Some(line.to_string());
        }
        // A log file offers no notification; poll it with a deadline.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test]
async fn a_selector_the_api_server_refuses_is_reported_not_silently_retried() {
    let env = test_env("shard-bad").await.expect("env");
    let kubeconfig = env.plane.kubeconfig().to_path_buf();
    let mut options = Options::local(&kubeconfig).watching(&env.namespace);
    // A typo in a shard's selector: the list of every watch using it fails (400), again and
    // again.
    let selector = format!("--watch-label-selector={SHARD_LABEL} in (a");
    options.source_flags.push(selector.clone());
    options.kustomize_flags.push(selector);
    let controllers = tokio::task::spawn_blocking(move || Controllers::start(&options))
        .await
        .expect("start task")
        .expect("controllers");
    for (name, kind) in [
        (SOURCE_CONTROLLER, "GitRepository"),
        (KUSTOMIZE_CONTROLLER, "Kustomization"),
    ] {
        let line = log_line(
            &controllers,
            name,
            &[
                "WARN",
                "the watch keeps failing",
                kind,
                "unable to parse requirement",
            ],
            60,
        )
        .await;
        let line = line.unwrap_or_else(|| {
            panic!(
                "{name} did not report its failing {kind} watch:\n{}",
                controllers.log_tails()
            )
        });
        eprintln!("{name}: {line}");
    }
}
