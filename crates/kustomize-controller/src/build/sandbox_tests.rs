use super::*;

fn write(root: &Path, path: &str, text: &str) {
    let path = root.join(path);
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, text).expect("write");
}

#[test]
fn remote_detection() {
    for remote in [
        "https://github.com/org/repo//deploy?ref=v1",
        "http://example.com/manifest.yaml",
        "ssh://git@github.com/org/repo.git",
        "git@github.com:org/repo.git",
        "git::https://example.com/repo",
        "gh:org/repo",
        "github.com/org/repo/path?ref=main",
        "github.com/org/repo",
        "gitlab.example.com/group/project//base",
        "example.com:8080/org/repo",
        "repo//sub",
        "base?ref=v2",
    ] {
        assert!(is_remote(remote), "{remote}");
    }
    for local in [
        "deploy.yaml",
        "./base",
        "../base",
        "../../common/app",
        "/abs/path",
        "base",
        "apps/web",
        "v1.2",
        "config.yaml/x",
        ".hidden/dir",
    ] {
        assert!(!is_remote(local), "{local}");
    }
}

#[test]
fn remote_bases_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path();
    write(root, "app/kustomization.yaml", "resources:\n- ../base\n");
    write(
        root,
        "base/kustomization.yaml",
        "resources:\n- cm.yaml\n- github.com/org/repo//deploy?ref=v1\n",
    );
    write(root, "base/cm.yaml", "kind: ConfigMap\n");
    let err = check(root, &root.join("app"), false).expect_err("remote");
    assert_eq!(err.label(), "SandboxViolation");
    let message = err.to_string();
    assert!(message.contains("base/kustomization.yaml"), "{message}");
    assert!(
        message.contains("github.com/org/repo//deploy?ref=v1"),
        "{message}"
    );
    assert!(message.contains("resources"), "{message}");
    check(root, &root.join("app"), true).expect("allowed");
}

#[test]
fn remote_files_anywhere_are_refused() {
    for kustomization in [
        "patches:\n- path: https://example.com/p.yaml\n",
        "components:\n- https://example.com/c\n",
        "configMapGenerator:\n- name: c\n  files:\n  - key=https://example.com/f\n",
        "openapi:\n  path: https://example.com/schema.json\n",
        "crds:\n- http://example.com/crd.yaml\n",
    ] {
        let dir = tempfile::tempdir().expect("tmp");
        write(dir.path(), "kustomization.yaml", kustomization);
        let err = check(dir.path(), dir.path(), false).expect_err(kustomization);
        assert!(err.to_string().contains("example.com"), "{err}");
    }
}

#[test]
fn paths_leaving_the_artifact_are_refused() {
    let outside = tempfile::tempdir().expect("outside");
    write(outside.path(), "kustomization.yaml", "resources: []\n");
    for (kustomization, needle) in [
        ("resources:\n- ../../escape\n", "../../escape"),
        ("resources:\n- /etc/kubernetes\n", "/etc/kubernetes"),
        ("components:\n- ../..\n", "../.."),
        (
            "configMapGenerator:\n- name: c\n  envs:\n  - ../../.env\n",
            "../../.env",
        ),
    ] {
        let dir = tempfile::tempdir().expect("tmp");
        write(dir.path(), "app/kustomization.yaml", kustomization);
        let err = check(dir.path(), &dir.path().join("app"), false).expect_err(kustomization);
        let message = err.to_string();
        assert!(message.contains(needle), "{message}");
        assert!(message.contains("leaves the artifact"), "{message}");
    }
    // Through a symbolic link.
    let dir = tempfile::tempdir().expect("tmp");
    write(
        dir.path(),
        "app/kustomization.yaml",
        "resources:\n- ../evil\n",
    );
    std::os::unix::fs::symlink(outside.path(), dir.path().join("evil")).expect("ln");
    let err = check(dir.path(), &dir.path().join("app"), false).expect_err("symlink");
    assert!(err.to_string().contains("symbolic link"), "{err}");
}

#[test]
fn inline_entries_and_missing_files_are_left_to_kustomize() {
    let dir = tempfile::tempdir().expect("tmp");
    write(
        dir.path(),
        "kustomization.yaml",
        "resources:\n- missing.yaml\npatchesStrategicMerge:\n- |\n  apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: https://not-a-file\n",
    );
    check(dir.path(), dir.path(), false).expect("ok");
}

#[test]
fn cycles_terminate() {
    let dir = tempfile::tempdir().expect("tmp");
    write(dir.path(), "a/kustomization.yaml", "resources:\n- ../b\n");
    write(dir.path(), "b/kustomization.yaml", "resources:\n- ../a\n");
    check(dir.path(), &dir.path().join("a"), false).expect("no loop");
}

#[test]
fn a_build_is_plain_when_nothing_it_reaches_renames_or_moves_objects() {
    let plain = |files: &[(&str, &str)]| {
        let dir = tempfile::tempdir().expect("tmp");
        for (path, text) in files {
            write(dir.path(), path, text);
        }
        check(dir.path(), &dir.path().join("app"), false)
            .expect("check")
            .plain
    };
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n";
    assert!(plain(&[
        (
            "app/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- \
             cm.yaml\n- ../base\ncommonLabels:\n  a: b\nimages:\n- name: x\n  newTag: y\n\
             namespace: apps\n"
        ),
        ("app/cm.yaml", cm),
        (
            "base/kustomization.yaml",
            "resources:\n- cm.yaml\nlabels:\n- pairs:\n    c: d\n"
        ),
        ("base/cm.yaml", cm),
    ]));
    for field in [
        "namePrefix: x-",
        "nameSuffix: -x",
        "configMapGenerator:\n- name: x\n  literals: [a=b]",
        "patches:\n- patch: '[]'\n  target: {kind: ConfigMap}",
        "replacements: []",
        "vars: []",
        "sortOptions: {order: fifo}",
        "buildMetadata: [originAnnotations]",
    ] {
        // In the kustomization built, or in one it reaches.
        assert!(
            !plain(&[
                (
                    "app/kustomization.yaml",
                    &format!("resources:\n- cm.yaml\n{field}\n")
                ),
                ("app/cm.yaml", cm),
            ]),
            "{field}"
        );
        assert!(
            !plain(&[
                ("app/kustomization.yaml", "resources:\n- ../base\n"),
                (
                    "base/kustomization.yaml",
                    &format!("resources:\n- cm.yaml\n{field}\n")
                ),
                ("base/cm.yaml", cm),
            ]),
            "{field} in a base"
        );
    }
    // A resource that carries kustomize's own annotations, or one that is missing.
    assert!(!plain(&[
        ("app/kustomization.yaml", "resources:\n- cm.yaml\n"),
        (
            "app/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  annotations:\n    \
             config.kubernetes.io/origin: x\n"
        ),
    ]));
    assert!(!plain(&[(
        "app/kustomization.yaml",
        "resources:\n- gone.yaml\n"
    )]));
}
