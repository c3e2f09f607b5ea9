//! Logs and traces of a role, set up once per process.
//!
//! - Logs: `tracing`, human on a terminal, JSON lines with `LOG_FORMAT=json`, the level
//!   from `RUST_LOG`.
//! - Traces: when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
//!   is set, `tracing` spans also become OpenTelemetry spans (tracing-opentelemetry),
//!   exported in batches over OTLP: `OTEL_EXPORTER_OTLP_PROTOCOL` `grpc` or
//!   `http/protobuf` (the default, as the specification says). The SDK reads the other
//!   standard variables itself (`OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`,
//!   `OTEL_RESOURCE_ATTRIBUTES`); `OTEL_SERVICE_NAME` defaults to the role. Unset: no
//!   OpenTelemetry layer at all, and the helpers below answer `None`.
//! - Trace context crosses processes as W3C `traceparent`: [`child_of`] starts a span
//!   under a received one, [`traceparent`] writes a span's context for the next hop.

use std::sync::OnceLock;

use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry::{Context, propagation::TextMapPropagator as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether spans are exported (OpenTelemetry is on).
pub fn tracing_on() -> bool {
    PROVIDER.get().is_some()
}

fn endpoint_set() -> bool {
    ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|v| !v.trim().is_empty()))
}

/// Sets up logs, and traces when configured, for the process of `role`. Call it inside
/// the tokio runtime (the gRPC exporter's channel lives there).
///
/// # Errors
/// A broken `OTEL_*` setting, named (logs are set up all the same): the caller stops.
pub fn init(role: &str, json: bool) -> Result<(), String> {
    let filter = || {
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,async_nats=warn,h2=warn,tower=warn"))
    };
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if json { fmt.json().boxed() } else { fmt.with_ansi(atty_stderr()).boxed() };
    let (otel, problem) = if endpoint_set() {
        match provider(role) {
            Ok(p) => {
                let tracer = p.tracer("game-rewards");
                let _ = PROVIDER.set(p);
                opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
                (Some(tracing_opentelemetry::layer().with_tracer(tracer)), None)
            }
            Err(e) => (None, Some(e)),
        }
    } else {
        (None, None)
    };
    // Only our spans and events go to the exporter: the filter applies to both layers.
    let _ = tracing_subscriber::registry().with(fmt.with_filter(filter())).with(otel.with_filter(filter())).try_init();
    problem.map_or(Ok(()), Err)
}

/// The OTLP protocol named by `value` (`OTEL_EXPORTER_OTLP_PROTOCOL`): whether it is gRPC.
fn is_grpc(value: &str) -> Result<bool, String> {
    match value.trim() {
        "grpc" => Ok(true),
        "http/protobuf" => Ok(false),
        other => Err(format!("OTEL_EXPORTER_OTLP_PROTOCOL: `{other}` is not one of grpc, http/protobuf")),
    }
}

use tracing_subscriber::Layer as _;

fn atty_stderr() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

fn provider(role: &str) -> Result<SdkTracerProvider, String> {
    use opentelemetry_otlp::{Protocol, WithExportConfig as _};
    let protocol = std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_else(|_| "http/protobuf".into());
    let endpoint_error = |e: opentelemetry_otlp::ExporterBuildError| format!("OTEL_EXPORTER_OTLP_ENDPOINT: {e}");
    let exporter = match is_grpc(&protocol)? {
        true => opentelemetry_otlp::SpanExporter::builder().with_tonic().build().map_err(endpoint_error)?,
        false => {
            // The blocking HTTP client must not be made (or dropped) on the async runtime.
            std::thread::spawn(|| {
                opentelemetry_otlp::SpanExporter::builder().with_http().with_protocol(Protocol::HttpBinary).build()
            })
            .join()
            .map_err(|_| "OTEL_EXPORTER_OTLP_ENDPOINT: the OTLP HTTP exporter could not be built".to_owned())?
            .map_err(endpoint_error)?
        }
    };
    let name = std::env::var("OTEL_SERVICE_NAME").ok().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| role.into());
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(name).build();
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
}

/// Exports what is left; call once the role stopped.
pub fn shutdown() {
    if let Some(p) = PROVIDER.get() {
        let _ = p.force_flush();
        let _ = p.shutdown();
    }
}

/// Makes `span` a child of the W3C `traceparent` received (a request header, an event
/// header), when traces are on and it parses.
pub fn child_of(span: &tracing::Span, traceparent: Option<&str>) {
    if !tracing_on() {
        return;
    }
    let Some(tp) = traceparent else { return };
    let carrier = std::collections::HashMap::from([("traceparent".to_owned(), tp.to_owned())]);
    let parent = TraceContextPropagator::new().extract(&carrier);
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// `span`'s context as W3C `traceparent`, for the next hop; `None` when traces are off.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    if !tracing_on() {
        return None;
    }
    let cx: Context = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = std::collections::HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_otlp_protocols_are_known_and_anything_else_is_refused_by_name() {
        assert_eq!(is_grpc("grpc"), Ok(true));
        assert_eq!(is_grpc(" http/protobuf "), Ok(false));
        let err = is_grpc("http/json").unwrap_err();
        assert!(err.starts_with("OTEL_EXPORTER_OTLP_PROTOCOL"), "{err}");
    }
}
