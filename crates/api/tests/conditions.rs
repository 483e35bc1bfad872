//! Condition helpers: transitions keep or move `lastTransitionTime`, and lookups.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use mooring_api::conditions::{
    ConditionStatus, MAX_MESSAGE_LENGTH, find_condition, is_ready, is_stalled, is_true, reasons,
    remove_condition, set_condition, types,
};

fn at(second: i64) -> Time {
    Time(Timestamp::from_second(second).expect("valid timestamp"))
}

fn ready(
    conditions: &mut Vec<Condition>,
    status: ConditionStatus,
    message: &str,
    now: i64,
) -> bool {
    let reason = match status {
        ConditionStatus::True => reasons::SUCCEEDED,
        _ => reasons::GIT_OPERATION_FAILED,
    };
    set_condition(
        conditions,
        types::READY,
        status,
        reason,
        message,
        Some(2),
        &at(now),
    )
}

#[test]
fn adds_a_missing_condition() {
    let mut conditions = Vec::new();
    assert!(ready(&mut conditions, ConditionStatus::True, "stored", 100));
    let expected = Condition {
        type_: "Ready".into(),
        status: "True".into(),
        reason: "Succeeded".into(),
        message: "stored".into(),
        observed_generation: Some(2),
        last_transition_time: at(100),
    };
    assert_eq!(conditions, [expected]);
}

#[test]
fn setting_the_same_values_changes_nothing() {
    let mut conditions = Vec::new();
    ready(&mut conditions, ConditionStatus::True, "stored", 100);
    let before = conditions.clone();
    assert!(!ready(
        &mut conditions,
        ConditionStatus::True,
        "stored",
        200
    ));
    assert_eq!(conditions, before);
}

#[test]
fn keeps_transition_time_when_only_the_message_changes() {
    let mut conditions = Vec::new();
    ready(&mut conditions, ConditionStatus::True, "stored a", 100);
    assert!(ready(
        &mut conditions,
        ConditionStatus::True,
        "stored b",
        200
    ));
    assert_eq!(conditions[0].message, "stored b");
    assert_eq!(conditions[0].last_transition_time, at(100));
}

#[test]
fn keeps_transition_time_when_only_the_generation_changes() {
    let mut conditions = Vec::new();
    ready(&mut conditions, ConditionStatus::True, "stored", 100);
    let changed = set_condition(
        &mut conditions,
        types::READY,
        ConditionStatus::True,
        reasons::SUCCEEDED,
        "stored",
        Some(3),
        &at(200),
    );
    assert!(changed);
    assert_eq!(conditions[0].observed_generation, Some(3));
    assert_eq!(conditions[0].last_transition_time, at(100));
}

#[test]
fn moves_transition_time_when_the_status_changes() {
    let mut conditions = Vec::new();
    ready(&mut conditions, ConditionStatus::True, "stored", 100);
    assert!(ready(
        &mut conditions,
        ConditionStatus::False,
        "fetch failed",
        200
    ));
    assert_eq!(conditions[0].status, "False");
    assert_eq!(conditions[0].reason, "GitOperationFailed");
    assert_eq!(conditions[0].last_transition_time, at(200));
}

#[test]
fn other_types_are_left_alone() {
    let mut conditions = Vec::new();
    let now = at(100);
    set_condition(
        &mut conditions,
        types::RECONCILING,
        ConditionStatus::True,
        reasons::PROGRESSING,
        "working",
        Some(1),
        &now,
    );
    ready(&mut conditions, ConditionStatus::Unknown, "working", 100);
    assert_eq!(conditions.len(), 2);
    assert!(is_true(&conditions, types::RECONCILING));
    assert!(!is_ready(&conditions));
    assert!(remove_condition(&mut conditions, types::RECONCILING));
    assert!(!remove_condition(&mut conditions, types::RECONCILING));
    assert_eq!(conditions.len(), 1);
    assert_eq!(conditions[0].type_, "Ready");
}

#[test]
fn lookups() {
    let mut conditions = Vec::new();
    assert!(find_condition(&conditions, types::READY).is_none());
    assert!(!is_ready(&conditions));
    assert!(!is_stalled(&conditions));
    ready(&mut conditions, ConditionStatus::True, "ok", 100);
    set_condition(
        &mut conditions,
        types::STALLED,
        ConditionStatus::True,
        reasons::URL_INVALID,
        "bad url",
        Some(2),
        &at(100),
    );
    assert!(is_ready(&conditions));
    assert!(is_stalled(&conditions));
    let stalled = find_condition(&conditions, types::STALLED).expect("present");
    assert_eq!(stalled.reason, "URLInvalid");
}

#[test]
fn long_messages_are_cut_at_a_character_boundary() {
    let mut conditions = Vec::new();
    let message = "é".repeat(MAX_MESSAGE_LENGTH);
    ready(&mut conditions, ConditionStatus::False, &message, 100);
    let kept = &conditions[0].message;
    assert!(kept.len() <= MAX_MESSAGE_LENGTH);
    assert!(kept.len() >= MAX_MESSAGE_LENGTH - 1);
    assert!(message.starts_with(kept.as_str()));
    // Setting the same long message again is not a change.
    assert!(!ready(
        &mut conditions,
        ConditionStatus::False,
        &message,
        200
    ));
}

#[test]
fn status_strings() {
    assert_eq!(ConditionStatus::True.as_str(), "True");
    assert_eq!(ConditionStatus::False.as_str(), "False");
    assert_eq!(ConditionStatus::Unknown.as_str(), "Unknown");
    assert_eq!(ConditionStatus::from_bool(true), ConditionStatus::True);
    assert_eq!(ConditionStatus::from_bool(false), ConditionStatus::False);
}
