//! Property tests of ref selection and semver ranges (fault suite, issue 11 item 4): parsing
//! never panics; the semver choice equals a brute-force model (the greatest matching version,
//! whatever the listing order) for ranges whose meaning the model spells out by hand; branch,
//! tag and name checkouts find exactly the listed ref and their revisions parse back.
//!
//! A unit-test module because `Range`, `select` and `RemoteRef` are crate-private. Short form:
//! `cargo test -p mooring-source-controller --lib props`. Long form: `make faults` runs it with
//! `MOORING_FAULTS_LONG=1` (each property for `mooring_testkit::props::LONG_SECONDS` of CPU
//! time; `MOORING_PROPTEST_SECONDS=N` sets another budget). Failing seeds are kept in
//! `proptest-regressions/refs_props/`.

use mooring_api::{GitCheckout, Revision};
use mooring_testkit::props::{Property, check};
use proptest::prelude::*;
use semver::Version;

use super::refs::{RemoteRef, select, validate_commit};
use super::semver::{Range, newest_match, tag_version};

type Triple = (u64, u64, u64);

/// A comparator the model understands: `op` and a full version without prerelease.
#[derive(Debug, Clone)]
enum Comparator {
    Op(&'static str, Triple),
    /// A bare version: exactly that version (Masterminds).
    Bare(Triple),
    Any,
}

#[derive(Debug, Clone)]
enum Alternative {
    All(Vec<Comparator>),
    Hyphen(Triple, Triple),
}

fn triple() -> impl Strategy<Value = Triple> {
    (0u64..3, 0u64..3, 0u64..3)
}

fn comparator() -> impl Strategy<Value = Comparator> {
    prop_oneof![
        6 => (prop::sample::select(vec![">=", "<=", ">", "<", "=", "~", "^"]), triple())
            .prop_map(|(op, v)| Comparator::Op(op, v)),
        2 => triple().prop_map(Comparator::Bare),
        1 => Just(Comparator::Any),
    ]
}

fn range() -> impl Strategy<Value = Vec<Alternative>> {
    let alternative = prop_oneof![
        // `*` stands alone: the semver crate refuses it next to other comparators.
        4 => prop::collection::vec(comparator(), 1..3).prop_map(|mut cs| {
            if cs.len() > 1 {
                cs.retain(|c| !matches!(c, Comparator::Any));
            }
            if cs.is_empty() {
                cs.push(Comparator::Any);
            }
            Alternative::All(cs)
        }),
        1 => (triple(), triple()).prop_map(|(a, b)| Alternative::Hyphen(a, b)),
    ];
    prop::collection::vec(alternative, 1..3)
}

fn show((a, b, c): Triple, v_prefix: bool) -> String {
    format!("{}{a}.{b}.{c}", if v_prefix { "v" } else { "" })
}

/// The range as text, with the separators users write (spaces, commas, `v` prefixes).
fn render(range: &[Alternative], style: u8) -> String {
    let v = style & 1 == 1;
    let sep = if style & 2 == 2 { ", " } else { " " };
    range
        .iter()
        .map(|alt| match alt {
            Alternative::Hyphen(a, b) => format!("{} - {}", show(*a, v), show(*b, v)),
            Alternative::All(cs) => cs
                .iter()
                .map(|c| match c {
                    Comparator::Op(op, t) => format!("{op}{}", show(*t, v)),
                    Comparator::Bare(t) => show(*t, v),
                    Comparator::Any => "*".to_owned(),
                })
                .collect::<Vec<_>>()
                .join(sep),
        })
        .collect::<Vec<_>>()
        .join(" || ")
}

/// Whether the model's range holds `v`. A prerelease never matches: no comparator of the
/// model has one.
fn model_matches(range: &[Alternative], v: &Version) -> bool {
    if !v.pre.is_empty() {
        return false;
    }
    let t = (v.major, v.minor, v.patch);
    let holds = |c: &Comparator| match c {
        Comparator::Any => true,
        Comparator::Bare(x) | Comparator::Op("=", x) => t == *x,
        Comparator::Op(">=", x) => t >= *x,
        Comparator::Op("<=", x) => t <= *x,
        Comparator::Op(">", x) => t > *x,
        Comparator::Op("<", x) => t < *x,
        Comparator::Op("~", x) => t >= *x && t < (x.0, x.1 + 1, 0),
        Comparator::Op(_, x) => {
            // Caret: the leftmost non-zero number may not change.
            let upper = match x {
                (0, 0, p) => (0, 0, p + 1),
                (0, m, _) => (0, m + 1, 0),
                (major, _, _) => (major + 1, 0, 0),
            };
            t >= *x && t < upper
        }
    };
    range.iter().any(|alt| match alt {
        Alternative::All(cs) => cs.iter().all(holds),
        Alternative::Hyphen(a, b) => t >= *a && t <= *b,
    })
}

/// Tags: versions with and without `v`, short forms, prereleases, build metadata, junk.
fn tag() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (triple(), any::<bool>()).prop_map(|(t, v)| show(t, v)),
        1 => (triple(), 0u8..3).prop_map(|(t, n)| format!("v{}-rc.{n}", show(t, false))),
        1 => (triple(), 0u8..3).prop_map(|(t, n)| format!("{}+build.{n}", show(t, true))),
        1 => (0u64..3, prop::option::of(0u64..3)).prop_map(|(a, b)| match b {
            Some(b) => format!("v{a}.{b}"),
            None => format!("{a}"),
        }),
        1 => prop::sample::select(vec!["latest", "release-1", "1..2", "v", "", "1.2.3.4"])
            .prop_map(str::to_owned),
    ]
}

#[test]
fn semver_picks_the_greatest_matching_version() {
    check(
        &Property {
            scenario: "property: semver range selection matches a brute-force model",
            regressions: concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/proptest-regressions/refs_props/semver.txt"
            ),
            short_cases: 2000,
        },
        (
            range(),
            0u8..4,
            prop::collection::vec(tag(), 0..12).prop_shuffle(),
        ),
        |(range, style, tags)| {
            let text = render(&range, style);
            let parsed = Range::parse(&text)
                .map_err(|e| TestCaseError::fail(format!("{text:?} refused: {e}")))?;
            // Brute force: every tag's version, the greatest that matches (ties: greater name).
            let mut best: Option<(Version, &str)> = None;
            for t in &tags {
                if let Some(v) = tag_version(t).filter(|v| model_matches(&range, v))
                    && best
                        .as_ref()
                        .is_none_or(|(bv, bt)| (&v, t.as_str()) > (bv, *bt))
                {
                    best = Some((v, t));
                }
            }
            let got = newest_match(&parsed, tags.iter().map(String::as_str));
            prop_assert_eq!(got, best.map(|(_, t)| t), "range {:?}", text);
            let mut reversed = tags.clone();
            reversed.reverse();
            prop_assert_eq!(
                newest_match(&parsed, reversed.iter().map(String::as_str)),
                got,
                "the listing order changed the choice"
            );
            Ok(())
        },
    );
}

#[test]
fn parsing_arbitrary_ranges_and_tags_never_panics() {
    let soup = prop::collection::vec(
        prop::sample::select(vec![
            ">=",
            "<",
            "=",
            "~",
            "^",
            "!=",
            " ",
            ",",
            "||",
            " - ",
            "v",
            "1",
            "0",
            ".",
            "x",
            "*",
            "-rc.1",
            "+b",
            "18446744073709551616",
            "é",
        ]),
        0..12,
    )
    .prop_map(|p| p.concat());
    check(
        &Property {
            scenario: "property: semver parsing of arbitrary text",
            regressions: concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/proptest-regressions/refs_props/parse.txt"
            ),
            short_cases: 3000,
        },
        (prop_oneof![soup.clone(), "\\PC{0,20}"], soup),
        |(range, tag)| {
            if let Ok(parsed) = Range::parse(&range) {
                let _ = newest_match(&parsed, [tag.as_str()]);
            } else if let Err(why) = Range::parse(&range) {
                prop_assert!(!why.is_empty());
            }
            let _ = tag_version(&tag);
            Ok(())
        },
    );
}

fn commit() -> impl Strategy<Value = String> {
    "[0-9a-f]{40}"
}

#[test]
fn refs_are_found_exactly_and_revisions_parse_back() {
    let name = "[a-zA-Z0-9._/@-]{1,16}";
    let listing = prop::collection::vec(
        (
            prop::sample::select(vec!["refs/heads/", "refs/tags/", "refs/pull/", ""]),
            name,
            prop::option::of(commit()),
        ),
        0..8,
    );
    let checkout = prop_oneof![
        name.prop_map(GitCheckout::Branch),
        name.prop_map(GitCheckout::Tag),
        "refs/(heads|tags)/[a-z]{1,3}".prop_map(GitCheckout::Name),
        ("[0-9a-fA-Fg]{38,41}", prop::option::of(name))
            .prop_map(|(commit, branch)| { GitCheckout::Commit { commit, branch } }),
    ];
    check(
        &Property {
            scenario: "property: ref selection and revision strings",
            regressions: concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/proptest-regressions/refs_props/select.txt"
            ),
            short_cases: 3000,
        },
        (listing, checkout),
        |(listing, checkout)| {
            let refs: Vec<RemoteRef> = listing
                .iter()
                .map(|(prefix, name, commit)| RemoteRef {
                    name: format!("{prefix}{name}"),
                    commit: commit.clone(),
                    symref_target: None,
                })
                .collect();
            let first = |full: &str| {
                refs.iter()
                    .find(|r| r.name == full)
                    .and_then(|r| r.commit.clone())
            };
            let got = select(&checkout, &refs, "https://h/r.git");
            let (expected_name, expected_commit) = match &checkout {
                GitCheckout::Branch(b) => (Some(b.clone()), first(&format!("refs/heads/{b}"))),
                GitCheckout::Tag(t) => (Some(t.clone()), first(&format!("refs/tags/{t}"))),
                GitCheckout::Name(n) => (Some(n.clone()), first(n)),
                GitCheckout::Commit { commit, branch } => {
                    let valid = validate_commit(commit).ok();
                    prop_assert_eq!(
                        valid.is_some(),
                        commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit())
                    );
                    // A branch listed without a commit is unborn: it is not there to check out.
                    let branch_ok = branch
                        .as_ref()
                        .is_none_or(|b| first(&format!("refs/heads/{b}")).is_some());
                    (branch.clone(), valid.filter(|_| branch_ok))
                }
                GitCheckout::Semver(_) => unreachable!("not generated"),
            };
            match (got, expected_commit) {
                (Ok(resolved), Some(commit)) => {
                    prop_assert_eq!(&resolved.commit, &commit.to_ascii_lowercase());
                    let revision: Revision = resolved.revision.parse().map_err(|e| {
                        TestCaseError::fail(format!("revision does not parse: {e}"))
                    })?;
                    prop_assert_eq!(revision.name(), expected_name.as_deref());
                    prop_assert_eq!(revision.commit(), resolved.commit.as_str());
                }
                (Err(e), None) => prop_assert!(!e.to_string().is_empty()),
                (got, expected) => {
                    prop_assert!(false, "got {got:?}, expected commit {expected:?}")
                }
            }
            Ok(())
        },
    );
}
