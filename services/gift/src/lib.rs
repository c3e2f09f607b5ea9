//! The gift service: `game.gift.v1.GiftService` over the gift domain; gifts in
//! SQLite/PostgreSQL; `GiftIssued` / `GiftUsed` out through the outbox. Called
//! synchronously by the wallet; consumes nothing.
//!
//! # Layout
//! - [`grpc`]: the inbound gRPC adapter.
//! - [`store`]: the `GiftRepository` on diesel, with the outbox.
//! - [`events`]: domain events -> protobuf.
//! - [`run`]: the composition root.

pub mod events;
pub mod grpc;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use gift_domain::{Catalog, GiftService};
use grpc_adapter::server::{self, Server, ServerSettings};
use nats_adapter::{NatsSettings, streams};
use tokio_util::sync::CancellationToken;

pub const SERVICE_NAME: &str = "game.gift.v1.GiftService";

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
}

pub type App = GiftService<store::SqlGifts>;

/// Builds the service and serves until SIGTERM.
pub async fn run(settings: Settings) {
    let db = store_adapter::Store::open(&settings.database_url, store::MIGRATIONS)
        .await
        .unwrap_or_else(|e| server::fail("cannot open the database", &e));
    let client = nats_adapter::connect(&settings.nats, "gift").await.unwrap_or_else(|e| server::fail("NATS_URL", &e));
    let js = async_nats::jetstream::new(client.clone());
    let app: Arc<App> = Arc::new(GiftService::new(store::SqlGifts::new(db.clone()), Catalog::default()));

    // Issuing a gift needs only the database: the outbox holds events while NATS is down,
    // so readiness does not follow NATS here.
    let probe = {
        let db = db.clone();
        server::probe(move || {
            let db = db.clone();
            async move { db.ping(Duration::from_secs(1)).await }
        })
    };
    let routes = tonic::service::Routes::new(grpc::server(app));
    let verifier = auth_adapter::Verifier::new(&settings.auth);
    let refresh = Duration::from_secs(settings.auth.refresh_seconds);
    let mut srv = Server::new(settings.server.clone(), routes, vec![SERVICE_NAME], probe).with_auth(
        verifier,
        refresh,
        &["/game.gift.v1.GiftService/ListCatalog"],
    );
    let stopping = srv.stopping.clone();
    {
        let (js, replicas) = (js.clone(), settings.nats.stream_replicas);
        srv.spawn(async move {
            while let Err(e) = streams::ensure(&js, streams::GIFT, replicas).await {
                tracing::warn!(error = %e, "cannot create the GIFT stream yet");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
    srv.spawn(nats_adapter::relay::run(db, client, js, stopping));
    if let Err(e) = srv.run(CancellationToken::new()).await {
        server::fail("server failed", &e);
    }
}
