//! Authentication as a tower layer shared by every service (and the gateway), and the
//! authorisation checks handlers make with the caller's identity — one place for the
//! rules every service follows:
//!
//! - the layer verifies the bearer token of every request except public methods, and
//!   puts the caller's [`Identity`] into the request's extensions; a request without a
//!   valid token never reaches a handler. Internal methods (one service calling another,
//!   e.g. the wallet issuing a gift) also need the role `service`;
//! - a call that lasts (a stream) ends with `UNAUTHENTICATED` once its token no longer
//!   passes: revoked, its key gone, or expired ([`lasting`]);
//! - **owners act**: only the player a thing belongs to exchanges or uses it
//!   ([`acting_owner`]); an admin's or a service's token is refused;
//! - **admins read**: an admin may read anyone's things ([`read_for`], [`check_visible`]);
//! - **others see nothing**: another customer's thing asked for by id is `NOT_FOUND` with
//!   the very answer of an unknown id ([`check_visible`]), so ids leak nothing; listing
//!   another customer's things is `PERMISSION_DENIED` (the customer id is in the request).
//!
//! Handlers decide by `sub`: a client-supplied customer id never overrides the token.

use std::sync::Arc;
use std::task::{Context, Poll};

use auth_adapter::{Identity, Role, Verifier};
use futures_like::BoxFuture;
use tonic::{Request, Status};
use tower::{Layer, Service};

mod lasting;

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
    internal: Arc<[String]>,
}

impl AuthLayer {
    /// `public`: extra path prefixes callable without a token (e.g.
    /// `/game.mission.v1.MissionService/ListCatalog`).
    pub fn new(verifier: Arc<Verifier>, public: &[&str]) -> Self {
        let public = ALWAYS_PUBLIC.iter().chain(public).map(|s| (*s).to_owned()).collect();
        Self { verifier, public, internal: Arc::from([]) }
    }

    /// `internal`: path prefixes (a whole internal service, e.g.
    /// `/game.gift.v1.GiftIssuingService/`) only callers with the role `service` may call;
    /// anyone else with a valid token is `PERMISSION_DENIED`.
    #[must_use]
    pub fn internal(mut self, internal: &[&str]) -> Self {
        self.internal = internal.iter().map(|s| (*s).to_owned()).collect();
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticate<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            verifier: self.verifier.clone(),
            public: self.public.clone(),
            internal: self.internal.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Authenticate<S> {
    inner: S,
    verifier: Arc<Verifier>,
    public: Arc<[String]>,
    internal: Arc<[String]>,
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
        let (verifier, public, internal) = (self.verifier.clone(), self.public.clone(), self.internal.clone());
        Box::pin(async move {
            let outcome = authenticate(&verifier, authorization(&req)).await;
            match outcome {
                Ok(identity) if is_public(&internal, req.uri().path()) && identity.role != Role::Service => {
                    // (`is_public` is the prefix match; here over the internal prefixes.)
                    tracing::warn!(
                        path = req.uri().path(),
                        sub = identity.customer_id,
                        role = %identity.role,
                        "internal method called without the service role"
                    );
                    return Ok(Status::permission_denied("this method is internal: only our own services may call it")
                        .into_http());
                }
                Ok(identity) => {
                    req.extensions_mut().insert(identity.clone());
                    // The answer lasts as long as the token passes (a stream ends when it
                    // no longer does).
                    return inner.call(req).await.map(|r| lasting::bind(r, verifier, identity));
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

/// What the request carries besides its message: the caller (when authenticated), its
/// request id (`x-request-id`) and trace context (`traceparent`).
pub fn context<T>(req: &Request<T>) -> kernel::RequestContext {
    kernel::RequestContext {
        caller: req.extensions().get::<Identity>().map(|i| i.customer_id.clone()),
        request_id: crate::status::header(req, "x-request-id"),
        traceparent: crate::status::header(req, "traceparent"),
    }
}

/// The customer a request acts for: the one named in the request, which must be the
/// caller unless the caller is an admin (who reports for anyone).
///
/// # Errors
/// `UNAUTHENTICATED` without identity, `INVALID_ARGUMENT` for a missing or malformed
/// id, `PERMISSION_DENIED` for someone else's.
pub fn act_for<T>(req: &Request<T>, requested: &str) -> Result<kernel::CustomerId, Status> {
    read_for(req, requested)
}

/// The customer a request names, or a player's own id when it names none: the token
/// already says who they are. Anyone else must name the customer.
pub fn or_caller<'a>(who: &'a Identity, requested: &'a str) -> &'a str {
    if requested.is_empty() && who.role == Role::Player { &who.customer_id } else { requested }
}

/// The customer whose things a request reads: the one named in the request (a player's
/// own when empty), which must be the caller unless the caller is an admin.
///
/// # Errors
/// `UNAUTHENTICATED` without identity, `INVALID_ARGUMENT` for a missing or malformed
/// id, `PERMISSION_DENIED` for someone else's (the id is the caller's own input: saying
/// so leaks nothing).
pub fn read_for<T>(req: &Request<T>, requested: &str) -> Result<kernel::CustomerId, Status> {
    let who = identity(req)?;
    let customer = crate::status::customer(or_caller(&who, requested))?;
    if who.may_read(customer.as_str()) {
        Ok(customer)
    } else {
        Err(Status::permission_denied("customer_id: you may only act for yourself"))
    }
}

/// The owner acting on their own things (exchanging a reward, using a gift): the caller,
/// who must be a player; `requested`, when not empty, must name them. The thing itself
/// is then looked up as the caller's: someone else's is not found.
///
/// # Errors
/// `UNAUTHENTICATED` without identity; `PERMISSION_DENIED` for an admin, a service or a
/// game server (they read, they do not act for a player), or when `requested` names
/// someone else.
pub fn acting_owner<T>(req: &Request<T>, requested: &str) -> Result<kernel::CustomerId, Status> {
    let who = identity(req)?;
    if who.role != Role::Player {
        return Err(Status::permission_denied(format!(
            "only the owner may do this; a token with the role '{}' may not act for a player",
            who.role
        )));
    }
    if !requested.is_empty() && crate::status::customer(requested)?.as_str() != who.customer_id {
        return Err(Status::permission_denied("customer_id: you may only act for yourself"));
    }
    crate::status::customer(&who.customer_id)
}

/// Checks that the caller may see a thing of `owner`'s, found by its id: its owner or an
/// admin. For anyone else the answer is exactly that of an unknown id (`what not found`),
/// so nobody learns which ids exist.
///
/// # Errors
/// `NOT_FOUND` naming the kind of thing.
pub fn check_visible(who: &Identity, owner: &str, what: &str) -> Result<(), Status> {
    if who.may_read(owner) { Ok(()) } else { Err(crate::status::not_found(what)) }
}

/// Checks that the caller is an admin.
///
/// # Errors
/// `PERMISSION_DENIED`.
pub fn require_admin(who: &Identity) -> Result<(), Status> {
    if who.is_admin() { Ok(()) } else { Err(Status::permission_denied("admins only")) }
}
