//! The wallet service: `game.wallet.v1.WalletService` over the wallet domain. Issues every
//! `RewardAllocated` into the customer's wallet and publishes `RewardIssued`.
//!
//! # Layout
//! - [`grpc`]: the inbound gRPC adapter.
//! - [`store`]: the `WalletRepository` on diesel, with outbox and inbox.
//! - [`events`]: domain events <-> protobuf, and the consumer's handler.
//! - [`gift_client`]: the call to the gift service, behind deadline, load shedding and
//!   a circuit breaker.
//! - [`run`]: the composition root.

pub mod events;
pub mod gift_client;
pub mod grpc;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use grpc_adapter::server::{self, Server, ServerSettings};
use nats_adapter::{NatsSettings, consumer, streams};
use tokio_util::sync::CancellationToken;
use wallet_domain::WalletService;

pub const SERVICE_NAME: &str = "game.wallet.v1.WalletService";

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
    pub gift: gift_client::GiftSettings,
}

pub type App = WalletService<store::SqlWallet, gift_client::GiftClient>;

/// Builds the service and serves until SIGTERM.
pub async fn run(settings: Settings) {
    let gifts = gift_client::GiftClient::new(&settings.gift).unwrap_or_else(|e| server::fail("invalid settings", &e));
    let db = store_adapter::Store::open(&settings.database_url, store::MIGRATIONS)
        .await
        .unwrap_or_else(|e| server::fail("cannot open the database", &e));
    let client = nats_adapter::connect(&settings.nats, "wallet").await.unwrap_or_else(|e| server::fail("NATS_URL", &e));
    let js = async_nats::jetstream::new(client.clone());
    let app: Arc<App> = Arc::new(WalletService::new(store::SqlWallet::new(db.clone()), gifts));

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
            while let Err(e) = streams::ensure(&js, streams::WALLET, replicas).await {
                tracing::warn!(error = %e, "cannot create the WALLET stream yet");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
    srv.spawn(nats_adapter::relay::run(db.clone(), client.clone(), js.clone(), stopping.clone()));
    srv.spawn(consumer::run(js, settings.nats.clone(), events::ISSUE, Arc::new(events::Issue(app)), stopping));
    if let Err(e) = srv.run(CancellationToken::new()).await {
        server::fail("server failed", &e);
    }
}
