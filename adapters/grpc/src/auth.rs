//! Authentication as a tower layer shared by every service (and the gateway), and the
//! authorisation checks handlers make with the caller's identity.
//!
//! The layer verifies the bearer token of every request except public methods, and puts
//! the caller's [`Identity`] into the request's extensions; a request without a valid
//! token never reaches a handler. Handlers then decide by `sub`: a client-supplied
//! customer id never overrides the token.

use std::sync::Arc;
use std::task::{Context, Poll};

use auth_adapter::{Identity, Verifier};
use futures_like::BoxFuture;
use tonic::{Request, Status};
use tower::{Layer, Service};

mod futures_like {
    pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;
}

/// Methods anyone may call, as gRPC path prefixes.
pub const ALWAYS_PUBLIC: &[&str] =
    &["/grpc.health.v1.Health/", "/grpc.reflection.v1.ServerReflection/", "/grpc.reflection.v1alpha.ServerReflection/"];

#[derive(Clone)]
pub struct AuthLayer {
    verifier: Arc<Verifier>,
    public: Arc<[String]>,
}

impl AuthLayer {
    /// `public`: extra path prefixes callable without a token (e.g.
    /// `/game.mission.v1.MissionService/ListCatalog`).
    pub fn new(verifier: Arc<Verifier>, public: &[&str]) -> Self {
        let public = ALWAYS_PUBLIC.iter().chain(public).map(|s| (*s).to_owned()).collect();
        Self { verifier, public }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticate<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Authenticate { inner, verifier: self.verifier.clone(), public: self.public.clone() }
    }
}

#[derive(Clone)]
pub struct Authenticate<S> {
    inner: S,
    verifier: Arc<Verifier>,
    public: Arc<[String]>,
}

/// Verifies the bearer token of an `authorization` header value.
///
/// # Errors
/// `UNAUTHENTICATED` saying why.
pub async fn authenticate(verifier: &Verifier, authorization: Option<String>) -> Result<Identity, Status> {
    let token = auth_adapter::bearer(authorization.as_deref()).map_err(|e| Status::unauthenticated(e.to_string()))?;
    verifier.authenticate(token).await.map_err(|e| Status::unauthenticated(e.to_string()))
}

/// The `authorization` header of a request, if any.
pub fn authorization<B>(req: &http::Request<B>) -> Option<String> {
    req.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Whether the request's path is one of `public`.
pub fn is_public(public: &[String], path: &str) -> bool {
    public.iter().any(|p| path.starts_with(p.as_str()))
}

impl<S, B> Service<http::Request<B>> for Authenticate<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        // The clone that was made ready goes with this request (tower's usual dance).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (verifier, public) = (self.verifier.clone(), self.public.clone());
        Box::pin(async move {
            let outcome = authenticate(&verifier, authorization(&req)).await;
            match outcome {
                Ok(identity) => {
                    req.extensions_mut().insert(identity);
                }
                Err(_) if is_public(&public, req.uri().path()) => {}
                Err(status) => {
                    tracing::debug!(path = req.uri().path(), reason = status.message(), "request refused");
                    return Ok(status.into_http());
                }
            }
            inner.call(req).await
        })
    }
}

/// The verified caller.
///
/// # Errors
/// `UNAUTHENTICATED` when the request carries no identity (a public method).
pub fn identity<T>(req: &Request<T>) -> Result<Identity, Status> {
    req.extensions().get::<Identity>().cloned().ok_or_else(|| Status::unauthenticated("missing bearer token"))
}

/// The customer a request acts for: the one named in the request, which must be the
/// caller unless the caller is an admin.
///
/// # Errors
/// `UNAUTHENTICATED` without identity, `INVALID_ARGUMENT` for a missing or malformed
/// id, `PERMISSION_DENIED` for someone else's.
pub fn act_for<T>(req: &Request<T>, requested: &str) -> Result<kernel::CustomerId, Status> {
    let who = identity(req)?;
    let customer = crate::status::customer(requested)?;
    if who.may_act_for(customer.as_str()) {
        Ok(customer)
    } else {
        Err(Status::permission_denied("customer_id: you may only act for yourself"))
    }
}

/// Checks that the caller owns a thing (or is an admin).
///
/// # Errors
/// `PERMISSION_DENIED` naming the kind of thing.
pub fn check_owner(who: &Identity, owner: &str, what: &str) -> Result<(), Status> {
    if who.may_act_for(owner) { Ok(()) } else { Err(Status::permission_denied(format!("this {what} is not yours"))) }
}

/// Checks that the caller is an admin.
///
/// # Errors
/// `PERMISSION_DENIED`.
pub fn require_admin(who: &Identity) -> Result<(), Status> {
    if who.is_admin() { Ok(()) } else { Err(Status::permission_denied("admins only")) }
}
