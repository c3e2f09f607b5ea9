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
        if !telemetry_adapter::tracing_on() || crate::methods::shape(path).is_none() {
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
        );
        let received = req.headers().get("traceparent").and_then(|v| v.to_str().ok());
        telemetry_adapter::child_of(&span, received);
        if let Some(tp) = telemetry_adapter::traceparent(&span).and_then(|tp| tp.parse().ok()) {
            req.headers_mut().insert("traceparent", tp);
        }
        let future = self.inner.call(req);
        Box::pin(future.instrument(span))
    }
}
