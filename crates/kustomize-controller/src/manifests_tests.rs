use super::*;

const OUTPUT: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
  namespace: app
data:
  script: |
    echo start
    echo ---
  count: \"3\"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  labels:
    app: web
  name: web
  namespace: app
spec:
  replicas: 2
";

#[test]
fn splits_on_separator_lines_only() {
    let docs =
        split_documents("a: 1\n---\nb: |\n  ---\n  x\n--- \n\n---\n# only a comment\n---\nc: 3");
    assert_eq!(docs, vec!["a: 1\n", "b: |\n  ---\n  x\n", "c: 3"]);
    assert!(split_documents("").is_empty());
    assert_eq!(split_documents("---\na: 1\n"), vec!["a: 1\n"]);
}

#[test]
fn parses_objects_in_order() {
    let objects = parse(OUTPUT).expect("parse");
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[0].metadata.name.as_deref(), Some("cfg"));
    assert_eq!(
        objects[0].data["data"]["script"],
        serde_json::json!("echo start\necho ---\n")
    );
    assert_eq!(objects[0].data["data"]["count"], serde_json::json!("3"));
    let deploy = &objects[1];
    assert_eq!(
        deploy.types.as_ref().map(|t| t.kind.as_str()),
        Some("Deployment")
    );
    assert_eq!(deploy.data["spec"]["replicas"], serde_json::json!(2));
}

#[test]
fn errors_name_index_and_object() {
    let missing_name = "apiVersion: v1\nkind: ConfigMap\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  namespace: x\n";
    let err = parse(missing_name).expect_err("no name");
    assert_eq!(err.label(), "InvalidObject");
    assert_eq!(
        err.to_string(),
        "document 0 (ConfigMap): missing metadata.name"
    );

    let missing_kind = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nmetadata:\n  name: b\n";
    let err = parse(missing_kind).expect_err("no kind");
    assert_eq!(err.to_string(), "document 1 (b): missing kind");

    let no_version = "kind: Service\nmetadata:\n  name: web\n  namespace: ns\n";
    let err = parse(no_version).expect_err("no apiVersion");
    assert_eq!(
        err.to_string(),
        "document 0 (Service/ns/web): missing apiVersion"
    );

    let bad_yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\ndata: [\n";
    let err = parse(bad_yaml).expect_err("bad yaml");
    assert_eq!(err.label(), "ParseManifests");
    assert!(
        err.to_string()
            .starts_with("document 0 (ConfigMap/broken): invalid YAML"),
        "{err}"
    );

    // The message locates the problem without quoting the document, which may hold a secret.
    let secret = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: leaky\ndata:\n  value: [s3cretValue\nkind: X\n";
    let err = parse(secret).expect_err("bad yaml").to_string();
    assert!(err.contains("line "), "{err}");
    assert!(!err.contains("s3cretValue"), "{err}");

    let scalar = "just a string\n";
    let err = parse(scalar).expect_err("scalar");
    assert_eq!(err.to_string(), "document 0: not a mapping");
}

#[test]
fn common_metadata_overrides_and_owner_labels_are_stamped() {
    let mut objects = parse(OUTPUT).expect("parse");
    let common = CommonMetadata {
        labels: Some(BTreeMap::from([
            ("app".to_owned(), "override".to_owned()),
            ("team".to_owned(), "a".to_owned()),
        ])),
        annotations: Some(BTreeMap::from([("note".to_owned(), "x".to_owned())])),
    };
    set_common_metadata(&mut objects, &common);
    stamp_owner(&mut objects, "apps", "flux-system");
    for object in &objects {
        let labels = object.metadata.labels.as_ref().expect("labels");
        assert_eq!(labels["team"], "a");
        assert_eq!(labels[KUSTOMIZE_NAME_LABEL], "apps");
        assert_eq!(labels[KUSTOMIZE_NAMESPACE_LABEL], "flux-system");
        assert_eq!(
            object.metadata.annotations.as_ref().expect("annotations")["note"],
            "x"
        );
    }
    assert_eq!(
        objects[1].metadata.labels.as_ref().expect("labels")["app"],
        "override"
    );
    // Only the object's own metadata: the pod template is left alone.
    assert!(objects[1].data["spec"].get("template").is_none());
}

#[test]
fn empty_common_metadata_adds_no_empty_maps() {
    let mut objects = parse(OUTPUT).expect("parse");
    set_common_metadata(
        &mut objects,
        &CommonMetadata {
            labels: Some(BTreeMap::new()),
            annotations: None,
        },
    );
    assert!(objects[0].metadata.labels.is_none());
    assert!(objects[0].metadata.annotations.is_none());
}
