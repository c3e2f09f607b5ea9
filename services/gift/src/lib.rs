//! The gift service: `game.gift.v1.GiftService` (public) and the internal
//! `game.gift.v1.GiftIssuingService` (the wallet's calls, role `service` only) over the
//! gift domain; gifts in SQLite/PostgreSQL; `GiftIssued` / `GiftUsed` out through the
//! outbox. Consumes nothing.
//!
//! # Layout
//! - [`grpc`] — the inbound gRPC adapter.
//! - [`catalog`] — the gift catalog file (`GIFT_CATALOG`).
//! - [`store`] — the `GiftRepository` on diesel, with the outbox.
//! - [`events`] — domain events -> protobuf.
//! - [`run`] — the composition root.

pub mod catalog;
pub mod events;
pub mod grpc;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;

use gift_domain::{Catalog, GiftService};
use grpc_adapter::server::ServerSettings;
use nats_adapter::{NatsSettings, streams};
use service_runtime::{Error, Runtime};
use tokio_util::sync::CancellationToken;

pub const SERVICE_NAME: &str = contracts::services::GIFT.name;

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "gift", about = "The gift service", version)]
pub struct Settings {
    #[command(flatten)]
    pub server: ServerSettings,
    #[command(flatten)]
    pub nats: NatsSettings,
    #[command(flatten)]
    pub auth: auth_adapter::AuthSettings,
    /// `sqlite://path` (default) or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://data/gift.db")]
    pub database_url: String,
    #[command(flatten)]
    pub pool: service_runtime::PoolSettings,
    /// The gift catalog, a TOML file (format: `config/gifts.toml`); without it the built-in
    /// default catalog.
    #[arg(long, env = "GIFT_CATALOG")]
    pub gift_catalog: Option<PathBuf>,
}

pub type App = GiftService<store::SqlGifts>;

/// Builds the service and serves until `shutdown` is cancelled.
///
/// # Errors
/// A setting or dependency that stops the service from starting, named; or the server
/// failing.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), Error> {
    // The catalog first: a mistake in it stops the process before anything is opened.
    let catalog = match &settings.gift_catalog {
        Some(path) => catalog::load(path).map_err(Error::at("GIFT_CATALOG"))?,
        None => Catalog::default(),
    };
    let db = service_runtime::open_store(&settings.database_url, &settings.pool, store::MIGRATIONS).await?;
    let gifts = store::SqlGifts::new(db.clone());
    // The stock counters follow the catalog before the first exchange is served.
    gifts.sync_stock(&catalog).await.map_err(Error::at("cannot set the gift stock in the database"))?;
    let nats = service_runtime::connect_nats(&settings.nats, nats_adapter::roles::gift::ROLE.name).await?;
    let app: Arc<App> = Arc::new(GiftService::new(gifts, catalog));
    let routes = tonic::service::Routes::new(grpc::server(app.clone())).add_service(grpc::issuing_server(app));
    // Issuing a gift needs only the database: the outbox holds events while NATS is down.
    Runtime::new(settings.server, &settings.auth, SERVICE_NAME, routes, Some(db), Some(nats))
        .public(contracts::services::GIFT.public)
        // Served here, never routed by the gateway; our services' tokens only.
        .internal(contracts::services::GIFT.internal)
        .ready_without_nats()
        .publish(streams::GIFT)
        .run(shutdown)
        .await
}
