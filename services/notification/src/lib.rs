//! The notification service: e-mails a customer when a gift is issued to them and when
//! it is used, records every e-mail, publishes `NotificationSent`, and answers
//! `game.notification.v1.NotificationService/ListNotifications`.
//!
//! # Layout
//! - [`grpc`]: the inbound gRPC adapter.
//! - [`events`]: `NotificationSent` on the wire, the `GiftIssued` / `GiftUsed` consumers.
//! - [`mail`]: the `Mailer` adapters (SMTP relay, or a mailbox directory of `.eml` files).
//! - [`store`]: the `NotificationRepository` on diesel, with outbox and inbox.
//! - [`run`]: the composition root.

pub mod events;
pub mod grpc;
pub mod mail;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use grpc_adapter::server::{self, Server, ServerSettings};
use nats_adapter::{NatsSettings, consumer, streams};
use notification_domain::NotificationService;
use tokio_util::sync::CancellationToken;

pub const SERVICE_NAME: &str = "game.notification.v1.NotificationService";

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "notification", about = "The notification service", version)]
pub struct Settings {
    #[command(flatten)]
    pub server: ServerSettings,
    #[command(flatten)]
    pub nats: NatsSettings,
    #[command(flatten)]
    pub auth: auth_adapter::AuthSettings,
    /// `sqlite://path` (default) or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://data/notification.db")]
    pub database_url: String,
    #[command(flatten)]
    pub mail: mail::MailSettings,
}

pub type App = NotificationService<store::SqlNotifications, mail::AnyMailer>;

/// Builds the service and serves until SIGTERM.
pub async fn run(settings: Settings) {
    let mailer = settings.mail.mailer().unwrap_or_else(|e| server::fail("cannot set up the mailer", &e));
    let db = store_adapter::Store::open(&settings.database_url, store::MIGRATIONS)
        .await
        .unwrap_or_else(|e| server::fail("cannot open the database", &e));
    let client =
        nats_adapter::connect(&settings.nats, "notification").await.unwrap_or_else(|e| server::fail("NATS_URL", &e));
    let js = async_nats::jetstream::new(client.clone());
    let app: Arc<App> = Arc::new(NotificationService::new(
        store::SqlNotifications::new(db.clone()),
        mailer,
        settings.mail.recipient_domain.clone(),
    ));

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
            while let Err(e) = streams::ensure(&js, streams::NOTIFICATION, replicas).await {
                tracing::warn!(error = %e, "cannot create the NOTIFICATION stream yet");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
    srv.spawn(nats_adapter::relay::run(db.clone(), client.clone(), js.clone(), stopping.clone()));
    srv.spawn(consumer::run(
        js.clone(),
        settings.nats.clone(),
        events::GIFT_ISSUED,
        Arc::new(events::OnGift::issued(app.clone())),
        stopping.clone(),
    ));
    srv.spawn(consumer::run(
        js,
        settings.nats.clone(),
        events::GIFT_USED,
        Arc::new(events::OnGift::used(app)),
        stopping,
    ));
    if let Err(e) = srv.run(CancellationToken::new()).await {
        server::fail("server failed", &e);
    }
}
