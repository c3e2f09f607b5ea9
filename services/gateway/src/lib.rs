//! The gateway: the one address clients use. Per request, in order —
//! 1. CORS and grpc-web (a browser's HTTP/1.1 call becomes plain gRPC),
//! 2. authentication: no valid token, no further (public methods excepted),
//! 3. from the request's head, before its message is read: a rate limit per customer (a
//!    game server, reporting for many players, per subject at its own higher rate), or
//!    per client address for the public methods (token or not),
//! 4. the framing check of the request message (one whole message, within the limit,
//!    within `BODY_READ_TIMEOUT_SECONDS`),
//! 5. a request id if the client sent none (traceparent passes through untouched), the
//!    client's address in `x-forwarded-for` (whatever the client wrote is dropped), a
//!    deadline (the client's, or `UPSTREAM_TIMEOUT_SECONDS`),
//! 6. routing by gRPC service name to one of that service's healthy endpoints.
//!
//! Health at the gateway reports the gateway itself; reflection lists every public API.
//!
//! # Layout
//! - [`upstream`] — endpoints per service, their health (the gRPC health protocol, like
//!   a Kubernetes Service over ready pods), round-robin among the healthy.
//! - [`proxy`] — the routing service.
//! - [`limit`] — the rate limits: per customer, per game server, per client address.
//! - [`deadline`] — the deadline of every upstream call.
//! - [`web`] — my page in the browser, answered to plain GETs before all of the above.

pub mod deadline;
pub mod limit;
pub mod proxy;
pub mod upstream;
pub mod web;

use std::sync::Arc;
use std::time::Duration;

use grpc_adapter::server::{self, Error, Server, ServerSettings};
use tokio_util::sync::CancellationToken;

/// The gateway's own name (its health). The services it routes to, their variables and
/// which methods are public are the contracts' (`contracts::services::APIS`).
pub const SERVICE_NAME: &str = contracts::services::GATEWAY;

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "gateway", about = "The gateway: one address for every public API", version)]
pub struct Settings {
    #[command(flatten)]
    pub server: ServerSettings,
    #[command(flatten)]
    pub auth: auth_adapter::AuthSettings,
    #[command(flatten)]
    pub upstreams: upstream::UpstreamSettings,
    /// Requests per second each customer may make (sustained).
    #[arg(long, env = "RATE_LIMIT_PER_SECOND", default_value_t = 50.0)]
    pub rate_per_second: f64,
    /// Requests a customer may make in a burst.
    #[arg(long, env = "RATE_LIMIT_BURST", default_value_t = 100.0)]
    pub rate_burst: f64,
    /// Requests per second each game server (a token with role `game_server`) may make,
    /// sustained: it reports for many players at once.
    #[arg(long, env = "GAME_SERVER_RATE_PER_SECOND", default_value_t = 2000.0)]
    pub game_server_rate_per_second: f64,
    /// Requests a game server may make in a burst.
    #[arg(long, env = "GAME_SERVER_RATE_BURST", default_value_t = 4000.0)]
    pub game_server_rate_burst: f64,
    /// Calls without a token (registration, token issuing, catalogs) each client address
    /// may make in any minute.
    #[arg(long, env = "ANONYMOUS_RATE_PER_MINUTE", default_value_t = 30)]
    pub anonymous_rate_per_minute: u32,
    /// Proxies (addresses or CIDR networks, comma-separated) in front of the gateway whose
    /// `x-forwarded-for` names the client; none by default: the TCP peer is the client.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// Seconds an upstream call may take when the client sets no deadline (a streaming
    /// answer without a client deadline is not cut).
    #[arg(long, env = "UPSTREAM_TIMEOUT_SECONDS", default_value_t = 10.0)]
    pub upstream_timeout_seconds: f64,
    /// The gateway's own service account (e.g. `svc-gateway`): its token goes to the auth
    /// service with every call, so that auth believes the client address we pass on and
    /// nobody else's (`x-forwarder-token`). Unset: auth counts every login against the
    /// gateway's own address.
    #[arg(long = "service-client-id", env = "SERVICE_CLIENT_ID")]
    pub service_client_id: Option<String>,
    /// A file holding that account's secret.
    #[arg(long = "service-client-secret-file", env = "SERVICE_CLIENT_SECRET_FILE")]
    pub service_client_secret_file: Option<std::path::PathBuf>,
    /// Origins allowed to call from a browser (grpc-web), comma-separated; `*` for any.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
}

fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, Any, CorsLayer};
    let origins: Vec<_> = origins.iter().map(|o| o.trim()).filter(|o| !o.is_empty()).collect();
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.contains(&"*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| o.parse().ok()))
    };
    let expose =
        ["grpc-status", "grpc-message", "grpc-status-details-bin", "retry-after"].map(http::HeaderName::from_static);
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_headers(Any)
            .allow_methods([http::Method::POST, http::Method::OPTIONS])
            .expose_headers(expose),
    )
}

/// The limits, trusted proxies and default deadline, or the setting at fault and why.
///
/// # Errors
/// The setting's name and what is wrong with it.
pub fn policy(s: &Settings) -> Result<proxy::Policy, (&'static str, String)> {
    let customers = limit::RateLimiter::new(s.rate_per_second, s.rate_burst)
        .map_err(|e| ("RATE_LIMIT_PER_SECOND / RATE_LIMIT_BURST", e))?;
    let game_servers = limit::RateLimiter::new(s.game_server_rate_per_second, s.game_server_rate_burst)
        .map_err(|e| ("GAME_SERVER_RATE_PER_SECOND / GAME_SERVER_RATE_BURST", e))?;
    let with_token = limit::TokenLimits { customers, game_servers };
    let anonymous =
        limit::AddressLimiter::per_minute(s.anonymous_rate_per_minute).map_err(|e| ("ANONYMOUS_RATE_PER_MINUTE", e))?;
    let trusted = grpc_adapter::peer::TrustedProxies::parse(&s.trusted_proxies).map_err(|e| ("TRUSTED_PROXIES", e))?;
    let default_deadline = Duration::try_from_secs_f64(s.upstream_timeout_seconds)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or(("UPSTREAM_TIMEOUT_SECONDS", "must be a number of seconds above 0".to_owned()))?;
    Ok(proxy::Policy { with_token, anonymous, trusted, default_deadline })
}

/// Builds the gateway and serves until `shutdown` is cancelled.
///
/// # Errors
/// A setting at fault, named; or the server failing.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), Error> {
    let policy = policy(&settings).map_err(|(what, e)| Error::new(what, e))?;
    let upstreams = upstream::Upstreams::from_settings(&settings.upstreams).map_err(Error::at("upstreams"))?;
    // gateway_rate_limited_total is in every scrape of the gateway, at 0 until a refusal.
    let _ = metrics_adapter::gateway();
    let stopping = CancellationToken::new();
    upstreams.watch_health(stopping.clone()).await;
    let trusted = policy.trusted.clone();
    let policy = Arc::new(policy);
    let admission = limit::admission(policy.clone());
    let identity = match &settings.service_client_id {
        Some(_) => {
            let account = grpc_adapter::service_token::ServiceAccountSettings {
                client_id: settings.service_client_id.clone(),
                client_secret_file: settings.service_client_secret_file.clone(),
                auth_url: Some(settings.upstreams.urls.of(contracts::services::AUTH.name).join(",")),
            };
            Some(grpc_adapter::service_token::ServiceToken::start(&account).map_err(Error::at("service account"))?)
        }
        None => {
            tracing::warn!("no SERVICE_CLIENT_ID: the auth service will count every login against our own address");
            None
        }
    };
    let proxy = proxy::Proxy::new(Arc::new(upstreams), policy).with_identity(identity);
    let routes = tonic::service::Routes::from(axum::Router::new().fallback_service(proxy));
    let verifier = auth_adapter::Verifier::new(&settings.auth).map_err(Error::at("REVOCATION_KEY_FILE"))?;
    let refresh = Duration::from_secs(settings.auth.refresh_seconds);
    let listed: Vec<&'static str> = contracts::services::routed().collect();
    let public: Vec<&'static str> = contracts::services::public_methods().collect();
    let mut srv = Server::new(settings.server.clone(), routes, vec![SERVICE_NAME], server::probe(|| async { true }))
        .with_auth(verifier, refresh, &public)
        .with_reflection(listed.clone())
        .with_connect_json(listed)
        .with_admission(admission)
        .with_trusted_proxies(trusted)
        .with_pages(web::pages());
    if let Some(cors) = cors(&settings.cors_origins) {
        srv = srv.with_cors(cors);
    }
    let result = srv.run(shutdown).await;
    stopping.cancel();
    result
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn refused(args: &[&str]) -> &'static str {
        let settings = Settings::try_parse_from([&["gateway"], args].concat()).expect("parses");
        policy(&settings).err().expect("refused").0
    }

    #[test]
    fn a_bad_edge_setting_is_refused_by_its_name() {
        assert!(policy(&Settings::try_parse_from(["gateway"]).unwrap()).is_ok(), "the defaults are good");
        assert_eq!(refused(&["--anonymous-rate-per-minute=0"]), "ANONYMOUS_RATE_PER_MINUTE");
        assert_eq!(
            refused(&["--game-server-rate-per-second=0"]),
            "GAME_SERVER_RATE_PER_SECOND / GAME_SERVER_RATE_BURST"
        );
        assert_eq!(refused(&["--game-server-rate-burst=0.5"]), "GAME_SERVER_RATE_PER_SECOND / GAME_SERVER_RATE_BURST");
        assert_eq!(refused(&["--trusted-proxies=10.0.0.0/8,nope"]), "TRUSTED_PROXIES");
        for bad in ["0", "-1", "NaN", "inf"] {
            assert_eq!(refused(&[&format!("--upstream-timeout-seconds={bad}")]), "UPSTREAM_TIMEOUT_SECONDS", "{bad}");
        }
        assert!(Settings::try_parse_from(["gateway", "--max-request-bytes=0"]).is_err(), "MAX_REQUEST_BYTES");
        assert!(Settings::try_parse_from(["gateway", "--max-request-bytes=4194305"]).is_err(), "over tonic's limit");
    }
}
