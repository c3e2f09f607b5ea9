//! The system's contracts, declared once, for servers and clients alike: what goes over
//! gRPC and over the bus, and under which names. Server-side machinery (bootstrap,
//! authentication, metrics) stays in `grpc-adapter`; a client (gamectl, the bench, the
//! tests) needs only this crate.
//!
//! # Layout
//! - [`pb`] — generated messages, clients and servers of every `game.*.v1` package; every
//!   message implements `prost::Name`.
//! - [`roles`] — the role table: each role's API, stream, consumers, buckets, database and
//!   the roles it starts after; everything about a role is computed from it.
//! - [`services`] — each API's gRPC service name, the variable giving its address, and
//!   which of its methods are public or internal (declared in the role table).
//! - [`streams`] — the JetStream streams and the event subjects.
//! - [`events`] — each event message with its subject; its type name is its protobuf name.
//! - [`methods`] — each method's shape (streaming or not), from the compiled descriptors.
//! - [`codec`] — the servers' codec: a request that does not decode is `INVALID_ARGUMENT`.

pub mod codec;
pub mod events;
pub mod methods;
pub mod roles;
pub mod services;
pub mod streams;

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
