//! The server span of every gRPC call, when traces are on: a child of the caller's
//! `traceparent`, named `<service>/<method>` (OpenTelemetry's RPC conventions). The
//! request's `traceparent` header is then rewritten to this span, so whatever the handler
//! passes on — the gateway's upstream call, the events a handler writes to the outbox —
//! continues the trace under it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tracing::Instrument as _;

type Body = tonic::body::Body;

#[derive(Clone, Copy, Default)]
pub struct TraceLayer;

impl<S> tower::Layer<S> for TraceLayer {
    type Service = Traced<S>;
    fn layer(&self, inner: S) -> Traced<S> {
        Traced { inner }
    }
}

#[derive(Clone)]
pub struct Traced<S> {
    inner: S,
}

impl<S> tower::Service<http::Request<Body>> for Traced<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
        let path = req.uri().path();
        if !telemetry_adapter::tracing_on() || contracts::methods::shape(path).is_none() {
            return Box::pin(self.inner.call(req));
        }
        let (service, method) = path.trim_start_matches('/').split_once('/').unwrap_or(("", ""));
        let span = tracing::info_span!(
            "grpc.server",
            otel.name = %format!("{service}/{method}"),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let received = req.headers().get("traceparent").and_then(|v| v.to_str().ok());
        telemetry_adapter::child_of(&span, received);
        if let Some(tp) = telemetry_adapter::traceparent(&span).and_then(|tp| tp.parse().ok()) {
            req.headers_mut().insert("traceparent", tp);
        }
        let future = self.inner.call(req);
        let answered = span.clone();
        Box::pin(
            async move {
                let result = future.await;
                if let Ok(response) = &result {
                    record_status(&answered, response);
                }
                result
            }
            .instrument(span),
        )
    }
}

/// The call's gRPC code on its span (`rpc.grpc.status_code`), and the span's status
/// ERROR when the code is a server's fault. Every error our server answers is
/// trailers-only (the code in the headers); an answer with a body ends OK.
fn record_status(span: &tracing::Span, response: &http::Response<Body>) {
    let code = response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    span.record("rpc.grpc.status_code", code);
    if is_server_error(code) {
        span.record("otel.status_code", "ERROR");
    }
}

/// OpenTelemetry's RPC conventions for a server span: UNKNOWN, DEADLINE_EXCEEDED,
/// UNIMPLEMENTED, INTERNAL, UNAVAILABLE and DATA_LOSS are errors; the other codes
/// (NOT_FOUND, INVALID_ARGUMENT, PERMISSION_DENIED...) are the caller's and leave the
/// status unset.
fn is_server_error(code: i64) -> bool {
    matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
}

#[cfg(test)]
mod tests {
    use super::is_server_error;

    #[test]
    fn only_the_servers_faults_make_a_span_an_error() {
        let errors: Vec<i64> = (0..=16).filter(|c| is_server_error(*c)).collect();
        assert_eq!(
            errors,
            [2, 4, 12, 13, 14, 15],
            "UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS"
        );
    }
}
