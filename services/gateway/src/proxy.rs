//! Routing a gRPC call to its service (the rate limits were taken before its message was
//! read: [`crate::limit::admission`]), with the client's address passed on and a
//! deadline on the whole of it.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use grpc_adapter::peer::{self, FORWARDED_FOR, FORWARDER_TOKEN, TrustedProxies};
use grpc_adapter::server::Arrival;
use grpc_adapter::service_token::ServiceToken;
use tonic::Status;
use tonic::body::Body;
use tower::Service;

use crate::deadline::{self, DeadlineBody, GRPC_TIMEOUT};
use crate::limit::{AddressLimiter, TokenLimits};
use crate::upstream::Upstreams;

type Response = http::Response<Body>;

/// What the proxy needs besides the upstreams.
pub struct Policy {
    /// Calls with a token: per customer, or per game server at its own rate.
    pub with_token: TokenLimits,
    /// Calls without a token, per client address.
    pub anonymous: AddressLimiter,
    /// Proxies whose `x-forwarded-for` names the client.
    pub trusted: TrustedProxies,
    /// The deadline of a call whose client set none.
    pub default_deadline: Duration,
}

#[derive(Clone)]
pub struct Proxy {
    upstreams: Arc<Upstreams>,
    policy: Arc<Policy>,
    /// The gateway's own token, shown to the auth service (see [`FORWARDER_TOKEN`]).
    identity: Option<Arc<ServiceToken>>,
}

impl Proxy {
    pub fn new(upstreams: Arc<Upstreams>, policy: Arc<Policy>) -> Self {
        Self { upstreams, policy, identity: None }
    }

    #[must_use]
    pub fn with_identity(mut self, identity: Option<Arc<ServiceToken>>) -> Self {
        self.identity = identity;
        self
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
        let (upstreams, policy, identity) = (self.upstreams.clone(), self.policy.clone(), self.identity.clone());
        Box::pin(async move { Ok(forward(&upstreams, &policy, identity.as_deref(), req).await) })
    }
}

async fn forward(
    upstreams: &Upstreams,
    policy: &Policy,
    identity: Option<&ServiceToken>,
    req: http::Request<axum::body::Body>,
) -> Response {
    let service = req.uri().path().trim_start_matches('/').split('/').next().unwrap_or_default().to_owned();
    let Some(upstream) = upstreams.get(&service) else {
        return refuse(Status::unimplemented(format!("unknown service '{service}'")));
    };
    let client = peer::of_http(&req, &policy.trusted);
    let Some(endpoint) = upstream.pick() else {
        return refuse(Status::unavailable(format!("{service} has no endpoint; try again later")));
    };
    let (mut parts, body) = req.into_parts();
    let arrival = parts.extensions.get::<Arrival>().map_or_else(tokio::time::Instant::now, |a| a.0);
    let deadline = deadline_of(&mut parts, policy.default_deadline);
    if !parts.headers.contains_key("x-request-id")
        && let Ok(id) = uuid::Uuid::now_v7().to_string().parse()
    {
        parts.headers.insert("x-request-id", id);
    }
    // The address the client wrote is never passed on: services trust this header from us.
    parts.headers.remove(FORWARDED_FOR);
    if let Some(ip) = client
        && let Ok(value) = ip.to_string().parse()
    {
        parts.headers.insert(FORWARDED_FOR, value);
    }
    // Only the auth service counts client addresses, and only our token vouches for them.
    parts.headers.remove(FORWARDER_TOKEN);
    if service == contracts::services::AUTH.name
        && let Some(token) = identity.and_then(ServiceToken::current)
        && let Ok(value) = token.parse()
    {
        parts.headers.insert(FORWARDER_TOKEN, value);
    }
    let request = http::Request::from_parts(parts, Body::new(body));
    // A channel is a buffer: it must be polled ready before each call.
    let call = tower::ServiceExt::oneshot(endpoint.channel.clone(), request);
    let until = deadline.map(|d| arrival + d);
    let answer = match until {
        Some(until) => match tokio::time::timeout_at(until, call).await {
            Ok(answer) => answer,
            Err(_) => {
                tracing::info!(service, url = endpoint.url, "upstream call passed its deadline");
                return refuse(deadline::exceeded());
            }
        },
        None => call.await,
    };
    match answer {
        Ok(response) => match until {
            Some(until) => response.map(|b| Body::new(DeadlineBody::new(b, until))),
            None => response,
        },
        // The channel enforces the `grpc-timeout` we wrote, too, and may be first to.
        Err(e) if timed_out(&e) => {
            tracing::info!(service, url = endpoint.url, "upstream call passed its deadline");
            refuse(deadline::exceeded())
        }
        Err(e) => {
            tracing::warn!(service, url = endpoint.url, error = %e, "upstream call failed");
            endpoint.mark_unhealthy();
            refuse(Status::unavailable(format!("{service} is unavailable; try again later")))
        }
    }
}

/// Whether a failed call failed because its deadline passed.
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(e) = cause {
        if e.is::<tonic::TimeoutExpired>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// How much sooner than the client's deadline the gateway gives up on the upstream (as
/// Envoy's `grpc_timeout_header_offset`): the client then reads our `DEADLINE_EXCEEDED`
/// instead of its own timer's verdict or tonic's server timeout, which answers
/// `CANCELLED: Timeout expired` when the client's `grpc-timeout` passes.
const CLIENT_DEADLINE_OFFSET: Duration = Duration::from_millis(5);

/// The call's deadline — the client's (a little sooner), else `default` unless the
/// method streams its answer — written into the request's `grpc-timeout` for the
/// upstream to honour too.
fn deadline_of(parts: &mut http::request::Parts, default: Duration) -> Option<Duration> {
    let asked = parts.headers.get(GRPC_TIMEOUT).and_then(|v| v.to_str().ok()).and_then(deadline::parse);
    // An unreadable value is replaced, not passed on for the upstream to misread.
    parts.headers.remove(GRPC_TIMEOUT);
    let streams = grpc_adapter::methods::shape(parts.uri.path()).is_some_and(|s| s.server_streaming);
    let deadline = match asked {
        Some(asked) => asked.saturating_sub(CLIENT_DEADLINE_OFFSET).max(asked / 2),
        None if streams => return None,
        None => default,
    };
    if let Ok(value) = deadline::encode(deadline).parse() {
        parts.headers.insert(GRPC_TIMEOUT, value);
    }
    Some(deadline)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(path: &str, timeout: Option<&str>) -> http::request::Parts {
        let mut b = http::Request::builder().uri(path);
        if let Some(t) = timeout {
            b = b.header(GRPC_TIMEOUT, t);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_deadline_is_the_clients_else_the_default_except_for_a_stream_without_one() {
        let default = Duration::from_secs(10);
        let mut p = parts("/game.mission.v1.MissionService/AchieveMission", Some("250m"));
        assert_eq!(deadline_of(&mut p, default), Some(Duration::from_millis(245)), "a little sooner");
        assert_eq!(p.headers[GRPC_TIMEOUT], "245m", "and the upstream is told");
        let mut p = parts("/game.mission.v1.MissionService/AchieveMission", Some("4m"));
        assert_eq!(deadline_of(&mut p, default), Some(Duration::from_millis(2)), "never all of a short one");

        let mut p = parts("/game.mission.v1.MissionService/AchieveMission", None);
        assert_eq!(deadline_of(&mut p, default), Some(default));
        assert_eq!(p.headers[GRPC_TIMEOUT], "10000m", "the upstream is told");

        let mut p = parts("/game.mission.v1.MissionService/AchieveMission", Some("soon"));
        assert_eq!(deadline_of(&mut p, default), Some(default));
        assert_eq!(p.headers[GRPC_TIMEOUT], "10000m", "garbage replaced");

        let mut p = parts("/game.mypage.v1.MyPageService/WatchMyPage", None);
        assert_eq!(deadline_of(&mut p, default), None, "a watch lives as long as its client");
        assert!(!p.headers.contains_key(GRPC_TIMEOUT));

        let mut p = parts("/game.mypage.v1.MyPageService/WatchMyPage", Some("2S"));
        assert_eq!(deadline_of(&mut p, default), Some(Duration::from_millis(1995)), "unless the client set one");
    }
}
