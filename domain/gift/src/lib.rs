//! The gift context (generic): the catalog of gifts, a gift issued for a reward (at most
//! one per reward), and its use.
//!
//! # Layout
//! - [`model`] — the `Gift` aggregate, refusals, events.
//! - [`rules`] — the economy: the catalog, stock, per-customer limits, windows.
//! - [`ports`] — `GiftRepository`.
//! - [`service`] — issue (idempotent on the reward), use, queries.

pub mod model;
pub mod ports;
pub mod rules;
pub mod service;

pub use model::*;
pub use ports::{GiftRepository, InsertError};
pub use rules::Catalog;
pub use service::{GiftError, GiftService};
