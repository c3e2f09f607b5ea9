//! The auth application service: register, log in (throttled), service accounts, roles,
//! revocations, the first admin and provisioned service accounts.

use std::time::Duration;

use chrono::Utc;
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
        for _ in 0..CONFLICT_RETRIES {
            let [pair, address] = self.throttle.counters([&keys.pair, &keys.address]).await?;
            let admitted = self
                .policy
                .admit(pair, address, Utc::now())
                .map_err(|retry_after| LoginRefusal::Throttled { retry_after })?;
            match self.throttle.save([(&keys.pair, &admitted.pair), (&keys.address, &admitted.address)]).await {
                Ok(()) => return Ok(()),
                Err(StoreError::Conflict | StoreError::Duplicate) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // Only a burst of attempts from this very address races like this.
        Err(LoginRefusal::Throttled { retry_after: Duration::from_secs(1) }.into())
    }

    /// Takes back the failure counted in advance of a right password. Losing every race
    /// to concurrent attempts of the same address leaves the count as it is: at worst
    /// that address waits a little, the token is deserved anyway.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be used.
    async fn forgive(&self, keys: &ThrottleKeys) -> Result<(), AuthError> {
        for _ in 0..CONFLICT_RETRIES {
            let [pair, address] = self.throttle.counters([&keys.pair, &keys.address]).await?;
            let after = self.policy.succeeded(pair, address, Utc::now());
            match self.throttle.save([(&keys.pair, &after.pair), (&keys.address, &after.address)]).await {
                Ok(()) => return Ok(()),
                Err(StoreError::Conflict | StoreError::Duplicate) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn decoy(&self) -> String {
        if let Some(h) = self.decoy_hash.get() {
            return h.clone();
        }
        let hash =
            self.hasher.hash(&Password::new("decoy-password-never-used").expect("valid")).await.unwrap_or_default();
        self.decoy_hash.get_or_init(|| hash).clone()
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

    /// `actor` (an admin) revokes every token issued to `subject` (a customer, a service
    /// account, or a subject of another identity provider) until now.
    ///
    /// # Errors
    /// `Invalid` (`customer_id`).
    pub async fn revoke_tokens(&self, actor: &str, subject: &str) -> Result<Revocation, AuthError> {
        let subject = &CustomerId::new(subject)?;
        kernel::retry_on_conflict(CONFLICT_RETRIES, move || async move {
            let now = Utc::now();
            let previous = self.accounts.revocation(subject.as_str()).await?;
            let revocation = Revocation::at(subject.as_str(), now, previous.as_ref());
            let audit = AuditEntry::new(
                actor,
                AuditAction::TokensRevoked,
                subject.as_str(),
                format!("issued before {}", revocation.before),
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
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use chrono::{DateTime, Utc};
    use futures::executor::block_on;

    use super::*;
    use crate::throttle::Counter;

    /// Faithful to the ports' contracts, in memory.
    #[derive(Default)]
    struct Memory {
        accounts: Mutex<HashMap<CustomerId, Account>>,
        services: Mutex<HashMap<String, ServiceAccount>>,
        revocations: Mutex<HashMap<String, i64>>,
        audit: Mutex<Vec<AuditEntry>>,
        counters: Mutex<HashMap<String, Counter>>,
    }

    impl AccountRepository for Memory {
        async fn get(&self, c: &CustomerId) -> Result<Option<Account>, StoreError> {
            Ok(self.accounts.lock().unwrap().get(c).cloned())
        }
        async fn insert(&self, a: &Account, audit: Option<AuditEntry>) -> Result<(), StoreError> {
            let mut m = self.accounts.lock().unwrap();
            if m.contains_key(&a.customer_id) {
                return Err(StoreError::Duplicate);
            }
            m.insert(a.customer_id.clone(), a.clone());
            self.audit.lock().unwrap().extend(audit);
            Ok(())
        }
        async fn update(&self, a: &Account, audit: AuditEntry, r: Option<Revocation>) -> Result<(), StoreError> {
            let mut m = self.accounts.lock().unwrap();
            let stored = m.get_mut(&a.customer_id).ok_or(StoreError::Conflict)?;
            if stored.version != a.version {
                return Err(StoreError::Conflict);
            }
            *stored = Account { version: a.version + 1, ..a.clone() };
            self.audit.lock().unwrap().push(audit);
            if let Some(r) = r {
                self.revocations.lock().unwrap().insert(r.subject, r.before);
            }
            Ok(())
        }
        async fn get_service_account(&self, c: &ClientId) -> Result<Option<ServiceAccount>, StoreError> {
            Ok(self.services.lock().unwrap().get(c.as_str()).cloned())
        }
        async fn insert_service_account(&self, a: &ServiceAccount, audit: AuditEntry) -> Result<(), StoreError> {
            let mut m = self.services.lock().unwrap();
            if m.contains_key(a.client_id.as_str()) {
                return Err(StoreError::Duplicate);
            }
            m.insert(a.client_id.to_string(), a.clone());
            self.audit.lock().unwrap().push(audit);
            Ok(())
        }
        async fn put_service_account(&self, a: &ServiceAccount, audit: AuditEntry) -> Result<(), StoreError> {
            self.services.lock().unwrap().insert(a.client_id.to_string(), a.clone());
            self.audit.lock().unwrap().push(audit);
            Ok(())
        }
        async fn revoke(&self, r: &Revocation, audit: AuditEntry) -> Result<(), StoreError> {
            self.revocations.lock().unwrap().insert(r.subject.clone(), r.before);
            self.audit.lock().unwrap().push(audit);
            Ok(())
        }
        async fn revocation(&self, subject: &str) -> Result<Option<Revocation>, StoreError> {
            let before = self.revocations.lock().unwrap().get(subject).copied();
            Ok(before.map(|before| Revocation { subject: subject.to_owned(), before }))
        }
        async fn revocations_since(&self, since: i64) -> Result<Vec<Revocation>, StoreError> {
            let m = self.revocations.lock().unwrap();
            Ok(m.iter()
                .filter(|(_, b)| **b > since)
                .map(|(s, b)| Revocation { subject: s.clone(), before: *b })
                .collect())
        }
        async fn audit_entries(&self, subject: Option<&str>, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
            let all = self.audit.lock().unwrap();
            Ok(all.iter().rev().filter(|e| subject.is_none_or(|s| e.subject == s)).take(limit).cloned().collect())
        }
    }

    impl LoginThrottleRepository for Memory {
        async fn counters(&self, keys: [&str; 2]) -> Result<[Option<Counter>; 2], StoreError> {
            let m = self.counters.lock().unwrap();
            Ok(keys.map(|k| m.get(k).cloned()))
        }
        async fn save(&self, counters: [(&str, &Counter); 2]) -> Result<(), StoreError> {
            let mut m = self.counters.lock().unwrap();
            for (k, c) in counters {
                if m.get(k).and_then(|s| s.version) != c.version {
                    return Err(StoreError::Conflict);
                }
            }
            for (k, c) in counters {
                m.insert(k.to_owned(), Counter { version: Some(c.version.map_or(0, |v| v + 1)), ..c.clone() });
            }
            Ok(())
        }
        async fn prune(&self, before: DateTime<Utc>, now: DateTime<Utc>) -> Result<u64, StoreError> {
            let mut m = self.counters.lock().unwrap();
            let n = m.len();
            m.retain(|_, c| c.since >= before || c.blocked_until.is_some_and(|u| u > now));
            Ok((n - m.len()) as u64)
        }
    }

    /// Reversible "hashing" for tests: the point is the flow, not the cryptography.
    struct Plain;
    impl PasswordHasher for Plain {
        async fn hash(&self, p: &Password) -> Result<String, String> {
            Ok(format!("plain:{}", p.expose()))
        }
        async fn verify(&self, p: &Password, hash: &str) -> bool {
            hash == format!("plain:{}", p.expose())
        }
        fn new_secret(&self) -> Result<Password, String> {
            Ok(Password::new(&format!("secret-{}", kernel::new_id().simple())).unwrap())
        }
    }

    struct Signer;
    impl TokenSigner for Signer {
        fn sign(&self, s: &str, role: Role, holder: Holder, min_iat: Option<i64>) -> Result<(String, i64), String> {
            let ttl = if holder == Holder::Customer { 3600 } else { 600 };
            Ok((format!("token-for-{s}-{role}-{}", min_iat.unwrap_or(0)), ttl))
        }
    }

    type Service = AuthService<Memory, Memory, Plain, Signer>;

    fn service() -> Service {
        AuthService::new(Memory::default(), Memory::default(), Plain, Signer, ThrottlePolicy::default())
    }

    const HOME: Option<&str> = Some("198.51.100.7");
    const ATTACKER: Option<&str> = Some("203.0.113.66");

    fn refused_for(e: AuthError) -> Option<Duration> {
        match e {
            AuthError::Refused(LoginRefusal::Throttled { retry_after }) => Some(retry_after),
            _ => None,
        }
    }

    #[test]
    fn given_a_registered_customer_when_the_password_is_right_then_a_player_token_is_issued() {
        let s = service();
        block_on(s.register("c-11", "correct horse")).unwrap();
        let t = block_on(s.issue_token("c-11", "correct horse", HOME)).unwrap();
        assert_eq!((t.access_token.as_str(), t.expires_in), ("token-for-c-11-player-0", 3600));
        assert!(matches!(block_on(s.register("c-11", "another one")), Err(AuthError::AlreadyRegistered)));
    }

    #[test]
    fn a_customer_cannot_register_a_service_account_id_nor_become_admin_by_name() {
        let s = service();
        let e = block_on(s.register("svc-wallet", "correct horse")).unwrap_err();
        assert!(matches!(e, AuthError::Invalid(v) if v.field == "customer_id"));
        block_on(s.register("admin", "correct horse")).unwrap();
        assert!(block_on(s.issue_token("admin", "correct horse", HOME)).unwrap().access_token.contains("-player-"));
    }

    #[test]
    fn unknown_customers_and_wrong_passwords_get_the_same_answer() {
        let s = service();
        block_on(s.register("c-11", "correct horse")).unwrap();
        let unknown = block_on(s.issue_token("nobody", "whatever-password", HOME)).unwrap_err();
        let wrong = block_on(s.issue_token("c-11", "wrong password", HOME)).unwrap_err();
        assert_eq!(unknown.to_string(), wrong.to_string());
    }

    #[test]
    fn given_an_attacker_failing_from_one_address_then_the_owner_logs_in_from_another_at_once() {
        let s = service();
        block_on(s.register("victim", "correct horse")).unwrap();
        let mut slowed = 0;
        for _ in 0..50 {
            let e = block_on(s.issue_token("victim", "wrong guess!", ATTACKER)).unwrap_err();
            if let Some(wait) = refused_for(e) {
                assert!(wait <= Duration::from_secs(1));
                slowed += 1;
            }
        }
        assert_eq!(slowed, 46, "three free failures, a fourth, then the attacker waits");
        let e = block_on(s.issue_token("victim", "correct horse", ATTACKER)).unwrap_err();
        assert!(refused_for(e).is_some(), "the attacker's address waits even with the right password");
        block_on(s.issue_token("victim", "correct horse", HOME)).expect("the owner, elsewhere, is not held up");
    }

    #[test]
    fn given_failures_over_many_accounts_from_one_address_then_that_address_is_refused_and_no_other() {
        let s = service();
        block_on(s.register("victim", "correct horse")).unwrap();
        for i in 0..20 {
            let e = block_on(s.issue_token(&format!("user-{i}"), "wrong guess!", ATTACKER)).unwrap_err();
            assert!(refused_for(e).is_none(), "attempt {i} is checked");
        }
        let e = block_on(s.issue_token("victim", "correct horse", ATTACKER)).unwrap_err();
        assert!(refused_for(e).is_some_and(|w| w > Duration::from_secs(60)));
        block_on(s.issue_token("victim", "correct horse", HOME)).unwrap();
    }

    #[test]
    fn a_right_password_clears_its_addresss_failures_for_that_account() {
        let s = service();
        block_on(s.register("c-11", "correct horse")).unwrap();
        for _ in 0..3 {
            assert!(refused_for(block_on(s.issue_token("c-11", "typo typo", HOME)).unwrap_err()).is_none());
        }
        block_on(s.issue_token("c-11", "correct horse", HOME)).unwrap();
        for _ in 0..3 {
            assert!(
                refused_for(block_on(s.issue_token("c-11", "typo typo", HOME)).unwrap_err()).is_none(),
                "free again"
            );
        }
        assert_eq!(block_on(s.prune_throttle()).unwrap(), 0, "nothing old to forget");
    }

    #[test]
    fn the_first_admin_is_made_once_and_an_existing_account_is_left_alone() {
        let s = service();
        assert_eq!(block_on(s.ensure_first_admin("admin", "first admin pw")).unwrap(), FirstAdmin::Created);
        assert_eq!(block_on(s.ensure_first_admin("admin", "other password")).unwrap(), FirstAdmin::Exists(Role::Admin));
        assert!(block_on(s.issue_token("admin", "first admin pw", HOME)).unwrap().access_token.contains("-admin-"));
        assert!(matches!(block_on(s.register("admin", "correct horse")), Err(AuthError::AlreadyRegistered)));
        let audit = block_on(s.audit("admin", 0)).unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!((audit[0].actor.as_str(), audit[0].action), ("bootstrap", AuditAction::AdminCreated));
        assert!(
            matches!(block_on(s.ensure_first_admin("admin2", "short")), Err(AuthError::Invalid(v)) if v.field == "password")
        );
    }

    #[test]
    fn given_a_granted_admin_when_the_role_is_revoked_then_their_tokens_are_revoked_and_both_are_audited() {
        let s = service();
        block_on(s.register("carol", "correct horse")).unwrap();
        let (a, changed) = block_on(s.grant_role("admin", "carol", "admin")).unwrap();
        assert!(changed);
        assert_eq!(a.role, Role::Admin);
        assert!(!block_on(s.grant_role("admin", "carol", "admin")).unwrap().1, "no change the second time");
        assert!(block_on(s.issue_token("carol", "correct horse", HOME)).unwrap().access_token.contains("-admin-"));
        assert!(matches!(
            block_on(s.revoke_role("carol", "carol", "admin")),
            Err(AuthError::Role(RoleRefusal::OwnAdminRole))
        ));
        let (a, changed) = block_on(s.revoke_role("admin", "carol", "admin")).unwrap();
        assert!(changed && a.role == Role::Player);
        let revoked = block_on(s.revocation("carol")).unwrap().expect("tokens revoked");
        let t = block_on(s.issue_token("carol", "correct horse", HOME)).unwrap();
        assert_eq!(
            t.access_token,
            format!("token-for-carol-player-{}", revoked.before),
            "new tokens are issued after it"
        );
        let audit = block_on(s.audit("carol", 0)).unwrap();
        let actions: Vec<_> = audit.iter().map(|e| (e.actor.as_str(), e.action, e.detail.as_str())).collect();
        assert_eq!(
            actions,
            [("admin", AuditAction::RoleRevoked, "admin"), ("admin", AuditAction::RoleGranted, "admin")]
        );
        assert!(matches!(block_on(s.grant_role("admin", "nobody", "admin")), Err(AuthError::NotFound("customer"))));
        assert!(
            matches!(block_on(s.grant_role("admin", "carol", "root")), Err(AuthError::Invalid(v)) if v.field == "role")
        );
    }

    #[test]
    fn a_service_account_gets_a_secret_once_and_logs_in_with_its_role() {
        let s = service();
        let (account, secret) = block_on(s.create_service_account("admin", "match-server", "game_server")).unwrap();
        assert_eq!(account.client_id.as_str(), "svc-match-server");
        assert_eq!(account.secret_hash, format!("plain:{}", secret.expose()), "kept hashed");
        let t = block_on(s.issue_service_token("svc-match-server", secret.expose(), HOME)).unwrap();
        assert_eq!((t.access_token.as_str(), t.expires_in), ("token-for-svc-match-server-game_server-0", 600));
        let wrong = block_on(s.issue_service_token("svc-match-server", "wrong secret", HOME)).unwrap_err();
        assert!(matches!(wrong, AuthError::Refused(LoginRefusal::BadCredentials)));
        assert!(matches!(
            block_on(s.create_service_account("admin", "match-server", "service")),
            Err(AuthError::AlreadyExists(_))
        ));
        assert!(
            matches!(block_on(s.create_service_account("admin", "x", "admin")), Err(AuthError::Invalid(v)) if v.field == "role")
        );
    }

    #[test]
    fn provisioned_service_accounts_are_created_updated_and_left_alone_when_unchanged() {
        let s = service();
        let wallet = |hash: &str| Provisioned {
            client_id: ClientId::parse("svc-wallet").unwrap(),
            role: Role::Service,
            secret_hash: hash.into(),
        };
        assert_eq!(block_on(s.provision(&[wallet("plain:first secret")])).unwrap(), 1);
        assert_eq!(block_on(s.provision(&[wallet("plain:first secret")])).unwrap(), 0);
        assert!(
            block_on(s.issue_service_token("svc-wallet", "first secret", HOME))
                .unwrap()
                .access_token
                .contains("-service-")
        );
        assert_eq!(block_on(s.provision(&[wallet("plain:second secret")])).unwrap(), 1);
        assert!(block_on(s.issue_service_token("svc-wallet", "first secret", HOME)).is_err());
        block_on(s.issue_service_token("svc-wallet", "second secret", HOME)).unwrap();
    }

    #[test]
    fn revoking_tokens_is_audited_and_listed_until_it_no_longer_matters() {
        let s = service();
        let r = block_on(s.revoke_tokens("admin", "dave")).unwrap();
        assert!(r.before > Utc::now().timestamp());
        assert_eq!(block_on(s.revocations(Duration::from_secs(3600))).unwrap(), std::slice::from_ref(&r));
        assert_eq!(block_on(s.audit("", 10)).unwrap()[0].action, AuditAction::TokensRevoked);
        assert!(
            matches!(block_on(s.revoke_tokens("admin", "")), Err(AuthError::Invalid(v)) if v.field == "customer_id")
        );
    }

    #[test]
    fn a_second_revocation_in_the_same_second_refuses_the_token_issued_after_the_first() {
        let s = service();
        block_on(s.register("c-11", "correct horse")).unwrap();
        let first = block_on(s.revoke_tokens("admin", "c-11")).unwrap();
        let between = block_on(s.issue_token("c-11", "correct horse", HOME)).unwrap();
        assert!(between.access_token.ends_with(&format!("-{}", first.before)), "iat = the first revocation");
        let second = block_on(s.revoke_tokens("admin", "c-11")).unwrap();
        assert!(second.before > first.before, "the token issued between them is refused too");
    }

    #[test]
    fn bad_registrations_name_the_field() {
        let s = service();
        assert!(
            matches!(block_on(s.register("", "correct horse")), Err(AuthError::Invalid(v)) if v.field == "customer_id")
        );
        assert!(matches!(block_on(s.register("c-1", "short")), Err(AuthError::Invalid(v)) if v.field == "password"));
    }
}
