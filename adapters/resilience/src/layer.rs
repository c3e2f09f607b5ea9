//! The tower middleware around a [`Breaker`]: a call is refused at once while it is
//! open, else made and its outcome recorded.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tower::{BoxError, Layer, Service};

use crate::Breaker;

/// Decides whether a call's result is a failure of the guarded dependency.
pub trait Classify<T>: Clone + Send + Sync + 'static {
    fn is_failure(&self, result: &Result<T, BoxError>) -> bool;
}

impl<T, F> Classify<T> for F
where
    F: Fn(&Result<T, BoxError>) -> bool + Clone + Send + Sync + 'static,
{
    fn is_failure(&self, result: &Result<T, BoxError>) -> bool {
        self(result)
    }
}

/// Wraps a service with a [`Breaker`].
#[derive(Clone)]
pub struct CircuitBreakerLayer<C> {
    breaker: Breaker,
    classify: C,
}

impl<C> CircuitBreakerLayer<C> {
    pub fn new(breaker: Breaker, classify: C) -> Self {
        Self { breaker, classify }
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreaker<S, C>;
    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreaker { inner, breaker: self.breaker.clone(), classify: self.classify.clone() }
    }
}

#[derive(Clone)]
pub struct CircuitBreaker<S, C> {
    inner: S,
    breaker: Breaker,
    classify: C,
}

impl<S, C, Req> Service<Req> for CircuitBreaker<S, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    C: Classify<S::Response>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let permit = match self.breaker.acquire() {
            Ok(p) => p,
            Err(open) => return Box::pin(std::future::ready(Err(Box::new(open) as BoxError))),
        };
        let fut = self.inner.call(req);
        let (breaker, classify) = (self.breaker.clone(), self.classify.clone());
        Box::pin(async move {
            let result = fut.await.map_err(Into::into);
            breaker.record(permit, classify.is_failure(&result));
            result
        })
    }
}
