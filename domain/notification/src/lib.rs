//! The notification context (generic): tells a customer by e-mail when a gift was issued
//! to them and when it was used, and keeps a record of every e-mail sent.
//!
//! # Layout
//! - [`model`] — the `Notification` aggregate, the gift facts it reacts to, e-mail
//!   addresses and the pure composition of an e-mail from a fact.
//! - [`ports`] — `NotificationRepository` and `Mailer`.
//! - [`service`] — the policy "a gift event becomes one e-mail" and the query.

pub mod model;
pub mod ports;
pub mod service;

pub use model::*;
pub use ports::{MailError, Mailer, NotificationRepository};
pub use service::{NotificationError, NotificationService, Outcome};
