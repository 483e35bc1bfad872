//! Archives one commit and reports the time it took: `archive_bench <repo> <commit> <out>`.
//! Run it under `/usr/bin/time -v` for the peak RSS.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::time::Instant;

use mooring_source_controller::archive::{ArchiveOptions, build_archive};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, repo, commit, out] = args.as_slice() else {
        anyhow::bail!("usage: archive_bench <repo> <commit> <out.tar.gz>");
    };
    let started = Instant::now();
    let mut file = BufWriter::new(File::create(out)?);
    let summary = build_archive(
        Path::new(repo),
        commit,
        &ArchiveOptions::default(),
        &mut file,
    )?;
    let elapsed = started.elapsed();
    println!(
        "files={} size={} digest={} elapsed_ms={}",
        summary.files,
        summary.size,
        summary.digest,
        elapsed.as_millis()
    );
    Ok(())
}
