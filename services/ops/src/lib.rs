//! The ops role: `game.admin.v1.DeadLetterService`, the dead letters as admin RPCs.
//!
//! A redrive publishes an event again on the subject of the role that first published it,
//! which no service's NATS user may do (that is what stops a forged event). So the dead
//! letters are served by a role of their own whose NATS user may read and remove
//! messages of the `DEADLETTER` stream and publish the events back — and nothing else: no
//! database, no stream or consumer of its own (`nats_adapter::access`, user `ops`).
//!
//! # Layout
//! - [`grpc`] — the four RPCs, admins only.
//! - [`run`] — the composition root.

pub mod grpc;

use grpc_adapter::server::ServerSettings;
use nats_adapter::NatsSettings;
use service_runtime::{Error, Runtime};
use tokio_util::sync::CancellationToken;

pub use grpc::decoded;

pub const SERVICE_NAME: &str = "game.admin.v1.DeadLetterService";

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "ops", about = "The operators' tools: dead letters listed, redriven, discarded", version)]
pub struct Settings {
    #[command(flatten)]
    pub server: ServerSettings,
    #[command(flatten)]
    pub nats: NatsSettings,
    #[command(flatten)]
    pub auth: auth_adapter::AuthSettings,
}

/// Builds the service and serves until `shutdown` is cancelled.
///
/// # Errors
/// A setting or dependency that stops the service from starting, named; or the server
/// failing.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), Error> {
    let nats = service_runtime::connect_nats(&settings.nats, nats_adapter::roles::ops::ROLE.name).await?;
    let routes = tonic::service::Routes::new(grpc::server(nats.js.clone()));
    Runtime::new(settings.server, &settings.auth, SERVICE_NAME, routes, None, Some(nats)).run(shutdown).await
}
