//! The auth context (generic): who may do what. Customers' accounts and their roles,
//! service accounts (game servers, our own services), the first admin, throttling of
//! failed logins, revocation of tokens, and the audit trail of every change.
//!
//! # Layout
//! - [`model`] — `Password`, `Role`, the `Account` and `ServiceAccount` aggregates,
//!   `Revocation`, `AuditEntry`.
//! - [`throttle`] — the login throttle's policy (OWASP): growing delays per (account,
//!   address), a limit per address.
//! - [`ports`] — `AccountRepository`, `LoginThrottleRepository`, `PasswordHasher`,
//!   `TokenSigner`.
//! - [`service`] — register, log in, service accounts, roles, revocations.

pub mod model;
pub mod ports;
pub mod service;
pub mod throttle;

pub use model::*;
pub use ports::{AccountRepository, Holder, LoginThrottleRepository, PasswordHasher, TokenSigner};
pub use service::{AUDIT_LIMIT, AuthError, AuthService, FirstAdmin, Provisioned, Token};
pub use throttle::{Counter, ThrottleKeys, ThrottlePolicy};
