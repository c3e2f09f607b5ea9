//! Accounts and their roles, service accounts, revocations and the audit trail.
//! Synchronous and pure.

use chrono::{DateTime, Utc};
use kernel::{CustomerId, ValidationError};
use uuid::Uuid;

/// A password as a customer chose it, or a service account's secret; never stored, only
/// hashed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_BYTES: usize = 256;

    /// # Errors
    /// `password` when shorter than 8 characters or longer than 256 bytes.
    pub fn new(raw: &str) -> Result<Self, ValidationError> {
        Self::named("password", raw)
    }

    /// The same rules, naming another field (`client_secret`).
    ///
    /// # Errors
    /// `field` when shorter than 8 characters or longer than 256 bytes.
    pub fn named(field: &'static str, raw: &str) -> Result<Self, ValidationError> {
        if raw.chars().count() < Self::MIN_CHARS {
            return Err(ValidationError::new(field, format!("must be at least {} characters", Self::MIN_CHARS)));
        }
        if raw.len() > Self::MAX_BYTES {
            return Err(ValidationError::new(field, format!("must be at most {} bytes", Self::MAX_BYTES)));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// What an account may do. One role per account, kept in our store, put in every token
/// the account gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A customer playing the game: acts on their own things only. Every registered
    /// customer starts here.
    Player,
    /// An operator: reads anyone's things, grants roles, manages service accounts and
    /// tokens; never acts as an owner.
    Admin,
    /// A trusted game server (a service account): reports what players did.
    GameServer,
    /// One of our own services calling another internally (a service account).
    Service,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Player => "player",
            Self::Admin => "admin",
            Self::GameServer => "game_server",
            Self::Service => "service",
        }
    }

    /// # Errors
    /// `role` when it is not one of ours.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "player" => Ok(Self::Player),
            "admin" => Ok(Self::Admin),
            "game_server" => Ok(Self::GameServer),
            "service" => Ok(Self::Service),
            _ => Err(ValidationError::new("role", "must be one of player, admin, game_server, service")),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a role cannot be changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleRefusal {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// An admin taking their own admin role away could leave nobody to manage the system.
    #[error("you cannot revoke your own admin role; ask another admin")]
    OwnAdminRole,
}

/// A customer's account: credentials and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub customer_id: CustomerId,
    /// A PHC string (argon2id), never the password.
    pub password_hash: String,
    pub role: Role,
    pub version: i64,
}

impl Account {
    /// A self-registered customer: always a player (roles are granted by admins only).
    pub fn register(customer_id: CustomerId, password_hash: String) -> Self {
        Self { customer_id, password_hash, role: Role::Player, version: 0 }
    }

    /// The first admin, made by the service at start from its configuration.
    pub fn first_admin(customer_id: CustomerId, password_hash: String) -> Self {
        Self { role: Role::Admin, ..Self::register(customer_id, password_hash) }
    }

    /// Gives the customer `role`; `false` when they had it already.
    ///
    /// # Errors
    /// `Invalid` (`role`) for a role a customer cannot hold: `admin` is the only one to
    /// grant; every customer is a player, and game servers and services are service
    /// accounts.
    pub fn grant(&mut self, role: Role) -> Result<bool, RoleRefusal> {
        grantable(role)?;
        if self.role == role {
            return Ok(false);
        }
        self.role = role;
        Ok(true)
    }

    /// Takes `role` back: the customer is a player again; `false` when they did not have it.
    ///
    /// # Errors
    /// `Invalid` (`role`) as for [`Self::grant`]; `OwnAdminRole` when `by` is this admin.
    pub fn revoke(&mut self, role: Role, by: &str) -> Result<bool, RoleRefusal> {
        grantable(role)?;
        if self.role != role {
            return Ok(false);
        }
        if role == Role::Admin && by == self.customer_id.as_str() {
            return Err(RoleRefusal::OwnAdminRole);
        }
        self.role = Role::Player;
        Ok(true)
    }
}

fn grantable(role: Role) -> Result<(), ValidationError> {
    match role {
        Role::Admin => Ok(()),
        Role::Player => Err(ValidationError::new("role", "every customer is a player; revoke a role to go back to it")),
        Role::GameServer | Role::Service => Err(ValidationError::new(
            "role",
            "only admin can be granted to a customer; game servers and services are service accounts",
        )),
    }
}

/// What every service account's client id starts with; customers cannot register such
/// ids, so a token's `sub` names one kind of holder only.
pub const SERVICE_ACCOUNT_PREFIX: &str = "svc-";

/// A service account's client id: `svc-<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    /// The client id of the service account called `name`.
    ///
    /// # Errors
    /// `name` when it is not 1-64 characters of `a-z 0-9 - _`.
    pub fn for_name(name: &str) -> Result<Self, ValidationError> {
        kernel::code("name", name)?;
        Ok(Self(format!("{SERVICE_ACCOUNT_PREFIX}{name}")))
    }

    /// # Errors
    /// `client_id` when it is not `svc-<name>`.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let invalid =
            || ValidationError::new("client_id", "must be svc-<name>, the name 1-64 characters of a-z, 0-9, '-', '_'");
        let name = raw.strip_prefix(SERVICE_ACCOUNT_PREFIX).ok_or_else(invalid)?;
        kernel::code("client_id", name).map_err(|_| invalid())?;
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name part (after `svc-`).
    pub fn name(&self) -> &str {
        &self.0[SERVICE_ACCOUNT_PREFIX.len()..]
    }
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A machine's account: a game server, or one of our services (the wallet calling gift).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    pub client_id: ClientId,
    /// A PHC string (argon2id) of the secret, never the secret.
    pub secret_hash: String,
    pub role: Role,
    /// The admin who created it, or `bootstrap` (provisioned at start from a file).
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl ServiceAccount {
    /// # Errors
    /// `role` unless `game_server` or `service`.
    pub fn new(
        client_id: ClientId,
        secret_hash: String,
        role: Role,
        created_by: &str,
        now: DateTime<Utc>,
    ) -> Result<Self, ValidationError> {
        if !matches!(role, Role::GameServer | Role::Service) {
            return Err(ValidationError::new("role", "a service account is a game_server or a service"));
        }
        Ok(Self { client_id, secret_hash, role, created_by: created_by.to_owned(), created_at: now })
    }
}

/// Every token of `subject` issued before `before` (seconds since the epoch, as a token's
/// `iat`) is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub subject: String,
    pub before: i64,
}

impl Revocation {
    /// Revokes what was issued until `now`, within its second too: tokens carry `iat` in
    /// whole seconds, so "before the next second" catches a token issued a moment earlier
    /// in the same second (and the auth service gives later tokens `iat >= before`).
    /// Tokens issued after the `previous` revocation carry `iat = previous.before`, which
    /// may be that same next second: this one then reaches one second further.
    pub fn at(subject: &str, now: DateTime<Utc>, previous: Option<&Revocation>) -> Self {
        let next_second = now.timestamp() + 1;
        let after_previous = previous.map_or(i64::MIN, |p| p.before.saturating_add(1));
        Self { subject: subject.to_owned(), before: next_second.max(after_previous) }
    }
}

/// What an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    AdminCreated,
    RoleGranted,
    RoleRevoked,
    ServiceAccountCreated,
    ServiceAccountProvisioned,
    TokensRevoked,
}

impl AuditAction {
    pub const ALL: [Self; 6] = [
        Self::AdminCreated,
        Self::RoleGranted,
        Self::RoleRevoked,
        Self::ServiceAccountCreated,
        Self::ServiceAccountProvisioned,
        Self::TokensRevoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AdminCreated => "admin_created",
            Self::RoleGranted => "role_granted",
            Self::RoleRevoked => "role_revoked",
            Self::ServiceAccountCreated => "service_account_created",
            Self::ServiceAccountProvisioned => "service_account_provisioned",
            Self::TokensRevoked => "tokens_revoked",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == raw)
    }
}

/// Who did what to whom, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    /// An admin's id, or [`AuditEntry::BOOTSTRAP`].
    pub actor: String,
    pub action: AuditAction,
    /// A customer id or a client id.
    pub subject: String,
    pub detail: String,
}

impl AuditEntry {
    /// The actor of what the service sets up at start from its configuration.
    pub const BOOTSTRAP: &'static str = "bootstrap";

    pub fn new(actor: &str, action: AuditAction, subject: &str, detail: impl Into<String>, now: DateTime<Utc>) -> Self {
        Self {
            id: kernel::new_id(),
            at: now,
            actor: actor.to_owned(),
            action,
            subject: subject.to_owned(),
            detail: detail.into(),
        }
    }
}

/// Why a login (or a service account's token request) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginRefusal {
    /// The same answer whether the account exists or not.
    #[error("invalid customer id or password")]
    BadCredentials,
    /// Too many failures from this address (for this account, or for any).
    #[error("too many failed attempts; try again later")]
    Throttled { retry_after: std::time::Duration },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Account {
        Account::register(CustomerId::new("c-11").unwrap(), "hash".into())
    }

    #[test]
    fn passwords_have_a_minimum_length_and_never_print() {
        assert_eq!(Password::new("short").unwrap_err().field, "password");
        assert_eq!(Password::named("client_secret", "short").unwrap_err().field, "client_secret");
        assert!(Password::new(&"x".repeat(300)).is_err());
        assert_eq!(format!("{:?}", Password::new("correct horse").unwrap()), "Password(***)");
    }

    #[test]
    fn given_a_registered_customer_then_they_are_a_player() {
        assert_eq!(account().role, Role::Player);
        assert_eq!(Account::first_admin(CustomerId::new("admin").unwrap(), "h".into()).role, Role::Admin);
    }

    #[test]
    fn given_a_player_when_admin_is_granted_twice_then_it_changes_once() {
        let mut a = account();
        assert_eq!(a.grant(Role::Admin), Ok(true));
        assert_eq!(a.role, Role::Admin);
        assert_eq!(a.grant(Role::Admin), Ok(false));
    }

    #[test]
    fn only_admin_is_granted_to_a_customer() {
        for role in [Role::Player, Role::GameServer, Role::Service] {
            let refusal = account().grant(role).unwrap_err();
            assert!(matches!(refusal, RoleRefusal::Invalid(ref v) if v.field == "role"), "{role}: {refusal}");
        }
    }

    #[test]
    fn given_an_admin_when_another_admin_revokes_the_role_then_they_are_a_player_again() {
        let mut a = account();
        a.grant(Role::Admin).unwrap();
        assert_eq!(a.revoke(Role::Admin, "c-11"), Err(RoleRefusal::OwnAdminRole), "not their own");
        assert_eq!(a.revoke(Role::Admin, "ops"), Ok(true));
        assert_eq!(a.role, Role::Player);
        assert_eq!(a.revoke(Role::Admin, "ops"), Ok(false), "nothing left to revoke");
    }

    #[test]
    fn client_ids_are_svc_and_a_name() {
        let id = ClientId::for_name("match-server").unwrap();
        assert_eq!((id.as_str(), id.name()), ("svc-match-server", "match-server"));
        assert_eq!(ClientId::parse("svc-match-server").unwrap(), id);
        assert_eq!(ClientId::parse("match-server").unwrap_err().field, "client_id");
        assert_eq!(ClientId::parse("svc-").unwrap_err().field, "client_id");
        assert_eq!(ClientId::for_name("Bad Name").unwrap_err().field, "name");
    }

    #[test]
    fn a_service_account_is_a_game_server_or_a_service() {
        let id = ClientId::for_name("gs").unwrap();
        assert!(ServiceAccount::new(id.clone(), "h".into(), Role::GameServer, "ops", Utc::now()).is_ok());
        assert!(ServiceAccount::new(id.clone(), "h".into(), Role::Service, "ops", Utc::now()).is_ok());
        assert_eq!(ServiceAccount::new(id, "h".into(), Role::Admin, "ops", Utc::now()).unwrap_err().field, "role");
    }

    #[test]
    fn a_revocation_covers_the_whole_second_it_was_made_in_and_reaches_past_the_previous_one() {
        let now = DateTime::from_timestamp(1_800_000_000, 700_000_000).unwrap();
        let first = Revocation::at("c-11", now, None);
        assert_eq!(first.before, 1_800_000_001);
        // A token issued after `first`, in the same second, has iat = 1_800_000_001: a
        // second revocation in that second must refuse it too.
        assert_eq!(Revocation::at("c-11", now, Some(&first)).before, 1_800_000_002);
        let long_ago = Revocation { subject: "c-11".into(), before: 1_000 };
        assert_eq!(Revocation::at("c-11", now, Some(&long_ago)).before, 1_800_000_001);
    }

    #[test]
    fn roles_and_audit_actions_read_back_what_they_write() {
        for role in [Role::Player, Role::Admin, Role::GameServer, Role::Service] {
            assert_eq!(Role::parse(role.as_str()), Ok(role));
        }
        assert_eq!(Role::parse("root").unwrap_err().field, "role");
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(a));
        }
    }
}
