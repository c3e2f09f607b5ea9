//! The gateway's rate limits, decided from a request's head before its message is read
//! ([`admission`]):
//! - per customer, a token bucket (`RATE_LIMIT_PER_SECOND` sustained, `RATE_LIMIT_BURST`
//!   at once): a logged-in customer's app may burst;
//! - per game server (a token with role `game_server`), a token bucket of its own keyed by
//!   its subject (`GAME_SERVER_RATE_PER_SECOND`, `GAME_SERVER_RATE_BURST`, far above a
//!   player's): it reports for many players at once, and is limited neither like a player
//!   nor by a player who happens to share its name;
//! - per client address for the public methods (registration, token issuing, the
//!   catalogs), with a token or without — a token says who calls, not that its holder may
//!   register for everyone behind the address — a sliding window
//!   (`ANONYMOUS_RATE_PER_MINUTE` in any 60 s): exactly the
//!   number an operator configures, where a bucket refilling at N/60 per second would let
//!   twice as many through in the first minute. An IPv6 client counts by its /64: one
//!   host usually holds the whole prefix.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth_adapter::Identity;
use grpc_adapter::peer::{self, address_key};
use grpc_adapter::server::Admission;
use tonic::Status;

use crate::proxy::Policy;

/// The limits as the server's [`Admission`]: counted from the request's head, so a
/// refused call's message is never read.
pub fn admission(policy: Arc<Policy>) -> Admission {
    let public: Arc<[&'static str]> = contracts::services::public_methods().collect();
    Arc::new(move |req| admit(&policy, &public, req).err().map(limited))
}

/// Takes one call of `req` from its bucket; when none is left, how long until one is.
fn admit<B>(policy: &Policy, public: &[&str], req: &http::Request<B>) -> Result<(), Duration> {
    let path = req.uri().path();
    let service = path.trim_start_matches('/').split('/').next().unwrap_or_default();
    // The gateway's own health and reflection are not limited (probes, load balancers).
    if !contracts::services::routed().any(|s| s == service) {
        return Ok(());
    }
    match req.extensions().get::<Identity>() {
        Some(who) if !public.iter().any(|p| path.starts_with(p)) => policy.with_token.take(&who.customer_id, who.role),
        _ => {
            let client = peer::of_http(req, &policy.trusted).unwrap_or(IpAddr::from([0, 0, 0, 0]));
            policy.anonymous.take(client)
        }
    }
}

/// `RESOURCE_EXHAUSTED` saying when to try again, also as `retry-after` (seconds).
fn limited(wait: Duration) -> http::Response<tonic::body::Body> {
    metrics_adapter::gateway().limited();
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut s = Status::resource_exhausted(format!("rate limit exceeded; try again in {seconds} s"));
    s.metadata_mut().insert("retry-after", seconds.into());
    s.into_http()
}

/// Keys kept before the idle ones are forgotten.
const MAX_KEYS: usize = 100_000;

/// A token bucket per key.
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// # Errors
    /// When the rate or the burst is not positive.
    pub fn new(per_second: f64, burst: f64) -> Result<Self, String> {
        if per_second.is_nan() || per_second <= 0.0 || burst.is_nan() || burst < 1.0 {
            return Err("the rate must be > 0 and the burst >= 1".into());
        }
        Ok(Self { per_second, burst, buckets: Mutex::default() })
    }

    /// Takes a token for `key`; when none is left, how long until one is.
    pub fn take(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > MAX_KEYS {
            // Forget the full buckets: they are the same as new ones.
            let (rate, burst) = (self.per_second, self.burst);
            buckets.retain(|_, (tokens, at)| *tokens + now.duration_since(*at).as_secs_f64() * rate < burst);
        }
        let (tokens, at) = buckets.entry(key.to_owned()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.per_second))
        }
    }
}

/// The buckets of callers with a token: customers', and game servers' at their own rate.
pub struct TokenLimits {
    pub customers: RateLimiter,
    pub game_servers: RateLimiter,
}

impl TokenLimits {
    /// Takes a token from the bucket of `subject` acting as `role`.
    pub fn take(&self, subject: &str, role: auth_adapter::Role) -> Result<(), Duration> {
        match role {
            auth_adapter::Role::GameServer => self.game_servers.take(subject),
            _ => self.customers.take(subject),
        }
    }
}

/// At most `limit` calls per client address in any `window`.
pub struct AddressLimiter {
    limit: usize,
    window: Duration,
    calls: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl AddressLimiter {
    /// `per_minute` calls in any minute.
    ///
    /// # Errors
    /// When `per_minute` is 0.
    pub fn per_minute(per_minute: u32) -> Result<Self, String> {
        Self::new(per_minute, Duration::from_secs(60))
    }

    /// # Errors
    /// When `limit` is 0.
    pub fn new(limit: u32, window: Duration) -> Result<Self, String> {
        if limit == 0 {
            return Err("must be at least 1".into());
        }
        Ok(Self { limit: limit as usize, window, calls: Mutex::default() })
    }

    /// Counts a call from `client`; when it is over the limit, how long until the oldest
    /// call in the window leaves it.
    pub fn take(&self, client: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let recent = |t: &Instant| now.duration_since(*t) < self.window;
        let mut calls = self.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if calls.len() > MAX_KEYS {
            calls.retain(|_, times| times.back().is_some_and(recent));
        }
        let times = calls.entry(address_key(client)).or_default();
        while times.front().is_some_and(|t| !recent(t)) {
            times.pop_front();
        }
        if times.len() < self.limit {
            times.push_back(now);
            Ok(())
        } else {
            let oldest = *times.front().expect("the window is full");
            Err(self.window.saturating_sub(now.duration_since(oldest)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_the_burst_then_refuses_until_it_refills() {
        let l = RateLimiter::new(10.0, 3.0).unwrap();
        for _ in 0..3 {
            l.take("c-1").unwrap();
        }
        let wait = l.take("c-1").unwrap_err();
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        l.take("c-2").expect("another customer has their own bucket");
        std::thread::sleep(Duration::from_millis(120));
        l.take("c-1").expect("refilled");
        assert!(RateLimiter::new(0.0, 1.0).is_err());
    }

    #[test]
    fn a_game_server_has_its_own_bucket_at_its_own_rate_apart_from_a_player_of_the_same_name() {
        use auth_adapter::Role;
        let limits = TokenLimits {
            customers: RateLimiter::new(1.0, 2.0).unwrap(),
            game_servers: RateLimiter::new(1.0, 50.0).unwrap(),
        };
        for _ in 0..50 {
            limits.take("studio", Role::GameServer).expect("the game server's burst");
        }
        assert!(limits.take("studio", Role::GameServer).is_err());
        limits.take("other-studio", Role::GameServer).expect("each game server its own bucket");
        for _ in 0..2 {
            limits.take("studio", Role::Player).expect("a player named like it is apart");
        }
        assert!(limits.take("studio", Role::Player).is_err());
        assert!(limits.take("studio", Role::Admin).is_err(), "an admin is limited as a customer");
    }

    #[test]
    fn an_address_gets_the_limit_in_any_window_and_no_more() {
        let l = AddressLimiter::new(3, Duration::from_millis(200)).unwrap();
        let (a, b) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..3 {
            l.take(a).unwrap();
        }
        let wait = l.take(a).unwrap_err();
        assert!(wait > Duration::from_millis(150) && wait <= Duration::from_millis(200), "{wait:?}");
        l.take(b).expect("another address counts apart");
        std::thread::sleep(Duration::from_millis(100));
        assert!(l.take(a).is_err(), "still the same window: no trickle");
        std::thread::sleep(Duration::from_millis(120));
        l.take(a).expect("the first calls left the window");
        assert!(AddressLimiter::per_minute(0).is_err());
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64_and_a_mapped_ipv4_as_itself() {
        let l = AddressLimiter::new(1, Duration::from_secs(60)).unwrap();
        l.take("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(l.take("2001:db8:1:2:ffff::9".parse().unwrap()).is_err(), "same /64");
        l.take("2001:db8:1:3::1".parse().unwrap()).expect("another /64");
        l.take("198.51.100.1".parse().unwrap()).unwrap();
        assert!(l.take("::ffff:198.51.100.1".parse().unwrap()).is_err(), "the same IPv4 client");
    }
}
