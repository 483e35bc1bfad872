//! The kustomize-controller binary: flags and telemetry, then the controller.

use clap::Parser;
use mooring_kustomize_controller::cli::Args;

fn main() -> anyhow::Result<()> {
    // First, before any thread starts: it may start the binary again with malloc tuned (fewer
    // arenas, a fixed mmap threshold).
    mooring_runtime::malloc::tune_allocator();
    tokio::runtime::Runtime::new()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    mooring_runtime::telemetry::init(args.common.log_format, &args.common.log_level)
        .map_err(anyhow::Error::msg)?;
    mooring_kustomize_controller::app::run(args).await?;
    Ok(())
}
