//! One place that sets up `tracing` for a binary (see [`telemetry_adapter`]).

/// Logs on stderr (human, or JSON lines with `LOG_FORMAT=json`, level from `RUST_LOG`),
/// and OpenTelemetry traces when `OTEL_EXPORTER_OTLP_ENDPOINT` is set; the service name
/// defaults to the executable's (the role's) name. A broken `OTEL_*` setting stops the
/// process, naming it.
pub fn init() {
    let exe = std::env::current_exe().ok();
    let role = exe.as_deref().and_then(|p| p.file_stem()).and_then(|s| s.to_str()).unwrap_or("game-rewards");
    if let Err(e) = telemetry_adapter::init(role) {
        crate::server::fail("traces", &e);
    }
}
