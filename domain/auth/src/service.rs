//! The auth application service.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use kernel::{CustomerId, StoreError, ValidationError};

use crate::model::{Credential, Lockout, LoginRefusal, Password};
use crate::ports::{CredentialRepository, PasswordHasher, TokenSigner};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("customer already registered")]
    AlreadyRegistered,
    #[error(transparent)]
    Refused(#[from] LoginRefusal),
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

pub struct AuthService<R, H, S> {
    repo: R,
    hasher: H,
    signer: S,
    admins: HashSet<String>,
    lockout: Lockout,
    /// Hash checked when the customer is unknown, so the answer takes as long.
    decoy_hash: std::sync::OnceLock<String>,
}

impl<R: CredentialRepository, H: PasswordHasher, S: TokenSigner> AuthService<R, H, S> {
    pub fn new(repo: R, hasher: H, signer: S, admins: HashSet<String>, lockout: Lockout) -> Self {
        Self { repo, hasher, signer, admins, lockout, decoy_hash: std::sync::OnceLock::new() }
    }

    /// # Errors
    /// `Invalid` (`customer_id`, `password`), `AlreadyRegistered`.
    pub async fn register(&self, customer: &str, password: &str) -> Result<CustomerId, AuthError> {
        let customer = CustomerId::new(customer)?;
        let password = Password::new(password)?;
        let hash = self.hasher.hash(&password).await.map_err(AuthError::Unavailable)?;
        match self.repo.insert(&Credential::new(customer.clone(), hash)).await {
            Ok(()) => Ok(customer),
            Err(StoreError::Duplicate) => Err(AuthError::AlreadyRegistered),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks the credentials and signs a token; repeated failures lock the customer.
    ///
    /// # Errors
    /// `Refused(BadCredentials)` for an unknown customer or a wrong password (the same
    /// answer), `Refused(Locked)` while locked.
    pub async fn issue_token(&self, customer: &str, password: &str) -> Result<Token, AuthError> {
        let bad = || AuthError::Refused(LoginRefusal::BadCredentials);
        let (Ok(customer), Ok(password)) = (CustomerId::new(customer), Password::new(password)) else {
            return Err(bad());
        };
        let Some(mut credential) = self.repo.get(&customer).await? else {
            let decoy = self.decoy().await;
            let _ = self.hasher.verify(&password, &decoy).await;
            return Err(bad());
        };
        credential.check_not_locked(Utc::now())?;
        let ok = self.hasher.verify(&password, &credential.password_hash).await;
        let outcome = credential.record_attempt(ok, Utc::now(), self.lockout);
        match self.repo.update(&credential).await {
            // A concurrent attempt updated the counter first: its count stands.
            Ok(()) | Err(StoreError::Conflict) => {}
            Err(e) => return Err(e.into()),
        }
        outcome?;
        let admin = self.admins.contains(customer.as_str());
        let (access_token, expires_in) = self.signer.sign(&customer, admin).map_err(AuthError::Unavailable)?;
        Ok(Token { access_token, expires_in })
    }

    async fn decoy(&self) -> String {
        if let Some(h) = self.decoy_hash.get() {
            return h.clone();
        }
        let hash =
            self.hasher.hash(&Password::new("decoy-password-never-used").expect("valid")).await.unwrap_or_default();
        self.decoy_hash.get_or_init(|| hash).clone()
    }

    pub fn lock_duration(&self) -> Duration {
        self.lockout.lock_for
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use futures::executor::block_on;

    use super::*;

    #[derive(Default)]
    struct Memory(Mutex<HashMap<CustomerId, Credential>>);

    impl CredentialRepository for Memory {
        async fn get(&self, c: &CustomerId) -> Result<Option<Credential>, StoreError> {
            Ok(self.0.lock().unwrap().get(c).cloned())
        }
        async fn insert(&self, c: &Credential) -> Result<(), StoreError> {
            let mut m = self.0.lock().unwrap();
            if m.contains_key(&c.customer_id) {
                return Err(StoreError::Duplicate);
            }
            m.insert(c.customer_id.clone(), c.clone());
            Ok(())
        }
        async fn update(&self, c: &Credential) -> Result<(), StoreError> {
            let mut m = self.0.lock().unwrap();
            let stored = m.get_mut(&c.customer_id).ok_or(StoreError::Conflict)?;
            if stored.version != c.version {
                return Err(StoreError::Conflict);
            }
            *stored = Credential { version: c.version + 1, ..c.clone() };
            Ok(())
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
    }

    struct Signer;
    impl TokenSigner for Signer {
        fn sign(&self, c: &CustomerId, admin: bool) -> Result<(String, i64), String> {
            Ok((format!("token-for-{c}-{admin}"), 3600))
        }
    }

    fn service() -> AuthService<Memory, Plain, Signer> {
        AuthService::new(Memory::default(), Plain, Signer, HashSet::from(["ops".to_owned()]), Lockout::default())
    }

    #[test]
    fn given_a_registered_customer_when_the_password_is_right_then_a_token_is_issued() {
        let s = service();
        block_on(s.register("c-11", "correct horse")).unwrap();
        let t = block_on(s.issue_token("c-11", "correct horse")).unwrap();
        assert_eq!((t.access_token.as_str(), t.expires_in), ("token-for-c-11-false", 3600));
        assert!(matches!(block_on(s.register("c-11", "another one")), Err(AuthError::AlreadyRegistered)));
        let stored = block_on(s.repo.get(&CustomerId::new("c-11").unwrap())).unwrap().unwrap();
        assert!(!stored.password_hash.is_empty());
    }

    #[test]
    fn admins_come_from_configuration() {
        let s = service();
        block_on(s.register("ops", "correct horse")).unwrap();
        assert_eq!(block_on(s.issue_token("ops", "correct horse")).unwrap().access_token, "token-for-ops-true");
    }

    #[test]
    fn unknown_customers_and_wrong_passwords_get_the_same_answer() {
        let s = service();
        block_on(s.register("c-11", "correct horse")).unwrap();
        let unknown = block_on(s.issue_token("nobody", "whatever-password")).unwrap_err();
        let wrong = block_on(s.issue_token("c-11", "wrong password")).unwrap_err();
        assert_eq!(unknown.to_string(), wrong.to_string());
    }

    #[test]
    fn given_repeated_failures_then_even_the_right_password_is_refused_for_a_while() {
        let s = service();
        block_on(s.register("c-11", "correct horse")).unwrap();
        for _ in 0..5 {
            assert!(block_on(s.issue_token("c-11", "wrong password")).is_err());
        }
        let locked = block_on(s.issue_token("c-11", "correct horse")).unwrap_err();
        assert!(matches!(locked, AuthError::Refused(LoginRefusal::Locked { .. })));
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
