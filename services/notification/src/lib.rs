//! The notification service: e-mails a customer when a gift is issued to them and when
//! it is used, records every e-mail, publishes `NotificationSent`, and answers
//! `game.notification.v1.NotificationService/ListNotifications`.
//!
//! # Layout
//! - [`grpc`] — the inbound gRPC adapter.
//! - [`events`] — `NotificationSent` on the wire, the `GiftIssued` / `GiftUsed` consumers.
//! - [`mail`] — the `Mailer` adapters (SMTP relay, or a mailbox directory of `.eml` files).
//! - [`store`] — the `NotificationRepository` on diesel, with outbox and inbox.
//! - [`run`] — the composition root.

pub mod events;
pub mod grpc;
pub mod mail;
pub mod store;

use std::sync::Arc;

use grpc_adapter::server::ServerSettings;
use nats_adapter::{NatsSettings, streams};
use notification_domain::NotificationService;
use service_runtime::{Error, Runtime};
use tokio_util::sync::CancellationToken;

pub const SERVICE_NAME: &str = contracts::services::NOTIFICATION.name;

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
    pub pool: service_runtime::PoolSettings,
    #[command(flatten)]
    pub mail: mail::MailSettings,
}

pub type App = NotificationService<store::SqlNotifications, mail::AnyMailer>;

/// Builds the service and serves until `shutdown` is cancelled.
///
/// # Errors
/// A setting or dependency that stops the service from starting, named; or the server
/// failing.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), Error> {
    let mailer = settings.mail.mailer().map_err(Error::at("cannot set up the mailer"))?;
    let db = service_runtime::open_store(&settings.database_url, &settings.pool, store::MIGRATIONS).await?;
    let nats = service_runtime::connect_nats(&settings.nats, nats_adapter::roles::notification::ROLE.name).await?;
    let app: Arc<App> = Arc::new(NotificationService::new(
        store::SqlNotifications::new(db.clone()),
        mailer,
        settings.mail.recipient_domain.clone(),
    ));
    let routes = tonic::service::Routes::new(grpc::server(app.clone()));
    Runtime::new(settings.server, &settings.auth, SERVICE_NAME, routes, Some(db), Some(nats))
        .publish(streams::NOTIFICATION)
        .consume(&[events::GIFT_ISSUED], Arc::new(events::OnGift::issued(app.clone())))
        .consume(&[events::GIFT_USED], Arc::new(events::OnGift::used(app.clone())))
        .consume(&[events::POINTS_EXPIRING], Arc::new(events::OnPointsExpiring(app)))
        .run(shutdown)
        .await
}
