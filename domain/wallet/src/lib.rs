//! The wallet context (core): the rewards issued to a customer and what became of them.
//!
//! # Layout
//! - [`ledger`] — the points account: entries, lots, the order spending draws from them.
//! - [`model`] — the `WalletItem` aggregate (a lot), the `Wallet` view, events.
//! - [`spend`] — spending points on a gift.
//! - [`correction`] — an admin's refunds and adjustments.
//! - [`expiry`] — lots whose points expire, and what expires next.
//! - [`ports`] — `WalletRepository`.
//! - [`service`] — the issue policy and queries.

pub mod correction;
pub mod expiry;
pub mod ledger;
pub mod model;
pub mod ports;
pub mod service;
pub mod spend;

pub use correction::{AdjustPoints, Correction, CorrectionKind, CorrectionRefusal, RefundGift};
pub use expiry::{ExpiryNotice, NextExpiry};
pub use ledger::{Account, Draw, EntryKind, LedgerEntry, Lot, NotEnoughPoints};
pub use model::*;
pub use ports::{
    CorrectionCommit, ExpiryCommit, GiftCallError, GiftIssuer, GiftRefusal, GiftRequest, SpendCommit, WalletRepository,
};
pub use service::{WalletError, WalletService};
pub use spend::{Spend, SpendPoints};
