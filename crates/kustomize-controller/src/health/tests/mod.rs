//! Unit tests for the health rules, on JSON fixtures shaped like what a real API server returns.

mod core_kinds;
mod fixtures;
mod generic;
mod pods_jobs;
mod summary;
mod workloads;

use serde_json::Value;

use super::{HealthStatus, compute};

/// Asserts the computed status and that the message contains `needle`.
#[track_caller]
fn expect(obj: &Value, status: HealthStatus, needle: &str) {
    let health = compute(obj);
    assert_eq!(health.status, status, "{health:?}");
    assert!(
        health.message.contains(needle),
        "message {:?} lacks {needle:?}",
        health.message
    );
}

/// Asserts the computed status and the exact message.
#[track_caller]
fn expect_exact(obj: &Value, status: HealthStatus, message: &str) {
    let health = compute(obj);
    assert_eq!(health.status, status, "{health:?}");
    assert_eq!(health.message, message);
}

/// A copy of `obj` with the JSON pointer `path` set to `value`, creating objects on the way.
fn with(obj: &Value, path: &str, value: Value) -> Value {
    let mut out = obj.clone();
    let mut cursor = &mut out;
    let keys: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (last, parents) = keys.split_last().expect("a non-empty path");
    for key in parents {
        let map = cursor.as_object_mut().expect("an object on the path");
        cursor = map
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Default::default()));
    }
    cursor
        .as_object_mut()
        .expect("an object at the end of the path")
        .insert(last.to_string(), value);
    out
}

/// A copy of `obj` without the field at the JSON pointer `path`.
fn without(obj: &Value, path: &str) -> Value {
    let mut out = obj.clone();
    let (parent, key) = path.rsplit_once('/').expect("a path with a parent");
    if let Some(map) = out.pointer_mut(parent).and_then(Value::as_object_mut) {
        map.remove(key);
    }
    out
}
