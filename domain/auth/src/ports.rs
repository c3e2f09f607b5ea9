//! Ports of the auth context.

use std::future::Future;

use chrono::{DateTime, Utc};
use kernel::{CustomerId, StoreError};

use crate::model::{Account, AuditEntry, ClientId, Password, Revocation, Role, ServiceAccount};
use crate::throttle::Counter;

/// Where accounts, service accounts, revocations and the audit trail live. Every change
/// is written together with its audit entry (and, for a role taken back, with the
/// revocation of the holder's tokens), in one transaction.
///
/// # Errors
/// Every method returns [`StoreError::Unavailable`] when the store cannot be used.
pub trait AccountRepository: Send + Sync + 'static {
    fn get(&self, customer: &CustomerId) -> impl Future<Output = Result<Option<Account>, StoreError>> + Send;

    /// # Errors
    /// [`StoreError::Duplicate`] when the customer is already registered (nothing written).
    fn insert(
        &self,
        account: &Account,
        audit: Option<AuditEntry>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores a changed account (its role) with its audit entry, and `revocation` when given.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the stored version is not `account.version` (nothing written).
    fn update(
        &self,
        account: &Account,
        audit: AuditEntry,
        revocation: Option<Revocation>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn get_service_account(
        &self,
        client: &ClientId,
    ) -> impl Future<Output = Result<Option<ServiceAccount>, StoreError>> + Send;

    /// # Errors
    /// [`StoreError::Duplicate`] when the client id exists (nothing written).
    fn insert_service_account(
        &self,
        account: &ServiceAccount,
        audit: AuditEntry,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Creates the service account or replaces its secret hash and role (provisioning
    /// from configuration at start).
    fn put_service_account(
        &self,
        account: &ServiceAccount,
        audit: AuditEntry,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records that the subject's tokens issued before `revocation.before` are refused
    /// (a later revocation of the same subject replaces an earlier one).
    fn revoke(&self, revocation: &Revocation, audit: AuditEntry)
    -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The subject's revocation in force, if any.
    fn revocation(&self, subject: &str) -> impl Future<Output = Result<Option<Revocation>, StoreError>> + Send;

    /// Revocations whose `before` is after `since` (older ones no longer refuse a token
    /// that has not expired anyway).
    fn revocations_since(&self, since: i64) -> impl Future<Output = Result<Vec<Revocation>, StoreError>> + Send;

    /// The newest `limit` audit entries, about `subject` only when given.
    fn audit_entries(
        &self,
        subject: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<AuditEntry>, StoreError>> + Send;
}

/// Where the login throttle's counters live (see [`crate::throttle`]).
///
/// # Errors
/// Every method returns [`StoreError::Unavailable`] when the store cannot be used.
pub trait LoginThrottleRepository: Send + Sync + 'static {
    /// The counters under `keys`, `None` where there is none.
    fn counters(&self, keys: [&str; 2]) -> impl Future<Output = Result<[Option<Counter>; 2], StoreError>> + Send;

    /// Stores both counters in one transaction: each is inserted when its `version` is
    /// `None`, else updated from that version.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when either changed since it was read (nothing written).
    fn save(&self, counters: [(&str, &Counter); 2]) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Forgets counters last counted before `before` that block nothing any more.
    fn prune(&self, before: DateTime<Utc>, now: DateTime<Utc>) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// Slow, salted hashing of passwords and secrets, and new random secrets.
pub trait PasswordHasher: Send + Sync + 'static {
    /// A PHC string for the password.
    ///
    /// # Errors
    /// A message when hashing fails (resources).
    fn hash(&self, password: &Password) -> impl Future<Output = Result<String, String>> + Send;

    /// Whether the password matches the hash; a malformed hash does not match.
    fn verify(&self, password: &Password, hash: &str) -> impl Future<Output = bool> + Send;

    /// A new random secret for a service account.
    ///
    /// # Errors
    /// A message when the system has no randomness to give.
    fn new_secret(&self) -> Result<Password, String>;
}

/// Who a token is for: customers' and service accounts' tokens may live differently long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    Customer,
    ServiceAccount,
}

/// Signs access tokens.
pub trait TokenSigner: Send + Sync + 'static {
    /// A token for `subject` with `role`, and its lifetime in seconds; its `iat` is at
    /// least `min_issued_at` (the subject's revocation in force, so the new token is not
    /// caught by it).
    ///
    /// # Errors
    /// A message when the signing key cannot be used.
    fn sign(
        &self,
        subject: &str,
        role: Role,
        holder: Holder,
        min_issued_at: Option<i64>,
    ) -> Result<(String, i64), String>;
}
