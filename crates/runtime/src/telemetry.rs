//! Structured logging.

use tracing_subscriber::EnvFilter;

use crate::flags::LogFormat;

/// Installs the global tracing subscriber. `level` is a level or an `EnvFilter` directive.
pub fn init(format: LogFormat, level: &str) -> Result<(), String> {
    let filter =
        EnvFilter::try_new(level).map_err(|e| format!("invalid --log-level {level:?}: {e}"))?;
    // Colours only on a terminal: escape codes garble `kubectl logs` and log files.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_target(false);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    result.map_err(|e| format!("installing the log subscriber: {e}"))
}
