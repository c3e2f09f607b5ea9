//! The gRPC side shared by every service: the server bootstrap
//! (health, reflection, grpc-web, bounded graceful shutdown), telemetry, and the
//! helpers that turn domain errors into client-safe statuses.
//!
//! # Layout
//! - [`pb`] — generated messages, clients and servers of every `game.*.v1` package (the
//!   `contracts` crate's, re-exported).
//! - [`server`] — `Server::run` — listen, serve, report health, drain on SIGTERM.
//! - [`status`] — `invalid`, `not_found`, `unavailable`, ... (internal detail goes to logs).
//! - [`trace`] — the server span of every call (OpenTelemetry, when on).
//! - [`telemetry`] — `tracing` set-up (human or JSON with `LOG_FORMAT=json`).
//! - [`convert`] — timestamps.
//! - [`auth`] — the authentication layer and the authorisation checks of handlers.
//! - [`peer`] — the client's address behind trusted proxies.
//! - [`service_token`] — a service's own token (its service account) for internal calls.
//! - [`failover`] — a service called at several addresses (replicas), moving on from
//!   one that cannot be reached.
//! - [`guard`] — the framing check of every request (one whole message, within the limit).
//! - [`budget`] — request bytes held at once, per connection, per address, in all.
//! - [`codec`] — the servers' codec: a request that does not decode is `INVALID_ARGUMENT`.
//! - [`metrics`] — the gRPC server metrics layer (`grpc_server_handled_total`, ...).
//! - [`paging`] — `page_size` / `page_token` of list requests (AIP-158).
//! - [`methods`] — each method's shape (streaming or not), from the compiled contracts.

pub mod auth;
pub mod budget;
pub mod convert;
pub mod failover;
pub mod guard;
pub mod metrics;
pub mod paging;
pub mod peer;
pub mod server;
pub mod service_token;
pub mod status;
pub mod telemetry;
pub mod trace;

/// The servers' codec (generated servers name it).
pub use contracts::codec;
/// Each method's shape, from the compiled contracts.
pub use contracts::methods;
/// Generated code, one module per protobuf package (the contracts crate's; re-exported
/// so that servers keep their paths).
pub use contracts::pb;
