//! The auth service: `game.auth.v1.AuthService` (register, issue tokens, publish keys,
//! rotate keys) and the JWKS over plain HTTP at `GET /.well-known/jwks.json`, which the
//! gateway and every service fetch to verify tokens. Needs only its database: no NATS.
//!
//! # Layout
//! - [`grpc`] — the inbound gRPC adapter and the JWKS route.
//! - [`store`] — the `CredentialRepository` on diesel.
//! - [`crypto`] — argon2id hashing and token signing with the key ring.
//! - [`run`] — the composition root.

pub mod crypto;
pub mod grpc;
pub mod store;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use auth_adapter::{KeyRing, TokenIssuer};
use auth_domain::{AuthService, Lockout};
use grpc_adapter::server::{self, Server, ServerSettings};
use tokio_util::sync::CancellationToken;

pub const SERVICE_NAME: &str = "game.auth.v1.AuthService";

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "auth", about = "The auth service", version)]
pub struct Settings {
    #[command(flatten)]
    pub server: ServerSettings,
    /// `sqlite://path` (default) or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://data/auth.db")]
    pub database_url: String,
    /// The `iss` of the tokens we sign.
    #[arg(long, env = "AUTH_ISSUER", default_value = "game-rewards")]
    pub issuer: String,
    /// The `aud` of the tokens we sign.
    #[arg(long, env = "AUTH_AUDIENCE", default_value = "game-rewards")]
    pub audience: String,
    /// Where the signing keys live (generated on first start; keep it secret and shared
    /// between replicas).
    #[arg(long, env = "AUTH_KEYS_DIR", default_value = "data/keys")]
    pub keys_dir: PathBuf,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "TOKEN_TTL_SECONDS", default_value_t = 3600)]
    pub token_ttl_seconds: u64,
    /// Customers whose tokens carry the admin role, comma-separated.
    #[arg(long, env = "ADMIN_CUSTOMERS", value_delimiter = ',')]
    pub admins: Vec<String>,
    /// Consecutive failed logins that lock a customer.
    #[arg(long, env = "LOCKOUT_FAILURES", default_value_t = 5)]
    pub lockout_failures: u32,
    /// Seconds a lock lasts.
    #[arg(long, env = "LOCKOUT_SECONDS", default_value_t = 30)]
    pub lockout_seconds: u64,
    /// argon2id memory cost in KiB (OWASP: 19456).
    #[arg(long, env = "ARGON2_MEMORY_KIB", default_value_t = 19_456)]
    pub argon2_memory_kib: u32,
    /// argon2id iterations (OWASP: 2).
    #[arg(long, env = "ARGON2_ITERATIONS", default_value_t = 2)]
    pub argon2_iterations: u32,
}

pub type App = AuthService<store::SqlCredentials, crypto::Argon2Hasher, crypto::Signer>;

/// Builds the service and serves until SIGTERM.
pub async fn run(settings: Settings) {
    let ttl = Duration::from_secs(settings.token_ttl_seconds.max(1));
    let ring = KeyRing::open(&settings.keys_dir, ttl)
        .unwrap_or_else(|e| server::fail(&format!("AUTH_KEYS_DIR {}", settings.keys_dir.display()), &e));
    let issuer = TokenIssuer { ring, issuer: settings.issuer.clone(), audience: settings.audience.clone(), ttl };
    let hasher = crypto::Argon2Hasher::new(settings.argon2_memory_kib, settings.argon2_iterations)
        .unwrap_or_else(|e| server::fail("ARGON2 settings", &e));
    let db = store_adapter::Store::open(&settings.database_url, store::MIGRATIONS)
        .await
        .unwrap_or_else(|e| server::fail("cannot open the database", &e));
    let admins: HashSet<String> =
        settings.admins.iter().map(|a| a.trim().to_owned()).filter(|a| !a.is_empty()).collect();
    let lockout = Lockout {
        max_failures: settings.lockout_failures.max(1),
        lock_for: Duration::from_secs(settings.lockout_seconds),
    };
    let app: Arc<App> = Arc::new(AuthService::new(
        store::SqlCredentials::new(db.clone()),
        hasher,
        crypto::Signer(issuer.clone()),
        admins,
        lockout,
    ));

    let probe = server::probe(move || {
        let db = db.clone();
        async move { db.ping(Duration::from_secs(1)).await }
    });
    let routes = grpc::routes(app, issuer);
    let srv = Server::new(settings.server.clone(), routes, vec![SERVICE_NAME], probe);
    if let Err(e) = srv.run(CancellationToken::new()).await {
        server::fail("server failed", &e);
    }
}
