//! The outbound adapter to the gift service: a tonic client behind tower layers, outermost
//! first —
//! 1. load shedding: refuse at once when the in-flight limit is reached (Istio's
//!    `http2MaxRequests` with no pending queue), so a slow gift cannot pile up requests;
//! 2. concurrency limit: at most `max_in_flight` calls to gift at once;
//! 3. circuit breaker: fail fast while gift is failing or slow (shed requests never
//!    reach it, so they do not count against gift);
//! 4. deadline: a call taking longer fails (and counts as a failure and a slow call).
//!
//! It calls the internal `GiftIssuingService` as the wallet itself: with the wallet's own
//! service token ([`ServiceToken`]), never a customer's. Without a token yet, an exchange
//! is refused at once (try again shortly) and the gift service is not called.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use grpc_adapter::failover::Failover;
use grpc_adapter::pb::gift::v1 as pb;
use grpc_adapter::service_token::ServiceToken;
use kernel::RequestContext;
use pb::gift_issuing_service_client::GiftIssuingServiceClient;
use pb::gift_service_client::GiftServiceClient;
use resilience_adapter::{Breaker, BreakerConfig, BreakerOpen, CircuitBreakerLayer};
use tonic::{Code, Status};
use tower::util::BoxCloneSyncService;
use tower::{BoxError, ServiceBuilder, ServiceExt, service_fn};
use uuid::Uuid;
use wallet_domain::{GiftCallError, GiftIssuer, GiftRefusal, GiftRequest};

mod cancel;

/// How the wallet calls the gift service (flags or environment).
#[derive(Debug, Clone, clap::Args)]
pub struct GiftSettings {
    /// Address of the gift service; several replicas comma-separated: a call goes to
    /// the one that last answered, and to the next when that one cannot be reached.
    #[arg(long, env = "GIFT_URL", default_value = "http://127.0.0.1:50056")]
    pub gift_url: String,
    /// Deadline of one call to the gift service, in milliseconds.
    #[arg(long, env = "GIFT_DEADLINE_MS", default_value_t = 2000)]
    pub deadline_ms: u64,
    /// Calls in flight to the gift service before further exchanges are refused at once.
    #[arg(long, env = "GIFT_MAX_IN_FLIGHT", default_value_t = 64)]
    pub max_in_flight: usize,
    /// Failure rate (0-1) over the window that opens the breaker.
    #[arg(long, env = "BREAKER_FAILURE_RATE", default_value_t = 0.5)]
    pub failure_rate: f64,
    /// Slow-call rate (0-1) over the window that opens the breaker.
    #[arg(long, env = "BREAKER_SLOW_CALL_RATE", default_value_t = 0.5)]
    pub slow_call_rate: f64,
    /// A call taking at least this many milliseconds is slow.
    #[arg(long, env = "BREAKER_SLOW_CALL_MS", default_value_t = 1000)]
    pub slow_call_ms: u64,
    /// Calls in the sliding window.
    #[arg(long, env = "BREAKER_WINDOW", default_value_t = 20)]
    pub window: usize,
    /// Calls in the window before rates are judged.
    #[arg(long, env = "BREAKER_MIN_CALLS", default_value_t = 5)]
    pub min_calls: usize,
    /// Seconds the breaker stays open before probing.
    #[arg(long, env = "BREAKER_OPEN_SECONDS", default_value_t = 10.0)]
    pub open_seconds: f64,
    /// Probes allowed while half-open.
    #[arg(long, env = "BREAKER_HALF_OPEN_CALLS", default_value_t = 3)]
    pub half_open_calls: usize,
}

impl GiftSettings {
    /// # Errors
    /// A message naming the setting that is out of range.
    pub fn breaker(&self) -> Result<BreakerConfig, String> {
        let rate = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) && v > 0.0 { Ok(v) } else { Err(format!("{name} must be in (0, 1]")) }
        };
        if self.window == 0 || self.min_calls == 0 || self.half_open_calls == 0 || self.max_in_flight == 0 {
            return Err(
                "BREAKER_WINDOW, BREAKER_MIN_CALLS, BREAKER_HALF_OPEN_CALLS, GIFT_MAX_IN_FLIGHT must be positive"
                    .into(),
            );
        }
        Ok(BreakerConfig {
            failure_rate_threshold: rate("BREAKER_FAILURE_RATE", self.failure_rate)?,
            slow_call_rate_threshold: rate("BREAKER_SLOW_CALL_RATE", self.slow_call_rate)?,
            slow_call_duration: Duration::from_millis(self.slow_call_ms),
            window_size: self.window,
            minimum_calls: self.min_calls.min(self.window),
            open_duration: Duration::try_from_secs_f64(self.open_seconds)
                .map_err(|_| "BREAKER_OPEN_SECONDS must be >= 0")?,
            half_open_calls: self.half_open_calls,
        })
    }
}

type Call = BoxCloneSyncService<tonic::Request<pb::IssueGiftRequest>, pb::IssueGiftResponse, BoxError>;

/// How long the gift catalog's prices are kept before they are read again.
const PRICES_TTL: Duration = Duration::from_secs(5);

type Prices = Option<(Instant, Arc<HashMap<String, i64>>)>;

pub struct GiftClient {
    call: Call,
    breaker: Breaker,
    deadline: Duration,
    token: Arc<ServiceToken>,
    gifts: Arc<Failover>,
    /// The catalog's prices as last read (a spend's cost comes from the catalog, never
    /// from the request).
    prices: Mutex<Prices>,
}

/// Failures of the gift service itself; business refusals are answers, not failures.
///
/// A call past its deadline is a failure however it ends: our timeout layer's `Elapsed`,
/// tonic's own client-side timeout (the `grpc-timeout` we set), which it reports as
/// `CANCELLED: Timeout expired`, or gift's `DEADLINE_EXCEEDED`/`CANCELLED` when it gives
/// up first. Counted only as slow, a hung gift took many more calls to open the breaker.
/// (A call our own caller abandons is dropped and never classified.)
fn is_failure(result: &Result<pb::IssueGiftResponse, BoxError>) -> bool {
    result.as_ref().err().is_some_and(failed)
}

fn failed(e: &BoxError) -> bool {
    match e.downcast_ref::<Status>() {
        Some(s) => matches!(
            s.code(),
            Code::Unavailable
                | Code::DeadlineExceeded
                | Code::Cancelled
                | Code::ResourceExhausted
                | Code::Internal
                | Code::Unknown
        ),
        None => true, // deadline elapsed, transport
    }
}

impl GiftClient {
    /// # Errors
    /// When the URL or the breaker settings are invalid.
    pub fn new(settings: &GiftSettings, token: Arc<ServiceToken>) -> Result<Self, String> {
        let config = settings.breaker()?;
        let connect = Duration::from_millis(settings.deadline_ms.min(1000));
        let gifts = Arc::new(Failover::from_list("GIFT_URL", &settings.gift_url, |e| e.connect_timeout(connect))?);
        let breaker = Breaker::new("gift", config);
        let deadline = Duration::from_millis(settings.deadline_ms);
        let catalog = gifts.clone();
        let grpc = service_fn(move |req: tonic::Request<pb::IssueGiftRequest>| {
            let gifts = gifts.clone();
            // Sent again, to the next replica, only when it reached none.
            let (metadata, _, message) = req.into_parts();
            async move {
                gifts
                    .call(|channel| {
                        let req =
                            tonic::Request::from_parts(metadata.clone(), tonic::Extensions::new(), message.clone());
                        async move { GiftIssuingServiceClient::new(channel).issue_gift(req).await }
                    })
                    .await
                    .map(tonic::Response::into_inner)
            }
        });
        let stack = ServiceBuilder::new()
            .load_shed()
            .concurrency_limit(settings.max_in_flight)
            .layer(CircuitBreakerLayer::new(breaker.clone(), is_failure))
            .timeout(deadline)
            .service(grpc);
        Ok(Self {
            call: BoxCloneSyncService::new(stack.map_err(Into::into)),
            breaker,
            deadline,
            token,
            gifts: catalog,
            prices: Mutex::new(None),
        })
    }

    /// The catalog's prices: kept for [`PRICES_TTL`], read again from the gift service
    /// (its public `ListCatalog`) after that.
    async fn prices(&self) -> Result<Arc<HashMap<String, i64>>, GiftCallError> {
        let cached = self.prices.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        if let Some((at, prices)) = cached
            && at.elapsed() < PRICES_TTL
        {
            return Ok(prices);
        }
        // Under the breaker: while it is open nothing is asked; a failed read counts as
        // a failure of the gift service. A successful one is not recorded (the issuing
        // that follows is), so a slow catalog is not counted twice.
        let permit = self.breaker.acquire().map_err(|open| GiftCallError::Unavailable {
            retry_after: open.retry_after.max(Duration::from_secs(1)),
            reason: "circuit open".into(),
        })?;
        let deadline = self.deadline;
        let read = self.gifts.call(|channel| async move {
            let mut request = tonic::Request::new(pb::ListCatalogRequest {});
            request.set_timeout(deadline);
            GiftServiceClient::new(channel).list_catalog(request).await
        });
        let catalog = match tokio::time::timeout(deadline, read).await {
            Ok(Ok(answer)) => {
                drop(permit);
                answer.into_inner()
            }
            Ok(Err(status)) => {
                tracing::warn!(code = ?status.code(), message = status.message(), "gift catalog unreadable");
                let e: BoxError = Box::new(status);
                self.breaker.record(permit, failed(&e));
                return Err(self.unavailable(&e));
            }
            Err(elapsed) => {
                let e: BoxError = Box::new(elapsed);
                self.breaker.record(permit, true);
                return Err(self.unavailable(&e));
            }
        };
        let prices: Arc<HashMap<_, _>> =
            Arc::new(catalog.gifts.into_iter().map(|g| (g.gift_code, g.cost_points)).collect());
        *self.prices.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((Instant::now(), prices.clone()));
        Ok(prices)
    }

    /// The breaker around the gift service, for the handler reporting its state
    /// (`GetExchangeStatus`); clones share it.
    pub fn breaker(&self) -> Breaker {
        self.breaker.clone()
    }

    fn unavailable(&self, e: &BoxError) -> GiftCallError {
        let second = Duration::from_secs(1);
        if let Some(open) = e.downcast_ref::<BreakerOpen>() {
            return GiftCallError::Unavailable {
                retry_after: open.retry_after.max(second),
                reason: "circuit open".into(),
            };
        }
        let reason = if e.is::<tower::load_shed::error::Overloaded>() {
            metrics_adapter::breaker().shed();
            "too many exchanges in flight".to_owned()
        } else if e.is::<tower::timeout::error::Elapsed>() {
            "deadline exceeded".to_owned()
        } else {
            e.to_string()
        };
        // If that failure opened the breaker, say how long it stays open.
        let retry_after = self.breaker.snapshot().retry_after.max(second);
        GiftCallError::Unavailable { retry_after, reason }
    }
}

/// The span name of the call (`<service>/<method>`).
const ISSUE_GIFT: &str = "game.gift.v1.GiftIssuingService/IssueGift";

/// Try again after this long when the wallet has no usable service token.
const NO_TOKEN_RETRY: Duration = Duration::from_secs(1);

impl GiftIssuer for GiftClient {
    async fn cost(&self, gift_code: &str, _: &RequestContext) -> Result<i64, GiftCallError> {
        self.prices().await?.get(gift_code).copied().ok_or_else(|| GiftCallError::Invalid {
            field: "gift_code".into(),
            reason: format!("unknown gift '{gift_code}'"),
        })
    }

    async fn issue_gift(&self, r: GiftRequest, ctx: &RequestContext) -> Result<Uuid, GiftCallError> {
        let Some(token) = self.token.current() else {
            return Err(GiftCallError::Unavailable {
                retry_after: NO_TOKEN_RETRY,
                reason: "the wallet has no service token yet".into(),
            });
        };
        let mut request = tonic::Request::new(pb::IssueGiftRequest {
            customer_id: r.customer_id.to_string(),
            reward_id: r.reward_id.to_string(),
            gift_code: r.gift_code,
            points: r.points,
            mission_id: r.mission_id.to_string(),
        });
        request.set_timeout(self.deadline);
        // The call as a client span under the exchange, with the breaker's decision.
        let span = tracing::info_span!(
            "grpc.client",
            otel.name = ISSUE_GIFT,
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.service = pb::gift_issuing_service_server::SERVICE_NAME,
            rpc.method = "IssueGift",
            breaker.state = self.breaker.snapshot().state.label(),
        );
        telemetry_adapter::child_of(&span, ctx.traceparent.as_deref());
        let traceparent = telemetry_adapter::traceparent(&span).or_else(|| ctx.traceparent.clone());
        if let Some(tp) = traceparent.as_deref().and_then(|t| t.parse().ok()) {
            request.metadata_mut().insert("traceparent", tp);
        }
        if let Ok(bearer) = format!("Bearer {token}").parse() {
            request.metadata_mut().insert("authorization", bearer);
        }
        let response = match tracing::Instrument::instrument(self.call.clone().oneshot(request), span).await {
            Ok(r) => r,
            Err(e) => {
                return Err(match e.downcast_ref::<Status>() {
                    Some(s) if s.code() == Code::InvalidArgument => {
                        let (field, reason) = s.message().split_once(": ").unwrap_or(("request", s.message()));
                        GiftCallError::Invalid { field: field.to_owned(), reason: reason.to_owned() }
                    }
                    // Our own token was refused: never the customer's fault. Fetch another.
                    Some(s) if matches!(s.code(), Code::Unauthenticated | Code::PermissionDenied) => {
                        tracing::error!(code = ?s.code(), message = s.message(), "the gift service refused the wallet's service token");
                        self.token.invalidate();
                        GiftCallError::Unavailable {
                            retry_after: NO_TOKEN_RETRY,
                            reason: "service token refused".into(),
                        }
                    }
                    Some(s) if matches!(s.code(), Code::FailedPrecondition | Code::NotFound | Code::AlreadyExists) => {
                        GiftCallError::Refused(GiftRefusal {
                            message: s.message().to_owned(),
                            reason: grpc_adapter::status::error_info(s),
                        })
                    }
                    _ => {
                        tracing::warn!(error = %e, "gift call failed");
                        self.unavailable(&e)
                    }
                });
            }
        };
        let gift = response.gift.ok_or_else(|| GiftCallError::Unavailable {
            retry_after: Duration::from_secs(1),
            reason: "empty answer".into(),
        })?;
        Uuid::try_parse(&gift.gift_id).map_err(|_| GiftCallError::Unavailable {
            retry_after: Duration::from_secs(1),
            reason: "malformed gift id".into(),
        })
    }

    async fn cancel_gift(&self, gift_id: Uuid, ctx: &RequestContext) -> Result<(), GiftCallError> {
        self.cancel(gift_id, ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(e: impl Into<BoxError>) -> bool {
        is_failure(&Err(e.into()))
    }

    #[test]
    fn a_call_past_its_deadline_is_a_failure_however_it_ends() {
        // tonic's client-side timeout, as the wallet's client receives it
        assert!(failed(Status::from_error(Box::new(tonic::TimeoutExpired(())))));
        assert!(failed(Status::cancelled("Timeout expired")));
        assert!(failed(Status::deadline_exceeded("deadline")));
        let elapsed: BoxError = Box::new(tower::timeout::error::Elapsed::new());
        assert!(is_failure(&Err(elapsed)));
        assert!(failed(Status::unavailable("down")));
    }

    #[test]
    fn business_refusals_are_answers_not_failures() {
        for s in [
            Status::invalid_argument("gift_code: unknown gift"),
            Status::failed_precondition("not enough points"),
            Status::not_found("reward"),
            Status::already_exists("gift"),
            Status::permission_denied("no"),
        ] {
            assert!(!failed(s.clone()), "{s:?}");
        }
        assert!(!is_failure(&Ok(pb::IssueGiftResponse::default())));
    }
}
