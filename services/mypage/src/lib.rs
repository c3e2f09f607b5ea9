//! The mypage service: `game.mypage.v1.MyPageService`, a read model per customer kept in
//! a JetStream key-value bucket and fed only by events, so a read never calls another
//! service. The view is rebuilt from the streams into a new generation while the old one
//! serves ([`rebuild`], `gamectl rebuild mypage`).
//!
//! # Layout
//! - [`grpc`] — `GetMyPage`, `WatchMyPage`.
//! - [`admin`] — `RebuildMyPage`, for admins.
//! - [`kv`] — the `PageStore` on a KV bucket (revision = optimistic concurrency).
//! - [`generation`] — which generation of the view is read and which written.
//! - [`app`] — the service over the generations.
//! - [`events`] — events -> facts, the consumers' handler.
//! - [`rebuild`] — a new generation from the streams, then the switch.
//! - [`run`] — the composition root.

pub mod admin;
pub mod app;
pub mod events;
pub mod generation;
pub mod grpc;
pub mod kv;
pub mod rebuild;

use std::sync::Arc;

use grpc_adapter::server::ServerSettings;
use nats_adapter::NatsSettings;
use service_runtime::{Error, Runtime};
use tokio_util::sync::CancellationToken;

pub const SERVICE_NAME: &str = contracts::services::MYPAGE.name;

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "mypage", about = "The my page read model", version)]
pub struct Settings {
    #[command(flatten)]
    pub server: ServerSettings,
    #[command(flatten)]
    pub nats: NatsSettings,
    #[command(flatten)]
    pub auth: auth_adapter::AuthSettings,
    /// The key-value bucket holding the pages (the bus permissions of the mypage role
    /// cover the default one only).
    #[arg(long, env = "MYPAGE_BUCKET", default_value = nats_adapter::roles::MYPAGE_BUCKET)]
    pub bucket: String,
}

pub use app::App;

/// Builds the service and serves until `shutdown` is cancelled.
///
/// # Errors
/// A setting or dependency that stops the service from starting, named; or the server
/// failing.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), Error> {
    let nats = service_runtime::connect_nats(&settings.nats, nats_adapter::roles::mypage::ROLE.name).await?;
    let pages = loop {
        match nats_adapter::kv::ensure_bucket(&nats.js, &settings.bucket, settings.nats.stream_replicas).await {
            Ok(b) => break b,
            Err(e) => {
                tracing::warn!(error = %e, "cannot open the page bucket yet; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    };
    let app: Arc<App> = Arc::new(App::new(pages));
    let routes =
        tonic::service::Routes::new(grpc::server(app.clone())).add_service(admin::server(app.clone(), nats.js.clone()));
    Runtime::new(settings.server, &settings.auth, SERVICE_NAME, routes, None, Some(nats))
        .consume(&events::CONSUMERS, Arc::new(events::Projection(events::Project(app))))
        .run(shutdown)
        .await
}
