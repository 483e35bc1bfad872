use super::*;

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const BUILT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: app
spec:
  replicas: ${PODS:=0}
  template:
    spec:
      containers:
      - image: nginx:${TAG}
---
apiVersion: v1
kind: ConfigMap
metadata:
  annotations:
    kustomize.mooring.dev/substitute: disabled
  name: script
  namespace: app
data:
  run.sh: |
    echo ${HOME} ${TAG}
";

#[test]
fn substitutes_text_so_numbers_stay_numbers() {
    let out = substitute(BUILT, &vars(&[("PODS", "3"), ("TAG", "1.2")]), true).expect("substitute");
    let objects = crate::manifests::parse(&out).expect("parse");
    assert_eq!(objects[0].data["spec"]["replicas"], serde_json::json!(3));
    assert_eq!(
        objects[0].data["spec"]["template"]["spec"]["containers"][0]["image"],
        serde_json::json!("nginx:1.2")
    );
    // Disabled by annotation: untouched, and no strict-mode error for ${HOME}.
    assert_eq!(
        objects[1].data["data"]["run.sh"],
        serde_json::json!("echo ${HOME} ${TAG}\n")
    );
}

#[test]
fn defaults_apply_without_variables() {
    let out = substitute(BUILT, &vars(&[("TAG", "x")]), true).expect("substitute");
    let objects = crate::manifests::parse(&out).expect("parse");
    assert_eq!(objects[0].data["spec"]["replicas"], serde_json::json!(0));
}

#[test]
fn strict_error_names_variable_and_object() {
    let err = substitute(BUILT, &vars(&[("PODS", "1")]), true).expect_err("TAG missing");
    assert_eq!(err.label(), "SubstituteVariables");
    let message = err.to_string();
    assert!(message.contains("Deployment/app/web"), "{message}");
    assert!(message.contains("\"TAG\""), "{message}");
    // Non-strict: empty.
    let out = substitute(BUILT, &vars(&[("PODS", "1")]), false).expect("non-strict");
    assert!(out.contains("image: nginx:\n"), "{out}");
}

#[test]
fn disabled_by_label_too() {
    let doc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels:\n    kustomize.mooring.dev/substitute: disabled\n  name: a\ndata:\n  x: ${NOPE}\n";
    assert_eq!(substitute(doc, &vars(&[]), true).expect("skip"), doc);
}

#[test]
fn the_setting_is_read_like_the_other_per_object_ones() {
    let doc = |metadata: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n{metadata}  name: a\ndata:\n  x: ${{V}}\n"
        )
    };
    let key = "kustomize.mooring.dev/substitute";
    // Case does not matter.
    let upper = doc(&format!("  annotations:\n    {key}: Disabled\n"));
    assert_eq!(
        substitute(&upper, &vars(&[("V", "1")]), true).expect("skip"),
        upper
    );
    // The annotation wins over the label, either way.
    let enabled = doc(&format!(
        "  annotations:\n    {key}: enabled\n  labels:\n    {key}: disabled\n"
    ));
    let out = substitute(&enabled, &vars(&[("V", "1")]), true).expect("substituted");
    assert!(
        out.contains("x: \"1\"") || out.contains("x: '1'") || out.contains("x: 1"),
        "{out}"
    );
    let disabled = doc(&format!(
        "  annotations:\n    {key}: DISABLED\n  labels:\n    {key}: enabled\n"
    ));
    assert_eq!(
        substitute(&disabled, &vars(&[("V", "1")]), true).expect("skip"),
        disabled
    );
}

#[test]
fn invalid_variable_names_are_rejected() {
    for bad in ["cluster-name", "1abc", "", "a.b", "ünï"] {
        let err = substitute(BUILT, &vars(&[(bad, "x")]), true).expect_err(bad);
        assert_eq!(err.label(), "InvalidVariableName", "{bad}");
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
    }
    for good in ["_a", "A1_b", "x"] {
        assert!(is_valid_name(good), "{good}");
    }
}

#[test]
fn newlines_are_removed_from_values() {
    let doc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  x: ${V}\n";
    let out = substitute(doc, &vars(&[("V", "one\ntwo\r\n")]), true).expect("sub");
    let objects = crate::manifests::parse(&out).expect("parse");
    assert_eq!(objects[0].data["data"], serde_json::json!({"x": "onetwo"}));
}

#[test]
fn syntax_errors_name_the_object() {
    let doc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: ns1\ndata:\n  x: ${V\n";
    let err = substitute(doc, &vars(&[("V", "1")]), true).expect_err("syntax");
    assert!(err.to_string().contains("ConfigMap/ns1/a"), "{err}");
    assert!(err.to_string().contains("bad substitution"), "{err}");
}

#[test]
fn strategy_decides_whether_to_run() {
    let none = vars(&[]);
    let some = vars(&[("a", "b")]);
    assert!(!should_substitute(None, &some));
    let default = PostBuild::default();
    assert!(!should_substitute(Some(&default), &none));
    assert!(should_substitute(Some(&default), &some));
    let always = PostBuild {
        substitute_strategy: Some(SubstituteStrategy::Always),
        ..PostBuild::default()
    };
    assert!(should_substitute(Some(&always), &none));
}

#[test]
fn output_round_trips_multiple_documents() {
    let out = substitute(BUILT, &vars(&[("PODS", "3"), ("TAG", "1")]), true).expect("sub");
    assert_eq!(crate::manifests::split_documents(&out).len(), 2);
    assert!(out.contains("\n---\n"));
}

#[test]
fn values_are_scrubbed_from_messages() {
    let v = vars(&[
        ("TOKEN", "s3cret-token"),
        ("LONGER", "s3cret-token-2"),
        ("N", "1"),
    ]);
    assert_eq!(
        scrub_values("bad value s3cret-token-2 and s3cret-token at line 1", &v),
        "bad value *** and *** at line 1"
    );
}
