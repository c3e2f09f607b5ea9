//! The mission service: `game.mission.v1.MissionService` over the mission domain,
//! missions in SQLite/PostgreSQL, `MissionAchieved` / `MissionRewarded` out through the
//! outbox, `RewardAllocated` in through the `mission-record-reward` consumer.
//!
//! # Layout
//! - [`grpc`]: the inbound gRPC adapter.
//! - [`store`]: the `MissionRepository` on diesel, with the outbox.
//! - [`events`]: domain events <-> protobuf, and the consumer's handler.
//! - [`run`]: the composition root.

pub mod events;
pub mod grpc;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use grpc_adapter::server::{self, Server, ServerSettings};
use mission_domain::{Catalog, MissionService};
use nats_adapter::{NatsSettings, consumer, streams};
use tokio_util::sync::CancellationToken;

pub const SERVICE_NAME: &str = "game.mission.v1.MissionService";

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
}

pub type App = MissionService<store::SqlMissions>;

/// Builds the service and serves until SIGTERM.
pub async fn run(settings: Settings) {
    let db = store_adapter::Store::open(&settings.database_url, store::MIGRATIONS)
        .await
        .unwrap_or_else(|e| server::fail("cannot open the database", &e));
    let client =
        nats_adapter::connect(&settings.nats, "mission").await.unwrap_or_else(|e| server::fail("NATS_URL", &e));
    let js = async_nats::jetstream::new(client.clone());
    let app: Arc<App> = Arc::new(MissionService::new(store::SqlMissions::new(db.clone()), Catalog::default()));

    let probe = {
        let (db, client) = (db.clone(), client.clone());
        server::probe(move || {
            let (db, client) = (db.clone(), client.clone());
            async move {
                nats_adapter::responsive(&client, Duration::from_secs(1)).await && db.ping(Duration::from_secs(1)).await
            }
        })
    };
    let routes = tonic::service::Routes::new(grpc::server(app.clone()));
    let verifier = auth_adapter::Verifier::new(&settings.auth);
    let refresh = Duration::from_secs(settings.auth.refresh_seconds);
    let mut srv = Server::new(settings.server.clone(), routes, vec![SERVICE_NAME], probe).with_auth(
        verifier,
        refresh,
        &["/game.mission.v1.MissionService/ListCatalog"],
    );
    let stopping = srv.stopping.clone();
    {
        let (js, replicas) = (js.clone(), settings.nats.stream_replicas);
        srv.spawn(async move {
            // Our own stream exists before we publish, even if nobody consumes yet.
            while let Err(e) = streams::ensure(&js, streams::MISSION, replicas).await {
                tracing::warn!(error = %e, "cannot create the MISSION stream yet");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
    srv.spawn(nats_adapter::relay::run(db.clone(), client.clone(), js.clone(), stopping.clone()));
    srv.spawn(consumer::run(
        js,
        settings.nats.clone(),
        events::RECORD_REWARD,
        Arc::new(events::RecordReward(app)),
        stopping,
    ));
    if let Err(e) = srv.run(CancellationToken::new()).await {
        server::fail("server failed", &e);
    }
}
