//! Property tests of credential scrubbing (fault suite, issue 11 item 4): `scrub` removes
//! every secret from a message, also where secrets overlap or one contains another (the
//! result equals a reference model that masks every character any occurrence covers); the
//! credentials of a repository URL, percent-encoded or not, never survive scrubbing with
//! `RepoUrl::secrets`; and the error for an invalid URL never shows them.
//!
//! A unit-test module because `scrub` and `RepoUrl` are crate-private. Short form:
//! `cargo test -p mooring-source-controller --lib props`. Long form: `make faults` runs it with
//! `MOORING_FAULTS_LONG=1` (each property for `mooring_testkit::props::LONG_SECONDS` of CPU
//! time; `MOORING_PROPTEST_SECONDS=N` sets another budget). Failing seeds are kept in
//! `proptest-regressions/url_props/`.

use mooring_testkit::props::{Property, check};
use proptest::prelude::*;

use super::classify::scrub;
use super::url::RepoUrl;

/// The model: every character covered by an occurrence of a secret is masked, each maximal
/// run of covered characters becoming one `***`; a secret shorter than 4 withholds it all.
fn scrub_model(text: &str, secrets: &[&str]) -> String {
    let secrets: Vec<&str> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
    if secrets.iter().any(|s| s.len() < 4) {
        return "(details withheld: a credential is too short to be removed from them)".to_owned();
    }
    let mut covered = vec![false; text.len()];
    for s in &secrets {
        for (i, _) in text.match_indices(s) {
            covered[i..i + s.len()].iter_mut().for_each(|c| *c = true);
        }
        // `match_indices` skips overlapping occurrences of the same secret: look at each start.
        for i in 0..text.len() {
            if text.is_char_boundary(i) && text[i..].starts_with(s) {
                covered[i..i + s.len()].iter_mut().for_each(|c| *c = true);
            }
        }
    }
    let mut out = String::new();
    let mut i = 0;
    while i < text.len() {
        if covered[i] {
            while i < text.len() && covered[i] {
                i += 1;
            }
            out.push_str("***");
        } else {
            let c = text[i..].chars().next().expect("char");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

#[test]
fn scrubbing_removes_every_secret_even_overlapping_ones() {
    // A small alphabet, so that secrets overlap and contain each other often.
    let secret = "[abcé]{1,7}";
    let strategy = (
        prop::collection::vec(secret, 1..4),
        prop::collection::vec(
            prop_oneof![
                2 => "[abcé :/]{0,4}".prop_map(|t| (t, None)),
                2 => (0usize..4).prop_map(|i| (String::new(), Some(i))),
            ],
            0..8,
        ),
    );
    check(
        &Property {
            scenario: "property: scrubbing secrets from messages",
            regressions: concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/proptest-regressions/url_props/scrub.txt"
            ),
            short_cases: 3000,
        },
        strategy,
        |(secrets, pieces)| {
            let mut text = String::new();
            for (filler, index) in pieces {
                text.push_str(&filler);
                if let Some(s) = index.and_then(|i| secrets.get(i)) {
                    text.push_str(s);
                }
            }
            let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
            let scrubbed = scrub(&text, &secrets);
            if secrets.iter().all(|s| s.len() >= 4) {
                for s in &secrets {
                    prop_assert!(!scrubbed.contains(s), "{text:?} scrubbed to {scrubbed:?}");
                }
            }
            // Masks next to each other may be one `***` or several.
            let collapse = |t: &str| {
                let mut out = String::new();
                for c in t.chars() {
                    if c != '*' || !out.ends_with('*') {
                        out.push(c);
                    }
                }
                out
            };
            prop_assert_eq!(
                collapse(&scrubbed),
                collapse(&scrub_model(&text, &secrets)),
                "text {:?}",
                text
            );
            Ok(())
        },
    );
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Every spelling of a credential a message might carry.
fn spellings(secret: &str) -> Vec<String> {
    vec![secret.to_owned(), encode(secret)]
}

fn credential() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[A-Za-z0-9_-]{4,20}",
        2 => "[A-Za-z0-9!$&'()*+,;=@:/?# %é-]{4,20}",
    ]
}

#[test]
fn url_credentials_never_survive_scrubbing_or_invalid_url_errors() {
    let strategy = (
        prop::sample::select(vec!["https", "http", "ssh"]),
        prop::option::of(credential()),
        prop::option::of(credential()),
        prop_oneof![
            3 => Just("git.example.com".to_owned()),
            1 => Just("h:99999".to_owned()),
            1 => Just("h:port".to_owned()),
            1 => Just("bad host".to_owned()),
            1 => Just(String::new()),
        ],
    );
    check(
        &Property {
            scenario: "property: URL credentials scrubbed from messages",
            regressions: concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/proptest-regressions/url_props/url_secrets.txt"
            ),
            short_cases: 2000,
        },
        strategy,
        |(scheme, user, password, host)| {
            let userinfo = match (&user, &password) {
                (None, None) => String::new(),
                (Some(u), None) => format!("{}@", encode(u)),
                (u, Some(p)) => format!(
                    "{}:{}@",
                    u.as_deref().map(encode).unwrap_or_default(),
                    encode(p)
                ),
            };
            let url = format!("{scheme}://{userinfo}{host}/org/repo.git");
            let mut secrets: Vec<&String> = password.iter().collect();
            if scheme != "ssh" {
                secrets.extend(user.iter());
            }
            match RepoUrl::parse(&url) {
                Ok(parsed) => {
                    // What a transport error may echo: the URL as given, and the credentials
                    // as sent.
                    let message = format!(
                        "error sending request for url ({url}): user {} password {}",
                        user.as_deref().unwrap_or_default(),
                        password.as_deref().unwrap_or_default()
                    );
                    let scrubbed = scrub(&message, &parsed.secrets());
                    for secret in &secrets {
                        for spelling in spellings(secret) {
                            prop_assert!(
                                !scrubbed.contains(&spelling),
                                "{url}: {scrubbed} shows {spelling:?}"
                            );
                        }
                    }
                }
                Err(e) => {
                    let message = e.to_string();
                    for secret in &secrets {
                        for spelling in spellings(secret) {
                            prop_assert!(
                                !message.contains(&spelling),
                                "{url}: {message} shows {spelling:?}"
                            );
                        }
                    }
                }
            }
            Ok(())
        },
    );
}
