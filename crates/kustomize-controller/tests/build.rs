//! `build` against the real, pinned kustomize.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mooring_api::kustomization::{CommonMetadata, Image, Patch, Selector};
use mooring_kustomize_controller::build::{Batcher, BuildError, BuildInput, build};
use mooring_kustomize_controller::manifests;
use mooring_kustomize_controller::substitute::substitute;

fn kustomize() -> PathBuf {
    mooring_testkit::tools::tool("kustomize").expect("kustomize (run `make tools`)")
}

/// A fake extracted artifact.
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn input(&self, path: &str) -> BuildInput {
        let mut input = BuildInput::new(self.path(), kustomize());
        input.path = path.to_owned();
        input
    }

    /// Every file and its contents, to prove a build changed nothing.
    fn snapshot(&self) -> BTreeMap<String, String> {
        fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
            for entry in std::fs::read_dir(dir).expect("read_dir") {
                let path = entry.expect("entry").path();
                let rel = path.strip_prefix(root).expect("rel").display().to_string();
                if path.is_dir() {
                    walk(root, &path, out);
                } else {
                    out.insert(rel, std::fs::read_to_string(&path).expect("read"));
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(self.path(), self.path(), &mut out);
        out
    }
}

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.25
";

const SERVICE: &str = "\
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports:
  - port: 80
";

fn find<'a>(
    objects: &'a [kube::api::DynamicObject],
    kind: &str,
    name: &str,
) -> &'a kube::api::DynamicObject {
    objects
        .iter()
        .find(|o| {
            o.types.as_ref().is_some_and(|t| t.kind == kind)
                && o.metadata.name.as_deref() == Some(name)
        })
        .unwrap_or_else(|| panic!("{kind}/{name} not in the build"))
}

fn overlay_tree() -> Tree {
    Tree::new(&[
        (
            "base/kustomization.yaml",
            "resources:\n- deployment.yaml\n- service.yaml\n",
        ),
        ("base/deployment.yaml", DEPLOYMENT),
        ("base/service.yaml", SERVICE),
        (
            "components/monitoring/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n\
             resources:\n- monitor.yaml\n\
             patches:\n- target:\n    kind: Deployment\n  patch: |\n    - op: add\n      path: /metadata/annotations\n      value:\n        monitoring: enabled\n",
        ),
        (
            "components/monitoring/monitor.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: monitor\ndata:\n  scrape: \"true\"\n",
        ),
        (
            "components/extra/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n\
             resources:\n- extra.yaml\n",
        ),
        (
            "components/extra/extra.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n",
        ),
        (
            "overlays/prod/kustomization.yaml",
            "resources:\n- ../../base\ncomponents:\n- ../../components/monitoring\n\
             patches:\n- path: replicas.yaml\n",
        ),
        (
            "overlays/prod/replicas.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n",
        ),
    ])
}

#[tokio::test]
async fn overlay_with_patches_and_components() {
    let tree = overlay_tree();
    let before = tree.snapshot();
    let mut input = tree.input("./overlays/prod");
    input.components = vec!["../../components/extra".into()];
    input.patches = vec![Patch {
        patch: "- op: add\n  path: /spec/template/spec/containers/0/env\n  value:\n  - name: MODE\n    value: prod\n".into(),
        target: Some(Selector {
            kind: Some("Deployment".into()),
            name: Some("web".into()),
            ..Selector::default()
        }),
    }];
    let yaml = build(input).await.expect("build");
    let objects = manifests::parse(&yaml).expect("parse");
    let deploy = find(&objects, "Deployment", "web");
    // The overlay's own patch, the component's patch, and the spec's patch all applied.
    assert_eq!(deploy.data["spec"]["replicas"], serde_json::json!(3));
    assert_eq!(
        deploy.metadata.annotations.as_ref().expect("annotations")["monitoring"],
        "enabled"
    );
    assert_eq!(
        deploy.data["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"],
        serde_json::json!("prod")
    );
    find(&objects, "ConfigMap", "monitor");
    find(&objects, "ConfigMap", "extra");
    find(&objects, "Service", "web");
    assert_eq!(tree.snapshot(), before, "the shared artifact was modified");
}

#[tokio::test]
async fn missing_components_fail_unless_ignored() {
    let tree = overlay_tree();
    let mut input = tree.input("./overlays/prod");
    input.components = vec![
        "../../components/extra".into(),
        "../../components/gone".into(),
    ];
    let err = build(input.clone()).await.expect_err("a missing component");
    assert!(err.to_string().contains("components/gone"), "{err}");

    input.ignore_missing_components = true;
    let yaml = build(input)
        .await
        .expect("build without the missing component");
    let objects = manifests::parse(&yaml).expect("parse");
    find(&objects, "ConfigMap", "extra");
    find(&objects, "ConfigMap", "monitor");
}

#[tokio::test]
async fn build_metadata_adds_origin_annotations() {
    let tree = overlay_tree();
    let mut input = tree.input("./overlays/prod");
    input.build_metadata = vec!["originAnnotations".into()];
    let yaml = build(input).await.expect("build");
    let objects = manifests::parse(&yaml).expect("parse");
    let service = find(&objects, "Service", "web");
    let origin =
        &service.metadata.annotations.as_ref().expect("annotations")["config.kubernetes.io/origin"];
    assert!(origin.contains("service.yaml"), "{origin}");
}

#[tokio::test]
async fn generated_kustomization_when_none() {
    let tree = Tree::new(&[
        ("apps/deployment.yaml", DEPLOYMENT),
        ("apps/nested/service.yml", SERVICE),
        (
            "apps/values.yaml",
            "replicaCount: 3\nimage:\n  tag: latest\n",
        ),
        ("apps/.github/workflows/ci.yml", "on: push\njobs: {}\n"),
        ("apps/README.md", "# not yaml"),
        (
            "apps/sub/kustomization.yaml",
            "resources:\n- cm.yaml\nnamePrefix: sub-\n",
        ),
        (
            "apps/sub/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n",
        ),
        // Would be a duplicate if the generator descended into `sub`.
        (
            "apps/sub/also.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n",
        ),
    ]);
    let before = tree.snapshot();
    let yaml = build(tree.input("apps")).await.expect("build");
    let objects = manifests::parse(&yaml).expect("parse");
    let mut names: Vec<String> = objects
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o.types.as_ref().expect("types").kind,
                o.metadata.name.as_deref().expect("name")
            )
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec!["ConfigMap/sub-cm", "Deployment/web", "Service/web"]
    );
    assert_eq!(tree.snapshot(), before, "the shared artifact was modified");
}

#[tokio::test]
async fn empty_directory_builds_to_nothing() {
    let tree = Tree::new(&[("docs/README.md", "# empty")]);
    let yaml = build(tree.input("docs")).await.expect("build");
    assert!(manifests::parse(&yaml).expect("parse").is_empty());
}

#[tokio::test]
async fn spec_overrides_and_common_metadata_are_applied() {
    let tree = Tree::new(&[
        (
            "app/kustomization.yaml",
            "resources:\n- deployment.yaml\n- service.yaml\nimages:\n- name: nginx\n  newTag: \"1.26\"\n",
        ),
        ("app/deployment.yaml", DEPLOYMENT),
        ("app/service.yaml", SERVICE),
    ]);
    let before = tree.snapshot();
    let mut input = tree.input("app");
    input.target_namespace = Some("prod".into());
    input.name_prefix = Some("team-".into());
    input.name_suffix = Some("-v2".into());
    input.images = vec![Image {
        name: "nginx".into(),
        new_name: Some("registry.local/nginx".into()),
        new_tag: None,
        digest: None,
    }];
    let yaml = build(input).await.expect("build");
    let mut objects = manifests::parse(&yaml).expect("parse");
    manifests::set_common_metadata(
        &mut objects,
        &CommonMetadata {
            labels: Some(BTreeMap::from([("team".into(), "a".into())])),
            annotations: Some(BTreeMap::from([("owner".into(), "ops".into())])),
        },
    );
    manifests::stamp_owner(&mut objects, "apps", "flux-system");
    let deploy = find(&objects, "Deployment", "team-web-v2");
    assert_eq!(deploy.metadata.namespace.as_deref(), Some("prod"));
    // newName merged with the kustomization's own tag.
    assert_eq!(
        deploy.data["spec"]["template"]["spec"]["containers"][0]["image"],
        serde_json::json!("registry.local/nginx:1.26")
    );
    let labels = deploy.metadata.labels.as_ref().expect("labels");
    assert_eq!(labels["team"], "a");
    assert_eq!(labels["kustomize.mooring.dev/name"], "apps");
    assert_eq!(
        deploy.metadata.annotations.as_ref().expect("annotations")["owner"],
        "ops"
    );
    // commonMetadata stays out of the pod template (no rollout), unlike kustomize's labels.
    let template = &deploy.data["spec"]["template"]["metadata"];
    assert!(template["labels"].get("team").is_none(), "{template}");
    assert!(template.get("annotations").is_none(), "{template}");
    let service = find(&objects, "Service", "team-web-v2");
    assert_eq!(service.metadata.namespace.as_deref(), Some("prod"));
    assert_eq!(tree.snapshot(), before, "the shared artifact was modified");
}

#[tokio::test]
async fn substitution_after_build_keeps_types() {
    let tree = Tree::new(&[(
        "app/deploy.yaml",
        &DEPLOYMENT
            .replace("replicas: 1", "replicas: ${REPLICAS:=1}")
            .replace("nginx:1.25", "nginx:${TAG}"),
    )]);
    let yaml = build(tree.input("app")).await.expect("build");
    let vars = BTreeMap::from([
        ("REPLICAS".to_owned(), "4".to_owned()),
        ("TAG".to_owned(), "1.27".to_owned()),
    ]);
    let objects =
        manifests::parse(&substitute(&yaml, &vars, true).expect("substitute")).expect("parse");
    assert_eq!(objects[0].data["spec"]["replicas"], serde_json::json!(4));
    assert_eq!(
        objects[0].data["spec"]["template"]["spec"]["containers"][0]["image"],
        serde_json::json!("nginx:1.27")
    );
}

#[tokio::test]
async fn remote_base_is_rejected() {
    for entry in [
        "https://github.com/org/repo//deploy?ref=v1",
        "github.com/org/repo/deploy",
    ] {
        let kustomization = format!("resources:\n- {entry}\n");
        let tree = Tree::new(&[("app/kustomization.yaml", kustomization.as_str())]);
        let err = build(tree.input("app")).await.expect_err("remote base");
        assert_eq!(err.label(), "SandboxViolation", "{err}");
        let message = err.to_string();
        assert!(message.contains("app/kustomization.yaml"), "{message}");
        assert!(message.contains(entry), "{message}");
    }
}

#[tokio::test]
async fn exec_plugins_and_helm_are_refused() {
    let marker = tempfile::tempdir().expect("marker");
    let marker_file = marker.path().join("ran");
    let script = format!(
        "#!/bin/sh\ntouch {}\necho 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x'\n",
        marker_file.display()
    );
    let tree = Tree::new(&[
        ("app/kustomization.yaml", "generators:\n- gen.yaml\n"),
        (
            "app/gen.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: gen\n  annotations:\n    \
             config.kubernetes.io/function: |\n      exec:\n        path: ./gen.sh\n",
        ),
        ("app/gen.sh", script.as_str()),
        (
            "chart/kustomization.yaml",
            "helmCharts:\n- name: podinfo\n  repo: https://stefanprodan.github.io/podinfo\n",
        ),
    ]);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        tree.path().join("app/gen.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    let err = build(tree.input("app")).await.expect_err("exec plugin");
    assert_eq!(err.label(), "KustomizeBuild", "{err}");
    assert!(err.to_string().contains("plugins disabled"), "{err}");
    assert!(!marker_file.exists(), "the exec plugin ran");

    let err = build(tree.input("chart")).await.expect_err("helm");
    assert!(err.to_string().contains("enable-helm"), "{err}");
}

#[tokio::test]
async fn loads_outside_the_root_are_rejected() {
    let outside = Tree::new(&[
        ("kustomization.yaml", "resources:\n- secret.yaml\n"),
        ("secret.yaml", SERVICE),
    ]);
    let escape = format!("resources:\n- {}\n", outside.path().display());
    let tree = Tree::new(&[
        // Inside the artifact but outside the kustomization's directory: kustomize's own
        // load restrictor refuses it.
        (
            "app/kustomization.yaml",
            "resources:\n- ../shared/service.yaml\n",
        ),
        ("shared/service.yaml", SERVICE),
        // Out of the artifact: refused before kustomize runs.
        ("climb/kustomization.yaml", "resources:\n- ../../../etc\n"),
        ("absolute/kustomization.yaml", escape.as_str()),
    ]);
    let err = build(tree.input("app"))
        .await
        .expect_err("file outside root");
    assert_eq!(err.label(), "KustomizeBuild", "{err}");
    assert!(err.to_string().contains("is not in or below"), "{err}");
    // Paths in kustomize's message are relative to the artifact.
    assert!(!err.to_string().contains(".build-"), "{err}");

    for dir in ["climb", "absolute"] {
        let err = build(tree.input(dir)).await.expect_err(dir);
        assert_eq!(err.label(), "SandboxViolation", "{err}");
        assert!(err.to_string().contains("leaves the artifact"), "{err}");
    }

    let err = build(tree.input("../.."))
        .await
        .expect_err("spec.path escape");
    assert_eq!(err.label(), "InvalidPath", "{err}");
}

#[tokio::test]
async fn missing_path_is_an_error_naming_it() {
    let tree = Tree::new(&[("app/kustomization.yaml", "resources: []\n")]);
    let err = build(tree.input("./clusters/prod"))
        .await
        .expect_err("missing");
    assert_eq!(err.label(), "PathNotFound");
    assert!(err.to_string().contains("./clusters/prod"), "{err}");
    let err = build(tree.input("app/kustomization.yaml"))
        .await
        .expect_err("file");
    assert_eq!(err.label(), "PathNotDirectory");
}

#[tokio::test]
async fn malformed_yaml_errors_name_the_file() {
    let tree = Tree::new(&[
        ("listed/kustomization.yaml", "resources:\n- bad.yaml\n"),
        (
            "listed/bad.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n data: [\n",
        ),
        (
            "generated/bad.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n data: [\n",
        ),
        ("broken/kustomization.yaml", "resources: [\n"),
    ]);
    let err = build(tree.input("listed")).await.expect_err("listed");
    assert!(err.to_string().contains("bad.yaml"), "{err}");
    let err = build(tree.input("generated")).await.expect_err("generated");
    assert_eq!(err.label(), "InvalidYaml");
    assert!(err.to_string().contains("generated/bad.yaml"), "{err}");
    let err = build(tree.input("broken"))
        .await
        .expect_err("kustomization");
    assert_eq!(err.label(), "InvalidKustomization");
    assert!(
        err.to_string().contains("broken/kustomization.yaml"),
        "{err}"
    );
}

#[tokio::test]
async fn builds_run_in_parallel_and_clean_up() {
    let tree = overlay_tree();
    let work = tempfile::tempdir().expect("work");
    // A name prefix changes the kustomization: each build gets a working copy.
    let inputs = (0..4).map(|_| {
        let mut input = tree.input("overlays/prod");
        input.work_root = Some(work.path().to_path_buf());
        input.name_prefix = Some("p-".into());
        build(input)
    });
    let outputs = futures::future::join_all(inputs).await;
    let first = outputs[0].as_ref().expect("build").clone();
    assert!(first.contains("name: p-"), "{first}");
    for output in &outputs {
        assert_eq!(output.as_ref().expect("build"), &first);
    }
    let left: Vec<_> = std::fs::read_dir(work.path()).expect("read").collect();
    assert!(left.is_empty(), "working copies left behind: {left:?}");

    // Without overrides the builds read the artifact in place, with one shared empty home.
    let inputs = (0..4).map(|_| {
        let mut input = tree.input("overlays/prod");
        input.work_root = Some(work.path().to_path_buf());
        build(input)
    });
    let outputs = futures::future::join_all(inputs).await;
    let first = outputs[0].as_ref().expect("build").clone();
    for output in &outputs {
        assert_eq!(output.as_ref().expect("build"), &first);
    }
    let left: Vec<_> = std::fs::read_dir(work.path())
        .expect("read")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(left, [work.path().join(".in-place-home")]);
    let home: Vec<_> = std::fs::read_dir(&left[0]).expect("home").collect();
    assert!(home.is_empty(), "kustomize wrote {home:?}");
}

#[tokio::test]
async fn a_hung_kustomize_is_killed_at_the_timeout() {
    let fake = tempfile::tempdir().expect("fake");
    let bin = fake.path().join("kustomize");
    std::fs::write(&bin, "#!/bin/sh\nexec sleep 30\n").expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let tree = Tree::new(&[("app/kustomization.yaml", "resources: []\n")]);
    let mut input = tree.input("app");
    input.kustomize_bin = bin;
    input.timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = build(input).await.expect_err("timeout");
    assert!(matches!(err, BuildError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_kustomize_killed_by_a_signal_is_told_apart_from_its_errors() {
    let fake = tempfile::tempdir().expect("fake");
    let bin = fake.path().join("kustomize");
    // As the kernel's OOM killer would leave it: no error output, no exit code.
    std::fs::write(&bin, "#!/bin/sh\nkill -9 $$\n").expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let tree = Tree::new(&[("app/kustomization.yaml", "resources: []\n")]);
    let mut input = tree.input("app");
    input.kustomize_bin = bin;
    let err = build(input).await.expect_err("killed");
    assert!(matches!(err, BuildError::Killed { signal: 9 }), "{err}");
    assert_eq!(
        err.to_string(),
        "kustomize was killed by signal 9 before it finished"
    );
    assert!(!err.repeats(false), "a killed build may pass next time");
}

#[tokio::test]
async fn a_render_over_the_object_limit_is_refused_before_kustomize_runs() {
    let many: String = (0..30)
        .map(|i| format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n"))
        .collect();
    let tree = Tree::new(&[
        (
            "app/kustomization.yaml",
            "resources:\n- many.yaml\n- one.yaml\n",
        ),
        ("app/many.yaml", many.as_str()),
        (
            "app/one.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\n",
        ),
    ]);
    let mut input = tree.input("app");
    input.max_objects = 20;
    // kustomize is not even started: a missing binary would be a different error.
    input.kustomize_bin = PathBuf::from("/nonexistent/kustomize");
    let err = build(input.clone()).await.expect_err("too many objects");
    assert_eq!(err.label(), "TooManyObjects", "{err}");
    let message = err.to_string();
    assert!(message.contains("31 objects"), "{message}");
    assert!(message.contains("app/many.yaml alone has 30"), "{message}");
    assert!(message.contains("limit of 20"), "{message}");

    input.max_objects = 31;
    input.kustomize_bin = kustomize();
    let yaml = build(input).await.expect("at the limit");
    assert_eq!(manifests::parse(&yaml).expect("parse").len(), 31);
}

#[tokio::test]
async fn an_undecodable_kustomization_is_named() {
    let tree = Tree::new(&[
        ("app/kustomization.yaml", "resourcez:\n- cm.yaml\n"),
        (
            "app/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n",
        ),
    ]);
    let err = build(tree.input("app")).await.expect_err("unknown field");
    let message = err.to_string();
    assert!(
        message.contains("app/kustomization.yaml: invalid Kustomization"),
        "{message}"
    );
    assert!(message.contains("resourcez"), "{message}");
}

/// The files of a plain app (only `resources` and the like) named `app`.
fn plain_app(app: &str) -> Vec<(String, String)> {
    vec![
        (
            "kustomization.yaml".into(),
            "resources:\n- objects.yaml\n".into(),
        ),
        (
            "objects.yaml".into(),
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {app}\ndata:\n  k: v\n---\n\
                 apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {app}\n  labels: {{}}\n  \
                 annotations: {{}}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {app}\n  \
                 annotations:\n    zz: last\n    aa: first\nspec:\n  ports:\n  - port: 80\n"
            ),
        ),
    ]
}

fn tree_of(files: Vec<(String, String)>) -> Tree {
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    Tree::new(&files)
}

/// Builds each input on its own, then all at once through one batcher (the first runs at once,
/// the others come while it runs and run together), and requires the same output or the same
/// error for each. Returns the batcher.
async fn same_alone_and_together(inputs: &[BuildInput]) -> Arc<Batcher> {
    let mut alone = Vec::new();
    for input in inputs {
        alone.push(build(input.clone()).await.map_err(|e| e.to_string()));
    }
    let counter = prometheus::IntCounter::new("processes", "kustomize processes").expect("counter");
    let batcher = Arc::new(Batcher::new(Duration::from_millis(500), 64, counter));
    let together = futures::future::join_all(inputs.iter().map(|input| {
        let mut input = input.clone();
        input.batcher = Some(batcher.clone());
        input.together = true;
        build(input)
    }))
    .await;
    for (i, (alone, together)) in alone.iter().zip(together).enumerate() {
        assert_eq!(
            alone,
            &together.map_err(|e| e.to_string()),
            "build {i} ({}) differs when run with others",
            inputs[i].artifact_dir.display()
        );
    }
    batcher
}

#[tokio::test]
async fn plain_builds_that_come_together_run_in_one_process_each_with_its_own_output() {
    let mut trees: Vec<Tree> = (0..5)
        .map(|i| tree_of(plain_app(&format!("app{i}"))))
        .collect();
    // A build reaching a base beside it, with labels added, and a workload whose template
    // has annotations.
    trees.push(tree_of(vec![
        (
            "deploy/kustomization.yaml".into(),
            "resources:\n- ../base\n- app.yaml\ncommonLabels:\n  team: a\nimages:\n- name: web\n  newTag: \"2\"\n".into(),
        ),
        (
            "deploy/app.yaml".into(),
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    \
             matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: \
             web\n      annotations:\n        a: b\n    spec:\n      containers:\n      - name: web\n        \
             image: web:1\n"
                .into(),
        ),
        ("base/kustomization.yaml".into(), "resources:\n- cm.yaml\n".into()),
        (
            "base/cm.yaml".into(),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\n".into(),
        ),
    ]));
    // A monorepo: two self-contained apps of one artifact.
    let mut mono = plain_app("left")
        .into_iter()
        .map(|(p, t)| (format!("apps/left/{p}"), t))
        .collect::<Vec<_>>();
    mono.extend(
        plain_app("right")
            .into_iter()
            .map(|(p, t)| (format!("apps/right/{p}"), t)),
    );
    let mono = tree_of(mono);
    let mut inputs: Vec<BuildInput> = trees.iter().map(|t| t.input("")).collect();
    inputs[5].path = "deploy".into();
    inputs.push(mono.input("apps/left"));
    inputs.push(mono.input("apps/right"));
    // `spec.targetNamespace` (kustomize's `namespace`, in a working copy).
    for (input, namespace) in inputs.iter_mut().zip(["one", "two", "two"]) {
        input.target_namespace = Some(namespace.into());
    }
    let batcher = same_alone_and_together(&inputs).await;
    assert_eq!(batcher.builds(), inputs.len() as u64);
    assert!(
        batcher.processes() < batcher.builds(),
        "{} builds took {} kustomize processes: none ran together",
        batcher.builds(),
        batcher.processes()
    );
}

#[tokio::test]
async fn builds_that_cannot_run_together_get_their_own_results() {
    let good: Vec<Tree> = (0..3)
        .map(|i| tree_of(plain_app(&format!("good{i}"))))
        .collect();
    // The same objects as good0: two builds of one run may not hold one object.
    let twin = tree_of(plain_app("good0"));
    // kustomize fails on this one.
    let broken = tree_of(vec![
        (
            "kustomization.yaml".into(),
            "resources:\n- bad.yaml\n".into(),
        ),
        (
            "bad.yaml".into(),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels:\n    a: b\n".into(),
        ),
    ]);
    // Not plain: a prefix renames its objects, so it always runs on its own.
    let renamed = tree_of(vec![
        (
            "kustomization.yaml".into(),
            "namePrefix: p-\nresources:\n- objects.yaml\n".into(),
        ),
        (
            "objects.yaml".into(),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: good1\n".into(),
        ),
    ]);
    same_alone_and_together(&[good[2].input(""), good[0].input(""), twin.input("")]).await;
    // A webhook configuration naming a Service of namespace `default` that its own build does
    // not hold: on its own, kustomize leaves the reference as written; in one run with a build
    // whose Service of that name was moved to another namespace, kustomize writes that
    // namespace into the reference (kustomize v5.8.2).
    let service = tree_of(vec![
        (
            "kustomization.yaml".into(),
            "resources:\n- svc.yaml\n".into(),
        ),
        (
            "svc.yaml".into(),
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: webhook\nspec:\n  ports:\n  - \
             port: 443\n"
                .into(),
        ),
    ]);
    let webhook =
        tree_of(vec![
        ("kustomization.yaml".into(), "resources:\n- vw.yaml\n".into()),
        (
            "vw.yaml".into(),
            "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\n\
             metadata:\n  name: checks\nwebhooks:\n- name: check.example.com\n  clientConfig:\n    \
             service:\n      name: webhook\n      namespace: default\n"
                .into(),
        ),
    ]);
    let mut inputs = [good[2].input(""), service.input(""), webhook.input("")];
    inputs[1].target_namespace = Some("tools".into());
    inputs[2].target_namespace = Some("apps".into());
    same_alone_and_together(&inputs).await;
    let inputs = [
        good[2].input(""),
        good[1].input(""),
        broken.input(""),
        renamed.input(""),
    ];
    let batcher = same_alone_and_together(&inputs).await;
    assert_eq!(
        batcher.builds(),
        inputs.len() as u64 - 1,
        "the build that is not plain went through the batcher"
    );
    // The build that failed is remembered (once, however often it fails).
    assert_eq!(batcher.failing(), 1);
    let mut input = broken.input("");
    input.batcher = Some(batcher.clone());
    input.together = true;
    let builds = batcher.builds();
    assert!(build(input).await.is_err());
    assert_eq!(batcher.builds(), builds + 1);
    assert_eq!(batcher.failing(), 1);
}

#[tokio::test]
async fn a_build_that_comes_alone_does_not_wait_for_others() {
    let tree = tree_of(plain_app("lone"));
    let counter = prometheus::IntCounter::new("processes", "kustomize processes").expect("counter");
    // A run waits for others only while builds keep coming: an hour here would end the test.
    let batcher = Arc::new(Batcher::new(Duration::from_secs(3600), 64, counter));
    let mut input = tree.input("");
    input.batcher = Some(batcher.clone());
    input.together = true;
    let expected = build(tree.input("")).await.expect("alone");
    let built = tokio::time::timeout(Duration::from_secs(60), build(input))
        .await
        .expect("the lone build waited for others")
        .expect("build");
    assert_eq!(built, expected);
    assert_eq!((batcher.builds(), batcher.processes()), (1, 1));
}
