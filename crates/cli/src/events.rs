//! `mooring events [KIND NAME] [-A] [--watch]`: the Events about GitRepositories and
//! Kustomizations (their `involvedObject`), oldest first so the newest is last, as the
//! controllers published them.

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use mooring_api::constants::{KUSTOMIZE_GROUP, SOURCE_GROUP};
use serde::Serialize;

use crate::args::{EventsArgs, Format, Global};
use crate::client::{Cluster, connect};
use crate::error::Error;
use crate::kinds::{kind_name, one_line};
use crate::output::{Table, age, print_structured, time, write_stdout};

/// One Event, as printed.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    /// Namespace of the Event (and of its object).
    pub namespace: String,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The Event's reason.
    pub reason: String,
    /// The object's kind.
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// The message, as published (it may span lines).
    pub message: String,
    /// How many times it happened.
    pub count: i32,
    /// When it last happened, RFC 3339.
    pub last_seen: Option<String>,
    #[serde(skip)]
    last: Option<Timestamp>,
}

/// What `-o json|yaml` prints.
#[derive(Debug, Serialize)]
struct Listing {
    items: Vec<Line>,
}

/// Runs `events`.
pub async fn run(global: &Global, args: EventsArgs) -> Result<(), Error> {
    let cluster = connect(global).await?;
    let api: Api<Event> = if args.all_namespaces {
        Api::all(cluster.client.clone())
    } else {
        Api::namespaced(cluster.client.clone(), &cluster.namespace)
    };
    let fields = selector(&cluster, &args)?;
    if args.watch {
        return watch(api, fields, global.output, args.all_namespaces).await;
    }
    let mut params = ListParams::default();
    if let Some(fields) = &fields {
        params = params.fields(fields);
    }
    let list = api
        .list(&params)
        .await
        .map_err(Error::api("listing the Events"))?;
    let lines = lines(&list.items);
    match global.output {
        Some(format) => print_structured(format, &Listing { items: lines }),
        None if lines.is_empty() => {
            eprintln!("no Events found");
            Ok(())
        }
        None => write_stdout(&table(&lines, args.all_namespaces, Timestamp::now())),
    }
}

/// The field selector naming the object, when one is asked for.
fn selector(cluster: &Cluster, args: &EventsArgs) -> Result<Option<String>, Error> {
    match (args.kind, &args.name) {
        (None, None) => Ok(None),
        (Some(kind), Some(name)) => {
            let mut fields = format!(
                "involvedObject.kind={},involvedObject.name={name}",
                kind_name(kind)
            );
            if !args.all_namespaces {
                fields.push_str(&format!(",involvedObject.namespace={}", cluster.namespace));
            }
            Ok(Some(fields))
        }
        _ => Err(Error::Usage(
            "events takes a kind and a name, or neither".to_string(),
        )),
    }
}

/// Whether an Event is about a Mooring object.
fn about_mooring(event: &Event) -> bool {
    let group = event
        .involved_object
        .api_version
        .as_deref()
        .and_then(|v| v.split_once('/'))
        .map(|(group, _)| group);
    matches!(group, Some(g) if g == SOURCE_GROUP || g == KUSTOMIZE_GROUP)
}

/// The Events about Mooring objects, oldest first.
pub fn lines(events: &[Event]) -> Vec<Line> {
    let mut lines: Vec<Line> = events
        .iter()
        .filter(|e| about_mooring(e))
        .map(line)
        .collect();
    lines.sort_by(|a, b| (a.last, &a.name).cmp(&(b.last, &b.name)));
    lines
}

fn line(event: &Event) -> Line {
    let last = event_time(event);
    Line {
        namespace: event.metadata.namespace.clone().unwrap_or_default(),
        type_: event.type_.clone().unwrap_or_default(),
        reason: event.reason.clone().unwrap_or_default(),
        kind: event.involved_object.kind.clone().unwrap_or_default(),
        name: event.involved_object.name.clone().unwrap_or_default(),
        message: event.message.clone().unwrap_or_default(),
        count: event
            .series
            .as_ref()
            .and_then(|s| s.count)
            .or(event.count)
            .unwrap_or(1),
        last_seen: last.map(time),
        last,
    }
}

/// When an Event last happened: its series' last observation, else its event time, else its
/// last timestamp.
pub fn event_time(event: &Event) -> Option<Timestamp> {
    event
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref())
        .map(|t| t.0)
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
        .or_else(|| event.last_timestamp.as_ref().map(|t| t.0))
}

fn header(all_namespaces: bool) -> Vec<&'static str> {
    let mut header = Vec::with_capacity(6);
    if all_namespaces {
        header.push("NAMESPACE");
    }
    header.extend(["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]);
    header
}

fn cells(line: &Line, all_namespaces: bool, now: Timestamp) -> Vec<String> {
    let mut cells = Vec::with_capacity(6);
    if all_namespaces {
        cells.push(line.namespace.clone());
    }
    cells.push(line.last.map_or_else(|| "-".to_string(), |t| age(t, now)));
    cells.push(line.type_.clone());
    cells.push(line.reason.clone());
    cells.push(format!("{}/{}", line.kind.to_lowercase(), line.name));
    cells.push(one_line(&line.message));
    cells
}

/// The table: LAST SEEN, TYPE, REASON, OBJECT, MESSAGE (with NAMESPACE first for `-A`).
pub fn table(lines: &[Line], all_namespaces: bool, now: Timestamp) -> String {
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| cells(l, all_namespaces, now))
        .collect();
    Table::new(&header(all_namespaces)).render(&rows)
}

/// Lists, then prints each new or repeated Event until interrupted (Ctrl-C: exit code 0).
async fn watch(
    api: Api<Event>,
    fields: Option<String>,
    format: Option<Format>,
    all_namespaces: bool,
) -> Result<(), Error> {
    let mut config = watcher::Config::default();
    if let Some(fields) = fields {
        config = config.fields(&fields);
    }
    let mut events = watcher(api, config).default_backoff().boxed();
    let mut initial: Vec<Event> = Vec::new();
    let mut listed = false;
    let mut layout = Table::new(&header(all_namespaces));
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let event = tokio::select! {
            _ = &mut interrupted => return Ok(()),
            event = events.next() => event,
        };
        let Some(event) = event else { return Ok(()) };
        let event = event.map_err(|e| Error::Failed(format!("watching the Events: {e}")))?;
        let text = match event {
            watcher::Event::InitApply(e) if !listed => {
                initial.push(e);
                continue;
            }
            watcher::Event::InitDone if !listed => {
                listed = true;
                let lines = lines(&initial);
                let now = Timestamp::now();
                let rows: Vec<Vec<String>> = lines
                    .iter()
                    .map(|l| cells(l, all_namespaces, now))
                    .collect();
                layout.fit(&rows);
                match format {
                    None => {
                        let mut text = layout.header_line();
                        rows.iter().for_each(|r| text.push_str(&layout.line(r)));
                        text
                    }
                    Some(format) => lines
                        .iter()
                        .map(|l| watch_line(format, l))
                        .collect::<Result<String, Error>>()?,
                }
            }
            watcher::Event::Apply(e) | watcher::Event::InitApply(e) => {
                let Some(line) = lines(&[e]).pop() else {
                    continue;
                };
                match format {
                    None => layout.line(&cells(&line, all_namespaces, Timestamp::now())),
                    Some(format) => watch_line(format, &line)?,
                }
            }
            watcher::Event::Delete(_) | watcher::Event::Init | watcher::Event::InitDone => continue,
        };
        write_stdout(&text)?;
    }
}

/// One Event in watch mode: a JSON object on one line, or a YAML document.
fn watch_line(format: Format, line: &Line) -> Result<String, Error> {
    match format {
        Format::Json => serde_json::to_string(line)
            .map(|s| s + "\n")
            .map_err(|e| Error::Output(e.to_string())),
        Format::Yaml => serde_saphyr::to_string(line)
            .map(|s| format!("---\n{s}"))
            .map_err(|e| Error::Output(e.to_string())),
    }
}
