use mooring_api::kustomization::Selector;

use super::*;

fn write(root: &Path, path: &str, text: &str) {
    let path = root.join(path);
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, text).expect("write");
}

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n";

#[test]
fn generated_resources_follow_flux() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path();
    write(root, "b.yaml", CM);
    write(root, "a.yml", &format!("{CM}---\n{CM}"));
    write(root, "README.md", "# docs");
    write(root, "values.yaml", "replicaCount: 2\nimage: nginx\n");
    write(root, ".gitlab-ci.yml", "stages: [build]\n");
    write(root, "empty.yaml", "# nothing\n");
    write(root, "nested/deep/svc.yaml", CM);
    write(root, "nested/notes.txt", "x");
    write(root, "overlay/kustomization.yaml", "resources: []\n");
    write(root, "overlay/ignored-inside.yaml", CM);
    write(root, "other/Kustomization", "resources: []\n");
    std::os::unix::fs::symlink("nested", root.join("linked-dir")).expect("ln");
    std::os::unix::fs::symlink("b.yaml", root.join("c-link.yaml")).expect("ln");

    let resources = generate_resources(root, root).expect("generate");
    assert_eq!(
        resources,
        vec![
            "./a.yml",
            "./b.yaml",
            "./c-link.yaml",
            "./nested/deep/svc.yaml",
            "./other",
            "./overlay"
        ]
    );
}

#[test]
fn generation_rejects_invalid_yaml_naming_the_file() {
    let dir = tempfile::tempdir().expect("tmp");
    write(
        dir.path(),
        "apps/bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\n data: [\n",
    );
    let err = generate_resources(&dir.path().join("apps"), dir.path()).expect_err("bad yaml");
    assert_eq!(err.label(), "InvalidYaml");
    assert!(err.to_string().contains("apps/bad.yaml"), "{err}");

    let mixed = tempfile::tempdir().expect("tmp");
    write(mixed.path(), "mixed.yaml", &format!("{CM}---\nfoo: bar\n"));
    let err = generate_resources(mixed.path(), mixed.path()).expect_err("mixed");
    assert!(err.to_string().contains("mixed.yaml"), "{err}");
    assert!(err.to_string().contains("document 1"), "{err}");
}

#[test]
fn classify_files() {
    assert_eq!(classify(CM), Ok(YamlFile::Objects));
    assert_eq!(classify(""), Ok(YamlFile::Other));
    assert_eq!(classify("a: 1\n"), Ok(YamlFile::Other));
    assert_eq!(classify("- a\n- b\n"), Ok(YamlFile::Other));
    assert_eq!(
        classify("apiVersion: v1\nkind: List\nitems: []\n"),
        Ok(YamlFile::Objects)
    );
    assert!(classify("a: [\n").is_err());
}

#[test]
fn generated_kustomization_content() {
    let doc = generated(vec!["./a.yaml".into(), "./sub".into()]);
    let text = render(&doc).expect("render");
    let parsed: serde_json::Value = serde_saphyr::from_str(&text).expect("yaml");
    assert_eq!(
        parsed,
        json!({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": ["./a.yaml", "./sub"],
        })
    );
}

#[test]
fn overrides_are_merged_like_flux() {
    let mut doc = parse(
        "resources:\n- deploy.yaml\nnamespace: old\nnamePrefix: old-\n\
         patches:\n- path: mine.yaml\ncomponents:\n- ../c1\n\
         images:\n- name: nginx\n  newName: my/nginx\n  newTag: \"1.0\"\n- name: redis\n  digest: sha256:aa\n",
        "kustomization.yaml",
    )
    .expect("parse");
    let overrides = Overrides {
        target_namespace: Some("prod".into()),
        name_prefix: Some("p-".into()),
        name_suffix: Some("-s".into()),
        patches: vec![Patch {
            patch: "- op: add\n  path: /x\n  value: 1\n".into(),
            target: Some(Selector {
                kind: Some("Deployment".into()),
                label_selector: Some("app=web".into()),
                ..Selector::default()
            }),
        }],
        images: vec![
            // newName alone keeps the listed tag.
            Image {
                name: "nginx".into(),
                new_name: Some("mirror/nginx".into()),
                new_tag: None,
                digest: None,
            },
            // A tag replaces the listed digest.
            Image {
                name: "redis".into(),
                new_name: None,
                new_tag: Some("7".into()),
                digest: None,
            },
            // Digest wins over tag.
            Image {
                name: "busybox".into(),
                new_name: None,
                new_tag: Some("1".into()),
                digest: Some("sha256:bb".into()),
            },
        ],
        components: vec!["../c2".into()],
        build_metadata: vec!["originAnnotations".into()],
    };
    apply_overrides(&mut doc, &overrides, "kustomization.yaml").expect("merge");
    assert_eq!(doc["buildMetadata"], json!(["originAnnotations"]));
    assert_eq!(doc["namespace"], json!("prod"));
    assert_eq!(doc["namePrefix"], json!("p-"));
    assert_eq!(doc["nameSuffix"], json!("-s"));
    assert_eq!(doc["resources"], json!(["deploy.yaml"]));
    assert_eq!(doc["components"], json!(["../c1", "../c2"]));
    assert_eq!(
        doc["patches"],
        json!([
            {"path": "mine.yaml"},
            {"patch": "- op: add\n  path: /x\n  value: 1\n",
             "target": {"kind": "Deployment", "labelSelector": "app=web"}},
        ])
    );
    assert_eq!(
        doc["images"],
        json!([
            {"name": "nginx", "newName": "mirror/nginx", "newTag": "1.0"},
            {"name": "redis", "newTag": "7"},
            {"name": "busybox", "digest": "sha256:bb"},
        ])
    );
}

#[test]
fn overrides_on_an_empty_kustomization_add_type_fields() {
    let mut doc = parse("", "kustomization.yaml").expect("empty");
    let overrides = Overrides {
        target_namespace: Some("x".into()),
        ..Overrides::default()
    };
    apply_overrides(&mut doc, &overrides, "kustomization.yaml").expect("merge");
    assert_eq!(doc["kind"], json!("Kustomization"));
    assert_eq!(doc["namespace"], json!("x"));
    assert!(Overrides::default().is_empty());
    assert!(!overrides.is_empty());
}

#[test]
fn malformed_kustomizations_name_the_file() {
    let err = parse("resources: [\n", "apps/kustomization.yaml").expect_err("bad");
    assert!(err.to_string().contains("apps/kustomization.yaml"), "{err}");
    let err = parse("- a\n", "k.yaml").expect_err("list");
    assert!(err.to_string().contains("not a mapping"), "{err}");
    let mut doc = parse("patches: nope\n", "k.yaml").expect("parse");
    let overrides = Overrides {
        patches: vec![Patch {
            patch: "x".into(),
            target: None,
        }],
        ..Overrides::default()
    };
    let err = apply_overrides(&mut doc, &overrides, "k.yaml").expect_err("not a list");
    assert!(err.to_string().contains("`patches` is not a list"), "{err}");
}
