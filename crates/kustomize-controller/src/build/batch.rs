//! Several plain builds in one kustomize process.
//!
//! Most of the CPU of a small `kustomize build` is spent before it reads a file: the Go
//! runtime starts and kustomize parses its builtin transformer configuration, on every run
//! (a 4-object app: 14 ms of CPU on its own, 4.3 ms each in a run of 8; docs/benchmarks.md,
//! tenth round). The builds a new artifact starts ahead of their passes
//! (`steps::render::build_ahead`) come here with `together`: while builds keep coming, they are
//! gathered for up to [`LINGER`] and run as the `resources` of one generated kustomization,
//! with kustomize's origin annotations on; each build gets back the objects whose origin lies
//! in its own directory, with that annotation removed. A build that comes while nothing else
//! is building runs at once: a push to a quiet cluster waits for nothing. A pass builds alone
//! (a pass that waited for others would hold one of the `--concurrency` workers).
//!
//! Only plain builds take part (see [`super::sandbox::Scan::plain`]): their objects keep their
//! names and namespaces, so the steps kustomize runs once over its whole output (references to
//! renamed objects, variables, hash suffixes) find nothing to change and no build sees
//! another's objects; the output is ordered by each object's own id. Each build's part is the
//! same text as its own run would print (tests/build.rs holds that against the real
//! kustomize). Whatever goes wrong with a run of several (an error of one build, two builds
//! with the same object, a timeout, an output this module does not recognise) is answered by
//! running each build on its own, so that each gets its own output or its own error.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use prometheus::IntCounter;
use tokio::sync::{mpsc, oneshot};

use super::run::kustomize_build;
use super::{BuildError, lock};

/// The most builds in one kustomize run.
const MAX_MEMBERS: usize = 16;
/// The most resource documents in one kustomize run of several builds: kustomize's run time
/// grows with the square of the number of objects, so large builds run on their own.
const MAX_DOCUMENTS: usize = 256;
/// How long a run waits for more builds to join it while builds keep coming (see
/// [`dispatch`]).
pub const LINGER: Duration = Duration::from_millis(400);
/// Builds keep coming when one comes less than this long after the one before it.
const CLOSE: Duration = Duration::from_millis(100);
/// Builds that failed are remembered (up to this many) and run on their own after that: one
/// failing build would otherwise fail every run it joins.
const MAX_REMEMBERED_FAILURES: usize = 256;

/// One build, ready to run: its kustomization directory prepared and checked.
#[derive(Debug, Clone)]
pub struct Member {
    /// The kustomize binary.
    pub bin: PathBuf,
    /// The tree the build reads (the artifact or its working copy); errors name paths
    /// relative to it.
    pub tree: PathBuf,
    /// The directory built.
    pub build_dir: PathBuf,
    /// The directory that holds everything the build reaches (the build directory itself,
    /// or the tree when it reaches beyond it): the origin of each of its objects is inside.
    pub owns: PathBuf,
    /// kustomize's HOME and TMPDIR.
    pub scratch: PathBuf,
    /// Where the kustomization of a run of several is written.
    pub work_root: PathBuf,
    /// Kill kustomize after this long.
    pub timeout: Duration,
    /// The resource documents the build reaches.
    pub documents: usize,
    /// Let kustomize fetch remote bases (such a build always runs on its own).
    pub allow_remote: bool,
}

/// Runs `member` in a kustomize process of its own.
pub async fn alone(member: &Member) -> Result<String, BuildError> {
    kustomize_build(
        &member.bin,
        &member.tree,
        &member.build_dir,
        &member.scratch,
        member.allow_remote,
        member.timeout,
    )
    .await
}

struct Pending {
    member: Member,
    reply: oneshot::Sender<Result<String, BuildError>>,
}

/// Runs plain builds, several to a kustomize process when they come close together.
pub struct Batcher {
    shared: Arc<Shared>,
    linger: Duration,
    workers: usize,
    queue: OnceLock<mpsc::UnboundedSender<Pending>>,
}

struct Shared {
    /// Runs started and not ended.
    running: AtomicUsize,
    failed: Mutex<HashSet<PathBuf>>,
    processes: IntCounter,
    builds: AtomicU64,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("linger", &self.linger)
            .field("processes", &self.processes())
            .field("builds", &self.builds())
            .finish()
    }
}

impl Batcher {
    /// A batcher that, while builds keep coming, holds each run up to `linger` for more
    /// builds to join it, but not past `workers` builds (as many as its callers run at once:
    /// no more can come); it counts the kustomize processes it starts in `processes`.
    pub fn new(linger: Duration, workers: usize, processes: IntCounter) -> Self {
        Self {
            shared: Arc::new(Shared {
                running: AtomicUsize::new(0),
                failed: Mutex::new(HashSet::new()),
                processes,
                builds: AtomicU64::new(0),
            }),
            linger,
            workers: workers.clamp(1, MAX_MEMBERS),
            queue: OnceLock::new(),
        }
    }

    /// kustomize processes started, alone or for several builds.
    pub fn processes(&self) -> u64 {
        self.shared.processes.get()
    }

    /// Builds that [`Batcher::build`] answered.
    pub fn builds(&self) -> u64 {
        self.shared.builds.load(Ordering::Relaxed)
    }

    /// Builds remembered as failing, which run on their own.
    pub fn failing(&self) -> usize {
        lock(&self.shared.failed).len()
    }

    /// Builds `member`, alone or with others that come at the same time; the result is the
    /// one its own kustomize run gives.
    pub async fn build(&self, member: Member) -> Result<String, BuildError> {
        self.shared.builds.fetch_add(1, Ordering::Relaxed);
        if member.allow_remote || lock(&self.shared.failed).contains(&member.build_dir) {
            return self.alone(&member).await;
        }
        let queue = self.queue.get_or_init(|| {
            let (queue, arrivals) = mpsc::unbounded_channel();
            tokio::spawn(dispatch(
                self.shared.clone(),
                arrivals,
                self.linger,
                self.workers,
            ));
            queue
        });
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            member: member.clone(),
            reply,
        };
        if queue.send(pending).is_err() {
            return self.alone(&member).await;
        }
        match answer.await {
            Ok(result) => result,
            // The run that took this build ended without an answer (a panic).
            Err(_) => self.alone(&member).await,
        }
    }

    /// Runs `member` in a kustomize process of its own, counted.
    pub async fn alone(&self, member: &Member) -> Result<String, BuildError> {
        self.shared.alone(member).await
    }
}

/// Takes the builds as they come and starts their runs. A build that comes while no run is
/// going and more than [`CLOSE`] after the one before it runs at once, so that a push to a
/// quiet cluster (or one build after another, as in a series of pushes) waits for nothing.
/// Otherwise builds keep coming, and the run waits for others to join it: each within a
/// quarter of `linger` of the one before (the builds that come together come within a few
/// milliseconds of each other), up to `linger` in all and `workers` builds.
async fn dispatch(
    shared: Arc<Shared>,
    mut arrivals: mpsc::UnboundedReceiver<Pending>,
    linger: Duration,
    workers: usize,
) {
    let mut last_arrival: Option<tokio::time::Instant> = None;
    while let Some(first) = arrivals.recv().await {
        let now = tokio::time::Instant::now();
        let busy = shared.running.load(Ordering::Relaxed) > 0
            || last_arrival.is_some_and(|at| now.duration_since(at) < CLOSE);
        last_arrival = Some(now);
        let mut waiting = vec![first];
        if busy {
            let deadline = now + linger;
            while waiting.len() < workers {
                let until = deadline.min(tokio::time::Instant::now() + linger / 4);
                match tokio::time::timeout_at(until, arrivals.recv()).await {
                    Ok(Some(pending)) => waiting.push(pending),
                    Ok(None) | Err(_) => break,
                }
            }
        }
        while let Ok(pending) = arrivals.try_recv() {
            waiting.push(pending);
        }
        if waiting.len() > 1 {
            last_arrival = Some(tokio::time::Instant::now());
        }
        while !waiting.is_empty() {
            let batch = take(&mut waiting);
            let running = Running::start(&shared);
            tokio::spawn(async move {
                running.shared.clone().run(batch).await;
                drop(running);
            });
        }
    }
}

/// A run counted in [`Shared::running`] until it ends, by a panic too.
struct Running {
    shared: Arc<Shared>,
}

impl Running {
    fn start(shared: &Arc<Shared>) -> Self {
        shared.running.fetch_add(1, Ordering::Relaxed);
        Self {
            shared: shared.clone(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shared.running.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Shared {
    async fn alone(&self, member: &Member) -> Result<String, BuildError> {
        self.processes.inc();
        alone(member).await
    }

    async fn run(self: Arc<Self>, mut batch: Vec<Pending>) {
        if batch.len() == 1 {
            let pending = batch.remove(0);
            let result = self.alone(&pending.member).await;
            if result.is_err() {
                self.remember_failure(&pending.member);
            }
            let _ = pending.reply.send(result);
            return;
        }
        let members: Vec<&Member> = batch.iter().map(|p| &p.member).collect();
        self.processes.inc();
        match together(&members).await {
            Ok(outputs) => {
                for (pending, output) in batch.into_iter().zip(outputs) {
                    let _ = pending.reply.send(Ok(output));
                }
            }
            Err(reason) => {
                tracing::debug!(
                    %reason,
                    builds = batch.len(),
                    "a kustomize run of several builds failed: running each on its own"
                );
                let results =
                    futures::future::join_all(batch.iter().map(|p| self.alone(&p.member))).await;
                for (pending, result) in batch.into_iter().zip(results) {
                    if result.is_err() {
                        self.remember_failure(&pending.member);
                    }
                    let _ = pending.reply.send(result);
                }
            }
        }
    }

    fn remember_failure(&self, member: &Member) {
        let mut failed = lock(&self.failed);
        if failed.len() >= MAX_REMEMBERED_FAILURES {
            failed.clear();
        }
        failed.insert(member.build_dir.clone());
    }
}

/// Takes from `queue`, oldest first, the builds that can run together: the same binary,
/// directories apart from each other, within [`MAX_MEMBERS`] and [`MAX_DOCUMENTS`]. The
/// first always goes; the rest wait for the next run.
fn take(queue: &mut Vec<Pending>) -> Vec<Pending> {
    let mut batch: Vec<Pending> = Vec::new();
    let mut documents = 0;
    let mut rest = Vec::new();
    for pending in queue.drain(..) {
        let m = &pending.member;
        let fits = match batch.first() {
            None => true,
            Some(first) => {
                batch.len() < MAX_MEMBERS
                    && documents + m.documents <= MAX_DOCUMENTS
                    && m.bin == first.member.bin
                    && batch.iter().all(|p| {
                        !p.member.owns.starts_with(&m.owns) && !m.owns.starts_with(&p.member.owns)
                    })
            }
        };
        if fits {
            documents += m.documents;
            batch.push(pending);
        } else {
            rest.push(pending);
        }
    }
    *queue = rest;
    batch
}

/// Runs `members` in one kustomize process and splits its output between them.
async fn together(members: &[&Member]) -> Result<Vec<String>, String> {
    let first = members.first().ok_or("no builds")?;
    let dir = tempfile::Builder::new()
        .prefix(".batch-")
        .tempdir_in(&first.work_root)
        .map_err(|e| format!("creating the run's directory: {e}"))?;
    let root = std::fs::canonicalize(dir.path()).map_err(|e| e.to_string())?;
    let mut kustomization = String::from(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
         buildMetadata:\n- originAnnotations\nresources:\n",
    );
    let mut origins = Vec::with_capacity(members.len());
    for member in members {
        let reach = |path: &Path| -> Result<String, String> {
            let canonical = std::fs::canonicalize(path).map_err(|e| e.to_string())?;
            let relative = relative(&root, &canonical);
            relative
                .to_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("{} is not UTF-8", relative.display()))
        };
        let entry = serde_json::to_string(&reach(&member.build_dir)?).map_err(|e| e.to_string())?;
        kustomization.push_str(&format!("- {entry}\n"));
        origins.push(format!("{}/", reach(&member.owns)?));
    }
    std::fs::write(root.join("kustomization.yaml"), kustomization).map_err(|e| e.to_string())?;
    let timeout = members.iter().map(|m| m.timeout).min().unwrap_or_default();
    let yaml = kustomize_build(&first.bin, &root, &root, &first.scratch, false, timeout)
        .await
        .map_err(|e| e.to_string())?;
    let outputs = split(&yaml, &origins)?;
    apart(&outputs)?;
    Ok(outputs)
}

/// The objects that name another object by a mapping of name and namespace, as kustomize
/// v5's builtin name references have them: (kind, what it names, where). When kustomize's last
/// step finds one object of the named kind and name in the whole run, it writes that object's
/// namespace into the mapping, so an object of another build could be written in (names
/// written as plain strings are only ever replaced by a new name, and the objects of plain
/// builds keep theirs).
const NAMESPACED_REFERENCES: [(&str, &str, &[&str]); 6] = [
    ("RoleBinding", "ServiceAccount", &["subjects", "*", "name"]),
    (
        "ClusterRoleBinding",
        "ServiceAccount",
        &["subjects", "*", "name"],
    ),
    (
        "ValidatingWebhookConfiguration",
        "Service",
        &["webhooks", "*", "clientConfig", "service", "name"],
    ),
    (
        "MutatingWebhookConfiguration",
        "Service",
        &["webhooks", "*", "clientConfig", "service", "name"],
    ),
    (
        "StorageClass",
        "Secret",
        &["parameters", "secretRef", "name"],
    ),
    (
        "Node",
        "ConfigMap",
        &["spec", "configSource", "configMap", "name"],
    ),
];

/// Refuses a run in which an object of one build names, by name and namespace, an object of
/// that kind and name that another build holds (see [`NAMESPACED_REFERENCES`]): kustomize may
/// have pointed it at the other build's object. Such builds run on their own.
fn apart(outputs: &[String]) -> Result<(), String> {
    let referrer = |document: &str| {
        NAMESPACED_REFERENCES
            .iter()
            .any(|(kind, _, _)| document.lines().any(|l| l == format!("kind: {kind}")))
    };
    if !outputs
        .iter()
        .any(|o| documents(o).into_iter().any(referrer))
    {
        return Ok(());
    }
    let mut held: Vec<HashSet<(String, String)>> = Vec::with_capacity(outputs.len());
    let mut named: Vec<Vec<(&str, String)>> = Vec::with_capacity(outputs.len());
    for output in outputs {
        let mut objects = HashSet::new();
        let mut references = Vec::new();
        for (index, document) in documents(output).into_iter().enumerate() {
            let object =
                crate::manifests::parse_document(index, document).map_err(|e| e.to_string())?;
            let kind = object["kind"].as_str().unwrap_or_default().to_owned();
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            for (referrer, referral, path) in NAMESPACED_REFERENCES {
                if kind == referrer {
                    let mut names = Vec::new();
                    strings_at(&object, path, &mut names);
                    references.extend(names.into_iter().map(|n| (referral, n)));
                }
            }
            objects.insert((kind, name.to_owned()));
        }
        held.push(objects);
        named.push(references);
    }
    for (i, references) in named.iter().enumerate() {
        for (kind, name) in references {
            let key = ((*kind).to_owned(), name.clone());
            if held
                .iter()
                .enumerate()
                .any(|(j, h)| j != i && h.contains(&key))
            {
                return Err(format!(
                    "a build names {kind} '{name}', which another build of the run holds"
                ));
            }
        }
    }
    Ok(())
}

/// The strings at `path` in `value` (`*`: each item of a list).
fn strings_at(value: &serde_json::Value, path: &[&str], out: &mut Vec<String>) {
    match path.split_first() {
        None => {
            if let Some(s) = value.as_str() {
                out.push(s.to_owned());
            }
        }
        Some((&"*", rest)) => {
            for item in value.as_array().into_iter().flatten() {
                strings_at(item, rest, out);
            }
        }
        Some((key, rest)) => {
            if let Some(next) = value.get(*key) {
                strings_at(next, rest, out);
            }
        }
    }
}

/// `to` relative to `from`, both absolute.
fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for component in &to[common..] {
        out.push(component);
    }
    out
}

/// Splits the output of a run of several builds: each object goes to the build whose
/// `origins` prefix its origin path starts with, without the origin annotation, in the order
/// of the output; each build's objects are joined as kustomize joins them.
pub fn split(yaml: &str, origins: &[String]) -> Result<Vec<String>, String> {
    let mut outputs = vec![String::new(); origins.len()];
    for document in documents(yaml) {
        let (origin, object) = strip_origin(document)?;
        let owner = origins
            .iter()
            .position(|prefix| origin.starts_with(prefix.as_str()))
            .ok_or_else(|| format!("an object from {origin:?} belongs to no build of the run"))?;
        let output = &mut outputs[owner];
        if !output.is_empty() {
            output.push_str("---\n");
        }
        output.push_str(&object);
    }
    Ok(outputs)
}

/// kustomize's output, one document per object.
fn documents(yaml: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in yaml.split_inclusive('\n') {
        if line == "---\n" {
            out.push(&yaml[start..offset]);
            start = offset + line.len();
        }
        offset += line.len();
    }
    if start < yaml.len() {
        out.push(&yaml[start..]);
    }
    out
}

const ORIGIN_KEY: &str = "    config.kubernetes.io/origin: |\n";
const ORIGIN_PATH: &str = "      path: ";

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// The origin path of one object as kustomize prints it, and the object without its origin
/// annotation (and without `annotations` when that was its only one), as kustomize prints it
/// on a build of its own. An error for any other layout.
fn strip_origin(document: &str) -> Result<(String, String), String> {
    let unexpected = || format!("an object without the expected origin annotation: {document:?}");
    if document.matches("config.kubernetes.io/origin").count() != 1 {
        return Err(unexpected());
    }
    let lines: Vec<&str> = document.split_inclusive('\n').collect();
    let key = lines
        .iter()
        .position(|l| *l == ORIGIN_KEY)
        .ok_or_else(unexpected)?;
    let annotations = (0..key)
        .rev()
        .find(|&i| indent(lines[i]) < 4)
        .filter(|&i| lines[i] == "  annotations:\n")
        .ok_or_else(unexpected)?;
    (0..annotations)
        .rev()
        .find(|&i| indent(lines[i]) < 2)
        .filter(|&i| lines[i] == "metadata:\n")
        .ok_or_else(unexpected)?;
    let value_end = (key + 1..lines.len())
        .find(|&i| !lines[i].starts_with("      "))
        .unwrap_or(lines.len());
    let [path_line] = &lines[key + 1..value_end] else {
        return Err(unexpected());
    };
    let origin = path_line
        .strip_prefix(ORIGIN_PATH)
        .map(str::trim_end)
        .filter(|p| !p.is_empty() && !p.starts_with(['"', '\'']))
        .ok_or_else(unexpected)?;
    let alone = annotations + 1 == key && lines.get(value_end).is_none_or(|l| indent(l) < 4);
    let mut object = String::with_capacity(document.len());
    for (i, line) in lines.iter().enumerate() {
        if (key..value_end).contains(&i) || (alone && i == annotations) {
            continue;
        }
        object.push_str(line);
    }
    Ok((origin.to_owned(), object))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_to_the_common_directory() {
        let r = |a: &str, b: &str| relative(Path::new(a), Path::new(b)).display().to_string();
        assert_eq!(
            r("/c/work/.batch-1", "/c/artifacts/x/deploy"),
            "../../artifacts/x/deploy"
        );
        assert_eq!(r("/c/work", "/c/work/a"), "a");
        assert_eq!(r("/a/b", "/c"), "../../c");
    }

    #[test]
    fn objects_go_to_the_build_they_came_from_without_the_origin() {
        let yaml = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  annotations:\n    \
                    config.kubernetes.io/origin: |\n      path: ../a/sa.yaml\n  name: one\n---\n\
                    apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  annotations:\n    \
                    config.kubernetes.io/origin: |\n      path: ../b/base/sa.yaml\n    keep: \
                    me\n  labels: {}\n  name: two\n---\napiVersion: v1\nkind: ConfigMap\n\
                    metadata:\n  annotations:\n    a: |\n      multi\n      line\n    \
                    config.kubernetes.io/origin: |\n      path: ../a/cm.yaml\n  name: three\n";
        let out = split(yaml, &["../a/".into(), "../b/".into()]).expect("split");
        assert_eq!(
            out[0],
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: one\n---\napiVersion: v1\n\
             kind: ConfigMap\nmetadata:\n  annotations:\n    a: |\n      multi\n      line\n  \
             name: three\n"
        );
        assert_eq!(
            out[1],
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  annotations:\n    keep: me\n  \
             labels: {}\n  name: two\n"
        );
    }

    #[test]
    fn an_output_of_another_shape_is_refused() {
        let origins = ["../a/".to_string()];
        for yaml in [
            // No origin.
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: one\n",
            // Origin of no build.
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  annotations:\n    \
             config.kubernetes.io/origin: |\n      path: ../z/sa.yaml\n  name: one\n",
            // Origin with more than a path.
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  annotations:\n    \
             config.kubernetes.io/origin: |\n      path: ../a/sa.yaml\n      repo: x\n  name: one\n",
            // The key elsewhere too.
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  annotations:\n    \
             config.kubernetes.io/origin: |\n      path: ../a/cm.yaml\n  name: one\ndata:\n  \
             k: config.kubernetes.io/origin\n",
        ] {
            assert!(split(yaml, &origins).is_err(), "{yaml}");
        }
    }

    fn pending(owns: &str, documents: usize) -> Pending {
        let (reply, _) = oneshot::channel();
        Pending {
            member: Member {
                bin: "kustomize".into(),
                tree: owns.into(),
                build_dir: owns.into(),
                owns: owns.into(),
                scratch: "/tmp".into(),
                work_root: "/tmp".into(),
                timeout: Duration::from_secs(1),
                documents,
                allow_remote: false,
            },
            reply,
        }
    }

    #[test]
    fn a_run_takes_builds_apart_from_each_other_within_its_limits() {
        let mut queue = vec![
            pending("/a/app", 4),
            pending("/a/app/sub", 4),
            pending("/b", 4),
            pending("/big", MAX_DOCUMENTS),
            pending("/c", 4),
        ];
        let owned = |batch: &[Pending]| {
            batch
                .iter()
                .map(|p| p.member.owns.display().to_string())
                .collect::<Vec<_>>()
        };
        let first = take(&mut queue);
        assert_eq!(owned(&first), ["/a/app", "/b", "/c"]);
        assert_eq!(owned(&queue), ["/a/app/sub", "/big"]);
        let second = take(&mut queue);
        assert_eq!(owned(&second), ["/a/app/sub"]);
        assert_eq!(owned(&take(&mut queue)), ["/big"]);
        assert!(take(&mut queue).is_empty());
        let mut many: Vec<Pending> = (0..MAX_MEMBERS + 3)
            .map(|i| pending(&format!("/m{i}"), 1))
            .collect();
        assert_eq!(take(&mut many).len(), MAX_MEMBERS);
        assert_eq!(many.len(), 3);
    }
}
