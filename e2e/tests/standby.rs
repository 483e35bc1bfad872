//! Two replicas of each controller, as the chart runs them with `replicas: 2`: only the one
//! holding the Lease answers `/readyz` with 200 (the artifact Service routes to ready pods only,
//! so downloads reach the replica whose storage holds the artifacts), and the standby becomes
//! ready when it takes the Lease over.

use std::time::{Duration, Instant};

use mooring_e2e::Cluster;
use mooring_e2e::cluster::{KUSTOMIZE_SERVICE_ACCOUNT, NAMESPACE, SOURCE_SERVICE_ACCOUNT};
use mooring_testkit::controllers::{Controllers, KUSTOMIZE_CONTROLLER, SOURCE_CONTROLLER};

/// Waits until the Lease `lease` names `identity` as its holder.
fn wait_holder(cluster: &Cluster, lease: &str, identity: &str) {
    let holder = format!("--for=jsonpath={{.spec.holderIdentity}}={identity}");
    let lease = format!("lease/{lease}");
    cluster.must(
        cluster.wait(&[&holder, "-n", NAMESPACE, &lease]),
        &format!("{lease} held by {identity}"),
    );
}

/// Waits until both controllers of `pair` answer `/readyz` with 200.
fn wait_ready(pair: &Controllers, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(pair.ready(SOURCE_CONTROLLER) && pair.ready(KUSTOMIZE_CONTROLLER)) {
        assert!(
            Instant::now() < deadline,
            "{what}: /readyz still not 200 after 30s"
        );
        // The readiness endpoint offers no notification: poll it, with a deadline.
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn only_the_leading_replica_is_ready_and_a_standby_takes_over() {
    let mut cluster = Cluster::start().expect("control plane");
    cluster.must(cluster.install_chart(&[]), "helm install");
    let started = cluster.start_controllers().map(|leaders| {
        (
            leaders.source_identity().to_string(),
            leaders.kustomize_identity().to_string(),
        )
    });
    let (source_leader, kustomize_leader) = cluster.must(started, "start the leaders");
    wait_holder(&cluster, SOURCE_SERVICE_ACCOUNT, &source_leader);
    wait_holder(&cluster, KUSTOMIZE_SERVICE_ACCOUNT, &kustomize_leader);
    wait_ready(cluster.controllers().expect("leaders"), "the leaders");

    let standby = cluster.must(cluster.start_standby(), "start the standbys");
    for name in [SOURCE_CONTROLLER, KUSTOMIZE_CONTROLLER] {
        assert!(
            !standby.ready(name),
            "a standby {name} answers /readyz with 200"
        );
    }

    // SIGTERM releases the Leases; the standbys take them and become ready.
    cluster.stop_controllers();
    wait_holder(&cluster, SOURCE_SERVICE_ACCOUNT, standby.source_identity());
    wait_holder(
        &cluster,
        KUSTOMIZE_SERVICE_ACCOUNT,
        standby.kustomize_identity(),
    );
    wait_ready(&standby, "the standbys after the handover");
}
