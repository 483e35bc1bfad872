//! `crdgen [DIR]`: writes the CustomResourceDefinitions of the Mooring kinds to DIR (default
//! `crds`), one YAML file per CRD.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "crds".into()));
    if args.next().is_some() {
        eprintln!("usage: crdgen [DIR]");
        return ExitCode::from(2);
    }
    if let Err(error) = std::fs::create_dir_all(&dir) {
        eprintln!("crdgen: cannot create {}: {error}", dir.display());
        return ExitCode::FAILURE;
    }
    for (file_name, yaml) in mooring_api::render_crds() {
        let path = dir.join(file_name);
        if let Err(error) = std::fs::write(&path, yaml) {
            eprintln!("crdgen: cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}
