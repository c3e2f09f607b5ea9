//! The mypage context (read side): one page per customer, materialised from every
//! context's events, so reading it never calls another service.
//!
//! # Layout
//! - [`model`] — the `MyPage` document and the [`Fact`]s it is built from. Applying a
//!   fact is idempotent and order-tolerant: an entry is created by whichever fact about
//!   it arrives first, and a status only ever moves forward.
//! - [`archive`] — a page stays small: totals and the recent entries in the page, older
//!   entries archived under their own keys, read page by page ([`archive::plan`]).
//! - [`ports`] — `PageStore` (a document per customer with optimistic concurrency).
//! - [`service`] — applies facts with retry on concurrent writes; reads and watches.

pub mod archive;
pub mod model;
pub mod ports;
pub mod service;

pub use model::*;
pub use ports::PageStore;
pub use service::{MyPageError, MyPageService};
