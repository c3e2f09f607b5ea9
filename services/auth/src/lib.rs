//! The auth service: `game.auth.v1.AuthService` (register, log in, service accounts,
//! roles, revocations, keys, the audit trail), the JWKS at `GET /.well-known/jwks.json`
//! and the revocations at `GET /revocations` over plain HTTP, which the gateway and every
//! service fetch to verify tokens. Needs only its database: no NATS.
//!
//! At start, before it serves (so before the gateway opens), it creates the first admin
//! from `ADMIN_ID` / `ADMIN_PASSWORD_FILE` unless that account exists, and provisions the
//! service accounts of `SERVICE_ACCOUNTS_FILE` (the wallet's, for its calls to gift).
//!
//! # Layout
//! - [`grpc`] — the inbound gRPC adapter.
//! - [`http`] — the JWKS, the revocations and the customer lookup over plain HTTP.
//! - [`store`] — accounts, service accounts, revocations, audit and throttle on diesel.
//! - [`crypto`] — argon2id hashing, secrets, token signing with the key ring.
//! - [`bootstrap`] — the first admin's password file and the service accounts file.
//! - [`run`] — the composition root.

pub mod bootstrap;
pub mod crypto;
pub mod grpc;
pub mod http;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use auth_adapter::revocation::RevocationKey;
use auth_adapter::{KeyRing, TokenIssuer};
use auth_domain::{AuthService, FirstAdmin, ThrottlePolicy};
use grpc_adapter::server::{self, Error, Server, ServerSettings};
use tokio_util::sync::CancellationToken;

pub const SERVICE_NAME: &str = contracts::services::AUTH.name;

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "auth", about = "The auth service", version)]
pub struct Settings {
    #[command(flatten)]
    pub server: ServerSettings,
    /// A second address, for our own services only: the JWKS, the revocations, the
    /// customer lookup and the service-token RPC (`IssueServiceToken`, `GetJwks`) are then
    /// served there (the plain HTTP routes no longer on `LISTEN_ADDR`), and `LISTEN_ADDR`
    /// keeps the customers' methods (register, log in, roles...) for the gateway alone
    /// (k8s opens it to the gateway only). Unset: everything on `LISTEN_ADDR`.
    #[arg(long, env = "INTERNAL_ADDR")]
    pub internal_addr: Option<std::net::SocketAddr>,
    /// `sqlite://path` (default) or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://data/auth.db")]
    pub database_url: String,
    #[command(flatten)]
    pub pool: service_runtime::PoolSettings,
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
    /// Lifetime of customers' access tokens, in seconds.
    #[arg(long, env = "TOKEN_TTL_SECONDS", default_value_t = 3600)]
    pub token_ttl_seconds: u64,
    /// Lifetime of service accounts' tokens, in seconds (their holders renew them).
    #[arg(long, env = "SERVICE_TOKEN_TTL_SECONDS", default_value_t = 600)]
    pub service_token_ttl_seconds: u64,
    /// The first admin's customer id, created at start when it does not exist.
    #[arg(long, env = "ADMIN_ID", default_value = "admin")]
    pub admin_id: String,
    /// A file holding the first admin's password (`gamectl up` writes a random one into
    /// `<data-dir>/admin.password`; in Kubernetes, a Secret). Without it no admin is made.
    #[arg(long, env = "ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<PathBuf>,
    /// A file the service writes at start to say whether `ADMIN_PASSWORD_FILE` was applied:
    /// `created` (the first admin was made with it now) or `exists` (the account was there
    /// already, with its own password). `created` replaces what the file said; `exists` is
    /// written only where there is no file yet, so that a replica starting beside the one
    /// that made the admin does not hide it. `gamectl up` reads it to say how to log in.
    #[arg(long, env = "ADMIN_STATUS_FILE")]
    pub admin_status_file: Option<PathBuf>,
    /// A JSON file of service accounts to create or update at start: client id, role,
    /// argon2id hash of the secret (never the secret).
    #[arg(long, env = "SERVICE_ACCOUNTS_FILE")]
    pub service_accounts_file: Option<PathBuf>,
    /// Service accounts (client ids, comma-separated) whose token, presented in
    /// `x-forwarder-token`, makes a call's `x-forwarded-for` the client's address: the
    /// gateway's. Any other call is counted against its TCP peer, whatever headers it
    /// carries (failed logins are throttled per client address).
    #[arg(long, env = "TRUSTED_FORWARDERS", value_delimiter = ',', default_value = "svc-gateway")]
    pub trusted_forwarders: Vec<String>,
    /// A file holding the key the revoked subjects served at `GET /revocations` are sealed
    /// with (HMAC-SHA256): the same file every service and the gateway are given
    /// (`REVOCATION_KEY_FILE` there too), so the list names nobody to anyone else. Required.
    #[arg(long, env = "REVOCATION_KEY_FILE")]
    pub revocation_key_file: Option<PathBuf>,
    /// Failed logins of one account from one address before each further one makes that
    /// address wait (1 s, doubling).
    #[arg(long, env = "LOGIN_FREE_FAILURES", default_value_t = 3)]
    pub login_free_failures: u32,
    /// The longest wait between two logins of one account from one address, in seconds.
    #[arg(long, env = "LOGIN_MAX_DELAY_SECONDS", default_value_t = 900)]
    pub login_max_delay_seconds: u64,
    /// Failed logins from one address, over every account, before each further one makes
    /// the whole address wait (1 s, doubling): a slow-down, never a block, so that a
    /// carrier NAT's other users still log in; accounts that logged in from the address
    /// before are not slowed by it at all.
    #[arg(long, env = "ADDRESS_MAX_FAILURES", default_value_t = 20)]
    pub address_max_failures: u32,
    /// An address without a failed login for this long starts again from zero.
    #[arg(long, env = "ADDRESS_WINDOW_SECONDS", default_value_t = 600)]
    pub address_window_seconds: u64,
    /// The longest wait between two logins from one address, in seconds.
    #[arg(long, env = "ADDRESS_MAX_DELAY_SECONDS", default_value_t = 60)]
    pub address_max_delay_seconds: u64,
    /// argon2id memory cost in KiB (OWASP: 19456).
    #[arg(long, env = "ARGON2_MEMORY_KIB", default_value_t = 19_456)]
    pub argon2_memory_kib: u32,
    /// argon2id iterations (OWASP: 2).
    #[arg(long, env = "ARGON2_ITERATIONS", default_value_t = 2)]
    pub argon2_iterations: u32,
    /// How many password hashes may run at once (each holds `ARGON2_MEMORY_KIB` while it
    /// runs). Unset: as many as fit `PASSWORD_HASH_MEMORY_MIB`.
    #[arg(long, env = "PASSWORD_HASH_CONCURRENCY")]
    pub password_hash_concurrency: Option<usize>,
    /// The memory password hashing may take at once, in MiB, when
    /// `PASSWORD_HASH_CONCURRENCY` is unset: 128 MiB is 6 hashes at OWASP's 19 MiB, which
    /// with the service's own ~50 MiB stays well inside a 256 MiB container limit.
    #[arg(long, env = "PASSWORD_HASH_MEMORY_MIB", default_value_t = 128)]
    pub password_hash_memory_mib: u64,
    /// How long a call waits for a free hashing slot before it is answered `UNAVAILABLE`
    /// with `retry-after`, in milliseconds.
    #[arg(long, env = "PASSWORD_HASH_WAIT_MS", default_value_t = 1000)]
    pub password_hash_wait_ms: u64,
}

impl Settings {
    /// The bound on password hashes at once (see [`crypto::HashSlots`]).
    pub fn hash_slots(&self) -> crypto::HashSlots {
        let slots = self
            .password_hash_concurrency
            .unwrap_or_else(|| crypto::HashSlots::fitting(self.password_hash_memory_mib, self.argon2_memory_kib));
        crypto::HashSlots::new(slots, Duration::from_millis(self.password_hash_wait_ms))
    }

    /// # Errors
    /// A message naming the setting that is out of range.
    pub fn throttle(&self) -> Result<ThrottlePolicy, String> {
        if self.login_max_delay_seconds == 0 {
            return Err("LOGIN_MAX_DELAY_SECONDS must be positive".into());
        }
        if self.address_max_failures == 0 || self.address_window_seconds == 0 || self.address_max_delay_seconds == 0 {
            return Err(
                "ADDRESS_MAX_FAILURES, ADDRESS_WINDOW_SECONDS and ADDRESS_MAX_DELAY_SECONDS must be positive".into()
            );
        }
        Ok(ThrottlePolicy {
            free_failures: self.login_free_failures,
            max_delay: Duration::from_secs(self.login_max_delay_seconds),
            address_failures: self.address_max_failures,
            address_window: Duration::from_secs(self.address_window_seconds),
            address_max_delay: Duration::from_secs(self.address_max_delay_seconds),
            ..ThrottlePolicy::default()
        })
    }
}

pub type App = AuthService<store::SqlAuth, store::SqlAuth, crypto::Argon2Hasher, crypto::Signer>;

/// How often forgotten throttle counters are removed.
const PRUNE_EVERY: Duration = Duration::from_secs(300);

/// Builds the service, creates the first admin and provisions service accounts, and
/// serves until `shutdown` is cancelled.
///
/// # Errors
/// A setting, file or the database that stops the service from starting, named; or the
/// server failing.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), Error> {
    let ttl = Duration::from_secs(settings.token_ttl_seconds.max(1));
    let service_ttl = Duration::from_secs(settings.service_token_ttl_seconds.max(1));
    // A retired key is published as long as the longest-lived token it signed.
    let ring = KeyRing::open(&settings.keys_dir, ttl.max(service_ttl))
        .map_err(Error::at(format!("AUTH_KEYS_DIR {}", settings.keys_dir.display())))?;
    let issuer = TokenIssuer { ring, issuer: settings.issuer.clone(), audience: settings.audience.clone(), ttl };
    let slots = settings.hash_slots();
    let hasher = crypto::Argon2Hasher::new(settings.argon2_memory_kib, settings.argon2_iterations, slots.available())
        .map_err(Error::at("ARGON2_MEMORY_KIB / ARGON2_ITERATIONS"))?;
    let forwarders = settings
        .trusted_forwarders
        .iter()
        .map(|f| f.trim())
        .filter(|f| !f.is_empty())
        .map(|f| auth_domain::ClientId::parse(f).map(|c| c.as_str().to_owned()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::at("TRUSTED_FORWARDERS"))?;
    let policy = settings.throttle().map_err(Error::at("login throttle"))?;
    let revocation_key = settings
        .revocation_key_file
        .as_deref()
        .ok_or_else(|| "required (the key revoked subjects are published sealed with)".to_owned())
        .and_then(RevocationKey::from_file)
        .map_err(Error::at("REVOCATION_KEY_FILE"))?;
    // Read before anything is opened: a bad file stops the start naming it.
    let admin_password = settings
        .admin_password_file
        .as_deref()
        .map(|path| {
            bootstrap::admin_password(path).map_err(Error::at(format!("ADMIN_PASSWORD_FILE {}", path.display())))
        })
        .transpose()?;
    let provisioned = settings
        .service_accounts_file
        .as_deref()
        .map(|path| {
            bootstrap::service_accounts(path).map_err(Error::at(format!("SERVICE_ACCOUNTS_FILE {}", path.display())))
        })
        .transpose()?;
    let db = service_runtime::open_store(&settings.database_url, &settings.pool, store::MIGRATIONS).await?;
    let repo = store::SqlAuth::new(db.clone());
    let signer = crypto::Signer { issuer: issuer.clone(), service_ttl };
    let app: Arc<App> = Arc::new(AuthService::new(repo.clone(), repo, hasher, signer, policy));

    if let Some(password) = admin_password {
        let created = match app.ensure_first_admin(&settings.admin_id, &password).await {
            Ok(FirstAdmin::Created) => {
                tracing::info!(admin = settings.admin_id, "first admin created");
                true
            }
            Ok(FirstAdmin::Exists(role)) => {
                tracing::info!(admin = settings.admin_id, %role, "first admin exists; ADMIN_PASSWORD_FILE not applied");
                false
            }
            Err(e) => return Err(Error::new("ADMIN_ID / ADMIN_PASSWORD_FILE", e)),
        };
        if let Some(path) = &settings.admin_status_file {
            bootstrap::write_admin_status(path, created)
                .map_err(Error::at(format!("ADMIN_STATUS_FILE {}", path.display())))?;
        }
    }
    if let Some(accounts) = provisioned {
        match app.provision(&accounts).await {
            Ok(changed) => tracing::info!(accounts = accounts.len(), changed, "service accounts provisioned"),
            Err(e) => return Err(Error::new("SERVICE_ACCOUNTS_FILE", e)),
        }
    }

    let probe = server::probe({
        let db = db.clone();
        move || {
            let db = db.clone();
            async move { db.ping(Duration::from_secs(1)).await }
        }
    });
    let horizon = ttl.max(service_ttl) + Duration::from_secs(120);
    tracing::info!(slots = slots.available(), memory_kib = settings.argon2_memory_kib, "password hashes at once");
    let split = settings.internal_addr.is_some();
    let (routes, internal) = grpc::routes(app.clone(), issuer, forwarders, slots, horizon, revocation_key, split);
    let mut srv = Server::new(settings.server.clone(), routes, vec![SERVICE_NAME], probe);
    if let (Some(addr), Some(internal)) = (settings.internal_addr, internal) {
        srv = srv.with_internal_listener(addr, internal);
    }
    let stopping = srv.stopping.clone();
    srv.spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(PRUNE_EVERY) => {}
                () = stopping.cancelled() => return,
            }
            match app.prune_throttle().await {
                Ok(n) if n > 0 => tracing::debug!(counters = n, "forgotten login throttle counters removed"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not prune the login throttle"),
            }
        }
    });
    srv.run(shutdown).await
}
