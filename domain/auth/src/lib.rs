//! The auth context (generic): customers' credentials and the decision to issue a token.
//!
//! # Layout
//! - [`model`] — `Password` rules, the `Credential` aggregate with its lock-out policy.
//! - [`ports`] — `CredentialRepository`, `PasswordHasher`, `TokenSigner`.
//! - [`service`] — register, issue a token.

pub mod model;
pub mod ports;
pub mod service;

pub use model::*;
pub use ports::{CredentialRepository, PasswordHasher, TokenSigner};
pub use service::{AuthError, AuthService};
