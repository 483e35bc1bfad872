//! Bad sources, one table row each: from the good revision applied (GitRepository and
//! Kustomization Ready), a GitRepository spec or a change of the repository that must be
//! refused, with the expected condition naming the URL, ref, Secret, field or file, and
//! nothing of it applied: the good objects unchanged, `status.lastAppliedRevision` still the
//! good one, the last good artifact still served with its digest.
//!
//! A few rows are inputs that are not errors but easy to get wrong; they must be applied as
//! documented: a force-pushed branch serves its new tip, a tag and a branch of the same name
//! are told apart (`ref.tag` only looks at `refs/tags/`, `ref.branch` only at `refs/heads/`,
//! and `ref.name` must be a full reference: a short name shared by both is not guessed), and a
//! file name that is not UTF-8 is archived as it is.
//!
//! Both controllers run in-process with the kustomize-controller's test helpers; the
//! source-controller's artifact size limit is set small, as `--max-artifact-size` would.
//! One row of the fault report: "bad inputs: sources".

#[path = "../../kustomize-controller/tests/badinput/mod.rs"]
mod badinput;
#[path = "../../kustomize-controller/tests/flow/mod.rs"]
mod flow;

use std::time::Instant;

use badinput::*;
use mooring_testkit::git::{Auth, GitServer};
use serde_json::{Value, json};

/// The artifact size limit of this suite's source-controller.
const MAX_ARTIFACT: u64 = 256 * 1024;
/// A token written as a URL's user; it must never show.
const TOKEN: &str = "ghp_BadInputMarker0123456789";

/// What happens to the repository before the spec is applied.
enum Git {
    /// Nothing.
    None,
    /// Files (paths and contents as bytes) committed on `main`.
    Commit(Vec<(Vec<u8>, Vec<u8>)>),
    /// Symbolic links (path, target) and files committed on `main`.
    Links(
        Vec<(&'static str, &'static str)>,
        Vec<(&'static str, String)>,
    ),
    /// `main` rewritten: reset to the commit before the good one, and the good files committed
    /// again on it (a new tip that does not descend from the good commit).
    ForcePush,
    /// The tag is deleted.
    DeleteTag(&'static str),
}

/// How a case's spec reaches the API server.
#[derive(Clone, Copy)]
enum Write {
    /// Server-side apply of the whole spec (unknown fields cannot be applied).
    Apply,
    /// Server-side apply with strict field validation.
    Strict,
    /// A JSON merge patch of `spec` with the API server's default field validation, which
    /// drops unknown fields with a warning (as a client-side `kubectl apply` would send).
    Merge,
}

struct Case {
    name: &'static str,
    /// Fields of the good GitRepository spec for this case's good state (e.g. following a
    /// tag); `{}`: the usual one.
    good: Value,
    /// What happens to the repository.
    git: Git,
    /// A Secret created first: (name, data as stringData).
    secret: Option<(&'static str, Value)>,
    /// Fields set on the case's good spec (a null removes one).
    spec: Value,
    /// How the spec is written.
    write: Write,
    /// What must follow.
    expect: Expect,
}

impl Case {
    fn new(name: &'static str, spec: Value, expect: Expect) -> Case {
        Case {
            name,
            good: json!({}),
            git: Git::None,
            secret: None,
            spec,
            write: Write::Apply,
            expect,
        }
    }

    fn git(mut self, git: Git) -> Case {
        self.git = git;
        self
    }

    fn good(mut self, good: Value) -> Case {
        self.good = good;
        self
    }

    fn secret(mut self, name: &'static str, data: Value) -> Case {
        self.secret = Some((name, data));
        self
    }

    fn write(mut self, write: Write) -> Case {
        self.write = write;
        self
    }
}

/// Bytes that do not compress.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

struct Urls {
    http: String,
    https: String,
    ssh: String,
    empty: String,
    missing: String,
}

fn cases(urls: &Urls, commit: &str) -> Vec<Case> {
    use On::{Kustomization as Ks, Source};
    let with_token = urls.http.replacen("://", &format!("://{TOKEN}@"), 1);
    let absent_commit = "0123456789abcdef0123456789abcdef01234567";
    vec![
        Case::new("URL without a host", json!({"url": "http:///repo.git"}), stalled(Source, "URLInvalid", "spec.url")),
        Case::new("URL with an empty host after the user", json!({"url": "http://user@:8080/repo.git"}), stalled(Source, "URLInvalid", "spec.url")),
        Case::new("URL with a port out of range", json!({"url": "http://127.0.0.1:99999/repo.git"}), stalled(Source, "URLInvalid", "spec.url")),
        Case::new("URL with an unclosed IPv6 bracket", json!({"url": "http://[::1/repo.git"}), stalled(Source, "URLInvalid", "spec.url")),
        Case::new("URL with an unsupported scheme", json!({"url": "ftp://127.0.0.1/repo.git"}), refused("spec.url")),
        Case::new("URL in the scp form", json!({"url": "git@127.0.0.1:repo.git"}), refused("spec.url")),
        Case::new("URL of a repository that does not exist", json!({"url": urls.missing}), not_ready(Source, "GitOperationFailed", "not found")),
        Case::new("URL of an empty repository", json!({"url": urls.empty}), not_ready(Source, "EmptyGitRepository", "empty")),
        Case::new("URL of a closed port", json!({"url": "http://127.0.0.1:9/repo.git"}), not_ready(Source, "GitOperationFailed", "127.0.0.1:9")),
        Case::new("https URL without the server's CA", json!({"url": urls.https}), not_ready(Source, "GitOperationFailed", "TLS")),
        Case::new("a token as the URL user over plain http", json!({"url": with_token}), not_ready(Source, "AuthenticationFailed", "plain http")),
        Case::new("an unknown ref kind (dropped by the API server)", json!({"ref": {"branch": null, "revision": "main"}}), not_ready(Source, "GitOperationFailed", "branch 'master' not found")).write(Write::Merge),
        Case::new("an unknown ref kind (server-side apply)", json!({"ref": {"revision": "main"}}), refused(".spec.ref.revision: field not declared in schema")),
        Case::new("an unknown ref kind (strict field validation)", json!({"ref": {"revision": "main"}}), refused("revision")).write(Write::Strict),
        Case::new("a branch and a tag at once", json!({"ref": {"branch": "main", "tag": "v1"}}), refused("only one of spec.ref.branch, tag, semver, name")),
        Case::new("a commit with a tag", json!({"ref": {"commit": commit, "tag": "v1"}}), refused("spec.ref.commit may only be combined with spec.ref.branch")),
        Case::new("a branch that does not exist", json!({"ref": {"branch": "no-such-branch"}}), not_ready(Source, "GitOperationFailed", "branch 'no-such-branch' not found")),
        Case::new("a tag that does not exist", json!({"ref": {"tag": "v9.9.9"}}), not_ready(Source, "GitOperationFailed", "tag 'v9.9.9' not found")),
        Case::new("a commit that does not exist", json!({"ref": {"commit": absent_commit}}), not_ready(Source, "GitOperationFailed", absent_commit)),
        Case::new("a commit that is not a SHA-1", json!({"ref": {"commit": "not-a-sha"}}), stalled(Source, "GitOperationFailed", "invalid commit 'not-a-sha'")),
        Case::new("an invalid semver range", json!({"ref": {"semver": ">=1.0.0 <<2"}}), stalled(Source, "GitOperationFailed", "invalid semver range '>=1.0.0 <<2'")),
        Case::new("a semver range no tag matches", json!({"ref": {"semver": "~9.0"}}), not_ready(Source, "GitOperationFailed", "'~9.0'")),
        Case::new("a full reference that does not exist", json!({"ref": {"name": "refs/weird/thing"}}), not_ready(Source, "GitOperationFailed", "'refs/weird/thing' not found")),
        Case::new("a short name shared by a branch and a tag, as ref.name", json!({"ref": {"name": "same"}}), not_ready(Source, "GitOperationFailed", "reference 'same' not found")),
        Case::new("a tag and a branch with the same name: ref.tag takes the tag", json!({"ref": {"tag": "same"}}), Expect::Applied { prefix: "same@sha1:" }),
        Case::new("a tag and a branch with the same name: ref.name refs/tags/ takes the tag", json!({"ref": {"name": "refs/tags/same"}}), Expect::Applied { prefix: "refs/tags/same@sha1:" }),
        Case::new("a force-pushed branch serves its new tip", json!({}), Expect::Applied { prefix: "main@sha1:" }).git(Git::ForcePush),
        Case::new("a deleted tag", json!({}), not_ready(Source, "GitOperationFailed", "tag 'v1' not found")).good(json!({"ref": {"tag": "v1"}})).git(Git::DeleteTag("v1")),
        Case::new("a symlink loop in the repository", json!({}), not_ready(Ks, "BuildFailed", "loop-a")).git(Git::Links(
            vec![("deploy/loop-a", "loop-b"), ("deploy/loop-b", "loop-a")],
            vec![("deploy/kustomization.yaml", "resources:\n- settings.yaml\n- token.yaml\n- web.yaml\n- loop-a\n".to_string())],
        )),
        Case::new("a file name that is not UTF-8", json!({}), Expect::Applied { prefix: "main@sha1:" }).git(Git::Commit(vec![(
            b"deploy/caf\xe9.txt".to_vec(),
            b"not yaml\n".to_vec(),
        )])),
        Case::new("a manifest that is not UTF-8", json!({}), not_ready(Ks, "BuildFailed", "settings.yaml")).git(Git::Commit(vec![(
            b"deploy/settings.yaml".to_vec(),
            b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  value: \"caf\xe9\"\n".to_vec(),
        )])),
        Case::new("spec.secretRef names a Secret that does not exist", json!({"secretRef": {"name": "absent-creds"}}), not_ready(Source, "AuthenticationFailed", "absent-creds")),
        Case::new("spec.secretRef with a password but no username", json!({"secretRef": {"name": "half-creds"}}), not_ready(Source, "AuthenticationFailed", "half-creds"))
            .secret("half-creds", json!({"password": "secret"})),
        Case::new("spec.secretRef with basic and bearer credentials", json!({"url": urls.https, "secretRef": {"name": "both-creds"}}), not_ready(Source, "AuthenticationFailed", "both-creds"))
            .secret("both-creds", json!({"username": "git", "password": "p", "bearerToken": "t"})),
        Case::new("credentials over plain http", json!({"secretRef": {"name": "plain-creds"}}), not_ready(Source, "AuthenticationFailed", "plain http"))
            .secret("plain-creds", json!({"username": "git", "password": "p"})),
        Case::new("an ssh URL without a Secret", json!({"url": urls.ssh}), not_ready(Source, "AuthenticationFailed", "identity")),
        Case::new("an ssh URL without known_hosts", json!({"url": urls.ssh, "secretRef": {"name": "ssh-half"}}), not_ready(Source, "AuthenticationFailed", "known_hosts"))
            .secret("ssh-half", json!({"identity": "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"})),
        Case::new("an invalid spec.ignore pattern", json!({"ignore": "ok\n{a,b\n"}), not_ready(Source, "ArchiveOperationFailed", "spec.ignore")),
        Case::new("sparse checkout of a missing directory", json!({"sparseCheckout": ["no-such-dir"]}), not_ready(Source, "ArchiveOperationFailed", "no-such-dir")),
        Case::new("sparse checkout that leaves the repository", json!({"sparseCheckout": ["../outside"]}), not_ready(Source, "ArchiveOperationFailed", "../outside")),
        Case::new("include of a GitRepository that does not exist", json!({"include": [{"repository": {"name": "no-such-repo"}}]}), not_ready(Source, "NotFound", "no-such-repo")),
        Case::new("an artifact over --max-artifact-size", json!({}), not_ready(Source, "ArchiveOperationFailed", "too large")).git(Git::Commit(vec![(
            b"deploy/blob.bin".to_vec(),
            noise(2 * MAX_ARTIFACT as usize),
        )])),
        Case::new("an interval under the minimum", json!({"interval": "500ms"}), refused("spec.interval: Invalid value: \"500ms\": must be at least 1s")),
        Case::new("an unsupported provider", json!({"provider": "azure"}), stalled(Source, "InvalidProviderConfiguration", "generic provider")),
        Case::new("a tag verification mode on a branch", json!({"verify": {"mode": "Tag", "secretRef": {"name": "keys"}}}), stalled(Source, "InvalidVerificationMode", "spec.verify.mode")),
    ]
}

#[tokio::test]
async fn bad_sources_are_refused_and_the_last_artifact_stays() {
    let fixture = Fixture::new("bad-sources", |s| s.max_artifact_size = Some(MAX_ARTIFACT)).await;
    let server = GitServer::shared().expect("git server");
    let empty = server
        .empty_repo(&flow::unique("bad-sources-empty"), Auth::None)
        .expect("empty repo");
    let urls = Urls {
        http: fixture.repo.http_url().to_string(),
        https: fixture.repo.https_url().to_string(),
        ssh: fixture.repo.ssh_url().to_string(),
        empty: empty.http_url().to_string(),
        missing: fixture.repo.http_url().replace(".git", "-missing.git"),
    };
    // A branch and a tag named `same`: the branch holds an object the good revision does not
    // have, the tag is the good commit.
    fixture
        .repo
        .commit_on(
            "same",
            &[
                (
                    "deploy/kustomization.yaml",
                    "resources:\n- settings.yaml\n- token.yaml\n- web.yaml\n- bait.yaml\n",
                ),
                (
                    "deploy/bait.yaml",
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bait\n",
                ),
            ],
            "a branch named like a tag",
        )
        .expect("branch same");
    fixture.repo.tag("same", false, "").expect("tag same");
    fixture.repo.tag("v1", false, "").expect("tag v1");

    let mut outcome = Outcome::default();
    let started = Instant::now();
    for case in cases(&urls, &fixture.commit) {
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
    outcome.finish("bad inputs: sources");
}

/// Runs one case from its good state; returns every expectation it missed.
async fn run(fixture: &Fixture, case: &Case) -> Vec<String> {
    let repo = &fixture.repo;
    if repo.head("main").ok().as_deref() != Some(fixture.commit.as_str())
        && let Err(e) = repo.reset("main", &fixture.commit)
    {
        return vec![format!("rewinding main: {e}")];
    }
    if repo.tag_target("v1").is_none()
        && let Err(e) = repo.tag("v1", false, "")
    {
        return vec![format!("tagging v1 again: {e}")];
    }
    let good_spec = merged(&fixture.source_spec, &case.good);
    let good = match fixture.restore_with(&good_spec, &good_ks_spec()).await {
        Ok(good) => good,
        Err(e) => return vec![format!("the good state was not restored: {e}")],
    };
    let pushed = match change(fixture, &case.git) {
        Ok(pushed) => pushed,
        Err(e) => return vec![format!("changing the repository: {e}")],
    };
    if let Some((name, data)) = &case.secret {
        let data: serde_json::Map<String, Value> = data
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), json!(base64_of(v.as_str().unwrap_or_default()))))
            .collect();
        fixture.secret(name, Value::Object(data)).await;
    }
    let applied = match case.write {
        Write::Apply => {
            fixture
                .apply_source_with(&merged(&good_spec, &case.spec), false)
                .await
        }
        Write::Strict => {
            fixture
                .apply_source_with(&merged(&good_spec, &case.spec), true)
                .await
        }
        Write::Merge => merge_spec(fixture, &case.spec).await,
    };
    let mut problems = Vec::new();
    match (&case.expect, applied) {
        (Expect::Refused { fragment }, Err(e)) => {
            if !e.contains(fragment) {
                problems.push(format!(
                    "refused, but the message does not name {fragment:?}: {e}"
                ));
            }
            problems.extend(fixture.intact(&good).await);
        }
        (Expect::Refused { .. }, Ok(())) => problems.push("the API server accepted it".into()),
        (_, Err(e)) => problems.push(format!("the API server refused it: {e}")),
        (Expect::Applied { prefix }, Ok(())) => {
            fixture.poke().await;
            let commit = pushed.clone().unwrap_or_else(|| fixture.commit.clone());
            let revision = format!("{prefix}{commit}");
            problems.extend(applied_at(fixture, &good, &revision).await);
        }
        (expect @ Expect::Condition { .. }, Ok(())) => {
            let token = fixture.poke().await;
            let source_handled = |r: &mooring_api::GitRepository| {
                handled_source(r, &token) && current_generation_source(r)
            };
            let ks_handled = |k: &mooring_api::Kustomization| {
                pushed.as_ref().is_none_or(|c| {
                    k.status
                        .as_ref()
                        .and_then(|s| s.last_attempted_revision.as_deref())
                        .is_some_and(|r| r.ends_with(c.as_str()))
                })
            };
            if let Err(e) = fixture
                .expect_condition(expect, source_handled, ks_handled)
                .await
            {
                problems.push(e);
            }
            // The GitRepository still advertises the good artifact, unless the source itself
            // was fine and a new artifact is what the Kustomization refused.
            let keeps_artifact = matches!(expect, Expect::Condition { on: On::Source, .. });
            if keeps_artifact {
                problems.extend(advertised_is(fixture, &good).await);
            }
            problems.extend(fixture.intact(&good).await);
        }
    }
    let shown = status_text(fixture).await;
    if shown.contains(TOKEN) || shown.contains("BadInputMarker") {
        problems.push(format!("the URL token shows in the status: {shown}"));
    }
    problems
}

/// Changes the repository as the case says; returns the new tip of `main` when it moved.
fn change(fixture: &Fixture, git: &Git) -> Result<Option<String>, String> {
    let repo = &fixture.repo;
    let err = |e: mooring_testkit::git::Error| e.to_string();
    match git {
        Git::None => Ok(None),
        Git::Commit(files) => {
            let refs: Vec<(&[u8], &[u8])> = files
                .iter()
                .map(|(p, c)| (p.as_slice(), c.as_slice()))
                .collect();
            repo.commit_bytes(&refs, "a bad input")
                .map(Some)
                .map_err(err)
        }
        Git::Links(links, files) => {
            let mut last = None;
            for (path, target) in links {
                last = Some(repo.symlink(path, target, "a link").map_err(err)?);
            }
            if !files.is_empty() {
                let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
                last = Some(repo.commit(&refs, "use the link").map_err(err)?);
            }
            Ok(last)
        }
        Git::ForcePush => {
            repo.reset("main", &fixture.base).map_err(err)?;
            let files = good_files();
            let refs: Vec<(&[u8], &[u8])> = files
                .iter()
                .map(|(p, c)| (p.as_bytes(), c.as_slice()))
                .collect();
            repo.commit_bytes(&refs, "the good files, history rewritten")
                .map(Some)
                .map_err(err)
        }
        Git::DeleteTag(tag) => repo.delete_tag(tag).map(|()| None).map_err(err),
    }
}

/// Problems unless both objects are Ready at `revision` with the good objects unwritten and
/// the new artifact served.
async fn applied_at(fixture: &Fixture, good: &Good, revision: &str) -> Vec<String> {
    let source = fixture
        .wait_source("Ready at the new revision", |r| {
            condition_is(source_conditions(r), "Ready", "True")
                && r.status
                    .as_ref()
                    .and_then(|s| s.artifact.as_ref())
                    .is_some_and(|a| a.revision == revision)
        })
        .await;
    let artifact = match source {
        Ok(r) => match r.status.and_then(|s| s.artifact) {
            Some(a) => a,
            None => return vec!["no artifact".into()],
        },
        Err(e) => return vec![e],
    };
    if let Err(e) = fixture
        .wait_ks("applied at the new revision", |k| {
            condition_is(ks_conditions(k), "Ready", "True")
                && k.status
                    .as_ref()
                    .and_then(|s| s.last_applied_revision.as_deref())
                    == Some(revision)
        })
        .await
    {
        return vec![e];
    }
    fixture.intact_at(good, revision, &artifact).await
}

/// Problems unless the GitRepository still advertises the good artifact.
async fn advertised_is(fixture: &Fixture, good: &Good) -> Vec<String> {
    let api: kube::Api<mooring_api::GitRepository> =
        kube::Api::namespaced(fixture.env.client.clone(), &fixture.env.namespace);
    let now = api
        .get(SOURCE)
        .await
        .ok()
        .and_then(|r| r.status)
        .and_then(|s| s.artifact);
    match now {
        Some(a) if a.revision == good.artifact.revision && a.digest == good.artifact.digest => {
            vec![]
        }
        other => vec![format!(
            "the GitRepository advertises {:?}, not the good artifact {}",
            other.map(|a| (a.revision, a.digest)),
            good.artifact.revision
        )],
    }
}

/// A JSON merge patch of the GitRepository's spec, with the API server's default validation.
async fn merge_spec(fixture: &Fixture, spec: &Value) -> Result<(), String> {
    let api: kube::Api<mooring_api::GitRepository> =
        kube::Api::namespaced(fixture.env.client.clone(), &fixture.env.namespace);
    api.patch(
        SOURCE,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"spec": spec})),
    )
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// The GitRepository's status as JSON text.
async fn status_text(fixture: &Fixture) -> String {
    let api: kube::Api<mooring_api::GitRepository> =
        kube::Api::namespaced(fixture.env.client.clone(), &fixture.env.namespace);
    let status = api.get(SOURCE).await.ok().and_then(|r| r.status);
    serde_json::to_string(&status).unwrap_or_default()
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}
