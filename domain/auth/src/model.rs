//! Credentials and the lock-out policy. Synchronous and pure.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kernel::{CustomerId, ValidationError};

/// A password as a customer chose it; never stored, only hashed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_BYTES: usize = 256;

    /// # Errors
    /// `password` when shorter than 8 characters or longer than 256 bytes.
    pub fn new(raw: &str) -> Result<Self, ValidationError> {
        if raw.chars().count() < Self::MIN_CHARS {
            return Err(ValidationError::new("password", format!("must be at least {} characters", Self::MIN_CHARS)));
        }
        if raw.len() > Self::MAX_BYTES {
            return Err(ValidationError::new("password", format!("must be at most {} bytes", Self::MAX_BYTES)));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// How repeated failures slow an attacker down.
#[derive(Debug, Clone, Copy)]
pub struct Lockout {
    /// Consecutive failures that lock the customer.
    pub max_failures: u32,
    /// How long a lock lasts.
    pub lock_for: Duration,
}

impl Default for Lockout {
    fn default() -> Self {
        Self { max_failures: 5, lock_for: Duration::from_secs(30) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub customer_id: CustomerId,
    /// A PHC string (argon2id), never the password.
    pub password_hash: String,
    pub failed_attempts: u32,
    pub locked_until: Option<DateTime<Utc>>,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginRefusal {
    /// The same answer whether the customer exists or not.
    #[error("invalid customer id or password")]
    BadCredentials,
    #[error("too many failed attempts; try again later")]
    Locked { retry_after: Duration },
}

impl Credential {
    pub fn new(customer_id: CustomerId, password_hash: String) -> Self {
        Self { customer_id, password_hash, failed_attempts: 0, locked_until: None, version: 0 }
    }

    /// Refuses at once while locked, before any password is checked.
    ///
    /// # Errors
    /// `Locked` with the time left.
    pub fn check_not_locked(&self, now: DateTime<Utc>) -> Result<(), LoginRefusal> {
        match self.locked_until {
            Some(until) if until > now => {
                Err(LoginRefusal::Locked { retry_after: (until - now).to_std().unwrap_or(Duration::from_secs(1)) })
            }
            _ => Ok(()),
        }
    }

    /// Records the outcome of a password check.
    ///
    /// # Errors
    /// `BadCredentials` for a wrong password (locking the customer at the limit).
    pub fn record_attempt(
        &mut self,
        password_ok: bool,
        now: DateTime<Utc>,
        policy: Lockout,
    ) -> Result<(), LoginRefusal> {
        if password_ok {
            self.failed_attempts = 0;
            self.locked_until = None;
            return Ok(());
        }
        self.failed_attempts += 1;
        if self.failed_attempts >= policy.max_failures {
            self.failed_attempts = 0;
            self.locked_until = chrono::Duration::from_std(policy.lock_for).ok().map(|d| now + d);
        }
        Err(LoginRefusal::BadCredentials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_have_a_minimum_length_and_never_print() {
        assert_eq!(Password::new("short").unwrap_err().field, "password");
        assert!(Password::new(&"x".repeat(300)).is_err());
        assert_eq!(format!("{:?}", Password::new("correct horse").unwrap()), "Password(***)");
    }

    #[test]
    fn given_five_wrong_passwords_then_the_customer_is_locked_for_a_while() {
        let mut c = Credential::new(CustomerId::new("c-11").unwrap(), "hash".into());
        let now = Utc::now();
        let policy = Lockout { max_failures: 5, lock_for: Duration::from_secs(30) };
        for _ in 0..4 {
            assert_eq!(c.record_attempt(false, now, policy), Err(LoginRefusal::BadCredentials));
            c.check_not_locked(now).unwrap();
        }
        assert_eq!(c.record_attempt(false, now, policy), Err(LoginRefusal::BadCredentials));
        assert!(
            matches!(c.check_not_locked(now), Err(LoginRefusal::Locked { retry_after }) if retry_after == Duration::from_secs(30))
        );
        // once the lock is over, a right password clears everything
        let later = now + chrono::Duration::seconds(31);
        c.check_not_locked(later).unwrap();
        c.record_attempt(true, later, policy).unwrap();
        assert_eq!((c.failed_attempts, c.locked_until), (0, None));
    }
}
