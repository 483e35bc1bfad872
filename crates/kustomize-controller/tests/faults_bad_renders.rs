//! Bad renders, one table row each: from the good revision applied, a commit or a spec change
//! that kustomize, substitution, the render checks or the API server must refuse. Each ends
//! with the expected condition on the Kustomization, naming the file, object or field, and
//! nothing of it applied: the good objects unchanged, no object of the bad render created,
//! `status.lastAppliedRevision` still the good one, the good artifact still served.
//!
//! One row of the fault report: "bad inputs: renders". A render of 100 000 objects runs in the
//! long form (`MOORING_FAULTS_LONG=1`); the short form renders 20 000.

mod badinput;
mod flow;

use std::time::Instant;

use badinput::*;
use mooring_testkit::faults;
use serde_json::{Value, json};

/// What a case does: files committed on top of the good revision, and the Kustomization spec.
struct Case {
    name: &'static str,
    /// Files written on top of the good revision; empty: no commit.
    commit: Vec<(String, Vec<u8>)>,
    /// Fields set on the good Kustomization spec (a null removes one).
    spec: Value,
    /// What must follow.
    expect: Expect,
    /// For an input that is applied: the objects it adds (`Kind/name` or `Kind/ns/name`).
    creates: Vec<String>,
}

/// A text file.
fn file(path: &str, text: &str) -> (String, Vec<u8>) {
    (path.to_string(), text.as_bytes().to_vec())
}

/// The good kustomization with `extra` resources, a changed good object (settings value "2")
/// and a new object (`bait`), plus `files`: if any of it were applied, the check would see it.
fn bad(extra: &[&str], files: Vec<(String, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    let mut resources = vec!["settings.yaml", "token.yaml", "web.yaml", "bait.yaml"];
    resources.extend_from_slice(extra);
    let list: String = resources.iter().map(|r| format!("- {r}\n")).collect();
    let mut out = vec![
        file("deploy/kustomization.yaml", &format!("resources:\n{list}")),
        file("deploy/settings.yaml", &config_map("settings", "2")),
        file("deploy/bait.yaml", &config_map("bait", "1")),
    ];
    out.extend(files);
    out
}

fn config_map(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: \"{value}\"\n"
    )
}

/// `n` ConfigMaps in one file.
fn many_config_maps(n: usize) -> String {
    let mut out = String::with_capacity(n * 80);
    for i in 0..n {
        out.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: many-{i}\ndata:\n  v: \"{i}\"\n"
        ));
    }
    out
}

fn cases(ns: &str) -> Vec<Case> {
    use On::Kustomization as Ks;
    let many = faults::scaled(20_000, 100_000);
    let cluster_role = flow::unique("bad-renders");
    let long_name = "n".repeat(300);
    let huge_patch = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  big: \"{}\"\n",
        "x".repeat(4 << 20)
    );
    let large_bad_patch = format!(
        "- op: add\n  path: /data/big\n  value: \"{}\n",
        "y".repeat(1 << 20)
    );
    vec![
        Case {
            name: "malformed YAML in a listed file",
            commit: bad(&["broken.yaml"], vec![file("deploy/broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\n data: [\n")]),
            spec: json!({}),
            expect: not_ready(Ks, "BuildFailed", "broken.yaml"),
            creates: vec![],
        },
        Case {
            name: "malformed YAML in a directory without kustomization.yaml",
            commit: vec![
                file("generated/ok.yaml", &config_map("bait", "1")),
                file("generated/broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\n data: [\n"),
            ],
            spec: json!({"path": "./generated"}),
            expect: not_ready(Ks, "BuildFailed", "generated/broken.yaml"),
            creates: vec![],
        },
        Case {
            name: "malformed kustomization.yaml",
            commit: vec![file("deploy/kustomization.yaml", "resources: [\n- settings.yaml\n")],
            spec: json!({}),
            expect: not_ready(Ks, "BuildFailed", "deploy/kustomization.yaml"),
            creates: vec![],
        },
        Case {
            name: "unknown field in kustomization.yaml",
            commit: vec![file("deploy/kustomization.yaml", "resourcez:\n- settings.yaml\n")],
            spec: json!({}),
            expect: not_ready(Ks, "BuildFailed", "deploy/kustomization.yaml: invalid Kustomization: json: unknown field \"resourcez\""),
            creates: vec![],
        },
        Case {
            name: "a listed file is missing",
            commit: bad(&["missing.yaml"], vec![]),
            spec: json!({}),
            expect: not_ready(Ks, "BuildFailed", "missing.yaml"),
            creates: vec![],
        },
        Case {
            name: "an object without metadata.name",
            commit: bad(&["noname.yaml"], vec![file("deploy/noname.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels:\n    a: b\ndata:\n  v: \"1\"\n")]),
            spec: json!({}),
            expect: not_ready(Ks, "BuildFailed", "noname.yaml"),
            creates: vec![],
        },
        Case {
            name: "an object without kind",
            commit: bad(&["nokind.yaml"], vec![file("deploy/nokind.yaml", "apiVersion: v1\nmetadata:\n  name: nokind\n")]),
            spec: json!({}),
            expect: not_ready(Ks, "BuildFailed", "nokind.yaml"),
            creates: vec![],
        },
        Case {
            name: "a schema violation (replicas is a string)",
            commit: bad(&["broken.yaml"], vec![file("deploy/broken.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: broken\nspec:\n  replicas: three\n  selector:\n    matchLabels:\n      app: broken\n  template:\n    metadata:\n      labels:\n        app: broken\n    spec:\n      containers:\n      - name: main\n        image: example.com/app:1\n")]),
            spec: json!({}),
            expect: not_ready(Ks, "ReconciliationFailed", format!("Deployment/{ns}/broken")),
            creates: vec![],
        },
        Case {
            name: "a schema violation (ConfigMap data is not a string)",
            commit: bad(&["broken.yaml"], vec![file("deploy/broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\ndata:\n  nested:\n    a: 1\n")]),
            spec: json!({}),
            expect: not_ready(Ks, "ReconciliationFailed", format!("ConfigMap/{ns}/broken")),
            creates: vec![],
        },
        Case {
            name: "an invalid label value",
            commit: bad(&["broken.yaml"], vec![file("deploy/broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\n  labels:\n    tier: \"not valid!\"\n")]),
            spec: json!({}),
            expect: not_ready(Ks, "ReconciliationFailed", format!("ConfigMap/{ns}/broken")),
            creates: vec![],
        },
        Case {
            name: "an invalid object name",
            commit: bad(&["broken.yaml"], vec![file("deploy/broken.yaml", &config_map("Not_Valid", "1"))]),
            spec: json!({}),
            expect: not_ready(Ks, "BuildFailed", format!("ConfigMap/{ns}/Not_Valid: the name cannot be recorded")),
            creates: vec![],
        },
        Case {
            name: "an object name of 300 characters",
            commit: bad(&["long.yaml"], vec![file("deploy/long.yaml", &config_map(&long_name, "1"))]),
            spec: json!({}),
            expect: not_ready(Ks, "ReconciliationFailed", "nnnnnnnnnnnnnnnnnnnn"),
            creates: vec![],
        },
        Case {
            name: "duplicate objects in one render",
            commit: bad(&["dup1.yaml", "dup2.yaml"], vec![file("deploy/dup1.yaml", &config_map("dup", "1")), file("deploy/dup2.yaml", &config_map("dup", "2"))]),
            spec: json!({}),
            expect: not_ready(Ks, "BuildFailed", "dup"),
            creates: vec![],
        },
        Case {
            name: "duplicate objects made by substitution",
            commit: bad(&["dup.yaml"], vec![file("deploy/dup.yaml", &config_map("${SAME}", "other"))]),
            spec: json!({"postBuild": {"substitute": {"SAME": "settings"}}}),
            // The name came from a variable, and variable values never show in render errors
            // after substitution (one may come from a Secret): the object is named with it
            // masked, and the documents by their place.
            expect: not_ready(Ks, "BuildFailed", format!("ConfigMap/{ns}/*** twice (documents")),
            creates: vec![],
        },
        Case {
            name: "a kustomization that includes itself",
            commit: vec![file("deploy/kustomization.yaml", "resources:\n- settings.yaml\n- ../deploy\n")],
            spec: json!({}),
            expect: not_ready(Ks, "BuildFailed", "'../deploy'"),
            creates: vec![],
        },
        Case {
            name: "two kustomizations that include each other",
            commit: vec![
                file("deploy/kustomization.yaml", "resources:\n- settings.yaml\n- ../other\n"),
                file("other/kustomization.yaml", "resources:\n- ../deploy\n"),
            ],
            spec: json!({}),
            expect: not_ready(Ks, "BuildFailed", "'../other'"),
            creates: vec![],
        },
        Case {
            name: "spec.patches of 4 MiB",
            commit: vec![],
            spec: json!({"patches": [{"patch": huge_patch}]}),
            expect: refused("too large"),
            creates: vec![],
        },
        Case {
            name: "a malformed spec.patches entry of 1 MiB",
            commit: vec![],
            spec: json!({"patches": [{"patch": large_bad_patch, "target": {"kind": "ConfigMap"}}]}),
            expect: not_ready(Ks, "BuildFailed", "patch"),
            creates: vec![],
        },
        Case {
            name: "a render of many objects",
            commit: bad(&["many.yaml"], vec![file("deploy/many.yaml", &many_config_maps(many))]),
            spec: json!({}),
            expect: not_ready(Ks, "BuildFailed", "deploy/many.yaml"),
            creates: vec![],
        },
        Case {
            name: "invalid UTF-8 in a manifest",
            commit: bad(&["latin1.yaml"], vec![("deploy/latin1.yaml".to_string(), b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: latin1\ndata:\n  v: \"caf\xe9\"\n".to_vec())]),
            spec: json!({}),
            expect: not_ready(Ks, "BuildFailed", "latin1.yaml"),
            creates: vec![],
        },
        Case {
            name: "a remote base",
            commit: bad(&["https://github.com/org/repo//deploy?ref=v1"], vec![]),
            spec: json!({}),
            expect: not_ready(Ks, "BuildFailed", "deploy/kustomization.yaml"),
            creates: vec![],
        },
        Case {
            name: "a remote file",
            commit: bad(&["https://example.com/app.yaml"], vec![]),
            spec: json!({}),
            expect: not_ready(Ks, "BuildFailed", "https://example.com/app.yaml"),
            creates: vec![],
        },
        Case {
            name: "an exec plugin generator",
            commit: vec![
                file("deploy/kustomization.yaml", "resources:\n- settings.yaml\ngenerators:\n- gen.yaml\n"),
                file("deploy/gen.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: gen\n  annotations:\n    config.kubernetes.io/function: |\n      exec:\n        path: ./gen.sh\n"),
                file("deploy/gen.sh", "#!/bin/sh\necho 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bait'\n"),
            ],
            spec: json!({}),
            expect: not_ready(Ks, "BuildFailed", "plugins disabled"),
            creates: vec![],
        },
        Case {
            name: "a Helm chart generator",
            commit: vec![file("deploy/kustomization.yaml", "resources:\n- settings.yaml\nhelmCharts:\n- name: podinfo\n  repo: https://stefanprodan.github.io/podinfo\n")],
            spec: json!({}),
            expect: not_ready(Ks, "BuildFailed", "helm"),
            creates: vec![],
        },
        Case {
            name: "spec.path outside the artifact",
            commit: vec![],
            spec: json!({"path": "../.."}),
            expect: not_ready(Ks, "BuildFailed", "\"../..\""),
            creates: vec![],
        },
        Case {
            name: "spec.path missing",
            commit: vec![],
            spec: json!({"path": "./clusters/nope"}),
            expect: not_ready(Ks, "BuildFailed", "./clusters/nope"),
            creates: vec![],
        },
        Case {
            name: "spec.path is a file",
            commit: vec![],
            spec: json!({"path": "./deploy/settings.yaml"}),
            expect: not_ready(Ks, "BuildFailed", "./deploy/settings.yaml"),
            creates: vec![],
        },
        Case {
            name: "an empty render",
            commit: vec![file("deploy/kustomization.yaml", "resources: []\n")],
            spec: json!({}),
            expect: not_ready(Ks, "BuildFailed", "is empty"),
            creates: vec![],
        },
        Case {
            name: "an unknown kind (CRD not installed)",
            commit: bad(&["widget.yaml"], vec![file("deploy/widget.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: 1\n")]),
            spec: json!({}),
            expect: not_ready(Ks, "ReconciliationFailed", "Widget"),
            creates: vec![],
        },
        Case {
            name: "a namespace that does not exist",
            commit: bad(&["elsewhere.yaml"], vec![file("deploy/elsewhere.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: elsewhere\n  namespace: no-such-namespace\n")]),
            spec: json!({"targetNamespace": null}),
            expect: not_ready(Ks, "ReconciliationFailed", "no-such-namespace"),
            creates: vec![],
        },
        Case {
            name: "an immutable field changed (Deployment selector)",
            commit: bad(&[], vec![file("deploy/web.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: other\n  template:\n    metadata:\n      labels:\n        app: other\n    spec:\n      containers:\n      - name: main\n        image: example.com/app:1\n")]),
            spec: json!({}),
            expect: not_ready(Ks, "ReconciliationFailed", format!("Deployment/{ns}/web")),
            creates: vec![],
        },
        Case {
            name: "a Secret with invalid base64",
            commit: bad(&["secret.yaml"], vec![file("deploy/secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: broken\ndata:\n  key: \"!!not base64!!\"\n")]),
            spec: json!({}),
            expect: not_ready(Ks, "ReconciliationFailed", format!("Secret/{ns}/broken")),
            creates: vec![],
        },
        Case {
            name: "bad substitution syntax",
            commit: bad(&["subst.yaml"], vec![file("deploy/subst.yaml", &config_map("subst", "${VALUE:0:x}"))]),
            spec: json!({"postBuild": {"substitute": {"VALUE": "abc"}}}),
            expect: not_ready(Ks, "BuildFailed", "subst failed: bad substitution"),
            creates: vec![],
        },
        Case {
            name: "a variable without value (strict substitution)",
            commit: bad(&["subst.yaml"], vec![file("deploy/subst.yaml", &config_map("subst", "${UNSET_VARIABLE}"))]),
            spec: json!({"postBuild": {"substitute": {"OTHER": "1"}}}),
            expect: not_ready(Ks, "BuildFailed", "UNSET_VARIABLE"),
            creates: vec![],
        },
        Case {
            name: "substituteFrom a ConfigMap that does not exist",
            commit: vec![],
            spec: json!({"postBuild": {"substituteFrom": [{"kind": "ConfigMap", "name": "absent-vars"}]}}),
            expect: not_ready(Ks, "BuildFailed", "absent-vars"),
            creates: vec![],
        },
        Case {
            name: "substituteFrom a Secret that does not exist",
            commit: vec![],
            spec: json!({"postBuild": {"substituteFrom": [{"kind": "Secret", "name": "absent-secret"}]}}),
            expect: not_ready(Ks, "BuildFailed", "absent-secret"),
            creates: vec![],
        },
        Case {
            name: "a cluster-scoped object with a namespace (applied without it, as kubectl does)",
            commit: vec![
                file("deploy/kustomization.yaml", "resources:\n- settings.yaml\n- token.yaml\n- web.yaml\n- role.yaml\n"),
                file("deploy/role.yaml", &format!("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: {cluster_role}\n  namespace: {ns}\nrules: []\n")),
            ],
            spec: json!({}),
            expect: Expect::Applied { prefix: "main@sha1:" },
            creates: vec![format!("ClusterRole/{cluster_role}")],
        },
    ]
}

#[tokio::test]
async fn bad_renders_are_refused_and_nothing_is_applied() {
    let fixture = Fixture::new("bad-renders", |_| {}).await;
    let ns = fixture.env.namespace.clone();
    let mut outcome = Outcome::default();
    let started = Instant::now();
    for case in cases(&ns) {
        let case_started = Instant::now();
        let problems = run(&fixture, &case).await;
        eprintln!("  ({:.1}s)", case_started.elapsed().as_secs_f64());
        outcome.record(case.name, problems);
    }
    eprintln!(
        "{} cases in {:.0}s",
        outcome.runs,
        started.elapsed().as_secs_f64()
    );
    fixture.stop().await;
    outcome.finish("bad inputs: renders");
}

/// Runs one case from the good state; returns every expectation it missed.
async fn run(fixture: &Fixture, case: &Case) -> Vec<String> {
    let good = match fixture.restore().await {
        Ok(good) => good,
        Err(e) => return vec![format!("the good state was not restored: {e}")],
    };
    let commit = if case.commit.is_empty() {
        None
    } else {
        let refs: Vec<(&[u8], &[u8])> = case
            .commit
            .iter()
            .map(|(p, c)| (p.as_bytes(), c.as_slice()))
            .collect();
        match fixture.repo.commit_bytes(&refs, case.name) {
            Ok(commit) => Some(commit),
            Err(e) => return vec![format!("commit: {e}")],
        }
    };
    // Nulls are kept: `apply_ks` removes those keys from the defaults it adds.
    let mut spec = good_ks_spec();
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), case.spec.as_object()) {
        spec.extend(extra.clone());
    }
    let applied = fixture.apply_ks(&spec).await;
    let mut problems = Vec::new();
    match (&case.expect, applied) {
        (Expect::Refused { fragment }, Err(e)) => {
            if !e.contains(fragment) {
                problems.push(format!(
                    "refused, but the message does not name {fragment:?}: {e}"
                ));
            }
        }
        (Expect::Refused { .. }, Ok(())) => problems.push("the API server accepted it".into()),
        (Expect::Applied { prefix }, Ok(())) => {
            fixture.poke().await;
            let revision = format!("{prefix}{}", commit.as_deref().unwrap_or(&good.commit));
            let waited = fixture
                .wait_ks("applied at the new revision", |k| {
                    condition_is(ks_conditions(k), "Ready", "True")
                        && k.status
                            .as_ref()
                            .and_then(|s| s.last_applied_revision.as_deref())
                            == Some(revision.as_str())
                })
                .await;
            if let Err(e) = waited {
                problems.push(e);
            }
            let now = fixture.managed().await;
            for key in &case.creates {
                if !now.contains_key(key) {
                    problems.push(format!("{key} was not created: {:?}", now.keys()));
                }
            }
            let mut expected = good.objects.clone();
            expected.retain(|k, _| now.contains_key(k));
            if expected.len() != good.objects.len() {
                problems.push(format!("good objects are gone: {:?}", now.keys()));
            }
            return problems;
        }
        (_, Err(e)) => problems.push(format!("the API server refused it: {e}")),
        (expect, Ok(())) => {
            fixture.poke().await;
            let attempted = |k: &mooring_api::Kustomization| {
                current_generation_ks(k)
                    && commit.as_ref().is_none_or(|c| {
                        k.status
                            .as_ref()
                            .and_then(|s| s.last_attempted_revision.as_deref())
                            .is_some_and(|r| r.ends_with(c.as_str()))
                    })
            };
            if let Err(e) = fixture.expect_condition(expect, |_| true, attempted).await {
                problems.push(e);
            }
        }
    }
    problems.extend(fixture.intact(&good).await);
    problems
}
