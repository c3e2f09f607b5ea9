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
/// (`OTEL_SERVICE_NAME` wins).
///
/// # Errors
/// A broken `OTEL_*` setting, named: the caller stops the process.
pub fn init_as(format: LogFormat, service: &str) -> Result<(), String> {
    telemetry_adapter::init(service, format == LogFormat::Json).map_err(|e| format!("traces: {e}"))
}
