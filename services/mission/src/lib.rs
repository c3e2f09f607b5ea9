//! The mission service: `game.mission.v1.MissionService` over the mission domain,
//! missions in SQLite/PostgreSQL, `MissionAchieved` / `MissionRewarded` out through the
//! outbox, `RewardAllocated` in through the `mission-record-reward` consumer.
//!
//! # Layout
//! - [`grpc`] — the inbound gRPC adapter.
//! - [`catalog`] — the mission catalog file (`MISSION_CATALOG`).
//! - [`customers`] — who is registered (`CUSTOMERS_URL`), asked before a game server's
//!   report is recorded.
//! - [`store`] — the `MissionRepository` on diesel, with the outbox.
//! - [`events`] — domain events <-> protobuf, and the consumer's handler.
//! - [`run`] — the composition root.

pub mod catalog;
pub mod customers;
pub mod events;
pub mod grpc;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;

use grpc_adapter::server::ServerSettings;
use mission_domain::{Catalog, MissionService};
use nats_adapter::{NatsSettings, streams};
use service_runtime::{Error, Runtime};
use tokio_util::sync::CancellationToken;

pub const SERVICE_NAME: &str = contracts::services::MISSION.name;

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "mission", about = "The mission service", version)]
pub struct Settings {
    #[command(flatten)]
    pub server: ServerSettings,
    #[command(flatten)]
    pub nats: NatsSettings,
    #[command(flatten)]
    pub auth: auth_adapter::AuthSettings,
    /// `sqlite://path` (default) or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://data/mission.db")]
    pub database_url: String,
    #[command(flatten)]
    pub pool: service_runtime::PoolSettings,
    /// The mission catalog, a TOML file (format: `config/missions.toml`); without it the
    /// built-in default catalog.
    #[arg(long, env = "MISSION_CATALOG")]
    pub mission_catalog: Option<PathBuf>,
    /// Our auth service's customer lookup (`http://auth:8081/customers`): a game server's
    /// or an admin's report for an id nobody registered is refused (FAILED_PRECONDITION)
    /// instead of waiting for whoever registers the id. Unset: every id is taken (players
    /// from another identity provider, which cannot be asked).
    #[arg(long, env = "CUSTOMERS_URL")]
    pub customers_url: Option<String>,
}

pub type App = MissionService<store::SqlMissions, customers::Registry>;

/// Builds the service and serves until `shutdown` is cancelled.
///
/// # Errors
/// A setting or dependency that stops the service from starting, named; or the server
/// failing.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), Error> {
    // The catalog first: a mistake in it stops the process before anything is opened.
    let catalog = match &settings.mission_catalog {
        Some(path) => catalog::load(path).map_err(Error::at("MISSION_CATALOG"))?,
        None => Catalog::default(),
    };
    let registry = match settings.customers_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        Some(url) => customers::Registry::Auth(Box::new(
            auth_adapter::customers::Lookup::new(url).map_err(Error::at("CUSTOMERS_URL"))?,
        )),
        None => {
            tracing::warn!("no CUSTOMERS_URL: missions reported for ids nobody registered are recorded");
            customers::Registry::Anyone
        }
    };
    let db = service_runtime::open_store(&settings.database_url, &settings.pool, store::MIGRATIONS).await?;
    let nats = service_runtime::connect_nats(&settings.nats, nats_adapter::roles::mission::ROLE.name).await?;
    let app: Arc<App> =
        Arc::new(MissionService::new(store::SqlMissions::new(db.clone()), catalog).with_customers(registry));
    let routes = tonic::service::Routes::new(grpc::server(app.clone()));
    Runtime::new(settings.server, &settings.auth, SERVICE_NAME, routes, Some(db), Some(nats))
        .public(contracts::services::MISSION.public)
        .publish(streams::MISSION)
        .consume(&[events::RECORD_REWARD], Arc::new(events::RecordReward(app)))
        .run(shutdown)
        .await
}
