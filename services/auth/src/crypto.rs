//! argon2id hashing (on the blocking pool: it is slow on purpose), the bound on how many
//! hashes run at once, random secrets, and token signing with the key ring.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use auth_adapter::TokenIssuer;
use auth_adapter::secret::{self, Cost, Scratch};
use auth_domain::{Holder, Password, PasswordHasher, Role, TokenSigner};

/// argon2id with this server's cost, each computation on the blocking pool and on a
/// kept [`Scratch`]: at most `kept` of them are kept (one per [`HashSlots`] slot), so
/// the memory hashing holds is `kept` x `ARGON2_MEMORY_KIB`, reused rather than
/// allocated and freed at every login.
#[derive(Clone)]
pub struct Argon2Hasher {
    cost: Cost,
    scratches: Arc<Mutex<Vec<Scratch>>>,
    kept: usize,
}

impl Argon2Hasher {
    /// # Errors
    /// When the parameters are out of argon2's range.
    pub fn new(memory_kib: u32, iterations: u32, kept: usize) -> Result<Self, String> {
        Ok(Self { cost: Cost { memory_kib, iterations }.check()?, scratches: Arc::default(), kept })
    }

    /// Runs `f` on a kept scratch (a new one when none is free) on the blocking pool.
    async fn on_scratch<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Scratch) -> T + Send + 'static,
    ) -> Result<T, String> {
        let (scratches, kept, limit) = (self.scratches.clone(), self.kept, self.cost.memory_kib);
        tokio::task::spawn_blocking(move || {
            let taken = scratches.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let mut scratch = taken.unwrap_or_else(|| Scratch::new(limit));
            let result = f(&mut scratch);
            let mut free = scratches.lock().unwrap_or_else(PoisonError::into_inner);
            if free.len() < kept {
                free.push(scratch);
            }
            result
        })
        .await
        .map_err(|e| e.to_string())
    }
}

impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &Password) -> Result<String, String> {
        let (cost, password) = (self.cost, password.clone());
        self.on_scratch(move |scratch| secret::hash_in(password.expose(), cost, scratch)).await?
    }

    async fn verify(&self, password: &Password, hash: &str) -> bool {
        let (password, hash) = (password.clone(), hash.to_owned());
        self.on_scratch(move |scratch| secret::verify_in(password.expose(), &hash, scratch)).await.unwrap_or(false)
    }

    fn new_secret(&self) -> Result<Password, String> {
        let raw = secret::generate()?;
        Password::named("client_secret", &raw).map_err(|e| e.to_string())
    }
}

/// How many password hashes may run at once, so that memory stays bounded: each argon2id
/// computation holds `ARGON2_MEMORY_KIB` for its whole run, and without a bound 300
/// registrations at once took 7.6 GB. A call that needs a hash (register, log in, a
/// service account's login or creation) takes a slot before it does anything else, and
/// holds it until it answers; a call that finds no slot free within `wait` is told to
/// try again (`UNAVAILABLE` with `retry-after`) having changed nothing and counted nothing
/// against the caller's login throttle.
#[derive(Clone)]
pub struct HashSlots {
    slots: Arc<Semaphore>,
    wait: Duration,
}

/// No hashing slot became free in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many passwords are being checked right now")]
pub struct Busy;

impl HashSlots {
    /// `slots` at once (at least one); a call waits at most `wait` for one.
    pub fn new(slots: usize, wait: Duration) -> Self {
        Self { slots: Arc::new(Semaphore::new(slots.max(1))), wait }
    }

    /// How many slots fit a memory budget at a memory cost per hash (at least one).
    pub fn fitting(budget_mib: u64, memory_kib: u32) -> usize {
        let each = u64::from(memory_kib.max(1));
        usize::try_from((budget_mib.saturating_mul(1024) / each).max(1)).unwrap_or(usize::MAX)
    }

    /// A slot, held until the returned permit is dropped.
    ///
    /// # Errors
    /// [`Busy`] when none became free within the wait.
    pub async fn enter(&self) -> Result<OwnedSemaphorePermit, Busy> {
        match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Busy),
        }
    }

    /// Slots free right now.
    pub fn available(&self) -> usize {
        self.slots.available_permits()
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
        let h = Argon2Hasher::new(1024, 1, 1).unwrap();
        let p = Password::new("correct horse").unwrap();
        let a = h.hash(&p).await.unwrap();
        let b = h.hash(&p).await.unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b, "salted");
        assert!(h.verify(&p, &a).await);
        assert!(!h.verify(&Password::new("wrong horse").unwrap(), &a).await);
        assert!(!h.verify(&p, "not a hash").await);
        assert_eq!(h.new_secret().unwrap().expose().len(), 64);
        let kept = h.scratches.lock().unwrap();
        assert_eq!((kept.len(), kept[0].kib()), (1, 1024), "one scratch kept, reused by every hash");
    }

    #[test]
    fn the_slots_fit_the_memory_budget() {
        assert_eq!(HashSlots::fitting(128, 19_456), 6, "OWASP's 19 MiB each in 128 MiB");
        assert_eq!(HashSlots::fitting(128, 4096), 32);
        assert_eq!(HashSlots::fitting(1, 19_456), 1, "never none");
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_finding_every_slot_taken_is_told_busy_after_the_wait_and_the_next_gets_a_freed_one() {
        let slots = HashSlots::new(2, Duration::from_millis(500));
        let a = slots.enter().await.unwrap();
        let _b = slots.enter().await.unwrap();
        let started = tokio::time::Instant::now();
        assert_eq!(slots.enter().await.unwrap_err(), Busy);
        assert_eq!(started.elapsed(), Duration::from_millis(500), "a bounded wait");
        drop(a);
        assert!(slots.enter().await.is_ok(), "a freed slot is taken");
    }

    #[test]
    fn every_role_of_ours_is_the_claim_of_the_same_name() {
        for role in [Role::Player, Role::Admin, Role::GameServer, Role::Service] {
            assert_eq!(claim_role(role).as_str(), role.as_str());
        }
    }
}
