//! Secrets at rest: argon2id hashes (PHC strings) of customers' passwords and service
//! accounts' secrets, and random secrets for machines (service accounts, the first
//! admin's password written by `gamectl up`).
//!
//! Hashing is slow on purpose (OWASP: 19 MiB, 2 iterations); callers on an async runtime
//! run it on the blocking pool. A hash carries its own parameters, so a hash made with
//! other parameters (cheaper ones in tests) still verifies.
//!
//! A server hashing all day keeps its argon2 memory in a [`Scratch`] and reuses it: each
//! hash allocating and freeing its 19 MiB, glibc's allocator kept the freed blocks in its
//! per-thread arenas, and a service bounded to 6 hashes at once still grew to 255 MiB.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

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

/// The memory of argon2 computations, kept for the next one. It grows to the largest
/// cost it was used at, up to `limit_kib`; a hash needing more (made at a higher cost
/// than this server's) gets memory of its own for that one computation.
#[derive(Debug)]
pub struct Scratch {
    blocks: Vec<Block>,
    limit: usize,
}

impl Scratch {
    /// Empty; filled at first use, up to `limit_kib`.
    pub fn new(limit_kib: u32) -> Self {
        Self { blocks: Vec::new(), limit: usize::try_from(limit_kib).unwrap_or(usize::MAX) }
    }

    /// The KiB it holds now.
    pub fn kib(&self) -> usize {
        self.blocks.len() * Block::SIZE / 1024
    }

    /// Runs argon2 into `out` on this memory (or on memory of its own beyond the limit).
    fn run(&mut self, argon2: &Argon2<'_>, secret: &[u8], salt: &[u8], out: &mut [u8]) -> Result<(), String> {
        let needed = argon2.params().block_count();
        if needed > self.limit {
            return argon2.hash_password_into(secret, salt, out).map_err(|e| e.to_string());
        }
        if self.blocks.len() < needed {
            self.blocks.resize(needed, Block::default());
        }
        argon2.hash_password_into_with_memory(secret, salt, out, &mut self.blocks[..needed]).map_err(|e| e.to_string())
    }
}

/// A salted argon2id hash of `secret`, as a PHC string (`$argon2id$v=19$m=...`).
///
/// # Errors
/// When the parameters are out of range or hashing fails (memory).
pub fn hash(secret: &str, cost: Cost) -> Result<String, String> {
    hash_in(secret, cost, &mut Scratch::new(cost.memory_kib))
}

/// [`hash`], on `scratch`.
///
/// # Errors
/// As [`hash`].
pub fn hash_in(secret: &str, cost: Cost, scratch: &mut Scratch) -> Result<String, String> {
    let argon2 = cost.argon2()?;
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| e.to_string())?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    scratch.run(&argon2, secret.as_bytes(), salt_bytes, &mut out)?;
    let params = argon2.params().try_into().map_err(|e: argon2::password_hash::Error| e.to_string())?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(phc.to_string())
}

/// Whether `secret` matches the PHC string `hash`; a malformed hash matches nothing.
pub fn verify(secret: &str, hash: &str) -> bool {
    verify_in(secret, hash, &mut Scratch::new(u32::MAX))
}

/// [`verify`], on `scratch`. The hash's own parameters are used, whatever `Cost` made it.
pub fn verify_in(secret: &str, hash: &str, scratch: &mut Scratch) -> bool {
    let mut check = || -> Result<bool, String> {
        let parsed = PasswordHash::new(hash).map_err(|e| e.to_string())?;
        let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|e| e.to_string())?;
        let version = parsed.version.map(Version::try_from).transpose().map_err(|e| e.to_string())?.unwrap_or_default();
        let params = Params::try_from(&parsed).map_err(|e| e.to_string())?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else { return Ok(false) };
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| e.to_string())?;
        let mut out = vec![0u8; expected.len()];
        scratch.run(&Argon2::new(algorithm, version, params), secret.as_bytes(), salt_bytes, &mut out)?;
        // Output's equality is constant-time.
        Ok(Output::new(&out).map_err(|e| e.to_string())? == expected)
    };
    check().unwrap_or(false)
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
    fn hashes_made_on_a_kept_scratch_are_the_crates_own_and_the_scratch_is_reused() {
        use argon2::password_hash::PasswordVerifier as _;
        let mut scratch = Scratch::new(CHEAP.memory_kib);
        let a = hash_in("correct horse", CHEAP, &mut scratch).unwrap();
        assert_eq!(scratch.kib(), 1024, "kept for the next one");
        // The argon2 crate's own verifier agrees, both ways.
        let parsed = PasswordHash::new(&a).unwrap();
        assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
        let theirs = {
            use argon2::password_hash::PasswordHasher as _;
            let salt = SaltString::generate(&mut OsRng);
            CHEAP.argon2().unwrap().hash_password(b"correct horse", &salt).unwrap().to_string()
        };
        assert!(verify_in("correct horse", &theirs, &mut scratch));
        assert!(!verify_in("wrong horse", &theirs, &mut scratch));
        // A costlier hash than the scratch's limit still verifies, on memory of its own.
        let costly = hash("correct horse", Cost { memory_kib: 2048, iterations: 1 }).unwrap();
        assert!(verify_in("correct horse", &costly, &mut scratch));
        assert_eq!(scratch.kib(), 1024, "not grown beyond its limit");
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
