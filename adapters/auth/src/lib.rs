//! Identity for every service: who is calling, proved by a signed JWT.
//!
//! # Layout
//! - [`keys`] — the signing key ring of our auth service (generated on first start,
//!   rotated on demand, old keys published until their tokens expire) and token issuing.
//! - [`verify`] — the [`Verifier`] every service and the gateway use: keys from JWKS
//!   (our auth service's or any configured issuer's, e.g. Keycloak), fetched over HTTP or
//!   read from files, refreshed periodically and when an unknown key id appears.
//!
//! Tokens carry `sub` (the customer id), `iss`, `aud`, `exp`, `iat`, `nbf`, `jti` and a
//! `role` claim (`customer` or `admin`); Keycloak's `realm_access.roles` is understood too.

pub mod keys;
pub mod verify;

pub use keys::{KeyRing, TokenIssuer};
pub use verify::{AuthSettings, Verifier};

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Customer,
    /// May read any customer's things.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Admin => "admin",
        }
    }
}

/// The verified caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The token's `sub`: the customer id.
    pub customer_id: String,
    pub role: Role,
    /// The bearer token itself, to call another service on the caller's behalf.
    pub token: String,
}

impl Identity {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether this caller may act on `customer`'s things.
    pub fn may_act_for(&self, customer: &str) -> bool {
        self.is_admin() || self.customer_id == customer
    }
}

/// Why a token was not accepted. Every variant means `UNAUTHENTICATED`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("malformed token")]
    Malformed,
    #[error("token signed with an unknown key")]
    UnknownKey,
    #[error("token algorithm not allowed")]
    BadAlgorithm,
    #[error("invalid token signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token from an untrusted issuer")]
    WrongIssuer,
    #[error("token not meant for this audience")]
    WrongAudience,
}

/// The claims we issue and read.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    /// A string or a list, as issuers differ.
    pub aud: serde_json::Value,
    pub exp: i64,
    #[serde(default)]
    pub iat: i64,
    #[serde(default)]
    pub nbf: i64,
    #[serde(default)]
    pub jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Keycloak puts realm roles here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realm_access: Option<RealmAccess>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RealmAccess {
    #[serde(default)]
    pub roles: Vec<String>,
}

impl Claims {
    pub fn role(&self) -> Role {
        let keycloak_admin = self.realm_access.as_ref().is_some_and(|r| r.roles.iter().any(|x| x == "admin"));
        if self.role.as_deref() == Some("admin") || keycloak_admin { Role::Admin } else { Role::Customer }
    }
}

/// The bearer token of an `authorization` header value.
///
/// # Errors
/// `Missing` when there is no header, `Malformed` when it is not `Bearer <token>`.
pub fn bearer(header: Option<&str>) -> Result<&str, AuthError> {
    let value = header.ok_or(AuthError::Missing)?.trim();
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::Malformed);
    }
    Ok(token.trim())
}
