//! Throttling of failed logins, as OWASP's authentication cheat sheet advises instead of
//! locking accounts: a lock anyone can trigger is a way to keep the owner out. Two
//! counters are kept for every attempt, and an attempt is refused while either makes it
//! wait:
//!
//! - per (account, client address): the first few failures are free, then every further
//!   one makes that address wait longer before the next try for that account (1 s,
//!   doubling, up to 15 min). Only that address is slowed: the owner, logging in from
//!   elsewhere, never notices;
//! - per client address, across accounts (credential stuffing, password spraying): after
//!   20 failures without a quiet 10 min, every further attempt from the address waits
//!   (1 s, doubling, up to a minute) — a slow-down, never a block: one address may be a
//!   carrier's NAT or an office, with many honest users behind it. An account that
//!   logged in from the address before (in the last 30 days: its owner, at home behind
//!   that NAT) is not slowed by the address at all, only by its own pair counter, so a
//!   bad neighbour can never keep an owner out. (A CAPTCHA or device cookies would be the
//!   next steps; this needs neither.)
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
    /// Failures from one address, over every account, before each further one slows the
    /// address ([`Self::first_delay`], doubling, up to [`Self::address_max_delay`]).
    pub address_failures: u32,
    /// An address without an attempt for this long starts again from zero.
    pub address_window: Duration,
    /// The longest an address is made to wait between two attempts.
    pub address_max_delay: Duration,
    /// How long a login makes its (account, address) the owner's: not slowed by the
    /// address's counter.
    pub known_for: Duration,
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
            address_max_delay: Duration::from_secs(60),
            known_for: Duration::from_secs(30 * 24 * 60 * 60),
        }
    }
}

/// The state of one counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub failures: u32,
    /// The last counted attempt.
    pub since: DateTime<Utc>,
    /// No attempt before this.
    pub blocked_until: Option<DateTime<Utc>>,
    /// For an (account, address): the account logged in from the address, so until then
    /// the address's own slow-down does not apply to it.
    pub known_until: Option<DateTime<Utc>>,
    /// The stored version; `None` when not stored yet (optimistic concurrency).
    pub version: Option<i64>,
}

impl Counter {
    fn fresh(now: DateTime<Utc>, known_until: Option<DateTime<Utc>>, version: Option<i64>) -> Self {
        Self { failures: 0, since: now, blocked_until: None, known_until, version }
    }

    fn known(&self, now: DateTime<Utc>) -> bool {
        self.known_until.is_some_and(|k| k > now)
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

/// `first` doubled for each failure beyond `free + 1`, up to `max`; none within `free`.
fn doubling(failures: u32, free: u32, first: Duration, max: Duration) -> Option<Duration> {
    let over = failures.checked_sub(free.saturating_add(1))?;
    let factor = 2u32.checked_pow(over).unwrap_or(u32::MAX);
    Some(first.checked_mul(factor).unwrap_or(max).min(max))
}

impl ThrottlePolicy {
    /// The delay after the `failures`-th failure of an (account, address).
    pub fn delay_after(&self, failures: u32) -> Option<Duration> {
        doubling(failures, self.free_failures, self.first_delay, self.max_delay)
    }

    /// The delay of a whole address after its `failures`-th failure.
    pub fn address_delay_after(&self, failures: u32) -> Option<Duration> {
        doubling(failures, self.address_failures.saturating_sub(1), self.first_delay, self.address_max_delay)
    }

    /// Decides whether an attempt may check its password now, and if so counts it as a
    /// failure in advance (see the module's doc).
    ///
    /// # Errors
    /// How long to wait when either counter says so.
    pub fn admit(
        &self,
        pair: Option<Counter>,
        address: Option<Counter>,
        now: DateTime<Utc>,
    ) -> Result<Admitted, Duration> {
        let mut pair = pair.unwrap_or_else(|| Counter::fresh(now, None, None));
        let mut address = address.unwrap_or_else(|| Counter::fresh(now, None, None));
        let known = pair.known(now);
        let pair_wait = pair.blocked_until.and_then(|u| wait(u, now));
        let address_wait = if known { None } else { address.blocked_until.and_then(|u| wait(u, now)) };
        if let Some(retry_after) = pair_wait.max(address_wait) {
            return Err(retry_after);
        }
        if now - pair.since > chrono(self.forget_after) {
            pair = Counter::fresh(now, pair.known_until, pair.version);
        }
        pair.failures = pair.failures.saturating_add(1);
        pair.since = now;
        pair.blocked_until = self.delay_after(pair.failures).map(|d| now + chrono(d));

        if now - address.since > chrono(self.address_window) {
            address = Counter::fresh(now, None, address.version);
        }
        address.failures = address.failures.saturating_add(1);
        address.since = now;
        // The owner's attempt does not hold up the others behind the same address.
        if !known {
            address.blocked_until = self.address_delay_after(address.failures).map(|d| now + chrono(d));
        }
        Ok(Admitted { pair, address })
    }

    /// The right password was given: the (account, address) starts again from zero and
    /// is the owner's for [`Self::known_for`], and the address gets back the failure
    /// counted in advance.
    pub fn succeeded(&self, pair: Option<Counter>, address: Option<Counter>, now: DateTime<Utc>) -> Admitted {
        let pair = Counter::fresh(now, Some(now + chrono(self.known_for)), pair.and_then(|p| p.version));
        let mut address = address.unwrap_or_else(|| Counter::fresh(now, None, None));
        address.failures = address.failures.saturating_sub(1);
        if self.address_delay_after(address.failures).is_none() {
            // Below the limit again (this very attempt had tipped it over): no wait.
            address.blocked_until = None;
        }
        Admitted { pair, address }
    }

    /// Counters last counted before this can be forgotten unless they still block or
    /// know their owner: none of them refuses or counts anymore.
    pub fn forget_before(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - chrono(self.forget_after.max(self.address_window))
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

    /// Fails once for each of `accounts` distinct accounts from one address from `now`
    /// on, waiting whenever told to; returns the address's counter and the time after.
    fn spray(
        p: &ThrottlePolicy,
        mut address: Option<Counter>,
        accounts: u32,
        mut now: DateTime<Utc>,
    ) -> (Option<Counter>, DateTime<Utc>) {
        for _ in 0..accounts {
            if let Err(wait) = p.admit(None, address.clone(), now) {
                now += chrono(wait);
            }
            address = Some(p.admit(None, address, now).expect("admitted after the wait").address);
        }
        (address, now)
    }

    #[test]
    fn given_twenty_failures_from_one_address_over_many_accounts_then_the_address_is_slowed_not_blocked() {
        let p = ThrottlePolicy::default();
        let now = t0();
        let (address, _) = spray(&p, None, 19, now);
        assert_eq!(address.as_ref().unwrap().blocked_until, None, "nineteen cost nothing");
        let (address, _) = spray(&p, address, 1, now);
        assert_eq!(p.admit(None, address.clone(), now), Err(Duration::from_secs(1)), "the twentieth slows it");
        // Each further failure doubles the wait, never beyond a minute.
        let (mut address, mut at, mut waits) = (address, now, Vec::new());
        for _ in 0..10 {
            let wait = p.admit(None, address.clone(), at).unwrap_err();
            waits.push(wait.as_secs());
            at += chrono(wait);
            address = Some(p.admit(None, address, at).expect("admitted once it waited").address);
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
        // Ten quiet minutes later the address starts again.
        let later = at + secs(10 * 60 + 1);
        let fresh = p.admit(None, address, later).unwrap().address;
        assert_eq!((fresh.failures, fresh.blocked_until), (1, None));
    }

    #[test]
    fn given_a_bad_neighbour_behind_one_nat_when_an_owner_who_logged_in_there_before_tries_then_nothing_holds_them_up()
    {
        let p = ThrottlePolicy::default();
        let now = t0();
        // Carol logged in from the carrier's address last week.
        let admitted = p.admit(None, None, now - secs(7 * 24 * 3600)).unwrap();
        let carol = p.succeeded(Some(admitted.pair), Some(admitted.address.clone()), now - secs(7 * 24 * 3600)).pair;
        assert!(carol.known_until.is_some());
        // Today someone behind the same address sprays a password over 40 accounts.
        let (address, now) = spray(&p, Some(admitted.address), 40, now);
        assert!(p.admit(None, address.clone(), now).is_err(), "the address is slowed");
        // Carol is not: admitted at once, and her login does not slow the others further.
        let attempt = p.admit(Some(carol), address.clone(), now).expect("the owner is never held up by the address");
        assert_eq!(attempt.address.blocked_until, address.as_ref().unwrap().blocked_until);
        let after = p.succeeded(Some(attempt.pair), Some(attempt.address), now);
        assert_eq!(after.address.failures, address.unwrap().failures, "her attempt was no failure");
    }

    #[test]
    fn given_a_bad_neighbour_when_a_user_new_to_the_address_tries_then_they_wait_at_most_the_address_delay() {
        let p = ThrottlePolicy::default();
        let now = t0();
        let (address, now) = spray(&p, None, 25, now);
        let wait = p.admit(None, address.clone(), now).unwrap_err();
        assert!(wait <= p.address_max_delay, "a slow-down: {wait:?}");
        let later = now + chrono(wait);
        let dave = p.admit(None, address, later).expect("admitted after the wait");
        let after = p.succeeded(Some(dave.pair), Some(dave.address), later);
        assert!(after.pair.known_until.is_some_and(|k| k > later + secs(29 * 24 * 3600)), "known for 30 days");
    }

    #[test]
    fn given_an_owner_known_at_an_address_then_their_own_wrong_guesses_still_slow_their_pair() {
        let p = ThrottlePolicy::default();
        let now = t0();
        let first = p.admit(None, None, now).unwrap();
        let known = p.succeeded(Some(first.pair), Some(first.address), now);
        let state = fail(&p, (Some(known.pair), Some(known.address)), 4, now);
        assert_eq!(p.admit(state.0, state.1, now), Err(Duration::from_secs(1)));
    }

    #[test]
    fn given_failures_further_apart_than_the_window_then_the_address_starts_again_each_time() {
        let p = ThrottlePolicy::default();
        let mut address = None;
        for i in 0..60 {
            let a = p.admit(None, address.clone(), t0() + secs(11 * 60 * i)).expect("admitted");
            assert_eq!(a.address.failures, 1);
            address = Some(a.address);
        }
    }

    #[test]
    fn given_a_right_password_that_tipped_the_address_over_then_the_address_is_not_slowed() {
        let p = ThrottlePolicy::default();
        let now = t0();
        let (address, _) = spray(&p, None, 19, now);
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
