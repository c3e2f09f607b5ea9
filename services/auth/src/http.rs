//! What the auth service answers over plain HTTP, to our own services only: the keys
//! (`GET /.well-known/jwks.json`), the revocations (`GET /revocations`) and whether a
//! customer is registered (`GET /customers/{id}`, which the mission service asks before
//! it records a game server's report).

use std::sync::Arc;
use std::time::Duration;

use auth_adapter::TokenIssuer;
use auth_adapter::revocation::{Revocation as WireRevocation, RevocationKey};
use auth_domain::AuthError;

use crate::App;

fn json(status: http::StatusCode, body: String) -> (http::StatusCode, [(http::HeaderName, &'static str); 1], String) {
    let kind = if status.is_success() { "application/json" } else { "text/plain" };
    (status, [(http::header::CONTENT_TYPE, kind)], body)
}

/// `GET /.well-known/jwks.json`, `GET /revocations` (the revocations that can still
/// refuse an unexpired token: younger than `horizon`; their subjects sealed with
/// `revocation_key`, so the list names nobody) and `GET /customers/{id}`: 200 with the
/// id in its one form when registered, 404 when not, 400 when it is no id (the reason
/// in the body), 503 when the store is down.
pub fn routes(app: Arc<App>, issuer: TokenIssuer, horizon: Duration, revocation_key: RevocationKey) -> axum::Router {
    let revocations_app = app.clone();
    axum::Router::new()
        .route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                let issuer = issuer.clone();
                async move {
                    match issuer.ring.jwks().map(|set| serde_json::to_string(&set)) {
                        Ok(Ok(body)) => json(http::StatusCode::OK, body),
                        _ => json(http::StatusCode::SERVICE_UNAVAILABLE, String::new()),
                    }
                }
            }),
        )
        .route(
            "/revocations",
            axum::routing::get(move || {
                let (app, key) = (revocations_app.clone(), revocation_key.clone());
                async move {
                    match app.revocations(horizon).await {
                        Ok(list) => {
                            let revocations: Vec<WireRevocation> = list
                                .into_iter()
                                .map(|r| WireRevocation { subject: r.subject, before: r.before })
                                .collect();
                            json(
                                http::StatusCode::OK,
                                serde_json::to_string(&key.publish(&revocations)).unwrap_or_default(),
                            )
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot list the revocations");
                            json(http::StatusCode::SERVICE_UNAVAILABLE, String::new())
                        }
                    }
                }
            }),
        )
        .route(
            "/customers/{id}",
            axum::routing::get(move |axum::extract::Path(id): axum::extract::Path<String>| {
                let app = app.clone();
                async move {
                    match app.is_registered(&id).await {
                        Ok(true) => json(
                            http::StatusCode::OK,
                            serde_json::json!({ "customer_id": kernel::CustomerId::new(id).map(|c| c.to_string()).unwrap_or_default() })
                                .to_string(),
                        ),
                        Ok(false) => json(http::StatusCode::NOT_FOUND, "customer_id: not registered".into()),
                        Err(AuthError::Invalid(e)) => json(http::StatusCode::BAD_REQUEST, e.to_string()),
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot look a customer up");
                            json(http::StatusCode::SERVICE_UNAVAILABLE, String::new())
                        }
                    }
                }
            }),
        )
}
