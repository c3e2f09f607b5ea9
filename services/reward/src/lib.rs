//! The reward service: `game.reward.v1.RewardService` over the reward domain. Allocates a
//! reward for every `MissionAchieved`, follows the wallet's `RewardIssued` and
//! `RewardExchanged`, publishes `RewardAllocated` through the outbox.
//!
//! # Layout
//! - [`grpc`]: the inbound gRPC adapter.
//! - [`store`]: the `RewardRepository` on diesel, with outbox and inbox.
//! - [`events`]: domain events <-> protobuf, and the consumers' handlers.
//! - [`run`]: the composition root.

pub mod events;
pub mod grpc;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use grpc_adapter::server::{self, Server, ServerSettings};
use nats_adapter::{NatsSettings, consumer, streams};
use reward_domain::RewardService;
use tokio_util::sync::CancellationToken;

pub const SERVICE_NAME: &str = "game.reward.v1.RewardService";

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
}

pub type App = RewardService<store::SqlRewards>;

/// Builds the service and serves until SIGTERM.
pub async fn run(settings: Settings) {
    let db = store_adapter::Store::open(&settings.database_url, store::MIGRATIONS)
        .await
        .unwrap_or_else(|e| server::fail("cannot open the database", &e));
    let client = nats_adapter::connect(&settings.nats, "reward").await.unwrap_or_else(|e| server::fail("NATS_URL", &e));
    let js = async_nats::jetstream::new(client.clone());
    let app: Arc<App> = Arc::new(RewardService::new(store::SqlRewards::new(db.clone())));

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
    let mut srv =
        Server::new(settings.server.clone(), routes, vec![SERVICE_NAME], probe).with_auth(verifier, refresh, &[]);
    let stopping = srv.stopping.clone();
    {
        let (js, replicas) = (js.clone(), settings.nats.stream_replicas);
        srv.spawn(async move {
            while let Err(e) = streams::ensure(&js, streams::REWARD, replicas).await {
                tracing::warn!(error = %e, "cannot create the REWARD stream yet");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
    srv.spawn(nats_adapter::relay::run(db.clone(), client.clone(), js.clone(), stopping.clone()));
    let handler = Arc::new(events::Policies(app));
    for spec in [events::ALLOCATE, events::ISSUED, events::EXCHANGED] {
        srv.spawn(consumer::run(js.clone(), settings.nats.clone(), spec, handler.clone(), stopping.clone()));
    }
    if let Err(e) = srv.run(CancellationToken::new()).await {
        server::fail("server failed", &e);
    }
}
