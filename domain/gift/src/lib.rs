//! The gift context (generic): the catalog of gifts, a gift issued for a reward (at most
//! one per reward), and its use.
//!
//! # Layout
//! - [`model`] — the `Gift` aggregate, the catalog, refusals, events.
//! - [`ports`] — `GiftRepository`.
//! - [`service`] — issue (idempotent on the reward), use, queries.

pub mod model;
pub mod ports;
pub mod service;

pub use model::*;
pub use ports::GiftRepository;
pub use service::{GiftError, GiftService};
