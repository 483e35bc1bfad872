//! `mooring history kustomization NAME`: the renders a Kustomization applied, newest first, from
//! `status.history` (revision, digest, times, result, and any other metadata recorded).

use mooring_api::Kustomization;
use mooring_api::kustomization::Snapshot;
use serde::Serialize;

use crate::args::{Global, KustomizationArgs};
use crate::client::connect;
use crate::error::Error;
use crate::kinds::fetch;
use crate::output::{Table, print_structured, time, write_stdout};

/// The metadata key holding the source revision of an entry.
const REVISION_KEY: &str = "revision";

/// What `-o json|yaml` prints.
#[derive(Debug, Serialize)]
struct History<'a> {
    kind: &'static str,
    namespace: &'a str,
    name: &'a str,
    history: &'a [Snapshot],
}

/// Runs `history`.
pub async fn run(global: &Global, args: KustomizationArgs) -> Result<(), Error> {
    let cluster = connect(global).await?;
    let ks: Kustomization = fetch(&cluster, &cluster.namespace, &args.name).await?;
    let history = ks.status.map(|s| s.history).unwrap_or_default();
    match global.output {
        Some(format) => print_structured(
            format,
            &History {
                kind: "Kustomization",
                namespace: &cluster.namespace,
                name: &args.name,
                history: &history,
            },
        ),
        None if history.is_empty() => write_stdout(&format!(
            "Kustomization {}/{} has no history yet: it has not applied anything.\n",
            cluster.namespace, args.name
        )),
        None => write_stdout(&table(&history)),
    }
}

/// The table: one row per entry; a METADATA column when entries carry more than the revision.
fn table(history: &[Snapshot]) -> String {
    let extra = |s: &Snapshot| -> String {
        s.metadata
            .iter()
            .flatten()
            .filter(|(k, _)| k.as_str() != REVISION_KEY)
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let with_extra = history.iter().any(|s| !extra(s).is_empty());
    let mut header = vec![
        "REVISION",
        "DIGEST",
        "FIRST APPLIED",
        "LAST APPLIED",
        "DURATION",
        "RESULT",
        "PASSES",
    ];
    if with_extra {
        header.push("METADATA");
    }
    let rows: Vec<Vec<String>> = history
        .iter()
        .map(|s| {
            let mut row = vec![
                s.metadata
                    .as_ref()
                    .and_then(|m| m.get(REVISION_KEY).cloned())
                    .unwrap_or_else(|| "-".to_string()),
                short_digest(&s.digest),
                time(s.first_reconciled.0),
                time(s.last_reconciled.0),
                s.last_reconciled_duration.clone(),
                s.last_reconciled_status.clone(),
                s.total_reconciliations.to_string(),
            ];
            if with_extra {
                row.push(extra(s));
            }
            row
        })
        .collect();
    Table::new(&header).render(&rows)
}

/// `sha256:<first 12 hex digits>`: enough to tell renders apart in a table.
fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algorithm, hex)) => format!("{algorithm}:{}", &hex[..hex.len().min(12)]),
        None => digest.to_string(),
    }
}
