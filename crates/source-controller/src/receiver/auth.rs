//! Whether a webhook call is authentic, by Receiver type: plain data in, a verdict out.
//!
//! Every comparison with the token or a signature is constant-time (HMAC verification, or
//! `subtle` for the GitLab token), so the time of a refusal says nothing about how close the
//! guess was.

use hmac::{Hmac, KeyInit, Mac};
use mooring_api::ReceiverType;
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

/// The headers of a call that the checks read, lower-case names, first value of each.
pub trait Headers {
    /// The value of `name` (lower case), if present and valid UTF-8.
    fn get(&self, name: &str) -> Option<&str>;
}

impl Headers for axum::http::HeaderMap {
    fn get(&self, name: &str) -> Option<&str> {
        axum::http::HeaderMap::get(self, name).and_then(|v| v.to_str().ok())
    }
}

/// What an authentic call asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not authentic: 401, nothing happens.
    Refused,
    /// Authentic, but a ping (GitHub's `ping`, Bitbucket's `diagnostics:ping`): answered,
    /// nothing fetched.
    Ping,
    /// Authentic: the event the caller names (`None` when the type names none).
    Event(Option<String>),
}

/// Checks a call of a Receiver of type `type_` with `token`, over the raw `body`.
pub fn check(type_: ReceiverType, token: &[u8], headers: &impl Headers, body: &[u8]) -> Verdict {
    let event = |name: &str| headers.get(name).map(str::to_owned);
    match type_ {
        // The path, derived from the token, is the secret.
        ReceiverType::Generic => Verdict::Event(None),
        ReceiverType::GenericHmac => match headers.get("x-signature") {
            Some(signature) if prefixed_hmac_matches(signature, token, body) => {
                Verdict::Event(None)
            }
            _ => Verdict::Refused,
        },
        ReceiverType::Github => {
            let signed = headers
                .get("x-hub-signature-256")
                .and_then(|s| s.strip_prefix("sha256="))
                .is_some_and(|hex| hmac_sha256_matches(hex, token, body));
            match (signed, event("x-github-event")) {
                (false, _) => Verdict::Refused,
                (true, Some(e)) if e == "ping" => Verdict::Ping,
                (true, e) => Verdict::Event(e),
            }
        }
        ReceiverType::Gitlab => {
            let given = headers.get("x-gitlab-token").unwrap_or_default();
            if bool::from(given.as_bytes().ct_eq(token)) && !token.is_empty() {
                Verdict::Event(event("x-gitlab-event"))
            } else {
                Verdict::Refused
            }
        }
        ReceiverType::Gitea | ReceiverType::Forgejo => {
            let (signature, event_header) = if type_ == ReceiverType::Gitea {
                ("x-gitea-signature", "x-gitea-event")
            } else {
                ("x-forgejo-signature", "x-forgejo-event")
            };
            match headers.get(signature) {
                Some(hex) if hmac_sha256_matches(hex, token, body) => {
                    Verdict::Event(event(event_header))
                }
                _ => Verdict::Refused,
            }
        }
        ReceiverType::Bitbucket => {
            let signed = headers
                .get("x-hub-signature")
                .and_then(|s| s.strip_prefix("sha256="))
                .is_some_and(|hex| hmac_sha256_matches(hex, token, body));
            match (signed, event("x-event-key")) {
                (false, _) => Verdict::Refused,
                (true, Some(e)) if e == "diagnostics:ping" => Verdict::Ping,
                (true, e) => Verdict::Event(e),
            }
        }
        // Refused by the Receiver's reconcile; never served.
        _ => Verdict::Refused,
    }
}

/// Whether `event` passes the Receiver's `events` (empty: every event; case-insensitive, as
/// the servers differ in case between their docs and their headers).
pub fn event_allowed(events: &[String], event: Option<&str>) -> bool {
    events.is_empty()
        || event.is_some_and(|e| events.iter().any(|allowed| allowed.eq_ignore_ascii_case(e)))
}

/// `sha256=<hex>` or `sha512=<hex>` (generic-hmac).
fn prefixed_hmac_matches(signature: &str, token: &[u8], body: &[u8]) -> bool {
    match signature.split_once('=') {
        Some(("sha256", hex)) => hmac_sha256_matches(hex, token, body),
        Some(("sha512", hex)) => {
            let Ok(expected) = hex::decode(hex) else {
                return false;
            };
            let Ok(mut mac) = <Hmac<Sha512> as KeyInit>::new_from_slice(token) else {
                return false;
            };
            mac.update(body);
            mac.verify_slice(&expected).is_ok()
        }
        _ => false,
    }
}

/// Whether `hex` is the HMAC-SHA256 of `body` keyed with `token` (constant-time).
fn hmac_sha256_matches(hex: &str, token: &[u8], body: &[u8]) -> bool {
    let Ok(expected) = hex::decode(hex.trim()) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(token) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    impl Headers for HashMap<&str, &str> {
        fn get(&self, name: &str) -> Option<&str> {
            HashMap::get(self, name).copied()
        }
    }

    // GitHub's documented example ("Validating webhook deliveries").
    const SECRET: &[u8] = b"It's a Secret to Everybody";
    const PAYLOAD: &[u8] = b"Hello, World!";
    const HEX: &str = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn headers(pairs: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn githubs_documented_example_verifies() {
        let signature = format!("sha256={HEX}");
        let h = HashMap::from([
            ("x-hub-signature-256", signature.as_str()),
            ("x-github-event", "push"),
        ]);
        assert_eq!(
            check(ReceiverType::Github, SECRET, &h, PAYLOAD),
            Verdict::Event(Some("push".into()))
        );
        assert_eq!(
            check(ReceiverType::Github, b"another secret", &h, PAYLOAD),
            Verdict::Refused
        );
        assert_eq!(
            check(ReceiverType::Github, SECRET, &h, b"Hello, World?"),
            Verdict::Refused
        );
    }

    #[test]
    fn a_missing_or_malformed_signature_is_refused() {
        for h in [
            headers(&[]),
            headers(&[("x-hub-signature-256", HEX)]),
            headers(&[("x-hub-signature-256", "sha256=zz")]),
            headers(&[("x-hub-signature-256", "sha1=757107ea")]),
        ] {
            assert_eq!(
                check(ReceiverType::Github, SECRET, &h, PAYLOAD),
                Verdict::Refused
            );
        }
    }

    #[test]
    fn the_other_hmac_types_read_their_own_headers() {
        let prefixed = format!("sha256={HEX}");
        let cases = [
            (ReceiverType::Gitea, "x-gitea-signature", HEX),
            (ReceiverType::Forgejo, "x-forgejo-signature", HEX),
            (
                ReceiverType::Bitbucket,
                "x-hub-signature",
                prefixed.as_str(),
            ),
            (ReceiverType::GenericHmac, "x-signature", prefixed.as_str()),
        ];
        for (type_, header, value) in cases {
            let good = HashMap::from([(header, value)]);
            assert!(
                matches!(check(type_, SECRET, &good, PAYLOAD), Verdict::Event(_)),
                "{type_:?}"
            );
            let github_header = HashMap::from([("x-hub-signature-256", prefixed.as_str())]);
            assert_eq!(
                check(type_, SECRET, &github_header, PAYLOAD),
                Verdict::Refused,
                "{type_:?}"
            );
        }
    }

    #[test]
    fn gitlab_compares_the_token() {
        let good = headers(&[
            ("x-gitlab-token", "s3cret"),
            ("x-gitlab-event", "Push Hook"),
        ]);
        assert_eq!(
            check(ReceiverType::Gitlab, b"s3cret", &good, b"{}"),
            Verdict::Event(Some("Push Hook".into()))
        );
        let bad = headers(&[("x-gitlab-token", "s3cre")]);
        assert_eq!(
            check(ReceiverType::Gitlab, b"s3cret", &bad, b"{}"),
            Verdict::Refused
        );
    }

    #[test]
    fn pings_are_told_apart() {
        let signature = format!("sha256={HEX}");
        let h = HashMap::from([
            ("x-hub-signature-256", signature.as_str()),
            ("x-github-event", "ping"),
        ]);
        assert_eq!(
            check(ReceiverType::Github, SECRET, &h, PAYLOAD),
            Verdict::Ping
        );
    }

    #[test]
    fn events_filter_case_insensitively() {
        let events = vec!["push".to_string()];
        assert!(event_allowed(&events, Some("Push")));
        assert!(!event_allowed(&events, Some("issues")));
        assert!(!event_allowed(&events, None));
        assert!(event_allowed(&[], None));
    }
}
