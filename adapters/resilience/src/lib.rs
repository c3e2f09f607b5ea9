//! A circuit breaker in Resilience4j's model, as a tower layer.
//!
//! - **Closed**: calls pass; each outcome (failure or not, slow or not) goes into a
//!   count-based sliding window. Once the window holds `minimum_calls`, a failure rate or
//!   a slow-call rate at or above its threshold opens the breaker.
//! - **Open**: calls fail at once with [`BreakerOpen`], which says when to retry.
//! - **Half-open**: after `open_duration`, `half_open_calls` probes pass; if their
//!   failure and slow rates stay under the thresholds the breaker closes, else it opens
//!   again.
//!
//! Time is `tokio::time`, so tests run on paused time. What counts as a failure is the
//! caller's decision (a classifier), so business refusals can count as successes.
//!
//! # Layout
//! - [`Breaker`]: the state machine, shared by every clone of a guarded service.
//! - [`CircuitBreakerLayer`] / [`CircuitBreaker`]: the tower middleware around it.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tower::{BoxError, Layer, Service};

/// Thresholds, from configuration.
#[derive(Debug, Clone)]
pub struct BreakerConfig {
    /// Share of failed calls in the window (0..=1) that opens the breaker.
    pub failure_rate_threshold: f64,
    /// Share of slow calls in the window (0..=1) that opens the breaker.
    pub slow_call_rate_threshold: f64,
    /// A call taking at least this long is slow.
    pub slow_call_duration: Duration,
    /// Calls kept in the sliding window.
    pub window_size: usize,
    /// Calls needed in the window before rates are judged.
    pub minimum_calls: usize,
    /// How long the breaker stays open before probing.
    pub open_duration: Duration,
    /// Probes let through while half-open.
    pub half_open_calls: usize,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_rate_threshold: 0.5,
            slow_call_rate_threshold: 0.5,
            slow_call_duration: Duration::from_secs(1),
            window_size: 20,
            minimum_calls: 10,
            open_duration: Duration::from_secs(10),
            half_open_calls: 3,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

impl State {
    /// The state as the metrics' `state` / `to` label (`breaker_state{state="half_open"}`).
    pub fn label(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half-open",
        })
    }
}

/// Refusal while the breaker is open: try again after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerOpen {
    pub retry_after: Duration,
}

impl fmt::Display for BreakerOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "circuit breaker open; retry after {:?}", self.retry_after)
    }
}

impl std::error::Error for BreakerOpen {}

/// What the breaker shows of itself (for status endpoints and logs).
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub state: State,
    /// While open: time until probing starts.
    pub retry_after: Duration,
    pub failure_rate: f64,
    pub slow_call_rate: f64,
    pub calls_in_window: usize,
    pub rejected: u64,
    pub transitions: u64,
}

#[derive(Debug, Clone, Copy)]
struct Outcome {
    failed: bool,
    slow: bool,
}

#[derive(Debug)]
enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { admitted: usize, done: Vec<Outcome> },
}

#[derive(Debug)]
struct Machine {
    config: BreakerConfig,
    phase: Phase,
    window: VecDeque<Outcome>,
    rejected: u64,
    transitions: u64,
    /// Bumped on every transition, so a permit from an earlier phase is recognised.
    epoch: u64,
}

fn rates(outcomes: impl ExactSizeIterator<Item = Outcome> + Clone) -> (f64, f64) {
    let n = outcomes.len();
    if n == 0 {
        return (0.0, 0.0);
    }
    let failed = outcomes.clone().filter(|o| o.failed).count();
    let slow = outcomes.filter(|o| o.slow).count();
    (failed as f64 / n as f64, slow as f64 / n as f64)
}

impl Machine {
    fn state(&self) -> State {
        match self.phase {
            Phase::Closed => State::Closed,
            Phase::Open { .. } => State::Open,
            Phase::HalfOpen { .. } => State::HalfOpen,
        }
    }

    fn go(&mut self, name: &str, phase: Phase, why: &str) {
        let from = self.state();
        self.phase = phase;
        self.window.clear();
        self.transitions += 1;
        self.epoch += 1;
        let to = self.state();
        metrics_adapter::breaker().transition(to.label());
        if to == State::Open {
            tracing::warn!(breaker = name, %from, %to, why, "circuit breaker transition");
        } else {
            tracing::info!(breaker = name, %from, %to, why, "circuit breaker transition");
        }
    }

    fn trips(&self, failure_rate: f64, slow_rate: f64) -> bool {
        failure_rate >= self.config.failure_rate_threshold || slow_rate >= self.config.slow_call_rate_threshold
    }
}

/// The state machine; clones share it.
#[derive(Clone)]
pub struct Breaker {
    name: Arc<str>,
    machine: Arc<Mutex<Machine>>,
}

/// Leave to make one call. Record its outcome with [`Breaker::record`]; a permit
/// dropped unrecorded (a cancelled call) frees its half-open slot.
#[derive(Debug)]
pub struct Permit {
    breaker: Breaker,
    epoch: u64,
    started: Instant,
    recorded: bool,
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Breaker {
    pub fn new(name: &str, config: BreakerConfig) -> Self {
        let machine =
            Machine { config, phase: Phase::Closed, window: VecDeque::new(), rejected: 0, transitions: 0, epoch: 0 };
        metrics_adapter::breaker().show(State::Closed.label());
        Self { name: name.into(), machine: Arc::new(Mutex::new(machine)) }
    }

    fn lock(&self) -> MutexGuard<'_, Machine> {
        // A panic while holding the lock cannot leave the machine half-updated in a way
        // that matters more than refusing every call would.
        self.machine.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Asks to make a call.
    ///
    /// # Errors
    /// [`BreakerOpen`] while open, or while half-open with every probe slot taken.
    pub fn acquire(&self) -> Result<Permit, BreakerOpen> {
        let now = Instant::now();
        let mut m = self.lock();
        if let Phase::Open { until } = m.phase {
            if now < until {
                m.rejected += 1;
                metrics_adapter::breaker().rejected();
                return Err(BreakerOpen { retry_after: until - now });
            }
            m.go(&self.name, Phase::HalfOpen { admitted: 0, done: Vec::new() }, "open duration elapsed");
        }
        let limit = m.config.half_open_calls;
        let retry_after = m.config.open_duration.min(Duration::from_secs(1));
        if let Phase::HalfOpen { admitted, .. } = &mut m.phase {
            if *admitted >= limit {
                m.rejected += 1;
                metrics_adapter::breaker().rejected();
                return Err(BreakerOpen { retry_after });
            }
            *admitted += 1;
        }
        Ok(Permit { breaker: self.clone(), epoch: m.epoch, started: now, recorded: false })
    }

    /// Records how the permitted call went.
    pub fn record(&self, mut permit: Permit, failed: bool) {
        permit.recorded = true;
        let slow_threshold = self.lock().config.slow_call_duration;
        let outcome = Outcome { failed, slow: permit.started.elapsed() >= slow_threshold };
        let mut m = self.lock();
        if permit.epoch != m.epoch {
            return; // the call began in an earlier phase: it says nothing about this one
        }
        let open_until = Instant::now() + m.config.open_duration;
        match &mut m.phase {
            Phase::Closed => {
                m.window.push_back(outcome);
                while m.window.len() > m.config.window_size {
                    m.window.pop_front();
                }
                if m.window.len() >= m.config.minimum_calls {
                    let (f, s) = rates(m.window.iter().copied());
                    if m.trips(f, s) {
                        let why = format!("failure rate {:.0}%, slow-call rate {:.0}%", f * 100.0, s * 100.0);
                        m.go(&self.name, Phase::Open { until: open_until }, &why);
                    }
                }
            }
            Phase::HalfOpen { done, .. } => {
                done.push(outcome);
                let finished = done.len();
                let (f, s) = rates(done.iter().copied());
                if m.trips(f, s) {
                    m.go(&self.name, Phase::Open { until: open_until }, "a probe failed or was slow");
                } else if finished >= m.config.half_open_calls {
                    m.go(&self.name, Phase::Closed, "probes succeeded");
                }
            }
            Phase::Open { .. } => {}
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let now = Instant::now();
        let m = self.lock();
        let (state, retry_after) = match m.phase {
            Phase::Open { until } if now < until => (State::Open, until - now),
            // The next call will probe.
            Phase::Open { .. } => (State::HalfOpen, Duration::ZERO),
            _ => (m.state(), Duration::ZERO),
        };
        let (failure_rate, slow_call_rate) = rates(m.window.iter().copied());
        Snapshot {
            state,
            retry_after,
            failure_rate,
            slow_call_rate,
            calls_in_window: m.window.len(),
            rejected: m.rejected,
            transitions: m.transitions,
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.recorded {
            return;
        }
        let mut m = self.breaker.lock();
        if m.epoch == self.epoch
            && let Phase::HalfOpen { admitted, .. } = &mut m.phase
        {
            *admitted = admitted.saturating_sub(1);
        }
    }
}

/// Decides whether a call's result is a failure of the guarded dependency.
pub trait Classify<T>: Clone + Send + Sync + 'static {
    fn is_failure(&self, result: &Result<T, BoxError>) -> bool;
}

impl<T, F> Classify<T> for F
where
    F: Fn(&Result<T, BoxError>) -> bool + Clone + Send + Sync + 'static,
{
    fn is_failure(&self, result: &Result<T, BoxError>) -> bool {
        self(result)
    }
}

/// Wraps a service with a [`Breaker`].
#[derive(Clone)]
pub struct CircuitBreakerLayer<C> {
    breaker: Breaker,
    classify: C,
}

impl<C> CircuitBreakerLayer<C> {
    pub fn new(breaker: Breaker, classify: C) -> Self {
        Self { breaker, classify }
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreaker<S, C>;
    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreaker { inner, breaker: self.breaker.clone(), classify: self.classify.clone() }
    }
}

#[derive(Clone)]
pub struct CircuitBreaker<S, C> {
    inner: S,
    breaker: Breaker,
    classify: C,
}

impl<S, C, Req> Service<Req> for CircuitBreaker<S, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    C: Classify<S::Response>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let permit = match self.breaker.acquire() {
            Ok(p) => p,
            Err(open) => return Box::pin(std::future::ready(Err(Box::new(open) as BoxError))),
        };
        let fut = self.inner.call(req);
        let (breaker, classify) = (self.breaker.clone(), self.classify.clone());
        Box::pin(async move {
            let result = fut.await.map_err(Into::into);
            breaker.record(permit, classify.is_failure(&result));
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use tower::{ServiceExt, service_fn};

    use super::*;

    fn config() -> BreakerConfig {
        BreakerConfig {
            failure_rate_threshold: 0.5,
            slow_call_rate_threshold: 0.5,
            slow_call_duration: Duration::from_millis(500),
            window_size: 10,
            minimum_calls: 4,
            open_duration: Duration::from_secs(10),
            half_open_calls: 2,
        }
    }

    /// A dependency whose answer (and delay) the test decides per call.
    type Guarded = tower::util::BoxCloneService<(bool, u64), (), BoxError>;

    fn guarded(b: &Breaker) -> Guarded {
        let dep = service_fn(|(fail, delay_ms): (bool, u64)| async move {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            if fail { Err::<(), BoxError>("down".into()) } else { Ok(()) }
        });
        Guarded::new(CircuitBreakerLayer::new(b.clone(), |r: &Result<(), BoxError>| r.is_err()).layer(dep))
    }

    async fn call(svc: &mut Guarded, fail: bool, delay_ms: u64) -> Result<(), BoxError> {
        svc.clone().oneshot((fail, delay_ms)).await
    }

    fn is_open(r: &Result<(), BoxError>) -> bool {
        r.as_ref().err().is_some_and(|e| e.is::<BreakerOpen>())
    }

    #[tokio::test(start_paused = true)]
    async fn given_a_closed_breaker_when_half_the_calls_fail_then_it_opens() {
        let b = Breaker::new("t", config());
        let mut svc = guarded(&b);
        for fail in [false, true, false] {
            let _ = call(&mut svc, fail, 0).await;
        }
        assert_eq!(b.snapshot().state, State::Closed, "fewer than minimum_calls: not judged yet");
        let _ = call(&mut svc, true, 0).await;
        let s = b.snapshot();
        assert_eq!((s.state, s.transitions), (State::Open, 1));
        assert_eq!(s.retry_after, Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn given_an_open_breaker_calls_fail_fast_without_reaching_the_dependency() {
        let b = Breaker::new("t", config());
        let mut svc = guarded(&b);
        for _ in 0..4 {
            let _ = call(&mut svc, true, 0).await;
        }
        tokio::time::advance(Duration::from_secs(3)).await;
        let started = Instant::now();
        let r = call(&mut svc, false, 5_000).await;
        assert!(is_open(&r));
        assert_eq!(started.elapsed(), Duration::ZERO, "no call was made");
        let open = r.unwrap_err().downcast::<BreakerOpen>().unwrap();
        assert_eq!(open.retry_after, Duration::from_secs(7));
        assert_eq!(b.snapshot().rejected, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn given_an_open_breaker_when_the_open_period_ends_successful_probes_close_it() {
        let b = Breaker::new("t", config());
        let mut svc = guarded(&b);
        for _ in 0..4 {
            let _ = call(&mut svc, true, 0).await;
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        call(&mut svc, false, 0).await.unwrap();
        assert_eq!(b.snapshot().state, State::HalfOpen);
        call(&mut svc, false, 0).await.unwrap();
        assert_eq!(b.snapshot().state, State::Closed);
        call(&mut svc, false, 0).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn given_a_half_open_breaker_a_failed_probe_opens_it_again() {
        let b = Breaker::new("t", config());
        let mut svc = guarded(&b);
        for _ in 0..4 {
            let _ = call(&mut svc, true, 0).await;
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(call(&mut svc, true, 0).await.is_err());
        let s = b.snapshot();
        assert_eq!((s.state, s.retry_after), (State::Open, Duration::from_secs(10)));
        assert!(is_open(&call(&mut svc, false, 0).await));
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_admits_only_its_probes_at_once() {
        let b = Breaker::new("t", config());
        let mut svc = guarded(&b);
        for _ in 0..4 {
            let _ = call(&mut svc, true, 0).await;
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        let p1 = tokio::spawn(svc.clone().oneshot((false, 100)));
        let p2 = tokio::spawn(svc.clone().oneshot((false, 100)));
        tokio::task::yield_now().await;
        assert!(is_open(&call(&mut svc, false, 0).await), "a third call waits for the probes");
        p1.await.unwrap().unwrap();
        p2.await.unwrap().unwrap();
        assert_eq!(b.snapshot().state, State::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn slow_calls_open_the_breaker_even_when_they_succeed() {
        let b = Breaker::new("t", config());
        let mut svc = guarded(&b);
        for delay in [600, 10, 700, 800] {
            call(&mut svc, false, delay).await.unwrap();
        }
        let s = b.snapshot();
        assert_eq!(s.state, State::Open, "3 of 4 calls were slow");
    }

    #[tokio::test(start_paused = true)]
    async fn calls_the_classifier_calls_fine_never_open_it() {
        let b = Breaker::new("t", config());
        let dep = service_fn(|_: ()| async { Err::<(), BoxError>("not enough points".into()) });
        let svc = CircuitBreakerLayer::new(b.clone(), |_: &Result<(), BoxError>| false).layer(dep);
        for _ in 0..20 {
            let _ = svc.clone().oneshot(()).await;
        }
        assert_eq!(b.snapshot().state, State::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_probe_frees_its_slot() {
        let b = Breaker::new("t", config());
        let mut svc = guarded(&b);
        for _ in 0..4 {
            let _ = call(&mut svc, true, 0).await;
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        let slow = tokio::spawn(svc.clone().oneshot((false, 10_000)));
        let slower = tokio::spawn(svc.clone().oneshot((false, 10_000)));
        tokio::task::yield_now().await;
        slow.abort();
        slower.abort();
        let _ = (slow.await, slower.await);
        call(&mut svc, false, 0).await.expect("the slots were freed");
    }
}
