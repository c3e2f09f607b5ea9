//! The inbound gRPC adapter (the plain HTTP routes are in [`crate::http`]).
//!
//! The auth service is served without the shared authentication layer (most of its
//! methods are public); its admin methods verify the caller's token here, against its
//! own keys and its own revocations, and log every change they make.

use std::sync::Arc;
use std::time::Duration;

use auth_adapter::revocation::RevocationKey;
use auth_adapter::{Identity, TokenIssuer, Verifier};
use auth_domain::{AuditEntry, AuthError, LoginRefusal, RoleRefusal};
use grpc_adapter::convert::timestamp;
use grpc_adapter::pb::auth::v1 as pb;
use grpc_adapter::peer::{self, FORWARDED_FOR, FORWARDER_TOKEN};
use grpc_adapter::{auth, status};
use tonic::{Request, Response, Status};

use crate::App;
use crate::crypto::{Busy, HashSlots};

/// What the auth service serves: with `split` (an internal listener, `INTERNAL_ADDR`),
/// the gRPC service on the public port (the gateway's alone) and, on the internal one
/// (every service of ours), the plain HTTP routes of [`crate::http`] with only
/// `IssueServiceToken` and `GetJwks` of the gRPC service; without it, all on one port.
pub fn routes(
    app: Arc<App>,
    issuer: TokenIssuer,
    forwarders: Vec<String>,
    slots: HashSlots,
    horizon: Duration,
    revocation_key: RevocationKey,
    split: bool,
) -> (tonic::service::Routes, Option<tonic::service::Routes>) {
    let http = crate::http::routes(app.clone(), issuer.clone(), horizon, revocation_key);
    let grpc = pb::auth_service_server::AuthServiceServer::new(Handlers { app, issuer, forwarders, slots });
    if !split {
        return (tonic::service::Routes::from(tonic::service::Routes::new(grpc).into_axum_router().merge(http)), None);
    }
    let internal = INTERNAL_METHODS
        .iter()
        .fold(http, |router, method| router.route_service(method, grpc.clone()))
        .fallback(|| async {
            Status::unimplemented(
                "the auth service's internal port serves IssueServiceToken, GetJwks, the JWKS, the revocations and \
                 the customer lookup; the rest is on its public port, through the gateway",
            )
            .into_http::<axum::body::Body>()
        });
    (tonic::service::Routes::new(grpc), Some(tonic::service::Routes::from(internal)))
}

/// The gRPC methods our services call on the internal port: the wallet's and the
/// gateway's service tokens, the keys.
pub const INTERNAL_METHODS: [&str; 2] =
    ["/game.auth.v1.AuthService/IssueServiceToken", "/game.auth.v1.AuthService/GetJwks"];

pub struct Handlers {
    app: Arc<App>,
    issuer: TokenIssuer,
    /// The service accounts whose token vouches for `x-forwarded-for` (the gateway's).
    forwarders: Vec<String>,
    /// Every call that hashes a password holds one while it runs.
    slots: HashSlots,
}

fn retry_after(code: tonic::Code, retry_after: Duration, message: &str) -> Status {
    let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
    let mut s = Status::new(code, format!("{message}; try again in {seconds} s"));
    s.metadata_mut().insert("retry-after", seconds.into());
    s
}

/// `UNAVAILABLE` with `retry-after`: no hashing slot was free.
fn busy(_: Busy) -> Status {
    retry_after(tonic::Code::Unavailable, Duration::from_secs(1), "too many logins at once")
}

fn to_status(e: AuthError) -> Status {
    match e {
        AuthError::Invalid(v) | AuthError::Role(RoleRefusal::Invalid(v)) => status::invalid(&v),
        AuthError::AlreadyRegistered => Status::already_exists("customer_id: already registered"),
        AuthError::AlreadyExists(why) => Status::already_exists(why),
        AuthError::NotFound(what) => status::not_found(what),
        AuthError::Refused(LoginRefusal::BadCredentials) => Status::unauthenticated("invalid customer id or password"),
        AuthError::Refused(LoginRefusal::Throttled { retry_after: wait }) => {
            retry_after(tonic::Code::ResourceExhausted, wait, "too many failed attempts")
        }
        AuthError::Role(r @ RoleRefusal::OwnAdminRole) => Status::failed_precondition(r.to_string()),
        AuthError::Unavailable(detail) => status::unavailable(&detail),
    }
}

impl Handlers {
    /// The client's address, for the throttle: what the gateway saw when the call carries
    /// the gateway's own token (see `TRUSTED_FORWARDERS`), else the TCP peer, whatever
    /// `x-forwarded-for` says.
    async fn address<T>(&self, req: &Request<T>) -> Option<String> {
        let header = |name| req.metadata().get(name).and_then(|v| v.to_str().ok());
        let vouched = match header(FORWARDER_TOKEN) {
            Some(token) => self.is_forwarder(token).await,
            None => false,
        };
        let client = if vouched { peer::last_hop(header(FORWARDED_FOR)) } else { None };
        client.or_else(|| peer::peer_of(req)).map(|ip| ip.to_string())
    }

    /// Whether `token` is a live token of ours for a trusted forwarder (role `service`).
    async fn is_forwarder(&self, token: &str) -> bool {
        let Ok(keys) = self.issuer.ring.jwks() else { return false };
        let verifier = Verifier::with_keys(&keys, vec![self.issuer.issuer.clone()], &self.issuer.audience);
        let who = match verifier.verify(token) {
            Ok(who) if who.role == auth_adapter::Role::Service && self.forwarders.contains(&who.customer_id) => who,
            Ok(who) => {
                tracing::warn!(subject = who.customer_id, "x-forwarder-token of no trusted forwarder: ignored");
                return false;
            }
            Err(e) => {
                tracing::warn!(error = %e, "x-forwarder-token not valid: ignored");
                return false;
            }
        };
        match self.app.revocation(&who.customer_id).await {
            Ok(revoked) => !auth_adapter::revoked(who.issued_at, revoked.map(|r| r.before)),
            Err(_) => false,
        }
    }

    /// The caller, who must be an admin: verified against our own keys (the auth service
    /// trusts no one else with its admin methods) and our own revocations.
    async fn admin<T>(&self, req: &Request<T>) -> Result<Identity, Status> {
        let header = req.metadata().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let keys = self.issuer.ring.jwks().map_err(|e| status::unavailable(&e))?;
        let verifier = Verifier::with_keys(&keys, vec![self.issuer.issuer.clone()], &self.issuer.audience);
        let who = auth::authenticate(&verifier, header).await?;
        let revoked = self.app.revocation(&who.customer_id).await.map_err(to_status)?;
        if auth_adapter::revoked(who.issued_at, revoked.map(|r| r.before)) {
            return Err(Status::unauthenticated(auth_adapter::AuthError::Revoked.to_string()));
        }
        auth::require_admin(&who)?;
        Ok(who)
    }
}

fn audit_to_proto(e: AuditEntry) -> pb::AuditEntry {
    pb::AuditEntry {
        at: Some(timestamp(e.at)),
        actor: e.actor,
        action: e.action.as_str().to_owned(),
        subject: e.subject,
        detail: e.detail,
    }
}

fn token_response(t: auth_domain::Token) -> Response<pb::IssueTokenResponse> {
    Response::new(pb::IssueTokenResponse {
        access_token: t.access_token,
        token_type: "Bearer".into(),
        expires_in: t.expires_in,
    })
}

#[tonic::async_trait]
impl pb::auth_service_server::AuthService for Handlers {
    async fn register_customer(
        &self,
        req: Request<pb::RegisterCustomerRequest>,
    ) -> Result<Response<pb::RegisterCustomerResponse>, Status> {
        let _slot = self.slots.enter().await.map_err(busy)?;
        let r = req.into_inner();
        let customer = self.app.register(&r.customer_id, &r.password).await.map_err(to_status)?;
        tracing::info!(customer = %customer, "customer registered");
        Ok(Response::new(pb::RegisterCustomerResponse { customer_id: customer.to_string() }))
    }

    async fn issue_token(
        &self,
        req: Request<pb::IssueTokenRequest>,
    ) -> Result<Response<pb::IssueTokenResponse>, Status> {
        let _slot = self.slots.enter().await.map_err(busy)?;
        let address = self.address(&req).await;
        let r = req.into_inner();
        let token = self.app.issue_token(&r.customer_id, &r.password, address.as_deref()).await.map_err(|e| {
            if let AuthError::Refused(refusal) = &e {
                tracing::info!(customer = r.customer_id, address, %refusal, "login refused");
            }
            to_status(e)
        })?;
        Ok(token_response(token))
    }

    async fn issue_service_token(
        &self,
        req: Request<pb::IssueServiceTokenRequest>,
    ) -> Result<Response<pb::IssueTokenResponse>, Status> {
        let _slot = self.slots.enter().await.map_err(busy)?;
        let address = self.address(&req).await;
        let r = req.into_inner();
        let token = self.app.issue_service_token(&r.client_id, &r.client_secret, address.as_deref()).await.map_err(
            |e| match e {
                AuthError::Refused(LoginRefusal::BadCredentials) => {
                    tracing::info!(client = r.client_id, address, "service account login refused");
                    Status::unauthenticated("invalid client id or secret")
                }
                other => to_status(other),
            },
        )?;
        Ok(token_response(token))
    }

    async fn get_jwks(&self, _: Request<pb::GetJwksRequest>) -> Result<Response<pb::GetJwksResponse>, Status> {
        let set = self.issuer.ring.jwks().map_err(|e| status::unavailable(&e))?;
        let key_ids = set.keys.iter().filter_map(|k| k.common.key_id.clone()).collect();
        let jwks_json = serde_json::to_string(&set).map_err(|e| status::internal(&e))?;
        Ok(Response::new(pb::GetJwksResponse { jwks_json, key_ids }))
    }

    async fn rotate_signing_key(
        &self,
        req: Request<pb::RotateSigningKeyRequest>,
    ) -> Result<Response<pb::RotateSigningKeyResponse>, Status> {
        let who = self.admin(&req).await?;
        let key_id = self.issuer.ring.rotate().map_err(|e| status::unavailable(&e))?;
        tracing::info!(by = who.customer_id, key_id, "signing key rotated");
        Ok(Response::new(pb::RotateSigningKeyResponse { key_id }))
    }

    async fn grant_role(&self, req: Request<pb::GrantRoleRequest>) -> Result<Response<pb::GrantRoleResponse>, Status> {
        let who = self.admin(&req).await?;
        let r = req.into_inner();
        let (account, changed) =
            self.app.grant_role(&who.customer_id, &r.customer_id, &r.role).await.map_err(to_status)?;
        tracing::info!(
            audit = true,
            actor = who.customer_id,
            customer = r.customer_id,
            role = r.role,
            changed,
            "role granted"
        );
        Ok(Response::new(pb::GrantRoleResponse {
            customer_id: account.customer_id.to_string(),
            role: account.role.as_str().to_owned(),
            changed,
        }))
    }

    async fn revoke_role(
        &self,
        req: Request<pb::RevokeRoleRequest>,
    ) -> Result<Response<pb::RevokeRoleResponse>, Status> {
        let who = self.admin(&req).await?;
        let r = req.into_inner();
        let (account, changed) =
            self.app.revoke_role(&who.customer_id, &r.customer_id, &r.role).await.map_err(to_status)?;
        tracing::info!(
            audit = true,
            actor = who.customer_id,
            customer = r.customer_id,
            role = r.role,
            changed,
            "role revoked"
        );
        Ok(Response::new(pb::RevokeRoleResponse {
            customer_id: account.customer_id.to_string(),
            role: account.role.as_str().to_owned(),
            changed,
        }))
    }

    async fn create_service_account(
        &self,
        req: Request<pb::CreateServiceAccountRequest>,
    ) -> Result<Response<pb::CreateServiceAccountResponse>, Status> {
        let who = self.admin(&req).await?;
        let _slot = self.slots.enter().await.map_err(busy)?;
        let r = req.into_inner();
        let (account, secret) =
            self.app.create_service_account(&who.customer_id, &r.name, &r.role).await.map_err(to_status)?;
        tracing::info!(
            audit = true,
            actor = who.customer_id,
            client = %account.client_id,
            role = %account.role,
            "service account created"
        );
        Ok(Response::new(pb::CreateServiceAccountResponse {
            client_id: account.client_id.to_string(),
            client_secret: secret.expose().to_owned(),
            role: account.role.as_str().to_owned(),
        }))
    }

    async fn revoke_tokens(
        &self,
        req: Request<pb::RevokeTokensRequest>,
    ) -> Result<Response<pb::RevokeTokensResponse>, Status> {
        let who = self.admin(&req).await?;
        let r = req.into_inner();
        let revocation =
            self.app.revoke_tokens(&who.customer_id, &r.customer_id, r.external).await.map_err(to_status)?;
        tracing::info!(
            audit = true,
            actor = who.customer_id,
            subject = r.customer_id,
            before = revocation.before,
            "tokens revoked"
        );
        Ok(Response::new(pb::RevokeTokensResponse {
            customer_id: revocation.subject,
            revoked_before: Some(prost_types::Timestamp { seconds: revocation.before, nanos: 0 }),
        }))
    }

    async fn list_audit_entries(
        &self,
        req: Request<pb::ListAuditEntriesRequest>,
    ) -> Result<Response<pb::ListAuditEntriesResponse>, Status> {
        self.admin(&req).await?;
        let r = req.into_inner();
        let limit = usize::try_from(r.limit).unwrap_or(usize::MAX);
        let entries = self.app.audit(&r.subject, limit).await.map_err(to_status)?;
        Ok(Response::new(pb::ListAuditEntriesResponse { entries: entries.into_iter().map(audit_to_proto).collect() }))
    }
}

#[cfg(test)]
mod status_tests {
    use tonic::Code;

    use super::*;

    fn of(e: AuthError) -> (Code, String) {
        let s = to_status(e);
        (s.code(), s.message().to_owned())
    }

    #[test]
    fn each_auth_error_becomes_its_status_naming_what_is_wrong() {
        let invalid = || kernel::ValidationError::new("customer_id", "must not be empty");
        assert_eq!(of(AuthError::Invalid(invalid())), (Code::InvalidArgument, "customer_id: must not be empty".into()));
        assert_eq!(of(AuthError::Role(RoleRefusal::Invalid(invalid()))).0, Code::InvalidArgument);
        assert_eq!(of(AuthError::AlreadyRegistered), (Code::AlreadyExists, "customer_id: already registered".into()));
        assert_eq!(of(AuthError::AlreadyExists("name: taken".into())), (Code::AlreadyExists, "name: taken".into()));
        assert_eq!(of(AuthError::NotFound("customer")), (Code::NotFound, "customer not found".into()));
        assert_eq!(
            of(AuthError::Refused(LoginRefusal::BadCredentials)),
            (Code::Unauthenticated, "invalid customer id or password".into())
        );
        assert_eq!(of(AuthError::Role(RoleRefusal::OwnAdminRole)).0, Code::FailedPrecondition);
        let (code, message) = of(AuthError::Unavailable("database is locked at /data/auth.db".into()));
        assert_eq!(code, Code::Unavailable);
        assert!(!message.contains("/data/auth.db"), "{message}");
    }

    #[test]
    fn a_throttled_login_says_when_to_try_again() {
        let s = to_status(AuthError::Refused(LoginRefusal::Throttled { retry_after: Duration::from_millis(4100) }));
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert!(s.message().contains("try again in 5 s"), "{}", s.message());
        assert_eq!(s.metadata().get("retry-after").and_then(|v| v.to_str().ok()), Some("5"));
    }

    #[test]
    fn no_free_hashing_slot_is_unavailable_saying_when_to_try_again() {
        let s = busy(Busy);
        assert_eq!(s.code(), Code::Unavailable);
        assert!(s.message().contains("try again in 1 s"), "{}", s.message());
        assert_eq!(s.metadata().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    }
}
