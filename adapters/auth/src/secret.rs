//! Secrets at rest: argon2id hashes (PHC strings) of customers' passwords and service
//! accounts' secrets, and random secrets for machines (service accounts, the first
//! admin's password written by `gamectl up`).
//!
//! Hashing is slow on purpose (OWASP: 19 MiB, 2 iterations); callers on an async runtime
//! run it on the blocking pool. A hash carries its own parameters, so a hash made with
//! other parameters (cheaper ones in tests) still verifies.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    pub memory_kib: u32,
    pub iterations: u32,
}

impl Cost {
    /// OWASP's recommendation for argon2id.
    pub const OWASP: Self = Self { memory_kib: 19_456, iterations: 2 };

    fn argon2(self) -> Result<Argon2<'static>, String> {
        let params = Params::new(self.memory_kib, self.iterations, 1, None).map_err(|e| e.to_string())?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// # Errors
    /// When the parameters are out of argon2's range.
    pub fn check(self) -> Result<Self, String> {
        self.argon2().map(|_| self)
    }
}

/// A salted argon2id hash of `secret`, as a PHC string (`$argon2id$v=19$m=...`).
///
/// # Errors
/// When the parameters are out of range or hashing fails (memory).
pub fn hash(secret: &str, cost: Cost) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    cost.argon2()?.hash_password(secret.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// Whether `secret` matches the PHC string `hash`; a malformed hash matches nothing.
pub fn verify(secret: &str, hash: &str) -> bool {
    // The hash's own parameters are used, whatever `Cost` made it.
    PasswordHash::new(hash)
        .is_ok_and(|parsed| Cost::OWASP.argon2().is_ok_and(|a| a.verify_password(secret.as_bytes(), &parsed).is_ok()))
}

/// Whether `hash` is an argon2id PHC string we can verify against.
pub fn is_hash(hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|p| p.algorithm.as_str() == "argon2id" && p.hash.is_some() && p.salt.is_some())
}

/// A new random secret: 32 bytes from the operating system, as 64 hex digits (safe in a
/// shell, a file, an environment variable and a Kubernetes Secret).
///
/// # Errors
/// When the operating system has no randomness to give.
pub fn generate() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes a file only its owner can read (0600 from its creation, never looser for a
/// moment), replacing what was there.
///
/// # Errors
/// When the file cannot be written.
#[cfg(unix)]
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    // An existing file keeps its mode through open(2): make it private too.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// The service accounts the auth service provisions at start (`SERVICE_ACCOUNTS_FILE`):
/// who they are and their secrets' hashes, never the secrets. `gamectl up` writes it;
/// in Kubernetes it is a Secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountsFile {
    pub service_accounts: Vec<ProvisionedAccount>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisionedAccount {
    /// `svc-<name>`.
    pub client_id: String,
    /// `service` or `game_server`.
    pub role: String,
    /// argon2id PHC string of the secret.
    pub secret_hash: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: Cost = Cost { memory_kib: 1024, iterations: 1 };

    #[test]
    fn a_hash_verifies_its_secret_only_is_salted_and_carries_its_cost() {
        let a = hash("correct horse", CHEAP).unwrap();
        let b = hash("correct horse", CHEAP).unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=1024,t=1"), "{a}");
        assert_ne!(a, b, "salted");
        assert!(is_hash(&a));
        assert!(verify("correct horse", &a));
        assert!(!verify("wrong horse", &a));
        assert!(!verify("correct horse", "not a hash"));
        assert!(!is_hash("not a hash"));
    }

    #[test]
    fn secrets_are_random_hex_of_32_bytes() {
        let (a, b) = (generate().unwrap(), generate().unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[cfg(unix)]
    #[test]
    fn a_private_file_is_0600_even_when_it_existed_looser() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&path, b"new").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
    }

    #[test]
    fn out_of_range_costs_are_refused() {
        assert!(Cost { memory_kib: 1, iterations: 1 }.check().is_err());
        assert!(Cost::OWASP.check().is_ok());
    }
}
