//! The gRPC side shared by every service: generated code, the server bootstrap
//! (health, reflection, grpc-web, bounded graceful shutdown), telemetry, and the
//! helpers that turn domain errors into client-safe statuses.
//!
//! # Layout
//! - [`pb`] — generated messages, clients and servers of every `game.*.v1` package.
//! - [`server`] — `Server::run` — listen, serve, report health, drain on SIGTERM.
//! - [`status`] — `invalid`, `not_found`, `unavailable`, ... (internal detail goes to logs).
//! - [`telemetry`] — `tracing` set-up (human or JSON with `LOG_FORMAT=json`).
//! - [`convert`] — timestamps.
//! - [`auth`] — the authentication layer and the authorisation checks of handlers.
//! - [`peer`] — the client's address behind trusted proxies.
//! - [`service_token`] — a service's own token (its service account) for internal calls.

pub mod auth;
pub mod convert;
pub mod peer;
pub mod server;
pub mod service_token;
pub mod status;
pub mod telemetry;

/// Generated code, one module per protobuf package.
#[allow(clippy::all, clippy::pedantic, rust_2018_idioms, missing_docs)]
pub mod pb {
    pub mod mission {
        pub mod v1 {
            tonic::include_proto!("game.mission.v1");
        }
    }
    pub mod reward {
        pub mod v1 {
            tonic::include_proto!("game.reward.v1");
        }
    }
    pub mod wallet {
        pub mod v1 {
            tonic::include_proto!("game.wallet.v1");
        }
    }
    pub mod mypage {
        pub mod v1 {
            tonic::include_proto!("game.mypage.v1");
        }
    }
    pub mod gift {
        pub mod v1 {
            tonic::include_proto!("game.gift.v1");
        }
    }
    pub mod notification {
        pub mod v1 {
            tonic::include_proto!("game.notification.v1");
        }
    }
    pub mod auth {
        pub mod v1 {
            tonic::include_proto!("game.auth.v1");
        }
    }
    pub mod events {
        pub mod v1 {
            tonic::include_proto!("game.events.v1");
        }
    }

    /// Every `game.*` file, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("game_descriptor");
}
