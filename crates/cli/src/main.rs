//! `mooring`: see, audit and steer Mooring's GitOps objects from a terminal.

fn main() -> std::process::ExitCode {
    mooring_cli::main()
}
