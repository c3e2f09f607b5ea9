//! argon2id hashing (on the blocking pool: it is slow on purpose), random secrets, and
//! token signing with the key ring.

use std::time::Duration;

use auth_adapter::TokenIssuer;
use auth_adapter::secret::{self, Cost};
use auth_domain::{Holder, Password, PasswordHasher, Role, TokenSigner};

#[derive(Clone)]
pub struct Argon2Hasher {
    cost: Cost,
}

impl Argon2Hasher {
    /// # Errors
    /// When the parameters are out of argon2's range.
    pub fn new(memory_kib: u32, iterations: u32) -> Result<Self, String> {
        Ok(Self { cost: Cost { memory_kib, iterations }.check()? })
    }
}

impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &Password) -> Result<String, String> {
        let (cost, password) = (self.cost, password.clone());
        tokio::task::spawn_blocking(move || secret::hash(password.expose(), cost)).await.map_err(|e| e.to_string())?
    }

    async fn verify(&self, password: &Password, hash: &str) -> bool {
        let (password, hash) = (password.clone(), hash.to_owned());
        tokio::task::spawn_blocking(move || secret::verify(password.expose(), &hash)).await.unwrap_or(false)
    }

    fn new_secret(&self) -> Result<Password, String> {
        let raw = secret::generate()?;
        Password::named("client_secret", &raw).map_err(|e| e.to_string())
    }
}

/// Signs with the key ring: customers' tokens live `TOKEN_TTL_SECONDS`, service
/// accounts' `SERVICE_TOKEN_TTL_SECONDS`.
pub struct Signer {
    pub issuer: TokenIssuer,
    pub service_ttl: Duration,
}

/// The role a token carries, for the adapter every verifier shares.
pub fn claim_role(role: Role) -> auth_adapter::Role {
    match role {
        Role::Player => auth_adapter::Role::Player,
        Role::Admin => auth_adapter::Role::Admin,
        Role::GameServer => auth_adapter::Role::GameServer,
        Role::Service => auth_adapter::Role::Service,
    }
}

impl TokenSigner for Signer {
    fn sign(
        &self,
        subject: &str,
        role: Role,
        holder: Holder,
        min_issued_at: Option<i64>,
    ) -> Result<(String, i64), String> {
        let ttl = match holder {
            Holder::Customer => self.issuer.ttl,
            Holder::ServiceAccount => self.service_ttl,
        };
        self.issuer.issue_with(subject, claim_role(role), ttl, min_issued_at).map_err(|e| e.to_string())
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
        assert_eq!(h.new_secret().unwrap().expose().len(), 64);
    }

    #[test]
    fn every_role_of_ours_is_the_claim_of_the_same_name() {
        for role in [Role::Player, Role::Admin, Role::GameServer, Role::Service] {
            assert_eq!(claim_role(role).as_str(), role.as_str());
        }
    }
}
