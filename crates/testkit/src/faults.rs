//! The fault-and-bad-input suite's report: every scenario records one row, and `make faults`
//! prints them as one table.
//!
//! A test calls [`record`] once per scenario. The row goes to stderr (so `cargo test` output
//! shows it) and, when `MOORING_FAULTS_REPORT` names a file, is appended to it as one JSON line.
//! `mooring-faults-table` reads that file and prints the table. The long form of the suite is
//! chosen with `MOORING_FAULTS_LONG=1` ([`long_form`], [`scaled`]).

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Names the file rows are appended to.
pub const REPORT_ENV: &str = "MOORING_FAULTS_REPORT";
/// Set to `1` to run the long form of the suite.
pub const LONG_ENV: &str = "MOORING_FAULTS_LONG";

/// One scenario's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// What was done, e.g. `kustomize-controller SIGKILL while applying`.
    pub scenario: String,
    /// How many times it was done.
    pub runs: u64,
    /// How many of those ended as required.
    pub passed: u64,
    /// Objects carrying Mooring's ownership labels that no inventory lists.
    pub orphans: u64,
    /// Objects the last revision holds that were missing at the end.
    pub lost: u64,
    /// Occurrences of a planted secret in status, Events, logs or metrics.
    pub leaked: u64,
    /// Peak resident memory of the process under test, in MiB, where measured.
    pub peak_rss_mib: Option<f64>,
}

impl Row {
    /// A row for `scenario` with every figure zero.
    pub fn new(scenario: impl Into<String>) -> Self {
        Self {
            scenario: scenario.into(),
            ..Self::default()
        }
    }
}

/// Whether the long form of the suite was asked for.
pub fn long_form() -> bool {
    std::env::var(LONG_ENV).is_ok_and(|v| v == "1" || v == "true")
}

/// `short` in `make test`, `long` in the long form.
pub fn scaled(short: usize, long: usize) -> usize {
    if long_form() { long } else { short }
}

/// Prints `row` and appends it to the report file, if one is set. A report that cannot be
/// written fails the calling test: a figure that silently goes missing is a false claim.
pub fn record(row: &Row) {
    let line = serde_json::to_string(row).expect("a row serializes");
    eprintln!("FAULTS {line}");
    if let Some(path) = std::env::var_os(REPORT_ENV) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("open {}: {e}", Path::new(&path).display()));
        writeln!(file, "{line}")
            .unwrap_or_else(|e| panic!("write {}: {e}", Path::new(&path).display()));
    }
}

/// Reads the rows of a report file, in order.
pub fn read(path: &Path) -> std::io::Result<Vec<Row>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(std::io::Error::other))
        .collect()
}

/// The rows as a fixed-width text table, with a totals line.
pub fn table(rows: &[Row]) -> String {
    let width = rows
        .iter()
        .map(|r| r.scenario.len())
        .max()
        .unwrap_or(0)
        .max("scenario".len());
    let mut out = format!(
        "{:<width$}  {:>6}  {:>6}  {:>7}  {:>4}  {:>6}  {:>8}\n",
        "scenario", "runs", "passed", "orphans", "lost", "leaked", "peak RSS"
    );
    let rss = |r: &Row| {
        r.peak_rss_mib
            .map_or("-".to_string(), |m| format!("{m:.1} MiB"))
    };
    for r in rows {
        out.push_str(&format!(
            "{:<width$}  {:>6}  {:>6}  {:>7}  {:>4}  {:>6}  {:>8}\n",
            r.scenario,
            r.runs,
            r.passed,
            r.orphans,
            r.lost,
            r.leaked,
            rss(r)
        ));
    }
    let sum = |f: fn(&Row) -> u64| rows.iter().map(f).sum::<u64>();
    out.push_str(&format!(
        "{:<width$}  {:>6}  {:>6}  {:>7}  {:>4}  {:>6}  {:>8}\n",
        "total",
        sum(|r| r.runs),
        sum(|r| r.passed),
        sum(|r| r.orphans),
        sum(|r| r.lost),
        sum(|r| r.leaked),
        ""
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_through_the_report_and_sum_in_the_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("report.jsonl");
        let rows = vec![
            Row {
                runs: 30,
                passed: 30,
                ..Row::new("crash while applying")
            },
            Row {
                runs: 1,
                passed: 0,
                leaked: 2,
                peak_rss_mib: Some(41.25),
                ..Row::new("secrets")
            },
        ];
        let text: String = rows
            .iter()
            .map(|r| serde_json::to_string(r).expect("json") + "\n")
            .collect();
        std::fs::write(&path, text).expect("write");
        let back = read(&path).expect("read");
        assert_eq!(back, rows);
        let table = table(&back);
        assert!(table.contains("crash while applying"), "{table}");
        assert!(table.contains("41.2 MiB"), "{table}");
        let total = table.lines().last().expect("total line");
        assert!(
            total.starts_with("total") && total.contains("31") && total.contains(" 2 "),
            "{total}"
        );
    }
}
