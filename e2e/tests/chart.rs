//! The chart on its own: `helm lint` is clean for the default values and for every optional
//! part, and values.schema.json refuses values the templates cannot use.

use mooring_e2e::cli::run;
use mooring_e2e::cluster::chart_dir;
use mooring_testkit::tools::tool;

/// `helm <args>` with its cache and config in a temp dir; (success, everything printed).
fn helm(args: &[&str]) -> (bool, String) {
    let home = tempfile::tempdir().expect("temp dir");
    let envs = [
        ("HELM_CACHE_HOME", home.path()),
        ("HELM_CONFIG_HOME", home.path()),
        ("HELM_DATA_HOME", home.path()),
    ];
    let helm = tool("helm").expect("helm: run `make tools`");
    match run(&helm, args, &envs) {
        Ok(out) => (true, out),
        Err(e) => (false, e.to_string()),
    }
}

fn lint(values: &[&str]) -> (bool, String) {
    let chart = chart_dir();
    let mut args = vec!["lint", "--strict", chart.as_str()];
    args.extend_from_slice(values);
    helm(&args)
}

#[test]
fn helm_lint_is_clean_for_defaults_and_every_option() {
    let options: [&[&str]; 3] = [
        &[],
        &[
            "--set",
            "sourceController.storage.persistence.enabled=true",
            "--set",
            "serviceMonitor.enabled=true",
            "--set",
            "networkPolicy.enabled=false",
            "--set",
            "sourceController.watchLabelSelector=shard=a",
            "--set",
            "kustomizeController.watchLabelSelector=shard=a",
        ],
        &[
            "--set",
            "kustomizeController.rbac.clusterAdmin=false",
            "--set-json",
            r#"kustomizeController.rbac.rules=[{"apiGroups":[""],"resources":["configmaps"],"verbs":["*"]}]"#,
            "--set",
            "deployControllers=false",
        ],
    ];
    for values in options {
        let (ok, out) = lint(values);
        assert!(ok, "helm lint {values:?}:\n{out}");
        assert!(
            !out.contains("[WARNING]") && !out.contains("[ERROR]"),
            "helm lint {values:?}:\n{out}"
        );
    }
}

#[test]
fn the_values_schema_refuses_what_the_templates_cannot_use() {
    let refused: [&[&str]; 4] = [
        &["--set", "log.format=xml"],
        &["--set", "sourceController.replicas=-1"],
        &["--set", "sourceController.concurrency=0"],
        &["--set", "kustomizeController.unknownSetting=true"],
    ];
    for values in refused {
        let (ok, out) = lint(values);
        assert!(!ok, "helm lint accepted {values:?}:\n{out}");
        assert!(
            out.contains("schema"),
            "refused for another reason {values:?}:\n{out}"
        );
    }
}
