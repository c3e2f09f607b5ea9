//! The auth application service: register, log in (throttled), service accounts, roles,
//! revocations, the first admin and provisioned service accounts.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kernel::{CustomerId, StoreError, ValidationError};

use crate::model::{
    Account, AuditAction, AuditEntry, ClientId, LoginRefusal, Password, Revocation, Role, RoleRefusal,
    SERVICE_ACCOUNT_PREFIX, ServiceAccount,
};
use crate::ports::{AccountRepository, Holder, LoginThrottleRepository, PasswordHasher, TokenSigner};
use crate::throttle::{ThrottleKeys, ThrottlePolicy};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("customer already registered")]
    AlreadyRegistered,
    /// A service account of that name exists: the field at fault and why.
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Refused(#[from] LoginRefusal),
    #[error(transparent)]
    Role(#[from] RoleRefusal),
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

/// An access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub access_token: String,
    pub expires_in: i64,
}

/// What became of the first admin at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstAdmin {
    Created,
    /// The account exists (with this role): left as it is.
    Exists(Role),
}

/// A service account as configuration provisions it (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub client_id: ClientId,
    pub role: Role,
    pub secret_hash: String,
}

/// How many times a change racing another one is tried again.
const CONFLICT_RETRIES: usize = 8;
/// The most audit entries one call lists.
pub const AUDIT_LIMIT: usize = 500;

pub struct AuthService<R, T, H, S> {
    accounts: R,
    throttle: T,
    hasher: H,
    signer: S,
    policy: ThrottlePolicy,
    /// Hash checked when the account is unknown, so the answer takes as long.
    decoy_hash: std::sync::OnceLock<String>,
}

impl<R, T, H, S> AuthService<R, T, H, S>
where
    R: AccountRepository,
    T: LoginThrottleRepository,
    H: PasswordHasher,
    S: TokenSigner,
{
    pub fn new(accounts: R, throttle: T, hasher: H, signer: S, policy: ThrottlePolicy) -> Self {
        Self { accounts, throttle, hasher, signer, policy, decoy_hash: std::sync::OnceLock::new() }
    }

    pub fn policy(&self) -> ThrottlePolicy {
        self.policy
    }

    /// A new customer, always a player.
    ///
    /// # Errors
    /// `Invalid` (`customer_id`, `password`; ids starting with `svc-` are reserved),
    /// `AlreadyRegistered`.
    pub async fn register(&self, customer: &str, password: &str) -> Result<CustomerId, AuthError> {
        let customer = CustomerId::new(customer)?;
        if customer.as_str().starts_with(SERVICE_ACCOUNT_PREFIX) {
            return Err(ValidationError::new(
                "customer_id",
                format!("ids starting with '{SERVICE_ACCOUNT_PREFIX}' are reserved for service accounts"),
            )
            .into());
        }
        let password = Password::new(password)?;
        let hash = self.hasher.hash(&password).await.map_err(AuthError::Unavailable)?;
        match self.accounts.insert(&Account::register(customer.clone(), hash), None).await {
            Ok(()) => Ok(customer),
            Err(StoreError::Duplicate) => Err(AuthError::AlreadyRegistered),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks a customer's password and signs a token with their role. `address` is the
    /// client's (see [`crate::throttle`]).
    ///
    /// # Errors
    /// `Refused(BadCredentials)` for an unknown customer or a wrong password (the same
    /// answer), `Refused(Throttled)` while this address must wait.
    pub async fn issue_token(&self, customer: &str, password: &str, address: Option<&str>) -> Result<Token, AuthError> {
        let (Ok(customer), Ok(password)) = (CustomerId::new(customer), Password::new(password)) else {
            // No account can match: refused like a wrong password, without counting.
            return Err(LoginRefusal::BadCredentials.into());
        };
        let keys = ThrottleKeys::new(customer.as_str(), address);
        self.admit(&keys).await?;
        let account = self.accounts.get(&customer).await?;
        let hash = match &account {
            Some(a) => a.password_hash.clone(),
            None => self.decoy().await,
        };
        let ok = self.hasher.verify(&password, &hash).await;
        let Some(account) = account.filter(|_| ok) else {
            return Err(LoginRefusal::BadCredentials.into());
        };
        self.forgive(&keys).await?;
        self.sign(account.customer_id.as_str(), account.role, Holder::Customer).await
    }

    /// Checks a service account's secret and signs a token with `sub` = its client id and
    /// its role; throttled like a customer's login.
    ///
    /// # Errors
    /// As [`Self::issue_token`].
    pub async fn issue_service_token(
        &self,
        client_id: &str,
        secret: &str,
        address: Option<&str>,
    ) -> Result<Token, AuthError> {
        let (Ok(client), Ok(secret)) = (ClientId::parse(client_id), Password::named("client_secret", secret)) else {
            return Err(LoginRefusal::BadCredentials.into());
        };
        let keys = ThrottleKeys::new(client.as_str(), address);
        self.admit(&keys).await?;
        let account = self.accounts.get_service_account(&client).await?;
        let hash = match &account {
            Some(a) => a.secret_hash.clone(),
            None => self.decoy().await,
        };
        let ok = self.hasher.verify(&secret, &hash).await;
        let Some(account) = account.filter(|_| ok) else {
            return Err(LoginRefusal::BadCredentials.into());
        };
        self.forgive(&keys).await?;
        self.sign(account.client_id.as_str(), account.role, Holder::ServiceAccount).await
    }

    async fn sign(&self, subject: &str, role: Role, holder: Holder) -> Result<Token, AuthError> {
        let revoked = self.accounts.revocation(subject).await?;
        let (access_token, expires_in) =
            self.signer.sign(subject, role, holder, revoked.map(|r| r.before)).map_err(AuthError::Unavailable)?;
        Ok(Token { access_token, expires_in })
    }

    /// Counts the attempt in advance, or says how long to wait.
    async fn admit(&self, keys: &ThrottleKeys) -> Result<(), AuthError> {
        let outcome = kernel::retry_on_conflict(CONFLICT_RETRIES, move || async move {
            let [pair, address] = self.throttle.counters([&keys.pair, &keys.address]).await?;
            let admitted = match self.policy.admit(pair, address, Utc::now()) {
                Ok(admitted) => admitted,
                Err(retry_after) => return Ok(Some(Err(retry_after))),
            };
            match self.throttle.save([(&keys.pair, &admitted.pair), (&keys.address, &admitted.address)]).await {
                Ok(()) => Ok(Some(Ok(()))),
                Err(StoreError::Conflict | StoreError::Duplicate) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await;
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(retry_after)) => Err(LoginRefusal::Throttled { retry_after }.into()),
            // Only a burst of attempts from this very address races like this.
            Err(StoreError::Conflict) => Err(LoginRefusal::Throttled { retry_after: Duration::from_secs(1) }.into()),
            Err(e) => Err(e.into()),
        }
    }

    /// Takes back the failure counted in advance of a right password. Losing every race
    /// to concurrent attempts of the same address leaves the count as it is: at worst
    /// that address waits a little, the token is deserved anyway.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be used.
    async fn forgive(&self, keys: &ThrottleKeys) -> Result<(), AuthError> {
        let forgiven = kernel::retry_on_conflict(CONFLICT_RETRIES, move || async move {
            let [pair, address] = self.throttle.counters([&keys.pair, &keys.address]).await?;
            let after = self.policy.succeeded(pair, address, Utc::now());
            match self.throttle.save([(&keys.pair, &after.pair), (&keys.address, &after.address)]).await {
                Ok(()) => Ok(Some(())),
                Err(StoreError::Conflict | StoreError::Duplicate) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await;
        match forgiven {
            Ok(()) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn decoy(&self) -> String {
        if let Some(h) = self.decoy_hash.get() {
            return h.clone();
        }
        match self.hasher.hash(&Password::new("decoy-password-never-used").expect("valid")).await {
            Ok(hash) => self.decoy_hash.get_or_init(|| hash).clone(),
            // Not kept: the next login of an unknown account tries again.
            Err(_) => String::new(),
        }
    }

    /// Creates the first admin from configuration unless the account exists (then it is
    /// left as it is: its password and role are the admins' business from then on).
    ///
    /// # Errors
    /// `Invalid` (`customer_id`, `password`).
    pub async fn ensure_first_admin(&self, admin: &str, password: &str) -> Result<FirstAdmin, AuthError> {
        let customer = CustomerId::new(admin)?;
        let password = Password::new(password)?;
        if let Some(existing) = self.accounts.get(&customer).await? {
            return Ok(FirstAdmin::Exists(existing.role));
        }
        let hash = self.hasher.hash(&password).await.map_err(AuthError::Unavailable)?;
        let audit = AuditEntry::new(AuditEntry::BOOTSTRAP, AuditAction::AdminCreated, admin, "admin", Utc::now());
        match self.accounts.insert(&Account::first_admin(customer.clone(), hash), Some(audit)).await {
            Ok(()) => Ok(FirstAdmin::Created),
            // Another replica starting at the same time made it.
            Err(StoreError::Duplicate) => {
                Ok(FirstAdmin::Exists(self.accounts.get(&customer).await?.map_or(Role::Admin, |a| a.role)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Creates or updates the service accounts configuration provisions; returns how many
    /// changed.
    ///
    /// # Errors
    /// `Invalid` (`role`) for a role a service account cannot have.
    pub async fn provision(&self, accounts: &[Provisioned]) -> Result<usize, AuthError> {
        let mut changed = 0;
        for p in accounts {
            let existing = self.accounts.get_service_account(&p.client_id).await?;
            if existing.as_ref().is_some_and(|e| e.secret_hash == p.secret_hash && e.role == p.role) {
                continue;
            }
            let now = Utc::now();
            let account =
                ServiceAccount::new(p.client_id.clone(), p.secret_hash.clone(), p.role, AuditEntry::BOOTSTRAP, now)?;
            let audit = AuditEntry::new(
                AuditEntry::BOOTSTRAP,
                AuditAction::ServiceAccountProvisioned,
                p.client_id.as_str(),
                p.role.as_str(),
                now,
            );
            self.accounts.put_service_account(&account, audit).await?;
            changed += 1;
        }
        Ok(changed)
    }

    /// Whether `customer` is registered (what a game server's report for them needs:
    /// points reported for an id nobody holds would go to whoever registers it later).
    /// It says no more than registering the id would (`AlreadyRegistered`).
    ///
    /// # Errors
    /// `Invalid` (`customer_id`); `Unavailable` when the store is down.
    pub async fn is_registered(&self, customer: &str) -> Result<bool, AuthError> {
        let customer = CustomerId::new(customer)?;
        Ok(self.accounts.get(&customer).await?.is_some())
    }

    /// `actor` (an admin) gives `customer` a role; `false` when they had it.
    ///
    /// # Errors
    /// `Invalid` (`customer_id`, `role`), `NotFound("customer")`.
    pub async fn grant_role(&self, actor: &str, customer: &str, role: &str) -> Result<(Account, bool), AuthError> {
        let customer = CustomerId::new(customer)?;
        let role = Role::parse(role)?;
        self.change_role(actor, &customer, role, true).await
    }

    /// `actor` (an admin) takes a role back from `customer`, who is a player again, and
    /// revokes their tokens; `false` when they did not have it.
    ///
    /// # Errors
    /// `Invalid` (`customer_id`, `role`), `NotFound("customer")`, `Role(OwnAdminRole)`.
    pub async fn revoke_role(&self, actor: &str, customer: &str, role: &str) -> Result<(Account, bool), AuthError> {
        let customer = CustomerId::new(customer)?;
        let role = Role::parse(role)?;
        self.change_role(actor, &customer, role, false).await
    }

    async fn change_role(
        &self,
        actor: &str,
        customer: &CustomerId,
        role: Role,
        grant: bool,
    ) -> Result<(Account, bool), AuthError> {
        kernel::retry_on_conflict(CONFLICT_RETRIES, move || async move {
            let mut account = self.accounts.get(customer).await?.ok_or(AuthError::NotFound("customer"))?;
            let changed = if grant { account.grant(role)? } else { account.revoke(role, actor)? };
            if !changed {
                return Ok(Some((account, false)));
            }
            let now = Utc::now();
            let (action, revocation) = if grant {
                (AuditAction::RoleGranted, None)
            } else {
                // The tokens still carrying the role must go too.
                let previous = self.accounts.revocation(customer.as_str()).await?;
                (AuditAction::RoleRevoked, Some(Revocation::at(customer.as_str(), now, previous.as_ref())))
            };
            let audit = AuditEntry::new(actor, action, customer.as_str(), role.as_str(), now);
            match self.accounts.update(&account, audit, revocation).await {
                Ok(()) => {
                    account.version += 1;
                    Ok(Some((account, true)))
                }
                // Changed meanwhile (or its revocation written meanwhile): look again.
                Err(StoreError::Conflict | StoreError::Duplicate) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    /// `actor` (an admin) creates a service account; the secret is answered once and only
    /// its hash is kept.
    ///
    /// # Errors
    /// `Invalid` (`name`, `role`), `AlreadyExists`.
    pub async fn create_service_account(
        &self,
        actor: &str,
        name: &str,
        role: &str,
    ) -> Result<(ServiceAccount, Password), AuthError> {
        let client = ClientId::for_name(name)?;
        let role = Role::parse(role)?;
        let secret = self.hasher.new_secret().map_err(AuthError::Unavailable)?;
        let hash = self.hasher.hash(&secret).await.map_err(AuthError::Unavailable)?;
        let now = Utc::now();
        let account = ServiceAccount::new(client.clone(), hash, role, actor, now)?;
        let audit = AuditEntry::new(actor, AuditAction::ServiceAccountCreated, client.as_str(), role.as_str(), now);
        match self.accounts.insert_service_account(&account, audit).await {
            Ok(()) => Ok((account, secret)),
            Err(StoreError::Duplicate) => {
                Err(AuthError::AlreadyExists(format!("name: service account '{client}' already exists")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `actor` (an admin) revokes every token issued to `subject` until now: a customer or
    /// a service account of ours, or (`external`) a subject of another identity provider.
    ///
    /// # Errors
    /// `Invalid` (`customer_id`), `NotFound("customer or service account")` for a subject
    /// unknown here that is not said to be `external` (a mistyped id revokes nothing).
    pub async fn revoke_tokens(&self, actor: &str, subject: &str, external: bool) -> Result<Revocation, AuthError> {
        let subject = &CustomerId::new(subject)?;
        if !external && !self.is_known(subject).await? {
            return Err(AuthError::NotFound("customer or service account"));
        }
        kernel::retry_on_conflict(CONFLICT_RETRIES, move || async move {
            let now = Utc::now();
            let previous = self.accounts.revocation(subject.as_str()).await?;
            let revocation = Revocation::at(subject.as_str(), now, previous.as_ref());
            let audit = AuditEntry::new(
                actor,
                AuditAction::TokensRevoked,
                subject.as_str(),
                format!("issued before {}", rfc3339(revocation.before)),
                now,
            );
            match self.accounts.revoke(&revocation, audit).await {
                Ok(()) => Ok(Some(revocation)),
                // A concurrent revocation of the same subject created its row first.
                Err(StoreError::Duplicate) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    /// Whether `subject` is one of our customers or service accounts.
    async fn is_known(&self, subject: &CustomerId) -> Result<bool, AuthError> {
        if self.accounts.get(subject).await?.is_some() {
            return Ok(true);
        }
        match ClientId::parse(subject.as_str()) {
            Ok(client) => Ok(self.accounts.get_service_account(&client).await?.is_some()),
            Err(_) => Ok(false),
        }
    }

    /// The newest audit entries (at most [`AUDIT_LIMIT`]), about `subject` when not empty.
    pub async fn audit(&self, subject: &str, limit: usize) -> Result<Vec<AuditEntry>, AuthError> {
        let limit = if limit == 0 { AUDIT_LIMIT } else { limit.min(AUDIT_LIMIT) };
        let subject = Some(subject).filter(|s| !s.is_empty());
        Ok(self.accounts.audit_entries(subject, limit).await?)
    }

    /// The revocations that can still refuse a token: those newer than `horizon` (the
    /// longest token lifetime, plus leeway).
    pub async fn revocations(&self, horizon: Duration) -> Result<Vec<Revocation>, AuthError> {
        let since = Utc::now().timestamp() - i64::try_from(horizon.as_secs()).unwrap_or(i64::MAX / 2);
        Ok(self.accounts.revocations_since(since).await?)
    }

    /// The subject's revocation in force (the auth service checks its admins' tokens).
    pub async fn revocation(&self, subject: &str) -> Result<Option<Revocation>, AuthError> {
        Ok(self.accounts.revocation(subject).await?)
    }

    /// Forgets throttle counters that no longer count; returns how many.
    pub async fn prune_throttle(&self) -> Result<u64, AuthError> {
        let now = Utc::now();
        Ok(self.throttle.prune(self.policy.forget_before(now), now).await?)
    }
}

#[cfg(test)]
mod tests;

/// `seconds` since the epoch as RFC 3339 (UTC), as every other time is shown.
fn rfc3339(seconds: i64) -> String {
    DateTime::<Utc>::from_timestamp(seconds, 0)
        .map_or_else(|| seconds.to_string(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}
