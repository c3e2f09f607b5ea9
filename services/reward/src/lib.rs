//! The reward service: `game.reward.v1.RewardService` over the reward domain. Allocates a
//! reward for every `MissionAchieved`, follows the wallet's `RewardIssued` and
//! `RewardExchanged`, publishes `RewardAllocated` through the outbox.
//!
//! # Layout
//! - [`grpc`] — the inbound gRPC adapter.
//! - [`store`] — the `RewardRepository` on diesel, with outbox and inbox.
//! - [`events`] — domain events <-> protobuf, and the consumers' handlers.
//! - [`run`] — the composition root.

pub mod events;
pub mod grpc;
pub mod store;

use std::sync::Arc;

use grpc_adapter::server::ServerSettings;
use nats_adapter::{NatsSettings, streams};
use reward_domain::RewardService;
use service_runtime::{Error, Runtime};
use tokio_util::sync::CancellationToken;

pub const SERVICE_NAME: &str = contracts::services::REWARD.name;

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "reward", about = "The reward service", version)]
pub struct Settings {
    #[command(flatten)]
    pub server: ServerSettings,
    #[command(flatten)]
    pub nats: NatsSettings,
    #[command(flatten)]
    pub auth: auth_adapter::AuthSettings,
    /// `sqlite://path` (default) or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://data/reward.db")]
    pub database_url: String,
    #[command(flatten)]
    pub pool: service_runtime::PoolSettings,
}

pub type App = RewardService<store::SqlRewards>;

/// Builds the service and serves until `shutdown` is cancelled.
///
/// # Errors
/// A setting or dependency that stops the service from starting, named; or the server
/// failing.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), Error> {
    let db = service_runtime::open_store(&settings.database_url, &settings.pool, store::MIGRATIONS).await?;
    let nats = service_runtime::connect_nats(&settings.nats, nats_adapter::roles::reward::ROLE.name).await?;
    let app: Arc<App> = Arc::new(RewardService::new(store::SqlRewards::new(db.clone())));
    let routes = tonic::service::Routes::new(grpc::server(app.clone()));
    Runtime::new(settings.server, &settings.auth, SERVICE_NAME, routes, Some(db), Some(nats))
        .publish(streams::REWARD)
        .consume(&[events::ALLOCATE, events::ISSUED, events::EXCHANGED], Arc::new(events::Policies(app)))
        .run(shutdown)
        .await
}
