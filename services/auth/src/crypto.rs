//! argon2id password hashing (on the blocking pool: it is slow on purpose) and token
//! signing with the key ring.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use auth_adapter::{Role, TokenIssuer};
use auth_domain::{Password, PasswordHasher, TokenSigner};
use kernel::CustomerId;

#[derive(Clone)]
pub struct Argon2Hasher {
    params: Params,
}

impl Argon2Hasher {
    /// # Errors
    /// When the parameters are out of argon2's range.
    pub fn new(memory_kib: u32, iterations: u32) -> Result<Self, String> {
        let params = Params::new(memory_kib, iterations, 1, None).map_err(|e| e.to_string())?;
        Ok(Self { params })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }
}

impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &Password) -> Result<String, String> {
        let (me, password) = (self.clone(), password.clone());
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            me.argon2()
                .hash_password(password.expose().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    async fn verify(&self, password: &Password, hash: &str) -> bool {
        let (me, password, hash) = (self.clone(), password.clone(), hash.to_owned());
        tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .is_ok_and(|parsed| me.argon2().verify_password(password.expose().as_bytes(), &parsed).is_ok())
        })
        .await
        .unwrap_or(false)
    }
}

pub struct Signer(pub TokenIssuer);

impl TokenSigner for Signer {
    fn sign(&self, customer: &CustomerId, admin: bool) -> Result<(String, i64), String> {
        let role = if admin { Role::Admin } else { Role::Player };
        self.0.issue(customer.as_str(), role).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only_and_is_salted() {
        let h = Argon2Hasher::new(1024, 1).unwrap();
        let p = Password::new("correct horse").unwrap();
        let a = h.hash(&p).await.unwrap();
        let b = h.hash(&p).await.unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b, "salted");
        assert!(h.verify(&p, &a).await);
        assert!(!h.verify(&Password::new("wrong horse").unwrap(), &a).await);
        assert!(!h.verify(&p, "not a hash").await);
    }
}
