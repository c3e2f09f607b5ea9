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
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

mod layer;
pub use layer::{CircuitBreaker, CircuitBreakerLayer, Classify};

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
        // The window that opened it stays until it closes again: while open or half-open,
        // the figures shown are the ones that tripped it, not an empty window.
        if matches!(phase, Phase::Closed) {
            self.window.clear();
        }
        self.phase = phase;
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
        let before = m.epoch;
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
        if let Phase::Open { until } = m.phase
            && m.epoch != before
        {
            let epoch = m.epoch;
            drop(m);
            self.half_open_when_due(epoch, until);
        }
    }

    /// Goes half-open when the open period ends even if no call comes to probe, so that
    /// `breaker_state` and the "breaker open for 5 minutes" alert tell the truth on a
    /// quiet system (the next call is let through as a probe either way).
    fn half_open_when_due(&self, epoch: u64, until: Instant) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let breaker = self.clone();
        runtime.spawn(async move {
            tokio::time::sleep_until(until).await;
            let mut m = breaker.lock();
            if m.epoch == epoch && matches!(m.phase, Phase::Open { .. }) {
                m.go(&breaker.name, Phase::HalfOpen { admitted: 0, done: Vec::new() }, "open duration elapsed");
            }
        });
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

#[cfg(test)]
mod tests;
