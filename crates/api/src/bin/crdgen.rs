//! `crdgen [DIR...]`: writes the CustomResourceDefinitions of the Mooring kinds to each DIR
//! (default `crds`), one YAML file per CRD. `make crds` writes `crds/` and the chart's `crds/`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut dirs: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if dirs.is_empty() {
        dirs.push(PathBuf::from("crds"));
    }
    for dir in dirs {
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
    }
    ExitCode::SUCCESS
}
