//! The wallet context (core): the rewards issued to a customer and what became of them.
//!
//! # Layout
//! - [`model`] — the `WalletItem` aggregate, the `Wallet` view, events.
//! - [`ports`] — `WalletRepository`.
//! - [`service`] — the issue policy and queries.

pub mod model;
pub mod ports;
pub mod service;

pub use model::*;
pub use ports::{GiftCallError, GiftIssuer, GiftRefusal, GiftRequest, WalletRepository};
pub use service::{WalletError, WalletService};
