//! The `mooring` command: one module per subcommand, over the Mooring API types.
//!
//! Exit codes: 0 when the command did what was asked, 1 when it failed (or, for commands that
//! compare, when something differs), 2 for a usage error.

pub mod args;
pub mod build;
pub mod client;
pub mod diff;
pub mod error;
pub mod events;
pub mod get;
pub mod history;
pub mod kinds;
pub mod logs;
pub mod output;
pub mod reconcile;
pub mod render;
pub mod suspend;
pub mod textdiff;
pub mod trace;
pub mod tree;
pub mod why;

use std::process::ExitCode;

use args::{Cli, Command};
pub use error::Error;

/// Parses the command line, runs the command and turns its result into an exit code.
pub fn main() -> ExitCode {
    let cli = args::program_args();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// Runs one parsed command.
pub async fn run(cli: Cli) -> Result<(), Error> {
    let global = cli.global;
    match cli.command {
        Command::Get(args) => get::run(&global, args).await,
        Command::Reconcile(args) => reconcile::run(&global, args).await,
        Command::Suspend(args) => suspend::suspend(&global, args).await,
        Command::Resume(args) => suspend::resume(&global, args).await,
        Command::History(args) => history::run(&global, args).await,
        Command::Tree(args) => tree::run(&global, args).await,
        Command::Trace(args) => trace::run(&global, args).await,
        Command::Build(args) => build::run(&global, args).await,
        Command::Diff(args) => diff::run(&global, args).await,
        Command::Why(args) => why::run(&global, args).await,
        Command::Events(args) => events::run(&global, args).await,
        Command::Logs(args) => logs::run(&global, args).await,
    }
}
