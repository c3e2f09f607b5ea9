//! Throttling of failed logins, as OWASP's authentication cheat sheet advises instead of
//! locking accounts: a lock anyone can trigger is a way to keep the owner out. Two
//! counters are kept for every attempt, and an attempt is refused while either is
//! blocked:
//!
//! - per (account, client address): the first few failures are free, then every further
//!   one makes that address wait longer before the next try for that account (1 s,
//!   doubling, up to 15 min). Only that address is slowed: the owner, logging in from
//!   elsewhere, never notices;
//! - per client address, across accounts: an address failing too often (20 times in
//!   10 min) is refused for a while, whatever account it tries (credential stuffing).
//!
//! An attempt is counted as a failure *before* the password is checked, so that a burst
//! of concurrent guesses cannot all pass the check before the first failure is recorded;
//! a right password then takes its count back.
//!
//! Synchronous and pure: the state is passed in and out ([`Counter`]); where it is kept
//! is the repository's business (see `LoginThrottleRepository`).

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures for one (account, address) before delays start.
    pub free_failures: u32,
    /// The first delay; each further failure doubles it.
    pub first_delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
    /// An (account, address) without a failure for this long starts again from zero.
    pub forget_after: Duration,
    /// Failures from one address, over every account, within [`Self::address_window`]
    /// before the address is refused.
    pub address_failures: u32,
    pub address_window: Duration,
    /// How long an address that failed too often is refused.
    pub address_block: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            free_failures: 3,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(60 * 60),
            address_failures: 20,
            address_window: Duration::from_secs(10 * 60),
            address_block: Duration::from_secs(10 * 60),
        }
    }
}

/// The state of one counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub failures: u32,
    /// For an (account, address): the last counted attempt. For an address: when its
    /// current window started.
    pub since: DateTime<Utc>,
    /// No attempt before this.
    pub blocked_until: Option<DateTime<Utc>>,
    /// The stored version; `None` when not stored yet (optimistic concurrency).
    pub version: Option<i64>,
}

impl Counter {
    fn fresh(now: DateTime<Utc>, version: Option<i64>) -> Self {
        Self { failures: 0, since: now, blocked_until: None, version }
    }
}

/// Where the counters of one attempt are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleKeys {
    /// (account, address).
    pub pair: String,
    /// The address alone.
    pub address: String,
}

impl ThrottleKeys {
    /// `account` as the client typed it (known or not: both are counted the same, so the
    /// answer says nothing about which accounts exist); `address` the client's, or
    /// `unknown`.
    pub fn new(account: &str, address: Option<&str>) -> Self {
        let address = address.filter(|a| !a.is_empty()).unwrap_or("unknown");
        // The address cannot hold '|'; the account, last, may hold anything.
        Self { pair: format!("p|{address}|{account}"), address: format!("a|{address}") }
    }
}

/// An admitted attempt: the counters to store before the password is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub pair: Counter,
    pub address: Counter,
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn wait(until: DateTime<Utc>, now: DateTime<Utc>) -> Option<Duration> {
    (until > now).then(|| (until - now).to_std().unwrap_or(Duration::from_secs(1)))
}

impl ThrottlePolicy {
    /// The delay after the `failures`-th failure of an (account, address).
    pub fn delay_after(&self, failures: u32) -> Option<Duration> {
        let over = failures.checked_sub(self.free_failures.saturating_add(1))?;
        let factor = 2u32.checked_pow(over).unwrap_or(u32::MAX);
        Some(self.first_delay.checked_mul(factor).unwrap_or(self.max_delay).min(self.max_delay))
    }

    /// Decides whether an attempt may check its password now, and if so counts it as a
    /// failure in advance (see the module's doc).
    ///
    /// # Errors
    /// How long to wait when either counter is blocked.
    pub fn admit(
        &self,
        pair: Option<Counter>,
        address: Option<Counter>,
        now: DateTime<Utc>,
    ) -> Result<Admitted, Duration> {
        let mut pair = pair.unwrap_or_else(|| Counter::fresh(now, None));
        let mut address = address.unwrap_or_else(|| Counter::fresh(now, None));
        let blocked = [&pair, &address].into_iter().filter_map(|c| c.blocked_until.and_then(|u| wait(u, now))).max();
        if let Some(retry_after) = blocked {
            return Err(retry_after);
        }
        if now - pair.since > chrono(self.forget_after) {
            pair = Counter::fresh(now, pair.version);
        }
        pair.failures = pair.failures.saturating_add(1);
        pair.since = now;
        pair.blocked_until = self.delay_after(pair.failures).map(|d| now + chrono(d));

        if now - address.since > chrono(self.address_window) {
            address = Counter::fresh(now, address.version);
        }
        address.failures = address.failures.saturating_add(1);
        address.blocked_until = None;
        if address.failures >= self.address_failures {
            address.blocked_until = Some(now + chrono(self.address_block));
            // The block is the penalty: the next window starts after it.
            address.failures = 0;
            address.since = now + chrono(self.address_block);
        }
        Ok(Admitted { pair, address })
    }

    /// The right password was given: the (account, address) starts again from zero, and
    /// the address gets back the failure counted in advance.
    pub fn succeeded(&self, pair: Option<Counter>, address: Option<Counter>, now: DateTime<Utc>) -> Admitted {
        let pair = Counter::fresh(now, pair.and_then(|p| p.version));
        let mut address = address.unwrap_or_else(|| Counter::fresh(now, None));
        if address.blocked_until.is_some_and(|u| u > now) && address.failures == 0 {
            // This very attempt tipped the address over: it was no failure after all.
            address.blocked_until = None;
            address.failures = self.address_failures.saturating_sub(1);
            address.since = now;
        } else {
            address.failures = address.failures.saturating_sub(1);
        }
        Admitted { pair, address }
    }

    /// Counters older than this can be forgotten: none of them refuses or counts anymore.
    pub fn forget_before(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - chrono(self.forget_after.max(self.address_window).max(self.address_block))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn secs(n: i64) -> chrono::Duration {
        chrono::Duration::seconds(n)
    }

    /// Fails `n` times at `now` from one pair, storing what admit says; returns the state.
    fn fail(
        p: &ThrottlePolicy,
        mut state: (Option<Counter>, Option<Counter>),
        n: u32,
        now: DateTime<Utc>,
    ) -> (Option<Counter>, Option<Counter>) {
        for _ in 0..n {
            let a = p.admit(state.0, state.1, now).expect("admitted");
            state = (Some(a.pair), Some(a.address));
        }
        state
    }

    #[test]
    fn given_three_free_failures_when_a_fourth_fails_then_the_next_try_waits_one_second_doubling_up_to_fifteen_minutes()
    {
        let p = ThrottlePolicy::default();
        assert_eq!(p.delay_after(3), None);
        assert_eq!(p.delay_after(4), Some(Duration::from_secs(1)));
        assert_eq!(p.delay_after(5), Some(Duration::from_secs(2)));
        assert_eq!(p.delay_after(13), Some(Duration::from_secs(512)));
        assert_eq!(p.delay_after(14), Some(Duration::from_secs(900)));
        assert_eq!(p.delay_after(200), Some(Duration::from_secs(900)));

        let mut now = t0();
        let state = fail(&p, (None, None), 3, now);
        assert_eq!(state.0.as_ref().unwrap().blocked_until, None, "three failures cost nothing");
        let state = fail(&p, state, 1, now);
        assert_eq!(p.admit(state.0.clone(), state.1.clone(), now), Err(Duration::from_secs(1)));
        now += secs(1);
        let state = fail(&p, state, 1, now);
        assert_eq!(p.admit(state.0.clone(), state.1.clone(), now + secs(1)), Err(Duration::from_secs(1)));
        assert!(p.admit(state.0, state.1, now + secs(2)).is_ok(), "two seconds after the fifth");
    }

    #[test]
    fn given_an_attacking_address_then_another_address_is_not_held_up() {
        let p = ThrottlePolicy::default();
        let now = t0();
        let attacker = fail(&p, (None, None), 4, now);
        assert!(p.admit(attacker.0, attacker.1, now).is_err());
        // The owner's address has counters of its own: nothing to wait for.
        assert!(p.admit(None, None, now).is_ok());
    }

    #[test]
    fn given_a_right_password_then_the_pair_starts_again_and_the_address_gets_its_count_back() {
        let p = ThrottlePolicy::default();
        let now = t0();
        let state = fail(&p, (None, None), 3, now);
        assert_eq!(state.1.as_ref().unwrap().failures, 3);
        let state = fail(&p, state, 1, now); // the right password, counted in advance
        let after = p.succeeded(state.0, state.1, now);
        assert_eq!((after.pair.failures, after.pair.blocked_until), (0, None));
        assert_eq!(after.address.failures, 3, "only the real failures stay counted");
    }

    #[test]
    fn given_twenty_failures_from_one_address_over_many_accounts_then_the_address_is_refused_for_a_while() {
        let p = ThrottlePolicy::default();
        let now = t0();
        let mut address = None;
        for i in 0..20 {
            let a = p.admit(None, address.clone(), now + secs(i)).expect("admitted");
            address = Some(a.address);
        }
        let blocked = p.admit(None, address.clone(), now + secs(20));
        assert_eq!(blocked, Err(Duration::from_secs(10 * 60 - 1)), "any account, for ten minutes");
        let later = now + secs(19) + secs(10 * 60);
        assert!(p.admit(None, address, later).is_ok(), "free again after the block");
    }

    #[test]
    fn given_failures_spread_beyond_the_window_then_the_address_is_never_refused() {
        let p = ThrottlePolicy::default();
        let mut address = None;
        for i in 0..60 {
            // one failure every minute: at most ten in any window
            let a = p.admit(None, address.clone(), t0() + secs(60 * i)).expect("admitted");
            address = Some(a.address);
        }
    }

    #[test]
    fn given_a_right_password_that_tipped_the_address_over_then_the_address_is_not_blocked() {
        let p = ThrottlePolicy::default();
        let now = t0();
        let mut address = None;
        for _ in 0..19 {
            address = Some(p.admit(None, address.clone(), now).unwrap().address);
        }
        let twentieth = p.admit(None, address, now).unwrap();
        assert!(twentieth.address.blocked_until.is_some(), "counted in advance");
        let after = p.succeeded(Some(twentieth.pair), Some(twentieth.address), now);
        assert_eq!((after.address.blocked_until, after.address.failures), (None, 19));
        assert!(p.admit(None, Some(after.address), now).is_ok());
    }

    #[test]
    fn given_an_hour_without_failures_then_a_pair_starts_again() {
        let p = ThrottlePolicy::default();
        let state = fail(&p, (None, None), 4, t0());
        assert!(state.0.as_ref().unwrap().blocked_until.is_some());
        let later = t0() + secs(60 * 60 + 1);
        let a = p.admit(state.0, None, later).unwrap();
        assert_eq!((a.pair.failures, a.pair.blocked_until), (1, None));
        assert_eq!(p.forget_before(later), later - secs(60 * 60));
    }

    #[test]
    fn keys_separate_accounts_and_addresses() {
        let k = ThrottleKeys::new("alice", Some("198.51.100.7"));
        assert_eq!((k.pair.as_str(), k.address.as_str()), ("p|198.51.100.7|alice", "a|198.51.100.7"));
        assert_eq!(ThrottleKeys::new("alice", None).address, "a|unknown");
        assert_ne!(ThrottleKeys::new("alice", Some("1.2.3.4")).pair, ThrottleKeys::new("bob", Some("1.2.3.4")).pair);
    }
}
