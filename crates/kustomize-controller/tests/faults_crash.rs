//! Crash points of the kustomize-controller: the real binary is SIGKILLed at random points while
//! it applies and prunes revisions of a 200-object app, and started again each time. The
//! revisions create, update and prune objects of several kinds, namespaced and cluster-scoped,
//! and each one brings a new Namespace (with objects in it) and prunes the previous one.
//!
//! Most kill points push a new revision and are aimed through watches of the app's objects: the
//! controller dies right after the k-th of the revision's creations and updates shows (k
//! random), or after the k-th of the objects it drops is deleted. The others kill the restarted
//! controller a random delay into finishing its revision, drawn from the measured time of one
//! uninterrupted revision change. The state of the cluster at each kill (the process is dead,
//! so it stays put) tells which phase the kill landed in. At checkpoints and at the end the
//! cluster must equal the last revision exactly: every object present as rendered, the
//! inventory equal to the render, no object with our labels outside every inventory
//! (orphans), none lost.
//!
//! `MOORING_FAULTS_SEED=<seed>` replays a run (the seed is printed);
//! `MOORING_FAULTS_LONG=1` runs the long form.

mod common;
mod flow;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use flow::{applied, git_repository, kustomization, poke_source, unique};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::runtime::reflector::{self, Store, reflector};
use kube::runtime::wait::await_condition;
use kube::runtime::{WatchStreamExt, watcher};
use mooring_api::{GitRepository, Kustomization};
use mooring_testkit::controllers::{Controllers, Options};
use mooring_testkit::faults::{self, Dice, Row};
use mooring_testkit::git::{Auth, GitServer, Repo};
use serde_json::{Value, json};
use tokio::sync::Notify;

const SCENARIO: &str = "kustomize-controller SIGKILL while applying/pruning 200 objects";
const NAME_LABEL: &str = "kustomize.mooring.dev/name";
const NAMESPACE_LABEL: &str = "kustomize.mooring.dev/namespace";
/// Kill points between two full convergence checks.
const CHECKPOINT_EVERY: usize = 10;
/// How long a checkpoint may wait for convergence after the last restart.
const CONVERGE: Duration = Duration::from_secs(180);

/// One object: (kind, namespace, name); the namespace is empty for cluster-scoped kinds.
type Key = (String, String, String);

/// The app: revision `r` is a pure function of `r`.
struct App {
    /// The Kustomization's namespace, where namespaced objects without one land.
    ns: String,
    /// Prefix of cluster-scoped names.
    prefix: String,
}

impl App {
    /// The 200 objects of revision `r`.
    fn revision(&self, r: usize) -> Vec<Value> {
        let (ns, p) = (&self.ns, &self.prefix);
        let revision_ns = format!("{p}-r{r}");
        let mut objects = vec![json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": revision_ns}
        })];
        // Created and pruned with their namespace.
        for j in 0..10 {
            objects.push(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("inner-{j}"), "namespace": revision_ns},
                "data": {"value": format!("{r}")}
            }));
        }
        // A window that slides by 10 per revision (10 created, 10 pruned); an eighth of the
        // rest change value.
        for i in 10 * r..10 * r + 150 {
            let value = if i % 8 == r % 8 {
                format!("v{r}")
            } else {
                format!("fixed-{i}")
            };
            objects.push(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("cm-{i}"), "namespace": ns},
                "data": {"value": value}
            }));
        }
        for i in 2 * r..2 * r + 20 {
            let verbs = if i % 5 == r % 5 {
                json!(["get", "list"])
            } else {
                json!(["get"])
            };
            objects.push(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": format!("{p}-cr-{i}")},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": verbs}]
            }));
        }
        for i in r..r + 10 {
            let value = format!("secret-{i}-{}", r % 3);
            objects.push(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": format!("s-{i}"), "namespace": ns},
                "data": {"value": base64(value.as_bytes())}
            }));
        }
        // Without a namespace: the Kustomization's own.
        for i in r..r + 9 {
            objects.push(json!({
                "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": format!("sa-{i}")}
            }));
        }
        objects
    }

    /// Revision `r` as (key, what must be live) pairs.
    fn expected(&self, r: usize) -> BTreeMap<Key, Value> {
        self.revision(r)
            .iter()
            .map(|o| (key(o, &self.ns), fingerprint(o)))
            .collect()
    }
}

/// `bytes` as the API writes Secret data (base64).
fn base64(bytes: &[u8]) -> Value {
    serde_json::to_value(k8s_openapi::ByteString(bytes.to_vec())).expect("base64")
}

/// One multi-document YAML file (JSON documents are YAML).
fn manifest(objects: &[Value]) -> String {
    objects
        .iter()
        .map(|o| format!("---\n{o}\n"))
        .collect::<String>()
}

fn key(object: &Value, default_ns: &str) -> Key {
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    let cluster_scoped = matches!(kind.as_str(), "Namespace" | "ClusterRole");
    let ns = if cluster_scoped {
        String::new()
    } else {
        object["metadata"]["namespace"]
            .as_str()
            .unwrap_or(default_ns)
            .to_string()
    };
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (kind, ns, name)
}

/// The part of an object a revision sets (the rest is the server's).
fn fingerprint(object: &Value) -> Value {
    json!({"data": object.get("data"), "rules": object.get("rules")})
}

/// The kinds the app uses: (kind, resource, namespaced).
fn kinds() -> Vec<(&'static str, ApiResource)> {
    vec![
        ("Namespace", ApiResource::erase::<Namespace>(&())),
        ("ConfigMap", ApiResource::erase::<ConfigMap>(&())),
        ("Secret", ApiResource::erase::<Secret>(&())),
        ("ServiceAccount", ApiResource::erase::<ServiceAccount>(&())),
        ("ClusterRole", ApiResource::erase::<ClusterRole>(&())),
    ]
}

/// One live object carrying ownership labels.
#[derive(Debug, Clone)]
struct Live {
    fingerprint: Value,
    deleting: bool,
    /// `<namespace>/<name>` of the Kustomization its labels name.
    owner: String,
}

/// The key and state of a live object.
fn live_of(kind: &str, object: &DynamicObject) -> (Key, Live) {
    let labels = object.metadata.labels.clone().unwrap_or_default();
    let owner = format!(
        "{}/{}",
        labels.get(NAMESPACE_LABEL).cloned().unwrap_or_default(),
        labels.get(NAME_LABEL).cloned().unwrap_or_default()
    );
    let key = (
        kind.to_string(),
        object.metadata.namespace.clone().unwrap_or_default(),
        object.metadata.name.clone().unwrap_or_default(),
    );
    let live = Live {
        fingerprint: fingerprint(&object.data),
        deleting: object.metadata.deletion_timestamp.is_some(),
        owner,
    };
    (key, live)
}

/// Every live object of the app's kinds that carries Mooring's ownership labels (listed now).
async fn owned(client: &kube::Client) -> BTreeMap<Key, Live> {
    let mut out = BTreeMap::new();
    let params = ListParams::default().labels(NAME_LABEL);
    for (kind, resource) in kinds() {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let list = api.list(&params).await.expect("list owned objects");
        out.extend(list.items.iter().map(|o| live_of(kind, o)));
    }
    out
}

/// The app's objects as watches see them, to kill the controller at a chosen step.
struct LiveView {
    stores: Vec<(&'static str, Store<DynamicObject>)>,
    changed: Arc<Notify>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl LiveView {
    /// Watches the objects whose labels name `owner` (`<namespace>/<name>`).
    fn start(client: &kube::Client, namespace: &str, name: &str) -> Self {
        let selector = format!("{NAME_LABEL}={name},{NAMESPACE_LABEL}={namespace}");
        let changed = Arc::new(Notify::new());
        let mut stores = Vec::new();
        let mut tasks = Vec::new();
        for (kind, resource) in kinds() {
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
            let writer = reflector::store::Writer::new(resource.clone());
            stores.push((kind, writer.as_reader()));
            let events = reflector(
                writer,
                watcher(api, watcher::Config::default().labels(&selector)),
            )
            .default_backoff();
            let changed = changed.clone();
            tasks.push(tokio::spawn(async move {
                events
                    .for_each(|_| {
                        changed.notify_waiters();
                        std::future::ready(())
                    })
                    .await;
            }));
        }
        Self {
            stores,
            changed,
            tasks,
        }
    }

    fn snapshot(&self) -> BTreeMap<Key, Live> {
        self.stores
            .iter()
            .flat_map(|(kind, store)| store.state().into_iter().map(|o| live_of(kind, &o)))
            .collect()
    }

    /// Waits until `check` holds for the view, up to `timeout`; whether it did.
    async fn wait(&self, timeout: Duration, check: impl Fn(&BTreeMap<Key, Live>) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if check(&self.snapshot()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }
}

impl Drop for LiveView {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Objects of `target` that differ from `previous` (created or updated by it).
fn changes(target: &BTreeMap<Key, Value>, previous: &BTreeMap<Key, Value>) -> Vec<Key> {
    target
        .iter()
        .filter(|(k, fp)| previous.get(*k) != Some(*fp))
        .map(|(k, _)| k.clone())
        .collect()
}

/// How many of `keys` are live as `target` renders them.
fn as_rendered(keys: &[Key], target: &BTreeMap<Key, Value>, live: &BTreeMap<Key, Live>) -> usize {
    keys.iter()
        .filter(|k| {
            live.get(*k)
                .is_some_and(|l| !l.deleting && Some(&l.fingerprint) == target.get(*k))
        })
        .count()
}

/// How many of `keys` are gone or being deleted.
fn going(keys: &[Key], live: &BTreeMap<Key, Live>) -> usize {
    keys.iter()
        .filter(|k| live.get(*k).is_none_or(|l| l.deleting))
        .count()
}

/// The inventory entries of every Kustomization, as keys.
async fn inventories(client: &kube::Client) -> BTreeSet<Key> {
    let api: Api<Kustomization> = Api::all(client.clone());
    let list = api.list(&ListParams::default()).await.expect("list");
    list.items
        .iter()
        .filter_map(|k| k.status.as_ref()?.inventory.as_ref())
        .flat_map(|inv| inv.entries.iter())
        .filter_map(|entry| {
            // `<namespace>_<name>_<group>_<kind>`; names and namespaces have no `_`.
            let mut parts = entry.id.splitn(4, '_');
            let (ns, name, _group, kind) =
                (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
            Some((kind.to_string(), ns.to_string(), name.to_string()))
        })
        .collect()
}

/// Where a kill landed, judged from the cluster as the killed process left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// No write of the revision yet: download, build, start-up.
    BeforeApply,
    /// Some of the revision's creations and updates are live, not all.
    Apply,
    /// Everything is applied; objects the revision drops are still there.
    Prune,
    /// The revision was fully applied and pruned.
    Done,
}

fn phase(
    target: &BTreeMap<Key, Value>,
    previous: &BTreeMap<Key, Value>,
    live: &BTreeMap<Key, Live>,
) -> Phase {
    let changed = changes(target, previous);
    let done = as_rendered(&changed, target, live);
    let to_prune = live
        .iter()
        .filter(|(k, l)| !l.deleting && !target.contains_key(*k))
        .count();
    if done == 0 && !changed.is_empty() {
        Phase::BeforeApply
    } else if done < changed.len() {
        Phase::Apply
    } else if to_prune > 0 {
        Phase::Prune
    } else {
        Phase::Done
    }
}

/// What a convergence check found.
#[derive(Debug, Default)]
struct Check {
    /// Objects of the revision missing, being deleted, or not as rendered.
    lost: Vec<String>,
    /// Objects with our labels in no inventory.
    orphans: Vec<String>,
    /// Other differences (inventory not equal to the render, objects left over).
    wrong: Vec<String>,
}

impl Check {
    fn ok(&self) -> bool {
        self.lost.is_empty() && self.orphans.is_empty() && self.wrong.is_empty()
    }
}

/// Waits until the Kustomization is Ready at `commit`, then compares the cluster with
/// revision `r`.
async fn converged(env: &common::Env, app: &App, r: usize, commit: &str) -> Check {
    let mut check = Check::default();
    let api: Api<Kustomization> = Api::namespaced(env.client.clone(), &env.namespace);
    let ready = tokio::time::timeout(
        CONVERGE,
        await_condition(api.clone(), "app", |k: Option<&Kustomization>| {
            k.is_some_and(|k| applied(k, commit))
        }),
    )
    .await;
    if !matches!(ready, Ok(Ok(_))) {
        let now = api
            .get_opt("app")
            .await
            .ok()
            .flatten()
            .and_then(|k| k.status);
        check.wrong.push(format!(
            "not Ready at {commit} within {CONVERGE:?}: {now:?}"
        ));
    }
    let expected = app.expected(r);
    let mut live = owned(&env.client).await;
    // Pruned namespaces take a moment to empty; the objects in them go with them.
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    for ((kind, _, name), l) in &live {
        if kind == "Namespace"
            && l.deleting
            && !expected.contains_key(&(kind.clone(), String::new(), name.clone()))
        {
            let gone = await_condition(namespaces.clone(), name, |n: Option<&Namespace>| {
                n.is_none()
            });
            let _ = tokio::time::timeout(Duration::from_secs(60), gone).await;
        }
    }
    if live.values().any(|l| l.deleting) {
        live = owned(&env.client).await;
    }
    let inventory = inventories(&env.client).await;
    for (k, fp) in &expected {
        match live.get(k) {
            Some(l) if !l.deleting && &l.fingerprint == fp => {}
            Some(l) => check.lost.push(format!(
                "{k:?}: live {:?} (deleting: {}), rendered {fp}",
                l.fingerprint, l.deleting
            )),
            None => check.lost.push(format!("{k:?}: missing")),
        }
        if !inventory.contains(k) {
            check.wrong.push(format!("{k:?}: not in the inventory"));
        }
    }
    let ours = format!("{}/app", env.namespace);
    for (k, l) in &live {
        if expected.contains_key(k) {
            continue;
        }
        if !inventory.contains(k) {
            check.orphans.push(format!(
                "{k:?} (owner {}, deleting: {})",
                l.owner, l.deleting
            ));
        } else if l.owner == ours {
            check
                .wrong
                .push(format!("{k:?}: left over though the revision drops it"));
        }
    }
    for k in &inventory {
        if !expected.contains_key(k) {
            check
                .wrong
                .push(format!("{k:?}: in the inventory, not in the revision"));
        }
    }
    check
}

/// Commits revision `r` and asks the source for it now; returns the commit.
async fn push(env: &common::Env, repo: &Repo, app: &App, r: usize) -> String {
    let text = manifest(&app.revision(r));
    let commit = repo
        .commit(
            &[("deploy/app.yaml", text.as_str())],
            &format!("revision {r}"),
        )
        .expect("commit");
    poke_source(env, "repo", &format!("r{r}")).await;
    commit
}

/// Waits until the source's artifact is `commit`.
async fn source_has(env: &common::Env, commit: &str) {
    let sources: Api<GitRepository> = Api::namespaced(env.client.clone(), &env.namespace);
    let has = await_condition(sources, "repo", |g: Option<&GitRepository>| {
        g.and_then(|g| g.status.as_ref()?.artifact.as_ref())
            .is_some_and(|a| a.revision.ends_with(commit))
    });
    tokio::time::timeout(Duration::from_secs(60), has)
        .await
        .expect("the source has the revision")
        .expect("watch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_while_applying_and_pruning_loses_and_orphans_nothing() {
    let started = Instant::now();
    let kill_points = faults::scaled(30, 100);
    let mut dice = Dice::new(SCENARIO);
    let env = common::env("faults-crash").await;
    let app = App {
        ns: env.namespace.clone(),
        prefix: env.namespace.clone(),
    };
    assert_eq!(app.revision(0).len(), 200);
    let repo = GitServer::shared()
        .expect("git server")
        .create_repo(&unique("faults-crash"), Auth::None)
        .expect("repo");
    let text = manifest(&app.revision(0));
    let mut commit = repo
        .commit(&[("deploy/app.yaml", text.as_str())], "revision 0")
        .expect("commit");
    let kubeconfig = env.plane.kubeconfig().to_path_buf();
    let mut controllers = tokio::task::block_in_place(|| {
        Controllers::start(&Options::local(&kubeconfig)).expect("controllers")
    });
    git_repository(&env, "repo", repo.http_url()).await;
    kustomization(
        &env,
        "app",
        json!({"path": "./deploy", "targetNamespace": null}),
    )
    .await;
    let first = converged(&env, &app, 0, &commit).await;
    assert!(
        first.ok(),
        "revision 0: {first:?}\n{}",
        controllers.log_tails()
    );

    // One uninterrupted revision change, to draw kill delays from.
    let mut r = 1;
    commit = push(&env, &repo, &app, r).await;
    source_has(&env, &commit).await;
    let changed = Instant::now();
    let check = converged(&env, &app, r, &commit).await;
    let one_revision = changed.elapsed();
    assert!(
        check.ok(),
        "revision 1: {check:?}\n{}",
        controllers.log_tails()
    );
    eprintln!("one revision change, uninterrupted: {one_revision:?}");

    let mut peak_rss: Option<f64> = None;
    let mut phases: BTreeMap<Phase, usize> = BTreeMap::new();
    let mut passed = 0;
    let mut covered = 0;
    let mut failures: Vec<String> = Vec::new();
    let mut orphans = 0;
    let mut lost = 0;
    let view = LiveView::start(&env.client, &env.namespace, "app");
    let mut from = Instant::now();
    for point in 1..=kill_points {
        // Most kill points bring a new revision and kill the controller at a chosen step of
        // it: after the k-th of its creations and updates shows in a watch, or after the k-th
        // of the objects it drops is deleted. The others kill the restarted controller a
        // random time into finishing the revision it was killed in.
        let mut previous = r.saturating_sub(1);
        let point_started = Instant::now();
        let aim = if dice.chance(0.8) {
            previous = r;
            r += 1;
            let target = app.expected(r);
            let start = view.snapshot();
            let changed = changes(&target, &app.expected(previous));
            // Only this revision's prune deletes what the previous one has and it drops.
            let stale: Vec<Key> = app
                .expected(previous)
                .into_keys()
                .filter(|k| !target.contains_key(k))
                .filter(|k| start.get(k).is_some_and(|l| !l.deleting))
                .collect();
            commit = push(&env, &repo, &app, r).await;
            let wait = one_revision.mul_f64(3.0);
            if dice.chance(0.5) {
                let base = as_rendered(&changed, &target, &start);
                let k = 1 + dice.below(changed.len().saturating_sub(base + 1).max(1));
                view.wait(wait, |live| {
                    as_rendered(&changed, &target, live) >= base + k
                })
                .await;
                format!("after the {k}th of {} writes", changed.len() - base)
            } else {
                let k = 1 + dice.below(stale.len().saturating_sub(1).max(1));
                view.wait(wait, |live| going(&stale, live) >= k).await;
                format!("after the {k}th of {} deletions", stale.len())
            }
        } else {
            let delay = one_revision.mul_f64(0.6 * dice.fraction());
            // The kill point itself, not a wait for a condition.
            tokio::time::sleep_until((from + delay).into()).await;
            format!("{delay:?} after the restart")
        };
        if let Some(mib) = controllers.kustomize_pid().and_then(faults::peak_rss_mib) {
            peak_rss = Some(peak_rss.map_or(mib, |p: f64| p.max(mib)));
        }
        tokio::task::block_in_place(|| controllers.kill_kustomize());
        let live = owned(&env.client).await;
        let landed = phase(&app.expected(r), &app.expected(previous), &live);
        *phases.entry(landed).or_default() += 1;
        eprintln!(
            "kill point {point}/{kill_points}: revision {r}, {aim}: {landed:?} ({:?} into the \
             point, {:?} into the test)",
            point_started.elapsed(),
            started.elapsed()
        );
        let restarting = Instant::now();
        tokio::task::block_in_place(|| controllers.restart_kustomize())
            .expect("restart the kustomize-controller");
        from = Instant::now();
        eprintln!("  restarted in {:?}", restarting.elapsed());

        if point % CHECKPOINT_EVERY == 0 || point == kill_points {
            let check = converged(&env, &app, r, &commit).await;
            eprintln!(
                "checkpoint after kill point {point}: lost {}, orphans {}, other {}",
                check.lost.len(),
                check.orphans.len(),
                check.wrong.len()
            );
            if check.ok() {
                passed += point - covered;
            } else {
                failures.push(format!(
                    "after kill point {point} (revision {r}): {check:#?}"
                ));
            }
            covered = point;
            if point == kill_points {
                orphans = check.orphans.len();
                lost = check.lost.len();
            }
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "{kill_points} kill points over {r} revisions in {elapsed:?} (seed {}): {phases:?}",
        dice.seed()
    );
    faults::record(&Row {
        runs: kill_points as u64,
        passed: passed as u64,
        orphans: orphans as u64,
        lost: lost as u64,
        peak_rss_mib: peak_rss,
        ..Row::new(SCENARIO)
    });
    assert!(
        failures.is_empty(),
        "seed {}: {}\n{}",
        dice.seed(),
        failures.join("\n"),
        controllers.log_tails()
    );
    let apply = phases.get(&Phase::Apply).copied().unwrap_or(0);
    let prune = phases.get(&Phase::Prune).copied().unwrap_or(0);
    assert!(
        apply > 0 && prune > 0 && apply + prune >= kill_points / 3,
        "the kill points must land in the apply and the prune phases: {phases:?} (seed {})",
        dice.seed()
    );
    drop(view);
    tokio::task::block_in_place(move || drop(controllers));
}
