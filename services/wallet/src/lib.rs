//! The wallet service: `game.wallet.v1.WalletService` over the wallet domain. Issues every
//! `RewardAllocated` into the customer's wallet and publishes `RewardIssued`.
//!
//! # Layout
//! - [`grpc`] — the inbound gRPC adapter.
//! - [`store`] — the `WalletRepository` on diesel, with outbox and inbox.
//! - [`events`] — domain events <-> protobuf, and the consumer's handler.
//! - [`expiry`] — the background scan expiring lots and refreshing `points_outstanding`.
//! - [`gift_client`] — the call to the gift service (as the wallet, with its own service
//!   token), behind deadline, load shedding and a circuit breaker.
//! - [`run`] — the composition root.

pub mod events;
pub mod expiry;
pub mod gift_client;
pub mod grpc;
pub mod store;

use std::sync::Arc;

use grpc_adapter::server::ServerSettings;
use nats_adapter::{NatsSettings, streams};
use service_runtime::{Error, Runtime};
use tokio_util::sync::CancellationToken;
use wallet_domain::WalletService;

pub const SERVICE_NAME: &str = contracts::services::WALLET.name;

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "wallet", about = "The wallet service", version)]
pub struct Settings {
    #[command(flatten)]
    pub server: ServerSettings,
    #[command(flatten)]
    pub nats: NatsSettings,
    #[command(flatten)]
    pub auth: auth_adapter::AuthSettings,
    /// `sqlite://path` (default) or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://data/wallet.db")]
    pub database_url: String,
    #[command(flatten)]
    pub pool: service_runtime::PoolSettings,
    #[command(flatten)]
    pub gift: gift_client::GiftSettings,
    /// The wallet's own service account, for its calls to the gift service.
    #[command(flatten)]
    pub service_account: grpc_adapter::service_token::ServiceAccountSettings,
    /// How often lots whose expiry has come are expired (and `points_outstanding`
    /// refreshed), in seconds: points leave the balance within this of their expiry.
    #[arg(long, env = "EXPIRY_SCAN_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub expiry_scan_seconds: u64,
    /// Customers are e-mailed (through the notification service) this many days before
    /// their points expire, once per expiry date; 0: never.
    #[arg(long, env = "EXPIRY_NOTICE_DAYS", default_value_t = 7, value_parser = clap::value_parser!(u32).range(0..=3650))]
    pub expiry_notice_days: u32,
}

pub type App = WalletService<store::SqlWallet, gift_client::GiftClient>;

/// Builds the service and serves until `shutdown` is cancelled.
///
/// # Errors
/// A setting or dependency that stops the service from starting, named; or the server
/// failing.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), Error> {
    let token = grpc_adapter::service_token::ServiceToken::start(&settings.service_account)
        .map_err(Error::at("the wallet's service account"))?;
    let gifts = gift_client::GiftClient::new(&settings.gift, token).map_err(Error::at("invalid settings"))?;
    let db = service_runtime::open_store(&settings.database_url, &settings.pool, store::MIGRATIONS).await?;
    let nats = service_runtime::connect_nats(&settings.nats, nats_adapter::roles::wallet::ROLE.name).await?;
    let gift_breaker = gifts.breaker();
    let pause = |d| -> futures::future::BoxFuture<'static, ()> { Box::pin(tokio::time::sleep(d)) };
    let app: Arc<App> = Arc::new(WalletService::new(store::SqlWallet::new(db.clone()), gifts, pause));
    let routes = tonic::service::Routes::new(grpc::server(app.clone(), gift_breaker));
    let every = std::time::Duration::from_secs(settings.expiry_scan_seconds);
    let notice = std::time::Duration::from_secs(u64::from(settings.expiry_notice_days) * 86_400);
    tokio::spawn(expiry::scan(app.clone(), every, notice, shutdown.clone()));
    Runtime::new(settings.server, &settings.auth, SERVICE_NAME, routes, Some(db), Some(nats))
        .publish(streams::WALLET)
        .consume(&[events::ISSUE], Arc::new(events::Issue(app)))
        .run(shutdown)
        .await
}
