//! `grpc_server_handled_total` and `grpc_server_handling_seconds` per service, method and
//! code, as a tower layer in front of authentication (a refused call is a call too).
//!
//! The code is read where gRPC puts it: in the headers of a trailers-only answer (every
//! error tonic or our layers make), else in the trailers at the end of the body; the time
//! runs until then. A body dropped before its trailers is a call the client cancelled.
//! Paths that are not one of our methods are counted as `unknown`, so a client cannot
//! grow the label sets without bound.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::Frame;
use tokio::time::Instant;

type Body = tonic::body::Body;

/// go-grpc-prometheus's names of the codes (what its dashboards and our alerts match).
pub fn code_name(code: &[u8]) -> &'static str {
    match code {
        b"0" => "OK",
        b"1" => "Canceled",
        b"2" => "Unknown",
        b"3" => "InvalidArgument",
        b"4" => "DeadlineExceeded",
        b"5" => "NotFound",
        b"6" => "AlreadyExists",
        b"7" => "PermissionDenied",
        b"8" => "ResourceExhausted",
        b"9" => "FailedPrecondition",
        b"10" => "Aborted",
        b"11" => "OutOfRange",
        b"12" => "Unimplemented",
        b"13" => "Internal",
        b"14" => "Unavailable",
        b"15" => "DataLoss",
        b"16" => "Unauthenticated",
        _ => "Unknown",
    }
}

/// One call being answered: what to record when its code is known.
struct Call {
    grpc_type: &'static str,
    service: String,
    method: String,
    started: Instant,
}

impl Call {
    fn new(path: &str, started: Instant) -> Self {
        let (grpc_type, service, method) = match contracts::methods::shape(path) {
            Some(shape) => {
                let (service, method) = path.trim_start_matches('/').split_once('/').unwrap_or(("unknown", "unknown"));
                let grpc_type = match (shape.client_streaming, shape.server_streaming) {
                    (false, false) => "unary",
                    (false, true) => "server_stream",
                    (true, false) => "client_stream",
                    (true, true) => "bidi_stream",
                };
                (grpc_type, service.to_owned(), method.to_owned())
            }
            None => ("unary", "unknown".to_owned(), "unknown".to_owned()),
        };
        Self { grpc_type, service, method, started }
    }

    fn finish(self, code: &'static str) {
        let seconds = self.started.elapsed().as_secs_f64();
        metrics_adapter::grpc().observe(self.grpc_type, &self.service, &self.method, code, seconds);
    }
}

fn is_grpc<B>(req: &http::Request<B>) -> bool {
    req.headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"))
}

/// The layer; it records only while metrics are on ([`metrics_adapter::enabled`]).
#[derive(Clone, Copy, Default)]
pub struct MetricsLayer;

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = Metered<S>;
    fn layer(&self, inner: S) -> Metered<S> {
        Metered { inner }
    }
}

#[derive(Clone)]
pub struct Metered<S> {
    inner: S,
}

impl<S> tower::Service<http::Request<Body>> for Metered<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let call = (metrics_adapter::enabled() && is_grpc(&req)).then(|| {
            let started = req.extensions().get::<crate::server::Arrival>().map_or_else(Instant::now, |a| a.0);
            Call::new(req.uri().path(), started)
        });
        let future = self.inner.call(req);
        Box::pin(async move {
            let response = future.await?;
            let Some(call) = call else { return Ok(response) };
            if let Some(code) = response.headers().get("grpc-status") {
                call.finish(code_name(code.as_bytes()));
                return Ok(response);
            }
            Ok(response.map(|body| Body::new(Observed { inner: body, call: Some(call) })))
        })
    }
}

/// The answer's body, watched for its trailers.
struct Observed {
    inner: Body,
    call: Option<Call>,
}

impl http_body::Body for Observed {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(|t| t.get("grpc-status"))
                    && let Some(call) = self.call.take()
                {
                    call.finish(code_name(code.as_bytes()));
                }
            }
            Poll::Ready(Some(Err(_))) | Poll::Ready(None) => {
                if let Some(call) = self.call.take() {
                    call.finish("Unknown");
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            call.finish("Canceled");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_named_as_go_grpc_prometheus_names_them() {
        assert_eq!(code_name(b"0"), "OK");
        assert_eq!(code_name(b"4"), "DeadlineExceeded");
        assert_eq!(code_name(b"16"), "Unauthenticated");
        assert_eq!(code_name(b"99"), "Unknown");
    }

    #[test]
    fn a_path_that_is_not_ours_is_counted_as_unknown() {
        let call = Call::new("/evil.Service/Whatever", Instant::now());
        assert_eq!((call.service.as_str(), call.method.as_str()), ("unknown", "unknown"));
        let call = Call::new("/game.mypage.v1.MyPageService/WatchMyPage", Instant::now());
        assert_eq!(
            (call.grpc_type, call.service.as_str(), call.method.as_str()),
            ("server_stream", "game.mypage.v1.MyPageService", "WatchMyPage")
        );
    }
}
