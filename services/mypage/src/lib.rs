//! The mypage service: `game.mypage.v1.MyPageService`, a read model per customer kept in
//! a JetStream key-value bucket and fed only by events, so a read never calls another
//! service. The view can be rebuilt by deleting the bucket and the `mypage-*` consumers.
//!
//! # Layout
//! - [`grpc`]: `GetMyPage`, `WatchMyPage`.
//! - [`kv`]: the `PageStore` on a KV bucket (revision = optimistic concurrency).
//! - [`events`]: events -> facts, the consumers' handler.
//! - [`run`]: the composition root.

pub mod events;
pub mod grpc;
pub mod kv;

use std::sync::Arc;
use std::time::Duration;

use grpc_adapter::server::{self, Server, ServerSettings};
use mypage_domain::MyPageService;
use nats_adapter::{NatsSettings, consumer};
use tokio_util::sync::CancellationToken;

pub const SERVICE_NAME: &str = "game.mypage.v1.MyPageService";

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "mypage", about = "The my page read model", version)]
pub struct Settings {
    #[command(flatten)]
    pub server: ServerSettings,
    #[command(flatten)]
    pub nats: NatsSettings,
    #[command(flatten)]
    pub auth: auth_adapter::AuthSettings,
    /// The key-value bucket holding the pages.
    #[arg(long, env = "MYPAGE_BUCKET", default_value = "mypage")]
    pub bucket: String,
}

pub type App = MyPageService<kv::KvPages>;

/// Builds the service and serves until SIGTERM.
pub async fn run(settings: Settings) {
    let client = nats_adapter::connect(&settings.nats, "mypage").await.unwrap_or_else(|e| server::fail("NATS_URL", &e));
    let js = async_nats::jetstream::new(client.clone());
    let pages = loop {
        match nats_adapter::kv::ensure_bucket(&js, &settings.bucket, settings.nats.stream_replicas).await {
            Ok(b) => break b,
            Err(e) => {
                tracing::warn!(error = %e, "cannot open the page bucket yet; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    };
    let app: Arc<App> = Arc::new(MyPageService::new(kv::KvPages::new(pages)));
    let probe = {
        let client = client.clone();
        server::probe(move || {
            let client = client.clone();
            async move { nats_adapter::responsive(&client, std::time::Duration::from_secs(1)).await }
        })
    };
    let routes = tonic::service::Routes::new(grpc::server(app.clone()));
    let verifier = auth_adapter::Verifier::new(&settings.auth);
    let refresh = Duration::from_secs(settings.auth.refresh_seconds);
    let mut srv =
        Server::new(settings.server.clone(), routes, vec![SERVICE_NAME], probe).with_auth(verifier, refresh, &[]);
    let stopping = srv.stopping.clone();
    let handler = Arc::new(events::Project(app));
    for spec in events::CONSUMERS {
        srv.spawn(consumer::run(js.clone(), settings.nats.clone(), spec, handler.clone(), stopping.clone()));
    }
    if let Err(e) = srv.run(CancellationToken::new()).await {
        server::fail("server failed", &e);
    }
}
