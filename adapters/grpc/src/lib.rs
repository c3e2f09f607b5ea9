//! The gRPC side shared by every service: generated code, the server bootstrap
//! (health, reflection, grpc-web, bounded graceful shutdown), telemetry, and the
//! helpers that turn domain errors into client-safe statuses.
//!
//! # Layout
//! - [`pb`] — generated messages, clients and servers of every `game.*.v1` package.
//! - [`server`] — `Server::run` — listen, serve, report health, drain on SIGTERM.
//! - [`status`] — `invalid`, `not_found`, `unavailable`, ... (internal detail goes to logs).
//! - [`trace`] — the server span of every call (OpenTelemetry, when on).
//! - [`telemetry`] — `tracing` set-up (human or JSON with `LOG_FORMAT=json`).
//! - [`convert`] — timestamps.
//! - [`auth`] — the authentication layer and the authorisation checks of handlers.
//! - [`peer`] — the client's address behind trusted proxies.
//! - [`service_token`] — a service's own token (its service account) for internal calls.
//! - [`guard`] — the framing check of every request (one whole message, within the limit).
//! - [`codec`] — the servers' codec: a request that does not decode is `INVALID_ARGUMENT`.
//! - [`metrics`] — the gRPC server metrics layer (`grpc_server_handled_total`, ...).
//! - [`paging`] — `page_size` / `page_token` of list requests (AIP-158).
//! - [`methods`] — each method's shape (streaming or not), from the compiled contracts.

pub mod auth;
pub mod codec;
pub mod convert;
pub mod guard;
pub mod methods;
pub mod metrics;
pub mod paging;
pub mod peer;
pub mod server;
pub mod service_token;
pub mod status;
pub mod telemetry;
pub mod trace;

/// Generated code, one module per protobuf package.
#[allow(clippy::all, clippy::pedantic, rust_2018_idioms, missing_docs)]
pub mod pb {
    pub mod mission {
        pub mod v1 {
            tonic::include_proto!("game.mission.v1");
            include!(concat!(env!("OUT_DIR"), "/server/game.mission.v1.rs"));
        }
    }
    pub mod reward {
        pub mod v1 {
            tonic::include_proto!("game.reward.v1");
            include!(concat!(env!("OUT_DIR"), "/server/game.reward.v1.rs"));
        }
    }
    pub mod wallet {
        pub mod v1 {
            tonic::include_proto!("game.wallet.v1");
            include!(concat!(env!("OUT_DIR"), "/server/game.wallet.v1.rs"));
        }
    }
    pub mod mypage {
        pub mod v1 {
            tonic::include_proto!("game.mypage.v1");
            include!(concat!(env!("OUT_DIR"), "/server/game.mypage.v1.rs"));
        }
    }
    pub mod gift {
        pub mod v1 {
            tonic::include_proto!("game.gift.v1");
            include!(concat!(env!("OUT_DIR"), "/server/game.gift.v1.rs"));
        }
    }
    pub mod notification {
        pub mod v1 {
            tonic::include_proto!("game.notification.v1");
            include!(concat!(env!("OUT_DIR"), "/server/game.notification.v1.rs"));
        }
    }
    pub mod auth {
        pub mod v1 {
            tonic::include_proto!("game.auth.v1");
            include!(concat!(env!("OUT_DIR"), "/server/game.auth.v1.rs"));
        }
    }
    pub mod admin {
        pub mod v1 {
            tonic::include_proto!("game.admin.v1");
            include!(concat!(env!("OUT_DIR"), "/server/game.admin.v1.rs"));
        }
    }
    pub mod events {
        pub mod v1 {
            tonic::include_proto!("game.events.v1");
        }
    }

    /// The health service's server, generated with our request codec (its messages are
    /// tonic-health's).
    pub mod health {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/server/grpc.health.v1.rs"));
        }
    }

    /// Every `game.*` file, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("game_descriptor");
}
