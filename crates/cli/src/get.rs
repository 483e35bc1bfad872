//! `mooring get sources|kustomizations|all [-A] [--watch]`.

use futures::{Stream, StreamExt, stream};
use jiff::Timestamp;
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use mooring_api::{GitRepository, Kustomization};
use serde::Serialize;

use crate::args::{Format, GetArgs, GetWhat, Global};
use crate::client::{Cluster, connect};
use crate::error::Error;
use crate::kinds::{Summary, summary_header};
use crate::output::{Table, print_structured, write_stdout};

/// What `-o json|yaml` prints: the rows, in a list.
#[derive(Debug, Serialize)]
struct Listing {
    items: Vec<Summary>,
}

/// Runs `get`.
pub async fn run(global: &Global, args: GetArgs) -> Result<(), Error> {
    let cluster = connect(global).await?;
    if args.watch {
        return watch(&cluster, global.output, &args).await;
    }
    let mut items = Vec::new();
    if args.what != GetWhat::Kustomizations {
        items.extend(list_sources(&cluster, args.all_namespaces).await?);
    }
    if args.what != GetWhat::Sources {
        items.extend(list_kustomizations(&cluster, args.all_namespaces).await?);
    }
    match global.output {
        Some(format) => print_structured(format, &Listing { items }),
        None => write_stdout(&tables(&items, &args, Timestamp::now())),
    }
}

fn api<K>(cluster: &Cluster, all: bool) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    if all {
        Api::all(cluster.client.clone())
    } else {
        Api::namespaced(cluster.client.clone(), &cluster.namespace)
    }
}

fn scope(cluster: &Cluster, all: bool) -> String {
    if all {
        "in all namespaces".to_string()
    } else {
        format!("in namespace {}", cluster.namespace)
    }
}

async fn list_sources(cluster: &Cluster, all: bool) -> Result<Vec<Summary>, Error> {
    let list = api::<GitRepository>(cluster, all)
        .list(&ListParams::default())
        .await
        .map_err(Error::api(format!(
            "listing GitRepositories {}",
            scope(cluster, all)
        )))?;
    Ok(list.items.iter().map(Summary::of_source).collect())
}

async fn list_kustomizations(cluster: &Cluster, all: bool) -> Result<Vec<Summary>, Error> {
    let list = api::<Kustomization>(cluster, all)
        .list(&ListParams::default())
        .await
        .map_err(Error::api(format!(
            "listing Kustomizations {}",
            scope(cluster, all)
        )))?;
    Ok(list.items.iter().map(Summary::of_kustomization).collect())
}

/// The name prefix of a kind's rows in `get all` (`kustomization/apps`), like `kubectl get all`.
fn prefix(args: &GetArgs, kind: &str) -> String {
    if args.what == GetWhat::All {
        format!("{}/", kind.to_lowercase())
    } else {
        String::new()
    }
}

/// One table per kind (sources first), separated by a blank line; a line saying so when empty.
fn tables(items: &[Summary], args: &GetArgs, now: Timestamp) -> String {
    if items.is_empty() {
        return "No objects found.\n".to_string();
    }
    let mut parts = Vec::new();
    for kind in ["GitRepository", "Kustomization"] {
        let rows: Vec<Vec<String>> = items
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| s.cells(args.all_namespaces, &prefix(args, kind), now))
            .collect();
        if !rows.is_empty() {
            parts.push(Table::new(&summary_header(args.all_namespaces)).render(&rows));
        }
    }
    parts.join("\n")
}

/// Lists, then prints one line per change until interrupted (Ctrl-C ends with exit code 0).
async fn watch(cluster: &Cluster, format: Option<Format>, args: &GetArgs) -> Result<(), Error> {
    let config = watcher::Config::default();
    let mut streams: Vec<std::pin::Pin<Box<dyn Stream<Item = _> + Send>>> = Vec::new();
    if args.what != GetWhat::Kustomizations {
        let s = watcher(
            api::<GitRepository>(cluster, args.all_namespaces),
            config.clone(),
        )
        .default_backoff()
        .map(|e| e.map(|e| summarize(e, Summary::of_source)));
        streams.push(Box::pin(s));
    }
    if args.what != GetWhat::Sources {
        let s = watcher(api::<Kustomization>(cluster, args.all_namespaces), config)
            .default_backoff()
            .map(|e| e.map(|e| summarize(e, Summary::of_kustomization)));
        streams.push(Box::pin(s));
    }
    let mut pending_lists = streams.len();
    let mut events = stream::select_all(streams);
    let mut initial: Vec<Summary> = Vec::new();
    let mut table = Table::new(&summary_header(args.all_namespaces));
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let event = tokio::select! {
            _ = &mut interrupted => return Ok(()),
            event = events.next() => event,
        };
        let Some(event) = event else { return Ok(()) };
        let event = event.map_err(|e| Error::Failed(format!("watching: {e}")))?;
        let changed = match event {
            watcher::Event::InitApply(summary) if pending_lists > 0 => {
                initial.push(summary);
                continue;
            }
            watcher::Event::InitDone if pending_lists > 0 => {
                pending_lists -= 1;
                if pending_lists > 0 {
                    continue;
                }
                let rows: Vec<Vec<String>> = initial
                    .iter()
                    .map(|s| s.cells(args.all_namespaces, &prefix(args, s.kind), Timestamp::now()))
                    .collect();
                table.fit(&rows);
                let text = match format {
                    None => {
                        let mut text = table.header_line();
                        rows.iter().for_each(|r| text.push_str(&table.line(r)));
                        text
                    }
                    Some(format) => initial
                        .iter()
                        .map(|s| watch_line(format, s))
                        .collect::<Result<String, Error>>()?,
                };
                write_stdout(&text)?;
                continue;
            }
            watcher::Event::Apply(summary) | watcher::Event::InitApply(summary) => summary,
            watcher::Event::Delete(_) | watcher::Event::Init | watcher::Event::InitDone => continue,
        };
        let text = match format {
            None => table.line(&changed.cells(
                args.all_namespaces,
                &prefix(args, changed.kind),
                Timestamp::now(),
            )),
            Some(format) => watch_line(format, &changed)?,
        };
        write_stdout(&text)?;
    }
}

/// A watch event about an object, as an event about its summary.
fn summarize<K>(event: watcher::Event<K>, of: fn(&K) -> Summary) -> watcher::Event<Summary> {
    match event {
        watcher::Event::Apply(o) => watcher::Event::Apply(of(&o)),
        watcher::Event::Delete(o) => watcher::Event::Delete(of(&o)),
        watcher::Event::InitApply(o) => watcher::Event::InitApply(of(&o)),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitDone => watcher::Event::InitDone,
    }
}

/// One change in watch mode: a JSON object on one line, or a YAML document.
fn watch_line(format: Format, summary: &Summary) -> Result<String, Error> {
    match format {
        Format::Json => serde_json::to_string(summary)
            .map(|s| s + "\n")
            .map_err(|e| Error::Output(e.to_string())),
        Format::Yaml => serde_saphyr::to_string(summary)
            .map(|s| format!("---\n{s}"))
            .map_err(|e| Error::Output(e.to_string())),
    }
}
