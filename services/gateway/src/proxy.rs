//! Routing a gRPC call to its service, after the per-customer rate limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use auth_adapter::Identity;
use tonic::Status;
use tonic::body::Body;
use tower::Service;

use crate::upstream::Upstreams;

type Response = http::Response<Body>;

/// A token bucket per key (customer id, or peer address for anonymous calls).
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
        if buckets.len() > 100_000 {
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

/// The rate limits: one for players (and anonymous callers), one for game servers, which
/// report for many players at once.
pub struct Limits {
    pub players: RateLimiter,
    pub game_servers: RateLimiter,
}

impl Limits {
    /// Takes a token from the caller's own bucket: a game server's is keyed by its subject
    /// in its own limiter, so it is limited neither like a player nor by one.
    fn take(&self, key: &Key) -> Result<(), Duration> {
        match key {
            Key::GameServer(subject) => self.game_servers.take(&format!("game-server:{subject}")),
            Key::Customer(who) => self.players.take(&format!("customer:{who}")),
            Key::Peer(addr) => self.players.take(&format!("peer:{addr}")),
        }
    }
}

/// Whose bucket a call takes from.
enum Key {
    GameServer(String),
    Customer(String),
    Peer(String),
}

#[derive(Clone)]
pub struct Proxy {
    upstreams: Arc<Upstreams>,
    limiter: Arc<Limits>,
}

impl Proxy {
    pub fn new(upstreams: Arc<Upstreams>, limiter: Arc<Limits>) -> Self {
        Self { upstreams, limiter }
    }
}

fn refuse(status: Status) -> Response {
    status.into_http()
}

impl Service<http::Request<axum::body::Body>> for Proxy {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<axum::body::Body>) -> Self::Future {
        let (upstreams, limiter) = (self.upstreams.clone(), self.limiter.clone());
        Box::pin(async move { Ok(forward(&upstreams, &limiter, req).await) })
    }
}

async fn forward(upstreams: &Upstreams, limiter: &Limits, req: http::Request<axum::body::Body>) -> Response {
    let service = req.uri().path().trim_start_matches('/').split('/').next().unwrap_or_default().to_owned();
    let Some(upstream) = upstreams.get(&service) else {
        return refuse(Status::unimplemented(format!("unknown service '{service}'")));
    };
    // Authenticated callers are limited per customer (game servers per subject, at their
    // own rate), anonymous ones per address.
    let key = match req.extensions().get::<Identity>() {
        Some(who) if who.role == auth_adapter::Role::GameServer => Key::GameServer(who.customer_id.clone()),
        Some(who) => Key::Customer(who.customer_id.clone()),
        None => {
            let peer = req.extensions().get::<tonic::transport::server::TcpConnectInfo>().and_then(|i| i.remote_addr());
            Key::Peer(peer.map(|a| a.ip().to_string()).unwrap_or_default())
        }
    };
    if let Err(wait) = limiter.take(&key) {
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
        let mut s = Status::resource_exhausted(format!("rate limit exceeded; try again in {seconds} s"));
        s.metadata_mut().insert("retry-after", seconds.into());
        return refuse(s);
    }
    let Some(endpoint) = upstream.pick() else {
        return refuse(Status::unavailable(format!("{service} has no endpoint; try again later")));
    };
    let (mut parts, body) = req.into_parts();
    if !parts.headers.contains_key("x-request-id")
        && let Ok(id) = uuid::Uuid::now_v7().to_string().parse()
    {
        parts.headers.insert("x-request-id", id);
    }
    let request = http::Request::from_parts(parts, Body::new(body));
    // A channel is a buffer: it must be polled ready before each call.
    match tower::ServiceExt::oneshot(endpoint.channel.clone(), request).await {
        Ok(response) => response,
        Err(e) => {
            tracing::warn!(service, url = endpoint.url, error = %e, "upstream call failed");
            endpoint.mark_unhealthy();
            refuse(Status::unavailable(format!("{service} is unavailable; try again later")))
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
        let limits =
            Limits { players: RateLimiter::new(1.0, 2.0).unwrap(), game_servers: RateLimiter::new(1.0, 50.0).unwrap() };
        for _ in 0..50 {
            limits.take(&Key::GameServer("studio".into())).expect("the game server's burst");
        }
        assert!(limits.take(&Key::GameServer("studio".into())).is_err());
        limits.take(&Key::GameServer("other-studio".into())).expect("each game server its own bucket");
        for _ in 0..2 {
            limits.take(&Key::Customer("studio".into())).expect("a player named like it is apart");
        }
        assert!(limits.take(&Key::Customer("studio".into())).is_err());
    }
}
