//! Property tests of URL redaction (fault suite, issue 11 item 4): for arbitrary
//! `scheme://user:password@host/path` URLs, tokens written as the URL's user, credentials
//! percent-encoded or written raw where RFC 3986 allows (and `@` written raw, a common
//! mistake), `git::redact` keeps neither the secret nor its percent-encoded form, keeps the
//! rest of the URL, and is idempotent. (The crate-private scrubbing of messages is covered by
//! `src/git/url_props.rs`.)
//!
//! Short form: `cargo test -p mooring-source-controller --test faults_props_redact`.
//! Long form (part of `make faults`): the same with `MOORING_FAULTS_LONG=1`, which runs each
//! property for `mooring_testkit::props::LONG_SECONDS` of CPU time
//! (`MOORING_PROPTEST_SECONDS=N` sets another budget). Failing seeds are kept in
//! `proptest-regressions/faults_props_redact/`.

use mooring_source_controller::git::redact;
use mooring_testkit::props::{Property, check};
use proptest::prelude::*;

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

/// How a credential is written into the URL.
#[derive(Debug, Clone, Copy)]
enum Spelling {
    /// Percent-encoded.
    Encoded,
    /// As is: the secret only holds characters userinfo allows raw (and `@`).
    Raw,
}

#[derive(Debug, Clone)]
struct Case {
    scheme: &'static str,
    user: Option<String>,
    password: Option<String>,
    spelling: Spelling,
    host: String,
    rest: String,
}

/// Secrets of at least 4 characters (shorter ones are too common in any text to be told
/// apart; scrubbing withholds the whole message for them instead).
fn secret(spelling: Spelling) -> BoxedStrategy<String> {
    match spelling {
        Spelling::Encoded => "\\PC{4,24}".boxed(),
        Spelling::Raw => "[A-Za-z0-9._~!$&'()*+,;=@-]{4,24}".boxed(),
    }
}

fn case() -> impl Strategy<Value = Case> {
    let spelling = prop_oneof![Just(Spelling::Encoded), Just(Spelling::Raw)];
    spelling.prop_flat_map(|spelling| {
        (
            prop::sample::select(vec!["https", "http", "ssh"]),
            prop::option::of(secret(spelling)),
            prop::option::of(secret(spelling)),
            Just(spelling),
            prop_oneof![
                Just("github.com".to_owned()),
                Just("127.0.0.1:8443".to_owned()),
                Just("[::1]:22".to_owned()),
                "[a-z0-9.-]{1,20}",
            ],
            prop_oneof![
                Just(String::new()),
                Just("/org/repo.git".to_owned()),
                Just("/r?x=a@b#frag".to_owned()),
                "/[a-zA-Z0-9@:/?#=&._-]{0,20}",
            ],
        )
            .prop_map(|(scheme, user, password, spelling, host, rest)| Case {
                scheme,
                // The SSH user is not a secret: draw one that cannot look like the password.
                user: if scheme == "ssh" {
                    user.map(|_| "git".to_owned())
                } else {
                    user
                },
                password,
                spelling,
                host,
                rest,
            })
    })
}

fn spell(text: &str, spelling: Spelling) -> String {
    match spelling {
        Spelling::Encoded => encode(text),
        Spelling::Raw => text.to_owned(),
    }
}

impl Case {
    fn url(&self) -> String {
        let userinfo = match (&self.user, &self.password) {
            (None, None) => String::new(),
            (Some(u), None) => format!("{}@", spell(u, self.spelling)),
            (u, Some(p)) => format!(
                "{}:{}@",
                u.as_deref()
                    .map(|u| spell(u, self.spelling))
                    .unwrap_or_default(),
                spell(p, self.spelling)
            ),
        };
        format!("{}://{userinfo}{}{}", self.scheme, self.host, self.rest)
    }

    /// The model: the URL with HTTP(S) userinfo replaced by `***`, and an SSH password.
    fn redacted(&self) -> String {
        let userinfo = match (self.scheme, &self.user, &self.password) {
            (_, None, None) => String::new(),
            ("ssh", u, None) => format!("{}@", u.as_deref().unwrap_or_default()),
            ("ssh", u, Some(_)) => format!("{}:***@", u.as_deref().unwrap_or_default()),
            _ => "***@".to_owned(),
        };
        format!("{}://{userinfo}{}{}", self.scheme, self.host, self.rest)
    }

    /// The credentials the redacted URL must not show, in every spelling.
    fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        let user_is_secret = self.scheme != "ssh";
        for s in self
            .user
            .iter()
            .filter(|_| user_is_secret)
            .chain(self.password.iter())
        {
            out.push(s.clone());
            out.push(encode(s));
        }
        out
    }
}

#[test]
fn redacted_urls_never_hold_a_credential() {
    check(
        &Property {
            scenario: "property: URL redaction",
            regressions: concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/proptest-regressions/faults_props_redact/redact.txt"
            ),
            short_cases: 4000,
        },
        case(),
        |case| {
            let url = case.url();
            let redacted = redact(&url);
            let expected = case.redacted();
            for secret in case.secrets() {
                // A secret that is also part of what is shown anyway (the host, `***`) is fine.
                if !expected.contains(&secret) {
                    prop_assert!(
                        !redacted.contains(&secret),
                        "{url} redacted to {redacted} still shows {secret:?}"
                    );
                }
            }
            prop_assert_eq!(&redacted, &expected);
            prop_assert_eq!(redact(&redacted), redacted.clone());
            Ok(())
        },
    );
}

#[test]
fn redaction_never_panics_on_arbitrary_text() {
    check(
        &Property {
            scenario: "property: URL redaction, arbitrary text",
            regressions: concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/proptest-regressions/faults_props_redact/arbitrary.txt"
            ),
            short_cases: 4000,
        },
        prop_oneof![
            "\\PC{0,40}",
            "(https?|ssh)://[^/]{0,10}[@:/?#]{0,3}\\PC{0,10}"
        ],
        |text| {
            let redacted = redact(&text);
            prop_assert_eq!(redact(&redacted), redacted);
            Ok(())
        },
    );
}
