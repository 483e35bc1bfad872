//! P3: API requests in the steady state, from kube-apiserver's own `apiserver_request_total`
//! read before and after a window in which nothing changes.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::env::Bench;
use crate::error::Error;
use crate::procs::{Meter, Usage};

/// Verbs that change something.
const WRITE_VERBS: &[&str] = &[
    "POST",
    "PUT",
    "PATCH",
    "APPLY",
    "DELETE",
    "DELETECOLLECTION",
];

/// Requests of one kind during the window.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RequestRow {
    /// GET, LIST, WATCH, APPLY, PATCH, ...
    pub verb: String,
    /// API group ("" for core).
    pub group: String,
    /// Resource (plural).
    pub resource: String,
    /// Subresource (status, ...).
    pub subresource: String,
    /// resource (one named object), namespace or cluster.
    pub scope: String,
    /// `All` for dry-run requests (a server-side diff), "" otherwise.
    pub dry_run: String,
    /// Requests in the window.
    pub count: f64,
    /// Requests per Kustomization interval.
    pub per_interval: f64,
}

/// What P3 measured.
#[derive(Debug, Clone, Serialize)]
pub struct SteadyResult {
    /// Seconds between the two readings.
    pub window_seconds: f64,
    /// The Kustomizations' interval, seconds.
    pub interval_seconds: f64,
    /// Writes in the window (leases excluded: the controllers run without leader election, so
    /// the only lease writes are kube-apiserver's own identity heartbeat).
    pub writes: f64,
    /// Dry-run requests in the window (server-side diffs: no change is stored).
    pub dry_runs: f64,
    /// GETs of single objects in the window.
    pub per_object_gets: f64,
    /// LISTs in the window.
    pub lists: f64,
    /// WATCH requests that ended in the window (long-lived; they are counted when they end).
    pub watches_ended: f64,
    /// Watches open at the end, by resource, less those kube-apiserver held before the
    /// controllers started.
    pub open_watches: BTreeMap<String, f64>,
    /// Every resource request that happened in the window.
    pub rows: Vec<RequestRow>,
    /// Requests to the git server in the window (ref listings and fetches).
    pub git_requests: usize,
    /// Of those, requests that could send objects.
    pub git_fetches: usize,
    /// Of those, protocol v2 `ls-refs` commands (one per ref listing; a fetch over protocol v2
    /// makes one of its own).
    pub git_listings: usize,
    /// `--source-interval`, in seconds.
    pub source_interval_seconds: f64,
    /// Ref listings per source interval, those of fetches excepted: with `--one-url`, how many
    /// listings all GitRepositories of one URL make per interval window.
    pub listings_per_source_interval: f64,
    /// Usage of each process during the window.
    pub usage: BTreeMap<String, Usage>,
}

/// Runs P3 after P1: settle, read, wait out the window, read again.
pub async fn run(bench: &Bench) -> Result<SteadyResult, Error> {
    let args = &bench.args;
    let interval = parse_seconds(&args.interval)?;
    eprintln!("[p3] settling for {}s ...", args.steady_settle);
    tokio::time::sleep(Duration::from_secs(args.steady_settle)).await;
    let before = request_counts(bench).await?;
    bench.git.clear_log();
    let meter = Meter::start(bench.metered());
    eprintln!("[p3] measuring for {}s ...", args.steady_window);
    let started = std::time::Instant::now();
    // The window itself is the measurement: nothing is awaited but time.
    tokio::time::sleep(Duration::from_secs(args.steady_window)).await;
    let after_text = metrics_text(bench).await?;
    let window_seconds = started.elapsed().as_secs_f64();
    let usage = meter.finish().await;
    let git = bench.git.all_requests();
    bench.check_controllers()?;
    let after = parse_counters(&after_text, "apiserver_request_total");
    let open = parse_counters(&after_text, "apiserver_longrunning_requests");

    let intervals = window_seconds / interval;
    let source_interval = parse_seconds(&args.source_interval)?;
    let count_kind = |kind: mooring_testkit::git::RequestKind| {
        git.iter()
            .filter(|r| r.kind == kind && r.status == 200)
            .count()
    };
    let fetches = count_kind(mooring_testkit::git::RequestKind::Fetch);
    let listings = count_kind(mooring_testkit::git::RequestKind::LsRefs);
    let rows = request_rows(&before, &after, intervals);
    let sum = |pick: &dyn Fn(&RequestRow) -> bool| {
        rows.iter()
            .filter(|r| pick(r))
            .map(|r| r.count)
            .fold(0.0, |a, b| a + b)
    };
    // kube-apiserver's own informers hold watches too: count only those opened since it started.
    let open_watches = open
        .iter()
        .filter(|(k, _)| k.verb == "WATCH")
        .map(|(k, v)| {
            let own = bench.apiserver_watches.get(k).copied().unwrap_or(0.0);
            (resource_label(k), v - own)
        })
        .filter(|(_, v)| *v > 0.0)
        .collect();
    Ok(SteadyResult {
        window_seconds,
        interval_seconds: interval,
        writes: sum(&|r| {
            WRITE_VERBS.contains(&r.verb.as_str()) && r.resource != "leases" && r.dry_run.is_empty()
        }),
        dry_runs: sum(&|r| !r.dry_run.is_empty()),
        per_object_gets: sum(&|r| r.verb == "GET"),
        lists: sum(&|r| r.verb == "LIST"),
        watches_ended: sum(&|r| r.verb == "WATCH"),
        open_watches,
        rows,
        git_requests: git.len(),
        git_fetches: fetches,
        git_listings: listings,
        source_interval_seconds: source_interval,
        listings_per_source_interval: listings.saturating_sub(fetches) as f64
            / (window_seconds / source_interval),
        usage,
    })
}

fn resource_label(k: &Key) -> String {
    match (k.group.is_empty(), k.subresource.is_empty()) {
        (true, true) => k.resource.clone(),
        (true, false) => format!("{}/{}", k.resource, k.subresource),
        (false, true) => format!("{}.{}", k.resource, k.group),
        (false, false) => format!("{}.{}/{}", k.resource, k.group, k.subresource),
    }
}

/// Reads `/metrics` of kube-apiserver as the admin client (a non-resource request, so it does
/// not appear among the resource rows).
pub async fn metrics_text(bench: &Bench) -> Result<String, Error> {
    metrics_text_of(&bench.client).await
}

async fn metrics_text_of(client: &kube::Client) -> Result<String, Error> {
    let request = http::Request::get("/metrics")
        .body(Vec::new())
        .map_err(|e| Error::Setting(format!("building the /metrics request: {e}")))?;
    client
        .request_text(request)
        .await
        .map_err(Error::kube("reading kube-apiserver /metrics"))
}

/// Open long-running requests (watches) by key, from kube-apiserver's metrics.
pub async fn open_watches(bench_client: &kube::Client) -> Result<BTreeMap<Key, f64>, Error> {
    let text = metrics_text_of(bench_client).await?;
    Ok(parse_counters(&text, "apiserver_longrunning_requests"))
}

/// The resource requests between two readings, largest first; `per` divides the counts into
/// `per_interval`.
pub fn request_rows(
    before: &BTreeMap<Key, f64>,
    after: &BTreeMap<Key, f64>,
    per: f64,
) -> Vec<RequestRow> {
    let mut rows: Vec<RequestRow> = after
        .iter()
        .filter_map(|(key, value)| {
            let count = value - before.get(key).copied().unwrap_or(0.0);
            (count > 0.0 && !key.resource.is_empty()).then(|| RequestRow {
                verb: key.verb.clone(),
                group: key.group.clone(),
                resource: key.resource.clone(),
                subresource: key.subresource.clone(),
                scope: key.scope.clone(),
                dry_run: key.dry_run.clone(),
                count,
                per_interval: count / per,
            })
        })
        .collect();
    rows.sort_by(|a, b| b.count.total_cmp(&a.count));
    rows
}

/// Reads apiserver_request_total, summed by [`Key`].
pub async fn request_counts(bench: &Bench) -> Result<BTreeMap<Key, f64>, Error> {
    Ok(parse_counters(
        &metrics_text(bench).await?,
        "apiserver_request_total",
    ))
}

/// The labels a request row is keyed by (response codes are summed).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    verb: String,
    group: String,
    resource: String,
    subresource: String,
    scope: String,
    dry_run: String,
}

/// Sums the samples of metric `name` in Prometheus text by [`Key`].
pub fn parse_counters(text: &str, name: &str) -> BTreeMap<Key, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name).and_then(|r| r.strip_prefix('{')) else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once('}') else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let labels = parse_labels(labels);
        let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
        let key = Key {
            verb: get("verb"),
            group: get("group"),
            resource: get("resource"),
            subresource: get("subresource"),
            scope: get("scope"),
            dry_run: get("dry_run"),
        };
        *out.entry(key).or_insert(0.0) += value;
    }
    out
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let Some(end) = after.find('"') else { break };
        labels.insert(
            key.trim_start_matches(',').trim().to_string(),
            after[..end].to_string(),
        );
        rest = &after[end + 1..];
    }
    labels
}

/// Seconds in a duration like `10s`, `1m` or `1m30s`.
pub fn parse_seconds(text: &str) -> Result<f64, Error> {
    let mut total = 0.0;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let unit = match (c, chars.peek()) {
            ('m', Some('s')) => {
                chars.next();
                0.001
            }
            ('h', _) => 3600.0,
            ('m', _) => 60.0,
            ('s', _) => 1.0,
            _ => return Err(Error::Setting(format!("not a duration: {text}"))),
        };
        let n: f64 = number
            .parse()
            .map_err(|_| Error::Setting(format!("not a duration: {text}")))?;
        total += n * unit;
        number.clear();
    }
    if !number.is_empty() || total == 0.0 {
        return Err(Error::Setting(format!("not a duration: {text}")));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_request_counters_over_codes() {
        let text = "# HELP apiserver_request_total x\n\
apiserver_request_total{code=\"200\",component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"configmaps\",scope=\"resource\",subresource=\"\",verb=\"GET\",version=\"v1\"} 3\n\
apiserver_request_total{code=\"404\",component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"configmaps\",scope=\"resource\",subresource=\"\",verb=\"GET\",version=\"v1\"} 2\n\
apiserver_request_total{code=\"200\",component=\"apiserver\",dry_run=\"\",group=\"kustomize.mooring.dev\",resource=\"kustomizations\",scope=\"resource\",subresource=\"status\",verb=\"APPLY\",version=\"v1\"} 7\n\
apiserver_request_total_other{verb=\"GET\"} 9\n";
        let counts = parse_counters(text, "apiserver_request_total");
        assert_eq!(counts.len(), 2);
        let get = counts.iter().find(|(k, _)| k.verb == "GET").expect("GET");
        assert_eq!((get.0.resource.as_str(), *get.1), ("configmaps", 5.0));
        let apply = counts
            .iter()
            .find(|(k, _)| k.verb == "APPLY")
            .expect("APPLY");
        assert_eq!(apply.0.subresource, "status");
        assert_eq!(apply.0.group, "kustomize.mooring.dev");
    }

    #[test]
    fn durations_in_seconds() {
        assert_eq!(parse_seconds("10s").ok(), Some(10.0));
        assert_eq!(parse_seconds("1m30s").ok(), Some(90.0));
        assert_eq!(parse_seconds("500ms").ok(), Some(0.5));
        assert_eq!(parse_seconds("1h").ok(), Some(3600.0));
        assert!(parse_seconds("10").is_err());
        assert!(parse_seconds("x").is_err());
    }
}
