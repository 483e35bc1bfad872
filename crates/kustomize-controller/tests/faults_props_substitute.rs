//! Property tests of post-build substitution (fault suite, issue 11 item 4): `expand` and
//! `substitute` never panic on arbitrary templates and values (substring offsets of any
//! size included); for a simple grammar (text, `$${x}`, `${x}`, `${#x}` and the three default
//! forms) the output equals a reference model, in strict and lax mode; and no error message
//! ever holds a variable's value (values may come from a Secret through `substituteFrom`).
//!
//! Short form: `cargo test -p mooring-kustomize-controller --test faults_props_substitute`.
//! Long form (part of `make faults`): the same with `MOORING_FAULTS_LONG=1`, which runs each
//! property for `mooring_testkit::props::LONG_SECONDS` of CPU time
//! (`MOORING_PROPTEST_SECONDS=N` sets another budget). Failing seeds are kept in
//! `proptest-regressions/faults_props_substitute/`.

use std::collections::{BTreeMap, HashMap};

use mooring_kustomize_controller::substitute::{ExpandError, expand, substitute};
use mooring_testkit::props::{Property, check};
use proptest::prelude::*;

/// Pieces of templates: expression syntax, numbers of every size, glob characters.
const SOUP: &[&str] = &[
    "$",
    "$$",
    "${",
    "}",
    "{",
    ":",
    "-",
    "=",
    "#",
    "##",
    "%",
    "%%",
    "/",
    "//",
    "^",
    ",",
    "a",
    "b",
    "_x",
    "0",
    "1",
    "-1",
    "7",
    "9223372036854775807",
    "-9223372036854775808",
    "*",
    "?",
    "[",
    "]",
    "[!a]",
    "\\",
    "!",
    "+",
    " ",
    "é",
    "\n",
];

fn soup(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(SOUP), 0..max).prop_map(|p| p.concat())
}

fn vars() -> impl Strategy<Value = HashMap<String, String>> {
    prop::collection::hash_map(
        prop::sample::select(vec!["a", "b", "_x"]).prop_map(str::to_owned),
        prop_oneof![
            soup(6),
            "\\PC{0,8}",
            any::<i64>().prop_map(|n| n.to_string())
        ],
        0..3,
    )
}

fn run(
    template: &str,
    vars: &HashMap<String, String>,
    strict: bool,
) -> Result<String, ExpandError> {
    expand(template, &|name| vars.get(name).map(String::as_str), strict)
}

#[test]
fn arbitrary_templates_never_panic() {
    check(
        &Property {
            scenario: "property: substitution, arbitrary templates never panic",
            regressions: concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/proptest-regressions/faults_props_substitute/no_panic.txt"
            ),
            short_cases: 3000,
        },
        (prop_oneof![4 => soup(24), 1 => any::<String>()], vars()),
        |(template, vars)| {
            for strict in [false, true] {
                let _ = run(&template, &vars, strict);
            }
            Ok(())
        },
    );
}

#[test]
fn substring_offsets_of_any_size_never_panic() {
    let number = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        // Near the ends of the range, where offset arithmetic can overflow.
        (0i64..16, any::<bool>())
            .prop_map(|(d, max)| { if max { i64::MAX - d } else { i64::MIN + d }.to_string() }),
        (-20i64..20).prop_map(|n| n.to_string()),
        prop::sample::select(vec!["", " 3 ", "x", "${b}"]).prop_map(str::to_owned),
    ];
    check(
        &Property {
            scenario: "property: substitution, substring offsets of any size",
            regressions: concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/proptest-regressions/faults_props_substitute/substring.txt"
            ),
            short_cases: 3000,
        },
        (
            "\\PC{0,12}",
            number.clone(),
            prop::option::of(number),
            vars(),
        ),
        |(value, offset, length, mut vars)| {
            vars.insert("v".to_owned(), value.clone());
            // A space keeps `${v: -1}` a substring (`${v:-1}` is a default).
            let template = match &length {
                Some(l) => format!("${{v: {offset}:{l}}}"),
                None => format!("${{v: {offset}}}"),
            };
            if let Ok(out) = run(&template, &vars, true) {
                // A substring of the value, never more.
                prop_assert!(value.contains(&out), "{template} gave {out:?} of {value:?}");
            }
            Ok(())
        },
    );
}

/// One piece of the simple grammar.
#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    /// `$${name}`, which is the literal `${name}`.
    Escaped(String),
    Var(String),
    Length(String),
    /// `${name<op>default}` with op `:-`, `:=` or `=`.
    Default(String, &'static str, String),
}

fn piece() -> impl Strategy<Value = Piece> {
    let name = prop::sample::select(vec!["A", "B", "C", "_d", "e1"]).prop_map(str::to_owned);
    prop_oneof![
        3 => "[a-z0-9 .:/}{#%-]{0,6}".prop_map(Piece::Text),
        1 => name.clone().prop_map(Piece::Escaped),
        3 => name.clone().prop_map(Piece::Var),
        1 => name.clone().prop_map(Piece::Length),
        2 => (name, prop::sample::select(vec![":-", ":=", "="]), "[a-z0-9 .:/#%-]{0,6}")
            .prop_map(|(n, op, d)| Piece::Default(n, op, d)),
    ]
}

fn render(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) => t.clone(),
            Piece::Escaped(n) => format!("$${{{n}}}"),
            Piece::Var(n) => format!("${{{n}}}"),
            Piece::Length(n) => format!("${{#{n}}}"),
            Piece::Default(n, op, d) => format!("${{{n}{op}{d}}}"),
        })
        .collect()
}

/// The model's output, or the name of the first variable that strict mode refuses.
fn model(pieces: &[Piece], vars: &HashMap<String, String>, strict: bool) -> Result<String, String> {
    let value = |n: &String| match vars.get(n) {
        Some(v) => Ok(v.clone()),
        None if strict => Err(n.clone()),
        None => Ok(String::new()),
    };
    let mut out = String::new();
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Escaped(n) => out.push_str(&format!("${{{n}}}")),
            Piece::Var(n) => out.push_str(&value(n)?),
            Piece::Length(n) => out.push_str(&value(n)?.chars().count().to_string()),
            Piece::Default(n, _, d) => match vars.get(n) {
                Some(v) if !v.is_empty() => out.push_str(v),
                _ => out.push_str(d),
            },
        }
    }
    Ok(out)
}

#[test]
fn simple_grammar_matches_the_model() {
    let vars = prop::collection::hash_map(
        prop::sample::select(vec!["A", "B", "C", "_d", "e1"]).prop_map(str::to_owned),
        prop_oneof![
            "[a-z0-9 ]{0,5}",
            "\\PC{0,5}",
            Just("${A}".to_owned()),
            Just(String::new())
        ],
        0..5,
    );
    check(
        &Property {
            scenario: "property: substitution, escapes and defaults match the model",
            regressions: concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/proptest-regressions/faults_props_substitute/model.txt"
            ),
            short_cases: 3000,
        },
        (prop::collection::vec(piece(), 0..8), vars),
        |(pieces, vars)| {
            let template = render(&pieces);
            for strict in [false, true] {
                let got = run(&template, &vars, strict);
                match model(&pieces, &vars, strict) {
                    Ok(expected) => prop_assert_eq!(got, Ok(expected), "{}", template),
                    Err(name) => {
                        prop_assert_eq!(got, Err(ExpandError::NotSet(name)), "{}", template)
                    }
                }
            }
            Ok(())
        },
    );
}

/// Secret values carry a marker no template here contains, so any marker in a message came
/// from a value.
const MARKER: char = 'Ж';

/// Expressions that use the secret variables `S` and `T` in every position an operator
/// evaluates, and broken expressions after them.
fn secret_template() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => prop::sample::select(vec![
            "${S}", "${S:${S}}", "${S:1:${T}}", "${T:${S}:2}", "${U:-${S}}", "${U:=${T}}",
            "${S/${T}/x}", "${S//a/${S}}", "${S#${T}}", "${S%%${S}}", "${S^^}", "${#S}",
            "${U}", "${S:?x}", "${S+x}", "${bad-name}", "${", "}", "$${S}", "${S:", "${T/",
            "${S:${U}}", "${#}", "${S:x:${S}}", " text ",
        ])
        .prop_map(str::to_owned),
        1 => soup(6),
    ];
    prop::collection::vec(piece, 1..6).prop_map(|p| p.concat())
}

fn secret_value() -> impl Strategy<Value = String> {
    (
        prop_oneof![soup(4), "[0-9]{1,3}", "\\PC{0,6}"],
        any::<bool>(),
    )
        .prop_map(|(rest, front)| {
            if front {
                format!("{MARKER}{rest}")
            } else {
                format!("{rest}{MARKER}")
            }
        })
}

/// Every message of an error and its sources.
fn messages(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[test]
fn secret_values_never_appear_in_errors() {
    check(
        &Property {
            scenario: "property: substitution, values never in error messages",
            regressions: concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/proptest-regressions/faults_props_substitute/secrets.txt"
            ),
            short_cases: 3000,
        },
        (secret_template(), secret_value(), secret_value()),
        |(template, s, t)| {
            let vars = HashMap::from([("S".to_owned(), s.clone()), ("T".to_owned(), t.clone())]);
            for strict in [false, true] {
                if let Err(e) = run(&template, &vars, strict) {
                    let text = messages(&e);
                    prop_assert!(!text.contains(MARKER), "{template}: {text}");
                }
                let yaml = format!(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  k: {}\n",
                    serde_json::to_string(&template).expect("json")
                );
                let map: BTreeMap<String, String> = vars.clone().into_iter().collect();
                if let Err(e) = substitute(&yaml, &map, strict) {
                    let text = messages(&e);
                    prop_assert!(!text.contains(MARKER), "{template}: {text}");
                }
            }
            Ok(())
        },
    );
}
