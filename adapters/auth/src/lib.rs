//! Identity for every service: who is calling, proved by a signed JWT.
//!
//! # Layout
//! - [`keys`] — the signing key ring of our auth service (generated on first start,
//!   rotated on demand, old keys published until their tokens expire) and token issuing.
//! - [`verify`] — the [`Verifier`] every service and the gateway use: keys from JWKS
//!   (our auth service's or any configured issuer's, e.g. Keycloak), fetched over HTTP or
//!   read from files, refreshed periodically and when an unknown key id appears; and the
//!   revocations our auth service publishes, refreshed every couple of seconds.
//! - [`customers`] — whether a customer is registered, asked of our auth service.
//! - [`revocation`] — those revocations as served: each subject sealed (HMAC-SHA256) with
//!   a key the auth service and the verifiers share, so the list names nobody.
//! - [`secret`] — argon2id hashes of passwords and service-account secrets, and random
//!   secrets (the auth service, `gamectl up` and the tests make them the same way).
//!
//! Tokens carry `sub` (the customer id, or a service account's client id), `iss`, `aud`,
//! `exp`, `iat`, `nbf`, `jti` and a `role` claim (`player`, `admin`, `game_server`,
//! `service`); Keycloak's `realm_access.roles` is understood too.

pub mod customers;
pub mod keys;
pub mod revocation;
pub mod secret;
pub mod verify;

pub use keys::{KeyRing, TokenIssuer};
pub use verify::{AuthSettings, Verifier};

/// What a caller may do. One role per token, from our own records (never from a request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A customer playing the game: acts on their own things only.
    Player,
    /// An operator: reads anyone's things, reports missions, grants roles; never acts as
    /// an owner (exchanging or using someone else's things).
    Admin,
    /// A trusted game server (a service account): reports what players did, for any
    /// player.
    GameServer,
    /// One of our own roles calling another internally (the wallet calling the gift
    /// service): the only caller of internal methods.
    Service,
}

impl Role {
    pub const ALL: [Self; 4] = [Self::Player, Self::Admin, Self::GameServer, Self::Service];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Player => "player",
            Self::Admin => "admin",
            Self::GameServer => "game_server",
            Self::Service => "service",
        }
    }

    /// The role a claim names; `customer` is the older name of `player`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "player" | "customer" => Some(Self::Player),
            "admin" => Some(Self::Admin),
            "game_server" => Some(Self::GameServer),
            "service" => Some(Self::Service),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verified caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The token's `sub`: the customer id.
    pub customer_id: String,
    pub role: Role,
    /// The bearer token itself.
    pub token: String,
    /// The token's `iat` (seconds since the epoch): a revocation refuses the tokens
    /// issued before it.
    pub issued_at: i64,
    /// The token's `exp` (seconds since the epoch): a call that lasts (a stream) ends then.
    pub expires_at: i64,
}

impl Identity {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether this caller may read `customer`'s things: the customer, or an admin.
    pub fn may_read(&self, customer: &str) -> bool {
        self.is_admin() || self.is_customer(customer)
    }

    /// Whether this caller is the player `customer` (the only one who may act as the
    /// owner of their things: exchange a reward, use a gift).
    pub fn is_customer(&self, customer: &str) -> bool {
        self.role == Role::Player && self.customer_id == customer
    }

    /// Whether this caller may act on `customer`'s things (older name of [`Self::may_read`]).
    pub fn may_act_for(&self, customer: &str) -> bool {
        self.may_read(customer)
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
    #[error("token revoked")]
    Revoked,
}

/// Whether a token issued at `issued_at` is refused by a revocation of its subject's
/// tokens issued before `revoked_before` (both seconds since the epoch, as `iat` is).
///
/// The auth service records a revocation at time `t` as "before `floor(t) + 1`" and
/// issues that subject's later tokens with `iat >= floor(t) + 1`, so that second-precision
/// `iat` neither lets a token of the revoked second through nor refuses a new one.
pub fn revoked(issued_at: i64, revoked_before: Option<i64>) -> bool {
    revoked_before.is_some_and(|before| issued_at < before)
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
    /// The role the token carries: its `role` claim, else the most trusted of Keycloak's
    /// realm roles we know, else `player`. An unknown `role` is a player, never more.
    pub fn role(&self) -> Role {
        if let Some(role) = self.role.as_deref() {
            return Role::parse(role).unwrap_or(Role::Player);
        }
        let realm = self.realm_access.as_ref().map(|r| r.roles.as_slice()).unwrap_or_default();
        [Role::Admin, Role::GameServer, Role::Service]
            .into_iter()
            .find(|r| realm.iter().any(|x| x == r.as_str()))
            .unwrap_or(Role::Player)
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
