//! `apidocs [FILE]`: writes the API reference, generated from the CRDs, to FILE (default
//! `docs/api.md`). `make docs` runs it.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("docs/api.md"));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Err(error) = std::fs::create_dir_all(dir)
    {
        eprintln!("apidocs: cannot create {}: {error}", dir.display());
        return ExitCode::FAILURE;
    }
    if let Err(error) = std::fs::write(&path, mooring_api::docs::render_markdown()) {
        eprintln!("apidocs: cannot write {}: {error}", path.display());
        return ExitCode::FAILURE;
    }
    println!("wrote {}", path.display());
    ExitCode::SUCCESS
}
