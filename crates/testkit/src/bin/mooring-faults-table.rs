//! Prints the fault suite's report (`MOORING_FAULTS_REPORT`, or the file given) as one table.
//! Exits non-zero when a scenario did not pass every run, or found an orphan, a lost object or
//! a leaked secret.

use std::path::PathBuf;
use std::process::ExitCode;

use mooring_testkit::faults;

fn main() -> ExitCode {
    let path = std::env::args_os()
        .nth(1)
        .or_else(|| std::env::var_os(faults::REPORT_ENV))
        .map(PathBuf::from);
    let Some(path) = path else {
        eprintln!(
            "usage: mooring-faults-table REPORT.jsonl (or set {})",
            faults::REPORT_ENV
        );
        return ExitCode::from(2);
    };
    let rows = match faults::read(&path) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("reading {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    print!("{}", faults::table(&rows));
    let bad = rows
        .iter()
        .any(|r| r.passed < r.runs || r.orphans > 0 || r.lost > 0 || r.leaked > 0);
    if rows.is_empty() || bad {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
