//! The decision a server takes from a request's head alone, before its body is read: the
//! gateway's rate limits. A refused call costs the reading of its headers, never of its
//! message (which may be 4 MiB, sent slowly).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body;

/// The refusal of a request (e.g. `RESOURCE_EXHAUSTED`), or `None` to let it go on. Called
/// after authentication (the caller's identity is in the request's extensions) and
/// before the framing check reads the message.
pub type Admission = Arc<dyn Fn(&http::Request<Body>) -> Option<http::Response<Body>> + Send + Sync>;

#[derive(Clone)]
pub(super) struct AdmitLayer(pub(super) Option<Admission>);

impl<S> tower::Layer<S> for AdmitLayer {
    type Service = Admit<S>;
    fn layer(&self, inner: S) -> Admit<S> {
        Admit { inner, admission: self.0.clone() }
    }
}

#[derive(Clone)]
pub struct Admit<S> {
    inner: S,
    admission: Option<Admission>,
}

impl<S> tower::Service<http::Request<Body>> for Admit<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>,
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
        if let Some(admission) = &self.admission
            && let Some(refusal) = admission(&req)
        {
            // The body is dropped unread: HTTP/2 resets the stream, HTTP/1 closes.
            return Box::pin(std::future::ready(Ok(refusal)));
        }
        Box::pin(self.inner.call(req))
    }
}
