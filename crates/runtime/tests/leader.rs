//! Two replicas contending for one Lease on a real API server: one leads, the other waits, and
//! takes over once the first releases it.

use std::time::Duration;

use mooring_runtime::leader;
use mooring_testkit::test_env;

#[tokio::test]
async fn only_one_replica_leads_and_a_release_hands_over() {
    let env = test_env("leader").await.expect("env");
    let mut first = leader::contend(
        env.client.clone(),
        &env.namespace,
        "mooring-test",
        "replica-a",
    )
    .await
    .expect("first contender");
    let acquired = tokio::time::timeout(Duration::from_secs(30), first.acquired()).await;
    assert!(matches!(acquired, Ok(true)), "the first replica leads");

    let mut second = leader::contend(
        env.client.clone(),
        &env.namespace,
        "mooring-test",
        "replica-b",
    )
    .await
    .expect("second contender");
    let early = tokio::time::timeout(Duration::from_secs(3), second.acquired()).await;
    assert!(
        early.is_err(),
        "the second replica must not lead while the first holds the Lease"
    );

    let released = std::time::Instant::now();
    first.release().await;
    // The waiting replica looks again on its own schedule (within the Lease duration).
    let took_over = tokio::time::timeout(Duration::from_secs(40), second.acquired()).await;
    assert!(
        matches!(took_over, Ok(true)),
        "the second replica takes over after the release"
    );
    eprintln!(
        "handover took {:?} after the release began",
        released.elapsed()
    );
    second.release().await;
}
