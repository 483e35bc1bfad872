//! The fault-and-bad-input suite's report: every scenario records one row, and `make faults`
//! prints them as one table.
//!
//! A test calls [`record`] once per scenario. The row goes to stderr (so `cargo test` output
//! shows it) and, when `MOORING_FAULTS_REPORT` names a file, is appended to it as one JSON line.
//! `mooring-faults-table` reads that file and prints the table. The long form of the suite is
//! chosen with `MOORING_FAULTS_LONG=1` ([`long_form`], [`scaled`]).

use std::io::Write;
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Names the file rows are appended to.
pub const REPORT_ENV: &str = "MOORING_FAULTS_REPORT";
/// Set to `1` to run the long form of the suite.
pub const LONG_ENV: &str = "MOORING_FAULTS_LONG";
/// Fixes the seed of the suite's random choices, to replay a failure.
pub const SEED_ENV: &str = "MOORING_FAULTS_SEED";

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
    /// A scenario run once that ended as required, with nothing orphaned, lost or leaked.
    pub fn passed_once(scenario: impl Into<String>) -> Self {
        Self {
            runs: 1,
            passed: 1,
            ..Self::new(scenario)
        }
    }

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

/// The random choices of one scenario (kill points, delays), replayable from its seed.
#[derive(Debug)]
pub struct Dice {
    seed: u64,
    rng: StdRng,
}

impl Dice {
    /// Dice for `scenario`: seeded from `MOORING_FAULTS_SEED` when set, else from the clock.
    /// The seed is printed, so a failure can be replayed with `MOORING_FAULTS_SEED=<seed>`.
    pub fn new(scenario: &str) -> Self {
        let seed = match std::env::var(SEED_ENV) {
            Ok(value) => value
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{SEED_ENV}={value:?} is not a number")),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or_default(),
        };
        eprintln!("FAULTS seed for {scenario:?}: {seed} (replay with {SEED_ENV}={seed})");
        Self::from_seed(seed)
    }

    /// Dice with a fixed seed.
    pub fn from_seed(seed: u64) -> Self {
        Self {
            seed,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// The seed these dice were made with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// A number in `[0, 1)`.
    pub fn fraction(&mut self) -> f64 {
        self.rng.random::<f64>()
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.fraction() < p
    }

    /// A number in `[0, n)` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            self.rng.random_range(0..n)
        }
    }
}

/// The peak resident memory (`VmHWM`) of process `pid` in MiB, while it runs.
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
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
    fn the_same_seed_gives_the_same_choices() {
        let mut a = Dice::from_seed(7);
        let mut b = Dice::from_seed(7);
        let roll = |d: &mut Dice| (d.below(1000), d.fraction(), d.chance(0.5));
        assert_eq!(roll(&mut a), roll(&mut b));
        assert_eq!(a.seed(), 7);
        assert!((0..100).all(|_| a.below(3) < 3 && (0.0..1.0).contains(&a.fraction())));
        assert_eq!(a.below(0), 0);
    }

    #[test]
    fn peak_rss_of_this_process_is_read_from_proc() {
        let mib = peak_rss_mib(std::process::id()).expect("VmHWM of this process");
        assert!(mib > 0.0, "{mib}");
        assert_eq!(peak_rss_mib(u32::MAX), None);
    }

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
