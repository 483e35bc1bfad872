//! Lenient readers for the parts of an object's JSON that the health rules look at.
//!
//! Live objects are read as `serde_json::Value` so that one code path serves every kind,
//! including custom resources. A field of the wrong type reads as absent: a health rule must
//! never panic or fail on a malformed status written by some other controller.

use serde_json::Value;

/// Follows a path of object keys; `None` when any step is missing or not an object.
pub(crate) fn at<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, key| v.as_object()?.get(*key))
}

/// An integer field, `None` when absent or not an integer.
pub(crate) fn int(obj: &Value, path: &[&str]) -> Option<i64> {
    at(obj, path)?.as_i64()
}

/// An integer field with the default its API documents for "unset".
pub(crate) fn int_or(obj: &Value, path: &[&str], default: i64) -> i64 {
    int(obj, path).unwrap_or(default)
}

/// A string field, `None` when absent, empty or not a string.
pub(crate) fn str_at<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(obj, path)?.as_str().filter(|s| !s.is_empty())
}

/// One entry of `status.conditions` in the shape every Kubernetes API uses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Condition<'a> {
    pub(crate) type_: &'a str,
    pub(crate) status: &'a str,
    pub(crate) reason: &'a str,
    pub(crate) message: &'a str,
}

impl Condition<'_> {
    /// `status: "True"`.
    pub(crate) fn is_true(&self) -> bool {
        self.status == "True"
    }

    /// `status: "False"`.
    pub(crate) fn is_false(&self) -> bool {
        self.status == "False"
    }

    /// "reason: message", or whichever of the two is set; `fallback` when neither is.
    pub(crate) fn text(&self, fallback: &str) -> String {
        match (self.reason.trim(), self.message.trim()) {
            ("", "") => fallback.to_string(),
            (reason, "") => reason.to_string(),
            ("", message) => message.to_string(),
            (reason, message) => format!("{reason}: {message}"),
        }
    }

    /// The message, else the reason, else `fallback`: for conditions whose reason adds
    /// nothing a reader needs.
    pub(crate) fn message_or_reason(&self, fallback: &str) -> String {
        match (self.reason.trim(), self.message.trim()) {
            (_, message) if !message.is_empty() => message.to_string(),
            (reason, _) if !reason.is_empty() => reason.to_string(),
            _ => fallback.to_string(),
        }
    }
}

/// The well-formed entries of `status.conditions`, in their order; malformed ones are skipped.
pub(crate) fn conditions(obj: &Value) -> Vec<Condition<'_>> {
    let Some(list) = at(obj, &["status", "conditions"]).and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|c| {
            let field = |k: &str| c.get(k).and_then(Value::as_str);
            Some(Condition {
                type_: field("type")?,
                status: field("status").unwrap_or("Unknown"),
                reason: field("reason").unwrap_or(""),
                message: field("message").unwrap_or(""),
            })
        })
        .collect()
}

/// The first condition of the given type.
pub(crate) fn condition<'a>(conds: &[Condition<'a>], type_: &str) -> Option<Condition<'a>> {
    conds.iter().find(|c| c.type_ == type_).copied()
}

/// The API group of `apiVersion`: "" for the core group ("v1").
pub(crate) fn api_group(obj: &Value) -> &str {
    match str_at(obj, &["apiVersion"]) {
        Some(v) => v.rsplit_once('/').map_or("", |(group, _)| group),
        None => "",
    }
}

/// Cuts `text` to at most `max` characters, marking the cut with an ellipsis.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let kept: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{}…", kept.trim_end())
}
