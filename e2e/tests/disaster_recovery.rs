//! Disaster recovery: git is the system of record, so a new, empty cluster given only the chart
//! and the same GitRepository and Kustomization converges to the objects the lost one had.

use mooring_e2e::objects::{self, Entry};
use mooring_e2e::{Cluster, Timer, main_revision, sample_repo};
use mooring_testkit::examples::example_manifests;
use mooring_testkit::git::GitServer;
use serde_json::Value;

/// Where the example Kustomization applies the sample.
const APP: &str = "default";

/// A cluster with the chart installed (tenant-safe), both controllers running as its
/// ServiceAccounts, and the sample's namespace giving its `default` ServiceAccount `admin`
/// there: cluster set-up, like the chart, not something the backup holds.
fn cluster_with_mooring() -> Cluster {
    let mut cluster = Cluster::start().expect("control plane");
    cluster.must(cluster.install_chart(&[]), "helm install");
    let granted = cluster.grant_namespace_admin(APP, "default");
    cluster.must(granted, "the tenant's RoleBinding");
    let started = cluster.start_controllers().map(|_| ());
    cluster.must(started, "start the controllers");
    cluster
}

/// What the tests compare between the two clusters.
#[derive(Debug, PartialEq)]
struct State {
    revision: String,
    inventory: Vec<Entry>,
    objects: Vec<Value>,
}

fn state_of(cluster: &Cluster) -> State {
    let revision = cluster.must(
        cluster.kubectl(&[
            "get",
            "-n",
            APP,
            "kustomization/sample",
            "-o",
            "jsonpath={.status.lastAppliedRevision}",
        ]),
        "read the applied revision",
    );
    let inventory = cluster.must(
        objects::inventory(cluster, "sample", APP),
        "read the inventory",
    );
    let objects = cluster.must(
        objects::managed_objects(cluster, &inventory),
        "read the objects",
    );
    State {
        revision,
        inventory,
        objects,
    }
}

fn wait_ready(cluster: &Cluster) {
    cluster.must(
        cluster.wait(&[
            "--for=condition=Ready",
            "-n",
            APP,
            "gitrepository/sample",
            "kustomization/sample",
        ]),
        "the sample becomes Ready",
    );
}

#[test]
fn an_empty_cluster_given_the_same_two_objects_converges_to_the_same_objects() {
    // The system of record outlives both clusters. Two commits, so that the state to recover
    // is not just the first one.
    let server = GitServer::start().expect("git server");
    let (repo, _) = sample_repo(&server, "sample").expect("sample repository");
    let head = repo
        .commit(
            &[("deploy/configmap.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sample-config\ndata:\n  greeting: recovered\n")],
            "a second revision",
        )
        .expect("commit");

    // The original cluster, set up as a user would.
    let mut timer = Timer::new();
    let original = cluster_with_mooring();
    let manifests = example_manifests(repo.http_url()).expect("examples");
    let applied = original.apply("examples.json", &manifests, APP);
    original.must(applied, "apply the examples");
    wait_ready(&original);
    let before = state_of(&original);
    assert_eq!(before.revision, main_revision(&head));
    assert_eq!(before.inventory.len(), 5, "{:?}", before.inventory);
    timer.step("the original cluster: chart, controllers, sample Ready");

    // The backup: the two objects as kubectl shows them, without what the API server assigned.
    let backup: Vec<Value> = ["gitrepository", "kustomization"]
        .iter()
        .map(|kind| original.must(objects::get(&original, kind, "sample", APP), "export"))
        .map(objects::for_restore)
        .collect();
    let backup = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": backup});
    drop(original);
    timer.step("backed up the two objects; the original cluster is gone");

    // A new, empty cluster: the chart, the controllers, and the backup.
    let restored = cluster_with_mooring();
    let applied = restored.apply("backup.json", &backup.to_string(), APP);
    restored.must(applied, "restore the two objects");
    wait_ready(&restored);
    let after = state_of(&restored);
    assert_eq!(after, before, "the restored cluster differs");
    timer.step("a new cluster given the chart and the two objects converged to the same objects");
}
