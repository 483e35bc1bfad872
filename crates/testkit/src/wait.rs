//! Waiting on the cluster the way tests should: by watching an object until a condition holds,
//! bounded in time, with the object's last state in the failure message.

use std::fmt::Debug;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Api;
use kube::runtime::wait::await_condition;
use mooring_api::conditions::find_condition;
use serde::de::DeserializeOwned;

/// Watches the object `name` until `check` holds for it (`None`: it does not exist) and returns
/// it; panics after `timeout`, naming `what` and showing the object as it was then.
pub async fn wait_for<K>(
    api: &Api<K>,
    name: &str,
    what: &str,
    timeout: Duration,
    check: impl Fn(Option<&K>) -> bool,
) -> Option<K>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    try_wait_for(api, name, what, timeout, check)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`wait_for`], but a timeout is returned as an error (naming `what` and showing the
/// object as it was then) instead of a panic, for tests that go on to report every failure.
pub async fn try_wait_for<K>(
    api: &Api<K>,
    name: &str,
    what: &str,
    timeout: Duration,
    check: impl Fn(Option<&K>) -> bool,
) -> Result<Option<K>, String>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let waited = tokio::time::timeout(
        timeout,
        await_condition(api.clone(), name, |o: Option<&K>| check(o)),
    )
    .await;
    match waited {
        Ok(Ok(found)) => Ok(found),
        other => {
            let current = api.get_opt(name).await.ok().flatten();
            Err(format!(
                "timed out after {timeout:?} waiting for {name}: {what}; now: {current:#?}; {other:?}"
            ))
        }
    }
}

/// The `Ready` condition among `conditions`: (status, reason, message).
pub fn ready(conditions: &[Condition]) -> Option<(String, String, String)> {
    find_condition(conditions, "Ready")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}
