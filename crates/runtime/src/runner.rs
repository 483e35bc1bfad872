//! The loop that runs a controller's passes: first come, first served, at most `concurrency`
//! at once, never two of one object at once, and each object looked at again when its last
//! pass asked.
//!
//! kube's `Controller` keeps every pass it started in a map that it walks on each wake-up, and
//! the objects it cannot start yet in a hash set that it hands out in no order. Bounded by
//! kube's own limit, an object of a backlog could wait for the whole backlog (at N=1000 in the
//! benchmark, Kustomizations whose artifact came first were applied 55 s later than the median
//! one); with the limit lifted and passes queued at a fair semaphore instead, every waiting
//! object counted as running and each wake-up walked up to a thousand of them (~7 % of either
//! controller's CPU in a cold start). Here due objects wait in a FIFO queue, only the passes
//! that run are tasks, and the loop touches only what woke it.
//!
//! What a pass sees is the object as the store holds it when the pass starts; an object gone
//! from the store by then is skipped. A change of an object whose pass runs starts one more
//! pass after it. A requeue asked by a pass ([`Action`]) is dropped when the object is
//! triggered earlier by a change: the pass that change starts asks again.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{BoxStream, SelectAll};
use futures::{Stream, StreamExt};
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};
use prometheus::{Histogram, HistogramOpts, IntGauge, Registry};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

/// What a pass asks for next: to be looked at again after a while, or only when something
/// changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    requeue_after: Option<Duration>,
}

impl Action {
    /// Look again after `after`, unless a change comes first.
    #[must_use]
    pub const fn requeue(after: Duration) -> Self {
        Self {
            requeue_after: Some(after),
        }
    }

    /// Look again only when something changes.
    #[must_use]
    pub const fn await_change() -> Self {
        Self {
            requeue_after: None,
        }
    }

    /// When to look again without a change.
    pub const fn requeue_after(&self) -> Option<Duration> {
        self.requeue_after
    }
}

/// Why an object is due: the `object.reason` of its pass's span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The object itself changed.
    Changed,
    /// An object it depends on changed.
    Related,
    /// Asked for from inside the process (a webhook, the view of managed objects).
    Requested,
    /// Its last pass asked to be run again after a while.
    Requeued,
    /// Its last pass failed, and the error policy asked to try again.
    Retry,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reason::Changed => "object updated",
            Reason::Related => "related object updated",
            Reason::Requested => "reconcile requested",
            Reason::Requeued => "reconciler requested retry",
            Reason::Retry => "error policy requested retry",
        })
    }
}

/// A stream of objects to look at, and why.
pub type Triggers<K> = BoxStream<'static, (ObjectRef<K>, Reason)>;

/// The errors of one watch, for its log lines. A watch retries by itself and one error now and
/// then is routine (410 after a gap, a connection that broke), so errors are logged at debug
/// until [`WATCH_ERRORS_FOR_WARNING`] come in a row, each within [`WATCH_ERRORS_APART`] of the
/// last: then the watch is failing (a missing CRD, an invalid label selector, an unreachable
/// API server), the controller sees no change of that kind while it lasts, and it says so at
/// warn, again every [`WATCH_ERRORS_BETWEEN_WARNINGS`] errors, and at info once objects come
/// again.
#[derive(Debug, Default)]
pub struct WatchErrors {
    in_a_row: u32,
    last: Option<Instant>,
}

/// Errors in a row after which a watch is reported as failing.
const WATCH_ERRORS_FOR_WARNING: u32 = 3;
/// Errors between two warnings of a watch that keeps failing.
const WATCH_ERRORS_BETWEEN_WARNINGS: u32 = 10;
/// Errors further apart than this are not in a row (a failing watch retries at least every
/// 30 s, kube's longest backoff).
const WATCH_ERRORS_APART: Duration = Duration::from_secs(120);

impl WatchErrors {
    /// Counts an error at `now`: whether to warn of it.
    fn failed(&mut self, now: Instant) -> bool {
        let close = self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) <= WATCH_ERRORS_APART);
        self.in_a_row = if close { self.in_a_row + 1 } else { 1 };
        self.last = Some(now);
        self.in_a_row >= WATCH_ERRORS_FOR_WARNING
            && (self.in_a_row - WATCH_ERRORS_FOR_WARNING)
                .is_multiple_of(WATCH_ERRORS_BETWEEN_WARNINGS)
    }

    /// An object came: the errors in a row before it, when they were reported as failing.
    fn recovered(&mut self) -> Option<u32> {
        let failed = std::mem::take(&mut self.in_a_row);
        self.last = None;
        (failed >= WATCH_ERRORS_FOR_WARNING).then_some(failed)
    }

    /// Logs `event`'s error, or the recovery that `event` shows; its object, if any.
    pub fn see<T, E: std::fmt::Display>(&mut self, kind: &str, event: Result<T, E>) -> Option<T> {
        match event {
            Ok(object) => {
                if let Some(errors) = self.recovered() {
                    tracing::info!(%kind, errors, "the watch works again");
                }
                Some(object)
            }
            Err(error) => {
                if self.failed(Instant::now()) {
                    tracing::warn!(
                        %kind,
                        errors = self.in_a_row,
                        %error,
                        "the watch keeps failing: changes of this kind are not seen"
                    );
                } else {
                    tracing::debug!(%kind, %error, "watch error");
                }
                None
            }
        }
    }
}

/// The objects of a watch of the controller's own kind, as triggers. The watch retries errors
/// with its own backoff; they are logged at debug, and at warn from the third in a row (then
/// every tenth), with an info line when objects come again.
pub fn changed<K, E>(stream: impl Stream<Item = Result<K, E>> + Send + 'static) -> Triggers<K>
where
    K: Resource + Send + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
    E: std::fmt::Display + Send + 'static,
{
    let kind = K::kind(&Default::default()).into_owned();
    let mut errors = WatchErrors::default();
    stream
        .filter_map(move |event| {
            let object = errors.see(&kind, event);
            futures::future::ready(
                object.map(|object| (ObjectRef::from_obj(&object), Reason::Changed)),
            )
        })
        .boxed()
}

/// The objects that `related` names for each object of another watch, as triggers. Its errors
/// are logged as [`changed`] logs them.
pub fn related<K, R, E, I>(
    stream: impl Stream<Item = Result<R, E>> + Send + 'static,
    related: impl Fn(R) -> I + Send + Sync + 'static,
) -> Triggers<K>
where
    K: Resource + Send + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
    R: Resource + Send + 'static,
    R::DynamicType: Default,
    E: std::fmt::Display + Send + 'static,
    I: IntoIterator<Item = ObjectRef<K>>,
{
    let kind = R::kind(&Default::default()).into_owned();
    let mut errors = WatchErrors::default();
    stream
        .flat_map(move |event| {
            let refs: Vec<_> = errors
                .see(&kind, event)
                .map(|object| related(object).into_iter().collect())
                .unwrap_or_default();
            futures::stream::iter(refs.into_iter().map(|r| (r, Reason::Related)))
        })
        .boxed()
}

/// Objects asked for from inside the process, as triggers.
pub fn requested<K>(stream: impl Stream<Item = ObjectRef<K>> + Send + 'static) -> Triggers<K>
where
    K: Resource + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    stream.map(|r| (r, Reason::Requested)).boxed()
}

/// How many passes run at once (0: no limit), and where the queue reports its length and
/// how long objects wait in it. A bare number is a limit without metrics.
#[derive(Debug, Clone)]
pub struct Workers {
    /// Passes at once.
    pub concurrency: u16,
    /// The queue's metrics, when the controller exports them.
    pub metrics: Option<QueueMetrics>,
}

impl From<u16> for Workers {
    fn from(concurrency: u16) -> Self {
        Self {
            concurrency,
            metrics: None,
        }
    }
}

/// The backlog of a controller: objects due whose pass waits for a free worker.
#[derive(Debug, Clone)]
pub struct QueueMetrics {
    /// `<prefix>_queue_depth`: objects due and not yet started.
    pub depth: IntGauge,
    /// `<prefix>_queue_wait_seconds`: from when an object became due (a change, a related
    /// change, a request, or the time a pass asked for) to the start of its pass, or to when it
    /// was dropped, deleted while it waited. An object changed while its own pass runs becomes
    /// due when that pass ends.
    pub wait: Histogram,
}

impl QueueMetrics {
    /// Creates both metrics, described for `kind`, and registers them in `registry`.
    pub fn register(registry: &Registry, kind: &str) -> Result<Self, prometheus::Error> {
        let depth = IntGauge::new(
            "queue_depth",
            format!("{kind} objects due and waiting for a worker"),
        )?;
        let wait = Histogram::with_opts(
            HistogramOpts::new(
                "queue_wait_seconds",
                format!("From when a {kind} became due to the start of its pass"),
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
        )?;
        registry.register(Box::new(depth.clone()))?;
        registry.register(Box::new(wait.clone()))?;
        Ok(Self { depth, wait })
    }
}

/// How long an object waits after a pass that panicked.
const AFTER_PANIC: Duration = Duration::from_secs(60);

/// Which objects are due, in order, and which wait for a time.
struct Queue<K: Resource>
where
    K::DynamicType: Eq + Hash + Clone,
{
    /// Due now, first come first served, with when each became due.
    ready: VecDeque<(ObjectRef<K>, Reason, Instant)>,
    /// The members of `ready`.
    queued: HashSet<ObjectRef<K>>,
    /// Objects whose pass runs now.
    running: HashSet<ObjectRef<K>>,
    /// Objects triggered while their pass ran, to run again when it ends.
    again: HashMap<ObjectRef<K>, Reason>,
    /// When each waiting object is due, with the sequence number of its entry in `timers`.
    due: HashMap<ObjectRef<K>, (Instant, u64)>,
    /// Entries by due time; an entry whose sequence number no longer stands in `due` is stale.
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    /// The object and reason of each entry of `timers`.
    entries: HashMap<u64, (ObjectRef<K>, Reason)>,
    next_entry: u64,
}

impl<K: Resource> Queue<K>
where
    K::DynamicType: Eq + Hash + Clone,
{
    fn new() -> Self {
        Self {
            ready: VecDeque::new(),
            queued: HashSet::new(),
            running: HashSet::new(),
            again: HashMap::new(),
            due: HashMap::new(),
            timers: BinaryHeap::new(),
            entries: HashMap::new(),
            next_entry: 0,
        }
    }

    /// `object` is due now: queued once, or run again after its running pass. Any later time
    /// it waited for is dropped; the pass asks again.
    fn trigger(&mut self, object: ObjectRef<K>, reason: Reason) {
        self.due.remove(&object);
        if self.running.contains(&object) {
            self.again.entry(object).or_insert(reason);
        } else if self.queued.insert(object.clone()) {
            self.ready.push_back((object, reason, Instant::now()));
        }
    }

    /// `object` is due at `at`, unless it is due sooner already.
    fn schedule(&mut self, object: ObjectRef<K>, at: Instant, reason: Reason) {
        if self.queued.contains(&object) || self.due.get(&object).is_some_and(|(due, _)| *due <= at)
        {
            return;
        }
        self.next_entry += 1;
        let entry = self.next_entry;
        self.due.insert(object.clone(), (at, entry));
        self.entries.insert(entry, (object, reason));
        self.timers.push(Reverse((at, entry)));
    }

    /// The earliest time an object waits for (stale entries dropped on the way).
    fn next_due(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, entry))) = self.timers.peek().copied() {
            let current = self
                .entries
                .get(&entry)
                .is_some_and(|(object, _)| self.due.get(object) == Some(&(at, entry)));
            if current {
                return Some(at);
            }
            self.timers.pop();
            self.entries.remove(&entry);
        }
        None
    }

    /// Moves every object due by `now` to the queue.
    fn expire(&mut self, now: Instant) {
        while let Some(at) = self.next_due() {
            if at > now {
                break;
            }
            let Some(Reverse((_, entry))) = self.timers.pop() else {
                break;
            };
            if let Some((object, reason)) = self.entries.remove(&entry) {
                self.trigger(object, reason);
            }
        }
    }

    /// The next object to run, if any is due, with how long it waited.
    fn start(&mut self) -> Option<(ObjectRef<K>, Reason, Duration)> {
        let (object, reason, since) = self.ready.pop_front()?;
        self.queued.remove(&object);
        self.running.insert(object.clone());
        Some((object, reason, since.elapsed()))
    }

    /// The pass of `object` ended, asking to look again after `after` (`None`: on a change).
    fn finished(&mut self, object: ObjectRef<K>, after: Option<(Duration, Reason)>) {
        self.running.remove(&object);
        if let Some(reason) = self.again.remove(&object) {
            self.trigger(object, reason);
        } else if let Some((after, reason)) = after {
            self.schedule(object, Instant::now() + after, reason);
        }
    }
}

/// Runs passes of the objects in `store` as `triggers` name them, until `shutdown` resolves;
/// then waits for the passes that run (none starts after it). Passes start once the store has
/// listed; a stop before that returns at once. A pass that fails gets the [`Action`] of
/// `error_policy`. At most `workers` passes run at once.
pub async fn run<K, C, E, Fut>(
    store: Store<K>,
    triggers: Vec<Triggers<K>>,
    reconcile: impl Fn(Arc<K>, Arc<C>) -> Fut,
    error_policy: impl Fn(Arc<K>, &E, Arc<C>) -> Action,
    ctx: Arc<C>,
    workers: impl Into<Workers>,
    shutdown: impl Future<Output = ()>,
) where
    K: Resource + Clone + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Debug + Send + Sync,
    C: Send + Sync + 'static,
    E: Send + 'static,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
{
    let Workers {
        concurrency,
        metrics,
    } = workers.into();
    let limit = match concurrency {
        0 => usize::MAX,
        n => usize::from(n),
    };
    let mut triggers: SelectAll<Triggers<K>> = futures::stream::select_all(triggers);
    let mut queue = Queue::new();
    let mut tasks: JoinSet<(Arc<K>, Result<Action, E>)> = JoinSet::new();
    let mut running: HashMap<tokio::task::Id, ObjectRef<K>> = HashMap::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let ready_store = store.clone();
    let mut listed = std::pin::pin!(ready_store.wait_until_ready());
    let (mut ready, mut stopping, mut triggers_ended) = (false, false, false);
    loop {
        while ready && !stopping && running.len() < limit {
            let Some((object, reason, waited)) = queue.start() else {
                break;
            };
            if let Some(metrics) = &metrics {
                metrics.wait.observe(waited.as_secs_f64());
            }
            let Some(current) = store.get(&object) else {
                // Deleted since it was triggered.
                queue.finished(object, None);
                continue;
            };
            let span = tracing::info_span!(
                "reconciling object",
                "object.ref" = %object,
                object.reason = %reason
            );
            let pass = reconcile(current.clone(), ctx.clone());
            let handle = tasks.spawn(async move { (current, pass.await) }.instrument(span));
            running.insert(handle.id(), object);
        }
        if let Some(metrics) = &metrics {
            metrics
                .depth
                .set(i64::try_from(queue.ready.len()).unwrap_or(i64::MAX));
        }
        if stopping && tasks.is_empty() {
            if !ready {
                // A server that never answers the first list would hold a wait for it until
                // the client's read timeout (minutes); with nothing running, nothing waits.
                tracing::warn!(
                    kind = %K::kind(&Default::default()),
                    "stopping before the first list of the watch answered"
                );
            }
            return;
        }
        let next_due = queue.next_due();
        tokio::select! {
            // A stop first, then what frees a slot, then what fills one.
            biased;
            () = &mut shutdown, if !stopping => stopping = true,
            result = &mut listed, if !ready => {
                if result.is_err() {
                    tracing::warn!("the store's writer is gone: no pass can start");
                    stopping = true;
                }
                ready = true;
            }
            Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                let (id, after) = match done {
                    Ok((id, (_, Ok(action)))) => {
                        (id, action.requeue_after().map(|d| (d, Reason::Requeued)))
                    }
                    Ok((id, (object, Err(error)))) => {
                        let action = error_policy(object, &error, ctx.clone());
                        (id, action.requeue_after().map(|d| (d, Reason::Retry)))
                    }
                    Err(error) => {
                        let object = running.get(&error.id());
                        tracing::error!(object = ?object, %error, "a pass panicked");
                        (error.id(), Some((AFTER_PANIC, Reason::Retry)))
                    }
                };
                if let Some(object) = running.remove(&id) {
                    queue.finished(object, after);
                }
            }
            () = tokio::time::sleep_until(next_due.unwrap_or_else(Instant::now)),
                if next_due.is_some() && !stopping => queue.expire(Instant::now()),
            trigger = triggers.next(), if !stopping && !triggers_ended => match trigger {
                Some((object, reason)) => queue.trigger(object, reason),
                None => triggers_ended = true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;
    use kube::runtime::reflector::store::Writer;
    use kube::runtime::watcher::Event;
    use std::sync::Mutex;
    use tokio::sync::{Semaphore, mpsc, oneshot};

    /// Waits until the runner has taken every trigger sent on `send`.
    async fn consumed(send: &mpsc::Sender<ObjectRef<ConfigMap>>) {
        while send.capacity() < send.max_capacity() {
            tokio::task::yield_now().await;
        }
    }

    fn config_map(name: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn named(name: &str) -> ObjectRef<ConfigMap> {
        ObjectRef::new(name).within("ns")
    }

    /// A store holding `names`, listed.
    fn listed(names: &[&str]) -> (Store<ConfigMap>, Writer<ConfigMap>) {
        let mut writer = Writer::default();
        writer.apply_watcher_event(&Event::Init);
        for name in names {
            writer.apply_watcher_event(&Event::InitApply(config_map(name)));
        }
        writer.apply_watcher_event(&Event::InitDone);
        (writer.as_reader(), writer)
    }

    /// What the passes saw: the names in the order their passes started, and the most that
    /// ran at once.
    #[derive(Default)]
    struct Log {
        started: Vec<String>,
        running: usize,
        most: usize,
    }

    /// The trigger sender, the log, the stop and the runner's task.
    type Harness = (
        mpsc::Sender<ObjectRef<ConfigMap>>,
        Arc<Mutex<Log>>,
        oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    );

    /// A runner over `store` whose passes take a turn from `turns` before they end (`None`: they
    /// end at once) and answer `answer`; triggered through the returned sender. Stopped by the
    /// returned oneshot; the task ends when the runner returns.
    fn start(
        store: Store<ConfigMap>,
        concurrency: u16,
        metrics: Option<QueueMetrics>,
        turns: Option<Arc<Semaphore>>,
        answer: fn(&str) -> Result<Action, String>,
    ) -> Harness {
        let (send, receive) = mpsc::channel(100);
        let log = Arc::new(Mutex::new(Log::default()));
        let (stop, stopped) = oneshot::channel::<()>();
        let passes = log.clone();
        let reconcile = move |object: Arc<ConfigMap>, _: Arc<()>| {
            let (log, turns) = (passes.clone(), turns.clone());
            async move {
                let name = object.metadata.name.clone().unwrap_or_default();
                {
                    let mut log = log.lock().expect("log");
                    log.started.push(name.clone());
                    log.running += 1;
                    log.most = log.most.max(log.running);
                }
                if let Some(turns) = turns {
                    turns.acquire().await.expect("turn").forget();
                }
                log.lock().expect("log").running -= 1;
                answer(&name)
            }
        };
        let triggers = vec![requested(futures::stream::unfold(
            receive,
            |mut receive| async move { receive.recv().await.map(|r| (r, receive)) },
        ))];
        let task = tokio::spawn(run(
            store,
            triggers,
            reconcile,
            |_, _: &String, _| Action::requeue(Duration::from_millis(20)),
            Arc::new(()),
            Workers {
                concurrency,
                metrics,
            },
            async move {
                let _ = stopped.await;
            },
        ));
        (send, log, stop, task)
    }

    #[test]
    fn a_watch_is_reported_failing_after_errors_in_a_row_and_again_when_it_recovers() {
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        // Routine errors, each alone: never a warning.
        let mut sporadic = WatchErrors::default();
        for hour in 0..10 {
            assert!(!sporadic.failed(at(hour * 3600)));
        }
        // Errors in a row, as a failing watch retries with its backoff: a warning at the
        // third, then every tenth.
        let mut failing = WatchErrors::default();
        let warned: Vec<u32> = (1..=30)
            .filter(|n| failing.failed(at(u64::from(*n) * 30)))
            .collect();
        assert_eq!(warned, [3, 13, 23]);
        assert_eq!(failing.recovered(), Some(30));
        // After an object came, the count starts again.
        assert!(!failing.failed(at(2000)));
        assert_eq!(failing.recovered(), None);
        // Two errors and then objects: no warning, and no recovery to report.
        let mut brief = WatchErrors::default();
        assert!(!brief.failed(at(1)) && !brief.failed(at(2)));
        assert_eq!(brief.recovered(), None);
    }

    fn done(_: &str) -> Result<Action, String> {
        Ok(Action::await_change())
    }

    /// Waits (up to 10 s, on the log) until `check` holds.
    async fn until(log: &Arc<Mutex<Log>>, check: impl Fn(&Log) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !check(&log.lock().expect("log")) {
            assert!(Instant::now() < deadline, "timed out");
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test]
    async fn passes_start_first_come_first_served_and_at_most_the_limit_at_once() {
        let names: Vec<String> = (0..60).map(|i| format!("cm-{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let (store, _writer) = listed(&refs);
        let turns = Arc::new(Semaphore::new(0));
        let (send, log, stop, task) = start(store, 3, None, Some(turns.clone()), done);
        // Due in this order; a hash set would hand them out in another.
        for name in &names {
            send.send(named(name)).await.expect("send");
        }
        until(&log, |l| l.started.len() == 3).await;
        turns.add_permits(names.len());
        until(&log, |l| l.started.len() == names.len() && l.running == 0).await;
        {
            let log = log.lock().expect("log");
            assert_eq!(log.started, names);
            assert_eq!(log.most, 3);
        }
        stop.send(()).expect("stop");
        task.await.expect("runner");
    }

    #[tokio::test(start_paused = true)]
    async fn the_queue_reports_its_backlog_and_how_long_each_object_waited() {
        let registry = Registry::new_custom(Some("test".into()), None).expect("registry");
        let metrics = QueueMetrics::register(&registry, "ConfigMap").expect("register");
        let (store, _writer) = listed(&["a", "b", "c"]);
        let turns = Arc::new(Semaphore::new(0));
        let (send, log, stop, task) =
            start(store, 1, Some(metrics.clone()), Some(turns.clone()), done);
        for name in ["a", "b", "c"] {
            send.send(named(name)).await.expect("send");
        }
        consumed(&send).await;
        until(&log, |l| l.started.len() == 1).await;
        // One runs and holds the only worker; two wait.
        until(&log, |_| metrics.depth.get() == 2).await;
        assert_eq!(metrics.wait.get_sample_count(), 1);
        // The clock is paused: the first pass holds the worker for exactly this long.
        let held = Duration::from_millis(30);
        tokio::time::advance(held).await;
        turns.add_permits(3);
        until(&log, |l| l.started.len() == 3 && l.running == 0).await;
        stop.send(()).expect("stop");
        task.await.expect("runner");
        assert_eq!(metrics.depth.get(), 0);
        assert_eq!(metrics.wait.get_sample_count(), 3);
        // The two that waited waited at least as long as the first pass was held.
        assert!(
            metrics.wait.get_sample_sum() >= 2.0 * held.as_secs_f64(),
            "waits sum to {} s",
            metrics.wait.get_sample_sum()
        );
        let names: Vec<String> = registry
            .gather()
            .iter()
            .map(|f| f.name().to_owned())
            .collect();
        assert!(names.contains(&"test_queue_depth".to_owned()), "{names:?}");
        assert!(
            names.contains(&"test_queue_wait_seconds".to_owned()),
            "{names:?}"
        );
    }

    #[tokio::test]
    async fn a_change_during_a_pass_runs_one_more_pass_after_it_never_beside_it() {
        let (store, _writer) = listed(&["a"]);
        let turns = Arc::new(Semaphore::new(0));
        let (send, log, stop, task) = start(store, 4, None, Some(turns.clone()), done);
        send.send(named("a")).await.expect("send");
        until(&log, |l| l.started.len() == 1).await;
        for _ in 0..3 {
            send.send(named("a")).await.expect("send");
        }
        consumed(&send).await;
        assert_eq!(log.lock().expect("log").started.len(), 1, "not beside it");
        turns.add_permits(10);
        until(&log, |l| l.started.len() == 2 && l.running == 0).await;
        assert_eq!(log.lock().expect("log").most, 1);
        stop.send(()).expect("stop");
        task.await.expect("runner");
        assert_eq!(
            log.lock().expect("log").started.len(),
            2,
            "one more, not three"
        );
    }

    #[tokio::test]
    async fn requeues_and_error_policies_run_the_object_again_and_await_change_does_not() {
        let (store, _writer) = listed(&["again", "failing", "quiet"]);
        let answer = |name: &str| match name {
            "again" => Ok(Action::requeue(Duration::from_millis(20))),
            "failing" => Err("broken".to_string()),
            _ => Ok(Action::await_change()),
        };
        let (send, log, stop, task) = start(store, 4, None, None, answer);
        for name in ["again", "failing", "quiet"] {
            send.send(named(name)).await.expect("send");
        }
        let count = |l: &Log, name: &str| l.started.iter().filter(|n| *n == name).count();
        until(&log, |l| count(l, "again") >= 3 && count(l, "failing") >= 3).await;
        assert_eq!(count(&log.lock().expect("log"), "quiet"), 1);
        stop.send(()).expect("stop");
        task.await.expect("runner");
    }

    #[tokio::test]
    async fn no_pass_starts_before_the_store_lists_or_for_an_object_it_no_longer_has() {
        let mut writer: Writer<ConfigMap> = Writer::default();
        let store = writer.as_reader();
        let (send, log, stop, task) = start(store, 4, None, None, done);
        send.send(named("kept")).await.expect("send");
        send.send(named("gone")).await.expect("send");
        consumed(&send).await;
        assert!(
            log.lock().expect("log").started.is_empty(),
            "not listed yet"
        );
        writer.apply_watcher_event(&Event::Init);
        writer.apply_watcher_event(&Event::InitApply(config_map("kept")));
        writer.apply_watcher_event(&Event::InitDone);
        until(&log, |l| l.started == ["kept"]).await;
        send.send(named("gone")).await.expect("send");
        send.send(named("kept")).await.expect("send");
        until(&log, |l| l.started.len() == 2).await;
        assert_eq!(log.lock().expect("log").started, ["kept", "kept"]);
        stop.send(()).expect("stop");
        task.await.expect("runner");
    }

    #[tokio::test]
    async fn a_stop_before_the_store_lists_returns_at_once() {
        let writer: Writer<ConfigMap> = Writer::default();
        let (send, _log, stop, task) = start(writer.as_reader(), 4, None, None, done);
        send.send(named("a")).await.expect("send");
        stop.send(()).expect("stop");
        task.await.expect("runner");
    }

    #[tokio::test]
    async fn a_stop_waits_for_the_passes_that_run_and_starts_no_other() {
        let (store, _writer) = listed(&["a", "b"]);
        let turns = Arc::new(Semaphore::new(0));
        let (send, log, stop, task) = start(store, 1, None, Some(turns.clone()), done);
        send.send(named("a")).await.expect("send");
        send.send(named("b")).await.expect("send");
        until(&log, |l| l.started.len() == 1).await;
        stop.send(()).expect("stop");
        turns.add_permits(10);
        task.await.expect("runner");
        let log = log.lock().expect("log");
        assert_eq!(log.started, ["a"], "b never started");
        assert_eq!(log.running, 0, "a ran to its end, not aborted");
    }
}
