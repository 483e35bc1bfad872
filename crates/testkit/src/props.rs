//! Property tests of the fault suite: one driver that runs a proptest property for a number
//! of cases in `make test` and for a CPU-time budget in the long form, keeps failing seeds as
//! regression cases, and records one [`faults`](crate::faults) row per property.
//!
//! - Short form (`cargo test`): `short_cases` cases (`PROPTEST_CASES` overrides it).
//! - Long form (`MOORING_FAULTS_LONG=1`, i.e. `make faults`): batches of cases until the
//!   property has used [`LONG_SECONDS`] seconds of its thread's CPU time;
//!   `MOORING_PROPTEST_SECONDS` sets another budget in either form (e.g. for a medium run).
//!
//! Every seed that fails is appended to the property's regression file (under the crate's
//! `proptest-regressions/`, checked in) and replayed first on every later run, as proptest
//! does for its own macro.

use std::path::Path;
use std::time::Duration;

use proptest::strategy::Strategy;
use proptest::test_runner::{
    Config, FileFailurePersistence, TestCaseResult, TestError, TestRunner,
};

use crate::faults::{self, Row};

/// Sets a per-property CPU-time budget, in seconds, in either form.
pub const SECONDS_ENV: &str = "MOORING_PROPTEST_SECONDS";
/// The per-property CPU-time budget of the long form: with the suite's 22 properties this is
/// about 1.8 CPU-hours in total.
pub const LONG_SECONDS: u64 = 300;

/// Cases per batch when running against a budget: the budget is checked between batches.
const BATCH: u32 = 64;

/// One property: what it is called in the faults report and where its failing seeds go.
pub struct Property<'a> {
    /// The faults row's scenario, e.g. `property: artifact extraction, hostile entries`.
    pub scenario: &'a str,
    /// The regression file, usually
    /// `concat!(env!("CARGO_MANIFEST_DIR"), "/proptest-regressions/<file>/<property>.txt")`.
    pub regressions: &'static str,
    /// Cases in the short form.
    pub short_cases: u32,
}

/// The CPU-time budget, if this run has one: `MOORING_PROPTEST_SECONDS`, else
/// [`LONG_SECONDS`] in the long form.
pub fn budget() -> Option<Duration> {
    let seconds = std::env::var(SECONDS_ENV)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .or_else(|| faults::long_form().then_some(LONG_SECONDS))?;
    Some(Duration::from_secs(seconds))
}

/// CPU time (user + system) used so far by the calling thread, plus that of the child
/// processes of this process that have ended (a property may run `git`), from `/proc`.
pub fn thread_cpu_time() -> Duration {
    // Fields after the command name (which is in parentheses and may contain spaces): state
    // is field 3, utime 14, stime 15, cutime 16 and cstime 17, in clock ticks (USER_HZ, 100
    // on Linux).
    let ticks = |file: &str, wanted: &[usize]| -> u64 {
        let stat = std::fs::read_to_string(file).unwrap_or_default();
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        wanted
            .iter()
            .map(|i| {
                fields
                    .get(i - 3)
                    .and_then(|f| f.parse::<u64>().ok())
                    .unwrap_or(0)
            })
            .sum()
    };
    let total = ticks("/proc/thread-self/stat", &[14, 15]) + ticks("/proc/self/stat", &[16, 17]);
    Duration::from_millis(total * 10)
}

/// Runs `test` on values of `strategy` as described in the module documentation; panics with
/// proptest's minimal failing case when a case fails, after recording the row. Returns the
/// number of cases run.
pub fn check<S: Strategy>(
    property: &Property<'_>,
    strategy: S,
    test: impl Fn(S::Value) -> TestCaseResult,
) -> u64 {
    let persistence = FileFailurePersistence::Direct(property.regressions);
    if let Some(dir) = Path::new(property.regressions).parent() {
        // proptest creates the file on the first failure, not the directory of a nested path.
        let _ = std::fs::create_dir_all(dir);
    }
    let short_cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(property.short_cases);
    let budget = budget();
    let started = thread_cpu_time();
    let mut runs: u64 = 0;
    let outcome = loop {
        let cases = if budget.is_some() { BATCH } else { short_cases };
        let config = Config {
            cases,
            failure_persistence: Some(Box::new(persistence)),
            // Shrinking hostile archives can take long; a bounded shrink still gives a
            // small case, and the seed is kept either way.
            max_shrink_iters: 2048,
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        let result = runner.run(&strategy, &test);
        match result {
            Ok(()) => runs += u64::from(cases),
            Err(e) => break Err(e),
        }
        match budget {
            Some(limit) if thread_cpu_time().saturating_sub(started) < limit => continue,
            _ => break Ok(()),
        }
    };
    let failed = outcome.is_err();
    let runs = runs + u64::from(failed);
    faults::record(&Row {
        runs,
        passed: runs - u64::from(failed),
        ..Row::new(property.scenario)
    });
    match outcome {
        Ok(()) => runs,
        Err(TestError::Fail(why, value)) => {
            panic!(
                "{}: minimal failing input: {value:?}\n{why}",
                property.scenario
            )
        }
        Err(TestError::Abort(why)) => panic!("{}: aborted: {why}", property.scenario),
    }
}
