//! `kubectl-mooring`: the `mooring` command as a kubectl plugin (`kubectl mooring ...`).

fn main() -> std::process::ExitCode {
    mooring_cli::main()
}
