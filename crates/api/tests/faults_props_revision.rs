//! Property tests of revision parsing (fault suite, issue 11 item 4): `Revision` never panics on
//! arbitrary text, agrees with a reference model of `[<name>@]<sha1|sha256>:<hex>`, and
//! formatting and parsing round-trip.
//!
//! Short form: `cargo test -p mooring-api --test faults_props_revision`.
//! Long form (part of `make faults`): the same with `MOORING_FAULTS_LONG=1`, which runs each
//! property for `mooring_testkit::props::LONG_SECONDS` of CPU time
//! (`MOORING_PROPTEST_SECONDS=N` sets another budget). Failing seeds are kept in
//! `proptest-regressions/faults_props_revision/`.

use mooring_api::revision::commit_of;
use mooring_api::{CommitAlgorithm, Revision};
use mooring_testkit::props::{Property, check};
use proptest::prelude::*;

fn hex(len: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select("0123456789abcdefABCDEF".chars().collect::<Vec<_>>()),
        len,
    )
    .prop_map(|c| c.into_iter().collect())
}

/// Names as git allows them and worse: `@`, `:`, slashes, spaces, non-ASCII, empty.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9/._@:-]{0,20}",
        1 => any::<String>(),
    ]
}

/// Text close to a revision: a name, `@`, an algorithm, `:`, hex of a near-right length.
fn revision_like() -> impl Strategy<Value = String> {
    let algorithm = prop::sample::select(vec!["sha1", "sha256", "SHA1", "md5", "", "sha1:"]);
    let commit = prop_oneof![
        hex(40),
        hex(64),
        (0usize..70).prop_flat_map(hex),
        "[0-9a-fg-z@:]{38,42}",
    ];
    prop_oneof![
        4 => (prop::option::of(name()), algorithm, commit).prop_map(|(n, a, c)| match n {
            Some(n) => format!("{n}@{a}:{c}"),
            None => format!("{a}:{c}"),
        }),
        1 => any::<String>(),
    ]
}

/// The model: `Some((name, algorithm, lower-case commit))` when `input` is a valid revision.
fn model(input: &str) -> Option<(Option<String>, CommitAlgorithm, String)> {
    let (name, hash) = match input.rfind('@') {
        Some(i) => (Some(&input[..i]), &input[i + 1..]),
        None => (None, input),
    };
    if name == Some("") {
        return None;
    }
    let colon = hash.find(':')?;
    let (algorithm, commit) = (&hash[..colon], &hash[colon + 1..]);
    let (algorithm, len) = match algorithm {
        "sha1" => (CommitAlgorithm::Sha1, 40),
        "sha256" => (CommitAlgorithm::Sha256, 64),
        _ => return None,
    };
    if commit.len() != len || !commit.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    Some((
        name.map(str::to_owned),
        algorithm,
        commit.to_ascii_lowercase(),
    ))
}

#[test]
fn parsing_matches_the_model_and_round_trips() {
    check(
        &Property {
            scenario: "property: revision parsing",
            regressions: concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/proptest-regressions/faults_props_revision/parse.txt"
            ),
            short_cases: 3000,
        },
        revision_like(),
        |input| {
            let parsed = input.parse::<Revision>();
            let expected = model(&input);
            prop_assert_eq!(
                parsed.as_ref().ok().map(|r| (
                    r.name().map(str::to_owned),
                    r.algorithm(),
                    r.commit().to_owned()
                )),
                expected.clone()
            );
            prop_assert_eq!(commit_of(&input), expected.map(|(_, _, c)| c));
            match parsed {
                Ok(revision) => {
                    let text = revision.to_string();
                    let back = text.parse::<Revision>();
                    prop_assert_eq!(back.as_ref(), Ok(&revision));
                    // Only the commit's case may differ from the input.
                    prop_assert_eq!(text.to_ascii_lowercase(), input.to_ascii_lowercase());
                    prop_assert!(revision.commit().starts_with(revision.short_commit()));
                }
                Err(e) => {
                    let quoted = format!("{input:?}");
                    prop_assert!(e.to_string().contains(&quoted), "{e}");
                }
            }
            Ok(())
        },
    );
}

#[test]
fn built_revisions_format_and_parse_back() {
    let commit = prop_oneof![hex(40), hex(64), (0usize..70).prop_flat_map(hex)];
    check(
        &Property {
            scenario: "property: revision formatting round trip",
            regressions: concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/proptest-regressions/faults_props_revision/format.txt"
            ),
            short_cases: 3000,
        },
        (prop::option::of(name()), commit),
        |(name, commit)| {
            let built = Revision::new(name.as_deref(), &commit);
            let valid = matches!(commit.len(), 40 | 64) && name.as_deref() != Some("");
            prop_assert_eq!(built.is_ok(), valid, "{:?}", built);
            if let Ok(revision) = built {
                prop_assert_eq!(revision.name(), name.as_deref());
                prop_assert_eq!(revision.commit(), commit.to_ascii_lowercase());
                let back = revision.to_string().parse::<Revision>();
                prop_assert_eq!(back, Ok(revision));
            }
            Ok(())
        },
    );
}
