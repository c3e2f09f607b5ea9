//! The inbound gRPC adapter, and the JWKS over plain HTTP.

use std::sync::Arc;

use auth_adapter::{TokenIssuer, Verifier};
use auth_domain::{AuthError, LoginRefusal};
use grpc_adapter::pb::auth::v1 as pb;
use grpc_adapter::{auth, status};
use tonic::{Request, Response, Status};

use crate::App;

/// The gRPC service plus `GET /.well-known/jwks.json`.
pub fn routes(app: Arc<App>, issuer: TokenIssuer) -> tonic::service::Routes {
    let jwks_issuer = issuer.clone();
    let grpc = pb::auth_service_server::AuthServiceServer::new(Handlers { app, issuer });
    let router = tonic::service::Routes::new(grpc).into_axum_router().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            let issuer = jwks_issuer.clone();
            async move {
                match issuer.ring.jwks().map(|set| serde_json::to_string(&set)) {
                    Ok(Ok(body)) => (http::StatusCode::OK, [(http::header::CONTENT_TYPE, "application/json")], body),
                    _ => (
                        http::StatusCode::SERVICE_UNAVAILABLE,
                        [(http::header::CONTENT_TYPE, "text/plain")],
                        String::new(),
                    ),
                }
            }
        }),
    );
    tonic::service::Routes::from(router)
}

pub struct Handlers {
    app: Arc<App>,
    issuer: TokenIssuer,
}

fn to_status(e: AuthError) -> Status {
    match e {
        AuthError::Invalid(v) => status::invalid(&v),
        AuthError::AlreadyRegistered => Status::already_exists("customer_id: already registered"),
        AuthError::Refused(LoginRefusal::BadCredentials) => Status::unauthenticated("invalid customer id or password"),
        AuthError::Refused(LoginRefusal::Locked { retry_after }) => {
            let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            let mut s = Status::resource_exhausted(format!("too many failed attempts; try again in {seconds} s"));
            s.metadata_mut().insert("retry-after", seconds.into());
            s
        }
        AuthError::Unavailable(detail) => status::unavailable(&detail),
    }
}

#[tonic::async_trait]
impl pb::auth_service_server::AuthService for Handlers {
    async fn register_customer(
        &self,
        req: Request<pb::RegisterCustomerRequest>,
    ) -> Result<Response<pb::RegisterCustomerResponse>, Status> {
        let r = req.into_inner();
        let customer = self.app.register(&r.customer_id, &r.password).await.map_err(to_status)?;
        tracing::info!(customer = %customer, "customer registered");
        Ok(Response::new(pb::RegisterCustomerResponse { customer_id: customer.to_string() }))
    }

    async fn issue_token(
        &self,
        req: Request<pb::IssueTokenRequest>,
    ) -> Result<Response<pb::IssueTokenResponse>, Status> {
        let r = req.into_inner();
        let token = self.app.issue_token(&r.customer_id, &r.password).await.map_err(to_status)?;
        Ok(Response::new(pb::IssueTokenResponse {
            access_token: token.access_token,
            token_type: "Bearer".into(),
            expires_in: token.expires_in,
        }))
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
        // Verified against our own keys: the auth service trusts no one else to rotate them.
        let header = req.metadata().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let keys = self.issuer.ring.jwks().map_err(|e| status::unavailable(&e))?;
        let verifier = Verifier::with_keys(&keys, vec![self.issuer.issuer.clone()], &self.issuer.audience);
        let who = auth::authenticate(&verifier, header).await?;
        auth::require_admin(&who)?;
        let key_id = self.issuer.ring.rotate().map_err(|e| status::unavailable(&e))?;
        tracing::info!(by = who.customer_id, key_id, "signing key rotated");
        Ok(Response::new(pb::RotateSigningKeyResponse { key_id }))
    }
}
