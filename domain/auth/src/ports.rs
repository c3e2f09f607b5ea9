//! Ports of the auth context.

use std::future::Future;

use kernel::{CustomerId, StoreError};

use crate::model::{Credential, Password};

/// Where credentials live.
///
/// # Errors
/// Every method returns [`StoreError::Unavailable`] when the store cannot be used.
pub trait CredentialRepository: Send + Sync + 'static {
    fn get(&self, customer: &CustomerId) -> impl Future<Output = Result<Option<Credential>, StoreError>> + Send;

    /// # Errors
    /// [`StoreError::Duplicate`] when the customer is already registered.
    fn insert(&self, credential: &Credential) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// # Errors
    /// [`StoreError::Conflict`] when the stored version is not `credential.version`.
    fn update(&self, credential: &Credential) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Slow, salted password hashing.
pub trait PasswordHasher: Send + Sync + 'static {
    /// A PHC string for the password.
    ///
    /// # Errors
    /// A message when hashing fails (resources).
    fn hash(&self, password: &Password) -> impl Future<Output = Result<String, String>> + Send;

    /// Whether the password matches the hash; a malformed hash does not match.
    fn verify(&self, password: &Password, hash: &str) -> impl Future<Output = bool> + Send;
}

/// Signs access tokens.
pub trait TokenSigner: Send + Sync + 'static {
    /// A token for the customer and its lifetime in seconds.
    ///
    /// # Errors
    /// A message when the signing key cannot be used.
    fn sign(&self, customer: &CustomerId, admin: bool) -> Result<(String, i64), String>;
}
