//! The kustomize-controller binary: flags and telemetry, then the controller.

use clap::Parser;
use mooring_kustomize_controller::cli::Args;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    mooring_runtime::telemetry::init(args.common.log_format, &args.common.log_level)
        .map_err(anyhow::Error::msg)?;
    mooring_kustomize_controller::app::run(args).await?;
    Ok(())
}
