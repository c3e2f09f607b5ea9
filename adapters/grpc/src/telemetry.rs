//! One place that sets up `tracing` for a process (see [`telemetry_adapter`]).

/// How logs are written (`--log-format` / `LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Logs on stderr in `format` (the level from `RUST_LOG`, default `info`), and
/// OpenTelemetry traces when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, as `service`
/// (`OTEL_SERVICE_NAME` wins). A broken `OTEL_*` setting stops the process, naming it.
pub fn init_as(format: LogFormat, service: &str) {
    if let Err(e) = telemetry_adapter::init(service, format == LogFormat::Json) {
        eprintln!("error: traces: {e}");
        std::process::exit(1);
    }
}

/// [`init_as`] named after the executable.
pub fn init(format: LogFormat) {
    let exe = std::env::current_exe().ok();
    let name = exe.as_deref().and_then(|p| p.file_stem()).and_then(|s| s.to_str()).unwrap_or("game-rewards");
    init_as(format, name);
}
