use std::collections::BTreeMap;

use super::*;

fn run(input: &str, vars: &[(&str, &str)], strict: bool) -> Result<String, ExpandError> {
    let vars: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let lookup = |name: &str| vars.get(name).map(String::as_str);
    expand(input, &lookup, strict)
}

fn ok(input: &str, vars: &[(&str, &str)]) -> String {
    run(input, vars, true).unwrap_or_else(|e| panic!("{input}: {e}"))
}

#[test]
fn plain_text_and_unbraced_dollars_are_untouched() {
    assert_eq!(
        ok("abc $var $ 100$ a$b", &[("var", "x")]),
        "abc $var $ 100$ a$b"
    );
    assert_eq!(ok("", &[]), "");
}

#[test]
fn variables_and_defaults() {
    let vars = [("name", "web"), ("empty", ""), ("fallback", "fb")];
    assert_eq!(ok("app: ${name}-${name}", &vars), "app: web-web");
    assert_eq!(ok("${missing:=def}", &vars), "def");
    assert_eq!(ok("${missing=def}", &vars), "def");
    assert_eq!(ok("${missing:-def}", &vars), "def");
    assert_eq!(ok("${empty:=def}", &vars), "def");
    assert_eq!(ok("${name:=def}", &vars), "web");
    assert_eq!(ok("${missing:=}", &vars), "");
    assert_eq!(ok("${missing:=0}", &vars), "0");
    assert_eq!(ok("${missing:=${fallback}-x}", &vars), "fb-x");
    assert_eq!(ok("${missing:=pre${fallback}}", &vars), "prefb");
    assert_eq!(ok("${missing:=a b:c/d}", &vars), "a b:c/d");
    // An unused default is not evaluated, so its missing variable is not an error.
    assert_eq!(ok("${name:=${other}}", &vars), "web");
}

#[test]
fn escapes() {
    let vars = [("v", "val")];
    assert_eq!(ok("$${v}", &vars), "${v}");
    assert_eq!(ok("echo $${HOME} ${v}", &vars), "echo ${HOME} val");
    assert_eq!(ok("$$", &vars), "$");
    assert_eq!(ok("$$$${v}", &vars), "$${v}");
    assert_eq!(ok("$$${v}", &vars), "$val");
    assert_eq!(ok("$${missing:=x}", &vars), "${missing:=x}");
    assert_eq!(ok("\\\\not-an-escape ${v}", &vars), "\\\\not-an-escape val");
}

#[test]
fn strict_mode_names_the_missing_variable() {
    assert_eq!(
        run("a: ${cluster_name}", &[], true),
        Err(ExpandError::NotSet("cluster_name".into()))
    );
    for expr in [
        "${m^}",
        "${m^^}",
        "${m,}",
        "${m,,}",
        "${#m}",
        "${m:1}",
        "${m:0:2}",
        "${m/a/b}",
        "${m//a/b}",
        "${m#a}",
        "${m##a}",
        "${m%a}",
        "${m%%a}",
    ] {
        assert_eq!(
            run(expr, &[], true),
            Err(ExpandError::NotSet("m".into())),
            "{expr}"
        );
    }
    // Set-but-empty is not missing.
    assert_eq!(ok("[${e}]", &[("e", "")]), "[]");
}

#[test]
fn non_strict_mode_expands_missing_to_empty() {
    assert_eq!(run("a: [${missing}]", &[], false).as_deref(), Ok("a: []"));
    assert_eq!(run("${#missing}", &[], false).as_deref(), Ok("0"));
}

#[test]
fn string_functions() {
    let s = [
        ("v", "abcdEFGH28ij"),
        ("p", "/home/bozo/ideas/thoughts.for.today"),
        ("z", "abcABC123ABCabc"),
        ("f", "bash.string.txt"),
        ("path", "foo/bar/baz"),
    ];
    assert_eq!(ok("${#v}", &s), "12");
    assert_eq!(ok("${v^}", &s), "AbcdEFGH28ij");
    assert_eq!(ok("${v^^}", &s), "ABCDEFGH28IJ");
    assert_eq!(ok("${v,}", &[("v", "ABC")]), "aBC");
    assert_eq!(ok("${v,,}", &s), "abcdefgh28ij");
    assert_eq!(ok("${p:11}", &s), "ideas/thoughts.for.today");
    assert_eq!(ok("${p:11:5}", &s), "ideas");
    assert_eq!(ok("${v:100}", &s), "");
    assert_eq!(ok("${v: -3}", &s), "8ij");
    assert_eq!(ok("${z/%abc/XYZ}", &s), "abcABC123ABCXYZ");
    assert_eq!(ok("${z/#abc/XYZ}", &s), "XYZABC123ABCabc");
    assert_eq!(ok("${z//abc/xyz}", &s), "xyzABC123ABCxyz");
    assert_eq!(ok("${z/abc/xyz}", &s), "xyzABC123ABCabc");
    assert_eq!(ok("${z/#/pre-}", &s), "pre-abcABC123ABCabc");
    assert_eq!(ok("${z/%/-suf}", &s), "abcABC123ABCabc-suf");
    assert_eq!(ok("${z/ABC/}", &s), "abc123ABCabc");
    assert_eq!(ok(r"${path//\//-}", &s), "foo-bar-baz");
    assert_eq!(ok("${f#*.}", &s), "string.txt");
    assert_eq!(ok("${f##*.}", &s), "txt");
    assert_eq!(ok("${f%.*}", &s), "bash.string");
    assert_eq!(ok("${f%%.*}", &s), "bash");
    assert_eq!(ok("${f#b?sh}", &s), ".string.txt");
    assert_eq!(ok("${f%[tx]t}", &s), "bash.string.t");
    assert_eq!(ok("${f#nomatch}", &s), "bash.string.txt");
}

#[test]
fn syntax_errors() {
    for (input, problem) in [
        ("${unclosed", "missing closing brace"),
        ("a ${x:=def", "missing closing brace"),
        ("${}", "unable to parse variable name"),
        ("${my-var}", "invalid character in variable name"),
        ("${a.b}", "invalid character in variable name"),
        ("${a b}", "invalid character in variable name"),
        ("${x:+alt}", "unsupported operator"),
        ("${x+alt}", "unsupported operator"),
        ("${x:?err}", "unsupported operator"),
    ] {
        match run(input, &[("x", "1"), ("v", "abc"), ("my", "m")], true) {
            Err(ExpandError::Syntax { problem: p, .. }) => assert_eq!(p, problem, "{input}"),
            other => panic!("{input}: {other:?}"),
        }
    }
}

#[test]
fn a_value_used_as_an_offset_is_never_shown() {
    for input in ["${v:a}", "${v:${secret}}", "${v:1:${secret}}"] {
        let err = run(input, &[("v", "abc"), ("secret", "hunter2-value")], true).expect_err(input);
        assert_eq!(err, ExpandError::NotAnInteger, "{input}");
        assert!(!err.to_string().contains("hunter2"), "{input}: {err}");
    }
}

#[test]
fn multibyte_text_survives() {
    assert_eq!(ok("héllo ${v} wörld", &[("v", "ünï")]), "héllo ünï wörld");
    assert_eq!(ok("${v:1:2}", &[("v", "ünïcode")]), "nï");
}

#[test]
fn substring_bounds_at_the_ends_of_the_integer_range_do_not_overflow() {
    let v = [("v", "abc")];
    assert_eq!(ok("${v:1:9223372036854775807}", &v), "bc");
    assert_eq!(ok("${v:9223372036854775807:9223372036854775807}", &v), "");
    assert_eq!(ok("${v: -9223372036854775808}", &v), "abc");
    assert_eq!(ok("${v:0:-9223372036854775808}", &v), "");
}

#[test]
fn many_stars_on_a_long_value_finish() {
    let value = "a".repeat(120);
    let v = [("v", value.as_str())];
    assert_eq!(ok("${v##*a*a*a*a*a*a*a*a*a*ab}", &v), value);
    assert_eq!(ok("${v%%a*a*a*a*a*a*a*a*a*a}", &v), "");
    assert_eq!(ok("${v#*a*a}", &v).len(), 118);
}
