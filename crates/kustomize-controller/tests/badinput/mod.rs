//! The harness of the bad-input suites (`faults_bad_renders.rs` here, `faults_bad_sources.rs`
//! in the source-controller, which includes this module and `flow`): one GitRepository `repo`
//! and one Kustomization `app` applied at a good revision, then one bad input per case, then the
//! check that nothing was applied and the last state is intact.
//!
//! Each case starts from the good state ([`Fixture::restore`]): the branch is rewound to the
//! good commit, both specs are applied as they were, and both objects are seen Ready again. The
//! good state is recorded then ([`Good`]) and compared after the bad input ([`Fixture::intact`]):
//! the managed objects (by their ownership labels, across the kinds a bad render could create)
//! are exactly the good ones with unchanged resourceVersions, `status.lastAppliedRevision` is
//! the good revision, and the good artifact is still downloadable with its digest.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use mooring_api::{Artifact, GitRepository, Kustomization};
use mooring_testkit::TestEnv;
use mooring_testkit::git::{Auth, GitServer, Repo};
use serde_json::{Value, json};

use crate::flow::{self, Controllers};

/// The GitRepository every case uses.
pub const SOURCE: &str = "repo";
/// The Kustomization every case uses.
pub const APP: &str = "app";
/// How long a case may take to show its condition.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(45);

/// Which object carries the expected condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    /// The GitRepository.
    Source,
    /// The Kustomization.
    Kustomization,
}

/// What a case must end with.
#[derive(Debug, Clone)]
pub enum Expect {
    /// The API server refuses the input (the error names the field); nothing changes.
    Refused {
        /// A fragment of the API server's message.
        fragment: &'static str,
    },
    /// Accepted: both objects Ready at the new revision (`prefix` + the commit the case
    /// names), the objects unchanged (the input renders the same objects).
    Applied {
        /// The revision's name part, e.g. `main@sha1:`.
        prefix: &'static str,
    },
    /// A condition of `on`, with a message containing `fragment`.
    Condition {
        /// The object.
        on: On,
        /// The condition type (`Ready`, `Stalled`, ...).
        type_: &'static str,
        /// `True`, `False` or `Unknown`.
        status: &'static str,
        /// The reason.
        reason: &'static str,
        /// A fragment of the message naming the object, file or field.
        fragment: String,
    },
}

/// Ready=False on `on` with `reason`, naming `fragment`.
pub fn not_ready(on: On, reason: &'static str, fragment: impl Into<String>) -> Expect {
    Expect::Condition {
        on,
        type_: "Ready",
        status: "False",
        reason,
        fragment: fragment.into(),
    }
}

/// Stalled=True on `on` with `reason`, naming `fragment` (the spec must change first).
pub fn stalled(on: On, reason: &'static str, fragment: impl Into<String>) -> Expect {
    Expect::Condition {
        on,
        type_: "Stalled",
        status: "True",
        reason,
        fragment: fragment.into(),
    }
}

/// Refused by the API server with a message containing `fragment`.
pub fn refused(fragment: &'static str) -> Expect {
    Expect::Refused { fragment }
}

/// The good files: a kustomization of a ConfigMap, a Secret and a Deployment.
pub fn good_files() -> Vec<(String, Vec<u8>)> {
    let files = [
        (
            "deploy/kustomization.yaml",
            "resources:\n- settings.yaml\n- token.yaml\n- web.yaml\n",
        ),
        (
            "deploy/settings.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  value: \"1\"\n",
        ),
        (
            "deploy/token.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: token\nstringData:\n  key: value\n",
        ),
        (
            "deploy/web.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: main\n        image: example.com/app:1\n",
        ),
    ];
    files
        .iter()
        .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
        .collect()
}

/// The good Kustomization spec (besides what [`flow::kustomization`] sets).
pub fn good_ks_spec() -> Value {
    json!({"path": "./deploy"})
}

/// The good GitRepository spec for `url`.
pub fn good_source_spec(url: &str) -> Value {
    json!({"url": url, "interval": "10m", "ref": {"branch": "main"}})
}

/// `base` with the keys of `extra` set (a null removes the key).
pub fn merged(base: &Value, extra: &Value) -> Value {
    let mut out = base.clone();
    if let (Some(out), Some(extra)) = (out.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            if v.is_null() {
                out.remove(k);
            } else {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

/// The state a case starts from, recorded once it is reached.
#[derive(Debug, Clone)]
pub struct Good {
    /// The good commit.
    pub commit: String,
    /// The Kustomization's `status.lastAppliedRevision`.
    pub revision: String,
    /// The GitRepository's artifact.
    pub artifact: Artifact,
    /// The managed objects: `Kind/namespace/name` -> resourceVersion.
    pub objects: BTreeMap<String, String>,
}

/// The controllers, the repository and the good state.
pub struct Fixture {
    pub env: TestEnv,
    pub repo: Repo,
    pub controllers: Controllers,
    /// The good commit.
    pub commit: String,
    /// Its parent (the repository's first commit).
    pub base: String,
    /// The GitRepository spec of the good state.
    pub source_spec: Value,
    tokens: AtomicU64,
}

/// The kinds whose labelled objects are compared: every kind a bad render of the suites could
/// create.
fn watched_kinds() -> Vec<(ApiResource, bool)> {
    let kind = |g: &str, v: &str, k: &str, plural: &str, namespaced: bool| {
        (
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(g, v, k), plural),
            namespaced,
        )
    };
    vec![
        kind("", "v1", "ConfigMap", "configmaps", true),
        kind("", "v1", "Secret", "secrets", true),
        kind("", "v1", "Service", "services", true),
        kind("", "v1", "ServiceAccount", "serviceaccounts", true),
        kind("apps", "v1", "Deployment", "deployments", true),
        kind("", "v1", "Namespace", "namespaces", false),
        kind(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            false,
        ),
    ]
}

impl Fixture {
    /// Creates the repository with the good files, starts both controllers (the
    /// source-controller's settings changed by `source_settings`), applies both objects and
    /// waits until the good revision is applied.
    pub async fn new(
        prefix: &str,
        source_settings: impl FnOnce(&mut mooring_source_controller::context::Settings),
    ) -> Fixture {
        let env = mooring_testkit::test_env(prefix)
            .await
            .expect("control plane and namespace");
        let repo = GitServer::shared()
            .expect("git server")
            .create_repo(&flow::unique(prefix), Auth::None)
            .expect("repo");
        let base = repo.head("main").expect("head");
        let files = good_files();
        let refs: Vec<(&[u8], &[u8])> = files
            .iter()
            .map(|(p, c)| (p.as_bytes(), c.as_slice()))
            .collect();
        let commit = repo
            .commit_bytes(&refs, "the good revision")
            .expect("commit");
        let controllers =
            flow::start_with(&env, Duration::from_secs(3600), None, source_settings).await;
        let source_spec = good_source_spec(repo.http_url());
        let fixture = Fixture {
            env,
            repo,
            controllers,
            commit,
            base,
            source_spec,
            tokens: AtomicU64::new(0),
        };
        fixture
            .apply_source(&fixture.source_spec)
            .await
            .expect("apply the GitRepository");
        fixture
            .apply_ks(&good_ks_spec())
            .await
            .expect("apply the Kustomization");
        fixture
    }

    /// Stops the controllers.
    pub async fn stop(self) {
        self.controllers.stop().await;
    }

    /// Applies the GitRepository with exactly `spec` (fields of earlier specs are removed).
    pub async fn apply_source(&self, spec: &Value) -> Result<(), String> {
        self.apply_source_with(spec, false).await
    }

    /// Like [`Fixture::apply_source`]; `strict` asks the API server to refuse unknown fields
    /// instead of dropping them.
    pub async fn apply_source_with(&self, spec: &Value, strict: bool) -> Result<(), String> {
        let api: Api<GitRepository> = Api::namespaced(self.env.client.clone(), &self.env.namespace);
        let manifest = json!({
            "apiVersion": "source.mooring.dev/v1", "kind": "GitRepository",
            "metadata": {"name": SOURCE}, "spec": spec,
        });
        let mut params = PatchParams::apply("test").force();
        if strict {
            params = params.validation_strict();
        }
        api.patch(SOURCE, &params, &Patch::Apply(&manifest))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Applies the Kustomization with the good defaults and `spec` (fields of earlier specs
    /// are removed).
    pub async fn apply_ks(&self, spec: &Value) -> Result<(), String> {
        let api: Api<Kustomization> = Api::namespaced(self.env.client.clone(), &self.env.namespace);
        let base = json!({"interval": "10m", "prune": true, "targetNamespace": self.env.namespace,
            "sourceRef": {"kind": "GitRepository", "name": SOURCE}});
        let manifest = json!({
            "apiVersion": "kustomize.mooring.dev/v1", "kind": "Kustomization",
            "metadata": {"name": APP}, "spec": merged(&base, spec),
        });
        api.patch(
            APP,
            &PatchParams::apply("test").force(),
            &Patch::Apply(&manifest),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    /// Creates or replaces a Secret in the test namespace.
    pub async fn secret(&self, name: &str, data: Value) {
        let api: Api<Secret> = Api::namespaced(self.env.client.clone(), &self.env.namespace);
        let manifest =
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": data});
        api.patch(
            name,
            &PatchParams::apply("test").force(),
            &Patch::Apply(&manifest),
        )
        .await
        .expect("apply Secret");
    }

    /// Asks both objects for a reconcile now; returns the token they will report as handled.
    pub async fn poke(&self) -> String {
        let token = format!("case-{}", self.tokens.fetch_add(1, Ordering::SeqCst));
        flow::poke_source(&self.env, SOURCE, &token).await;
        flow::poke_kustomization(&self.env, APP, &token).await;
        token
    }

    /// Brings back the good state (branch at the good commit, good specs, `source_spec` for
    /// the GitRepository) and records it once both objects are Ready at the good commit.
    pub async fn restore_with(&self, source_spec: &Value, ks_spec: &Value) -> Result<Good, String> {
        if self.repo.head("main").map_err(|e| e.to_string())? != self.commit {
            self.repo
                .reset("main", &self.commit)
                .map_err(|e| e.to_string())?;
        }
        self.apply_source(source_spec).await?;
        self.apply_ks(ks_spec).await?;
        let token = self.poke().await;
        let commit = self.commit.clone();
        let source = self
            .wait_source("Ready at the good commit", |r| {
                handled_source(r, &token)
                    && condition_is(source_conditions(r), "Ready", "True")
                    && current_generation_source(r)
                    && r.status
                        .as_ref()
                        .and_then(|s| s.artifact.as_ref())
                        .is_some_and(|a| a.revision.ends_with(&commit))
            })
            .await?;
        let artifact = source
            .status
            .and_then(|s| s.artifact)
            .ok_or("no artifact")?;
        let revision = artifact.revision.clone();
        let ks = self
            .wait_ks("applied at the good revision", |k| {
                condition_is(ks_conditions(k), "Ready", "True")
                    && current_generation_ks(k)
                    && k.status
                        .as_ref()
                        .and_then(|s| s.last_applied_revision.as_deref())
                        == Some(revision.as_str())
            })
            .await?;
        let revision = ks
            .status
            .and_then(|s| s.last_applied_revision)
            .ok_or("no lastAppliedRevision")?;
        let objects = self.managed().await;
        let names: Vec<&String> = objects.keys().collect();
        let ns = &self.env.namespace;
        let want = [
            format!("ConfigMap/{ns}/settings"),
            format!("Deployment/{ns}/web"),
            format!("Secret/{ns}/token"),
        ];
        if names != want.iter().collect::<Vec<_>>() {
            return Err(format!("the good state holds {names:?}, not {want:?}"));
        }
        Ok(Good {
            commit: self.commit.clone(),
            revision,
            artifact,
            objects,
        })
    }

    /// [`Fixture::restore_with`] the good specs.
    pub async fn restore(&self) -> Result<Good, String> {
        self.restore_with(&self.source_spec.clone(), &good_ks_spec())
            .await
    }

    /// The managed objects: `Kind/namespace/name` -> resourceVersion, for every object of the
    /// watched kinds that carries this Kustomization's ownership labels.
    pub async fn managed(&self) -> BTreeMap<String, String> {
        let selector = format!(
            "kustomize.mooring.dev/name={APP},kustomize.mooring.dev/namespace={}",
            self.env.namespace
        );
        let mut out = BTreeMap::new();
        for (resource, _) in watched_kinds() {
            let api: Api<DynamicObject> = Api::all_with(self.env.client.clone(), &resource);
            let list = api
                .list(&ListParams::default().labels(&selector))
                .await
                .expect("list managed objects");
            for obj in list.items {
                let key = format!(
                    "{}/{}{}",
                    resource.kind,
                    obj.metadata
                        .namespace
                        .as_deref()
                        .map(|n| format!("{n}/"))
                        .unwrap_or_default(),
                    obj.metadata.name.unwrap_or_default()
                );
                out.insert(key, obj.metadata.resource_version.unwrap_or_default());
            }
        }
        out
    }

    /// Every way the state after a bad input differs from `good`: objects added, removed or
    /// written, another applied revision, the good artifact not served as recorded.
    pub async fn intact(&self, good: &Good) -> Vec<String> {
        self.intact_at(good, &good.revision, &good.artifact).await
    }

    /// Like [`Fixture::intact`], for an input that was applied: `revision` is applied and
    /// `artifact` served, and the objects are the good ones, unwritten.
    pub async fn intact_at(&self, good: &Good, revision: &str, artifact: &Artifact) -> Vec<String> {
        let mut problems = Vec::new();
        let now = self.managed().await;
        for (key, version) in &good.objects {
            match now.get(key) {
                None => problems.push(format!("{key} was deleted")),
                Some(v) if v != version => problems.push(format!(
                    "{key} was written (resourceVersion {version} -> {v})"
                )),
                Some(_) => {}
            }
        }
        for key in now.keys().filter(|k| !good.objects.contains_key(*k)) {
            problems.push(format!("{key} of the bad input was created"));
        }
        let ks: Api<Kustomization> = Api::namespaced(self.env.client.clone(), &self.env.namespace);
        let applied = ks
            .get(APP)
            .await
            .ok()
            .and_then(|k| k.status)
            .and_then(|s| s.last_applied_revision);
        if applied.as_deref() != Some(revision) {
            problems.push(format!(
                "status.lastAppliedRevision is {applied:?}, not {revision}"
            ));
        }
        let (code, body) = download(&artifact.url).await;
        let digest = format!("sha256:{}", sha256_hex(&body));
        if code != 200 || artifact.digest.as_deref() != Some(digest.as_str()) {
            problems.push(format!(
                "the artifact {} is not served as recorded: HTTP {code}, {digest}",
                artifact.url
            ));
        }
        problems
    }

    /// Waits until `check` holds for the GitRepository; an error carries its last state.
    pub async fn wait_source(
        &self,
        what: &str,
        check: impl Fn(&GitRepository) -> bool,
    ) -> Result<GitRepository, String> {
        let api: Api<GitRepository> = Api::namespaced(self.env.client.clone(), &self.env.namespace);
        mooring_testkit::wait::try_wait_for(&api, SOURCE, what, CASE_TIMEOUT, |o| {
            o.is_some_and(&check)
        })
        .await?
        .ok_or_else(|| "the GitRepository is gone".to_string())
    }

    /// Waits until `check` holds for the Kustomization; an error carries its last state.
    pub async fn wait_ks(
        &self,
        what: &str,
        check: impl Fn(&Kustomization) -> bool,
    ) -> Result<Kustomization, String> {
        let api: Api<Kustomization> = Api::namespaced(self.env.client.clone(), &self.env.namespace);
        mooring_testkit::wait::try_wait_for(&api, APP, what, CASE_TIMEOUT, |o| {
            o.is_some_and(&check)
        })
        .await?
        .ok_or_else(|| "the Kustomization is gone".to_string())
    }

    /// Waits until the object `on` shows the expected condition after the bad input:
    /// `handled` says the pass that saw the input has run. Returns what was seen when the
    /// condition does not match.
    pub async fn expect_condition(
        &self,
        expect: &Expect,
        handled_source: impl Fn(&GitRepository) -> bool,
        handled_ks: impl Fn(&Kustomization) -> bool,
    ) -> Result<(), String> {
        let Expect::Condition {
            on,
            type_,
            status,
            reason,
            fragment,
        } = expect
        else {
            return Ok(());
        };
        let matches =
            |conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]| {
                mooring_api::conditions::find_condition(conditions, type_).is_some_and(|c| {
                    c.status == *status
                        && c.reason == *reason
                        && c.message.contains(fragment.as_str())
                })
            };
        let seen = match on {
            On::Source => {
                let api: Api<GitRepository> =
                    Api::namespaced(self.env.client.clone(), &self.env.namespace);
                let waited = mooring_testkit::wait::try_wait_for(
                    &api,
                    SOURCE,
                    "the expected condition",
                    CASE_TIMEOUT,
                    |o| o.is_some_and(|r| handled_source(r) && matches(source_conditions(r))),
                )
                .await;
                match waited {
                    Ok(_) => return Ok(()),
                    Err(_) => api
                        .get_opt(SOURCE)
                        .await
                        .ok()
                        .flatten()
                        .map(|r| describe(source_conditions(&r))),
                }
            }
            On::Kustomization => {
                let api: Api<Kustomization> =
                    Api::namespaced(self.env.client.clone(), &self.env.namespace);
                let waited = mooring_testkit::wait::try_wait_for(
                    &api,
                    APP,
                    "the expected condition",
                    CASE_TIMEOUT,
                    |o| o.is_some_and(|k| handled_ks(k) && matches(ks_conditions(k))),
                )
                .await;
                match waited {
                    Ok(_) => return Ok(()),
                    Err(_) => api
                        .get_opt(APP)
                        .await
                        .ok()
                        .flatten()
                        .map(|k| describe(ks_conditions(&k))),
                }
            }
        };
        Err(format!(
            "expected {type_}={status} {reason} naming {fragment:?} on the {on:?}; saw {}",
            seen.unwrap_or_else(|| "no object".into())
        ))
    }
}

/// Conditions as `Type=Status Reason: message` lines.
pub fn describe(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
) -> String {
    conditions
        .iter()
        .map(|c| format!("{}={} {}: {}", c.type_, c.status, c.reason, c.message))
        .collect::<Vec<_>>()
        .join(" | ")
}

pub fn source_conditions(
    r: &GitRepository,
) -> &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition] {
    r.status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default()
}

pub fn ks_conditions(
    k: &Kustomization,
) -> &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition] {
    k.status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default()
}

/// Whether the condition `type_` has `status`.
pub fn condition_is(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    type_: &str,
    status: &str,
) -> bool {
    mooring_api::conditions::find_condition(conditions, type_).is_some_and(|c| c.status == status)
}

/// The GitRepository has handled the reconcile request `token`.
pub fn handled_source(r: &GitRepository, token: &str) -> bool {
    r.status
        .as_ref()
        .and_then(|s| s.last_handled_reconcile_at.as_deref())
        == Some(token)
}

/// The Kustomization has handled the reconcile request `token`.
pub fn handled_ks(k: &Kustomization, token: &str) -> bool {
    k.status
        .as_ref()
        .and_then(|s| s.last_handled_reconcile_at.as_deref())
        == Some(token)
}

/// The Ready condition was written for the GitRepository's current generation.
pub fn current_generation_source(r: &GitRepository) -> bool {
    mooring_api::conditions::find_condition(source_conditions(r), "Ready")
        .is_some_and(|c| c.observed_generation == r.metadata.generation)
}

/// The Ready condition was written for the Kustomization's current generation.
pub fn current_generation_ks(k: &Kustomization) -> bool {
    mooring_api::conditions::find_condition(ks_conditions(k), "Ready")
        .is_some_and(|c| c.observed_generation == k.metadata.generation)
}

/// Downloads `url` with curl: (HTTP status, body).
pub async fn download(url: &str) -> (u16, Vec<u8>) {
    let out = tokio::process::Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", url])
        .output()
        .await
        .expect("curl");
    let mut body = out.stdout;
    let Some(pos) = body.iter().rposition(|b| *b == b'\n') else {
        return (0, body);
    };
    let code = String::from_utf8_lossy(&body[pos + 1..])
        .trim()
        .parse()
        .unwrap_or(0);
    body.truncate(pos);
    (code, body)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    mooring_source_controller::storage::sha256_hex(bytes).expect("hash")
}

/// The peak resident memory of this process (the in-process controllers and the test), from
/// `VmHWM` in `/proc/self/status`; kustomize, git and the control plane run as other processes.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// One case's result, for the report.
#[derive(Debug, Default)]
pub struct Outcome {
    pub failures: Vec<(String, Vec<String>)>,
    pub runs: u64,
}

impl Outcome {
    /// Records the case `name` with its problems (none: it passed).
    pub fn record(&mut self, name: &str, problems: Vec<String>) {
        self.runs += 1;
        if problems.is_empty() {
            eprintln!("case {name}: ok");
        } else {
            eprintln!("case {name}: FAILED\n  {}", problems.join("\n  "));
            self.failures.push((name.to_string(), problems));
        }
    }

    /// Records the suite's row and fails with every failing case.
    pub fn finish(self, scenario: &str) {
        let passed = self.runs - self.failures.len() as u64;
        mooring_testkit::faults::record(&mooring_testkit::faults::Row {
            runs: self.runs,
            passed,
            peak_rss_mib: peak_rss_mib(),
            ..mooring_testkit::faults::Row::new(scenario)
        });
        let report: Vec<String> = self
            .failures
            .iter()
            .map(|(name, problems)| format!("{name}:\n  {}", problems.join("\n  ")))
            .collect();
        assert!(
            report.is_empty(),
            "{} of {} cases failed:\n{}",
            report.len(),
            self.runs,
            report.join("\n")
        );
    }
}
