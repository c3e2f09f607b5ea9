//! The shared kernel: the few types every bounded context speaks the same way.
//!
//! # Layout
//! - [`CustomerId`] ([`customer`]: one spelling per customer), [`parse_id`]: identifiers,
//!   validated once at the edge.
//! - [`request_id`], [`RequestReused`]: clients' idempotency keys and their one rule.
//! - [`EventMeta`], [`Envelope`]: what travels with every domain event (correlation,
//!   causation, trace context).
//! - [`Inbound`]: the identity of an event being handled, for idempotent consumers.
//! - [`RequestContext`]: who calls, the request id and the trace context of a request.
//! - [`StoreError`]: what a repository port may fail with; [`retry_on_conflict`]: the
//!   read-decide-write loop of optimistic concurrency.
//! - [`outbox`]: the events waiting to be published, as the relay reads them (a port).
//! - [`paging`]: pages of lists, newest first, with a keyset cursor.
//! - [`schedule`]: game days and weeks, when the economy's periods reset.

pub mod customer;
pub mod outbox;
pub mod paging;
pub mod schedule;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use customer::CustomerId;

/// Input that breaks a rule of the domain, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    pub field: &'static str,
    pub reason: String,
}

impl ValidationError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self { field, reason: reason.into() }
    }
}

/// Checks a catalog code (a mission's, a gift's): 1-64 characters of `a-z`, `0-9`, `-`, `_`.
///
/// # Errors
/// `field` when the code breaks the rule.
pub fn code(field: &'static str, raw: &str) -> Result<(), ValidationError> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err(ValidationError::new(field, "must be 1-64 characters of a-z, 0-9, '-' or '_'")) }
}

/// Checks a client's idempotency key: empty (none) or at most 128 printable bytes.
///
/// # Errors
/// `request_id` when it is too long or holds control characters.
pub fn request_id(raw: &str) -> Result<(), ValidationError> {
    if raw.len() > 128 || raw.chars().any(char::is_control) {
        return Err(ValidationError::new("request_id", "must be at most 128 printable bytes"));
    }
    Ok(())
}

/// A client's idempotency key sent again with different parameters. Payment APIs treat
/// it as a mistake, not as a new request nor as a repeat: answering the first result
/// would tell the client its new request succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("request id already used for another request")]
pub struct RequestReused;

/// Parses an id we generated (a UUID) from client input.
///
/// # Errors
/// `field` when the text is empty or not a UUID.
pub fn parse_id(field: &'static str, raw: &str) -> Result<Uuid, ValidationError> {
    if raw.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    Uuid::try_parse(raw).map_err(|_| ValidationError::new(field, "must be a UUID"))
}

/// A new time-ordered identifier (UUIDv7).
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// Metadata every event carries, whatever its context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMeta {
    /// Unique per event; also the broker's de-duplication id.
    pub event_id: Uuid,
    /// The whole chain's id: the mission that started it.
    pub correlation_id: String,
    /// The event or request that caused this event.
    pub causation_id: String,
    pub customer_id: CustomerId,
    /// W3C trace context of the request that started the chain, when there was one.
    pub traceparent: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

impl EventMeta {
    /// Metadata for the first event of a chain, caused by a request.
    pub fn first(correlation_id: Uuid, request_id: &str, customer_id: CustomerId, now: DateTime<Utc>) -> Self {
        Self {
            event_id: new_id(),
            correlation_id: correlation_id.to_string(),
            causation_id: request_id.to_owned(),
            customer_id,
            traceparent: None,
            occurred_at: now,
        }
    }

    /// Metadata for an event caused by `self`'s event: same chain, same trace.
    pub fn caused(&self, now: DateTime<Utc>) -> Self {
        Self {
            event_id: new_id(),
            correlation_id: self.correlation_id.clone(),
            causation_id: self.event_id.to_string(),
            customer_id: self.customer_id.clone(),
            traceparent: self.traceparent.clone(),
            occurred_at: now,
        }
    }
}

/// A domain event with its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<E> {
    pub meta: EventMeta,
    pub event: E,
}

/// The event a consumer is handling, recorded with its effect so a redelivery has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inbound {
    /// The durable consumer's name, e.g. `reward-allocate`.
    pub consumer: &'static str,
    pub event_id: Uuid,
}

/// What a request carries besides its message, read once at the edge (the gRPC adapter)
/// and passed to the application services as one value instead of one argument each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// Who calls: the subject of the caller's token (a customer, a service account), when
    /// the call was authenticated.
    pub caller: Option<String>,
    /// The request's id (`x-request-id`, set by the gateway when the client sent none):
    /// the cause of what the request starts.
    pub request_id: Option<String>,
    /// The W3C trace context of the call, carried into its events and outgoing calls.
    pub traceparent: Option<String>,
}

/// What a repository port may fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A row with the same unique key exists (including an inbox entry: the event was
    /// already handled).
    #[error("duplicate")]
    Duplicate,
    /// The aggregate changed since it was read (optimistic concurrency).
    #[error("concurrent modification")]
    Conflict,
    /// The store cannot be used now; the caller may retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// How often a read-decide-write runs before it gives up on a contended aggregate.
pub const CONFLICT_RETRIES: usize = 8;

/// Runs `attempt` — read an aggregate, decide, write it at the version it was read at —
/// again while its write loses to a concurrent one (optimistic concurrency), at most
/// `tries` times. `attempt` answers `Ok(None)` when its write found the version changed
/// ([`StoreError::Conflict`]): the next attempt reads again and decides again. Each
/// attempt is a new future (`move || async move { .. }` over references and copies).
///
/// # Errors
/// `attempt`'s error; [`StoreError::Conflict`] (converted) after `tries` conflicts.
pub async fn retry_on_conflict<T, E, F, Fut>(tries: usize, mut attempt: F) -> Result<T, E>
where
    E: From<StoreError>,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, E>>,
{
    for _ in 0..tries {
        if let Some(done) = attempt().await? {
            return Ok(done);
        }
    }
    Err(StoreError::Conflict.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_id_names_its_field() {
        assert_eq!(parse_id("mission_id", "nope").unwrap_err().field, "mission_id");
        assert_eq!(parse_id("mission_id", "").unwrap_err().field, "mission_id");
        let id = new_id();
        assert_eq!(parse_id("mission_id", &id.to_string()).unwrap(), id);
    }

    #[test]
    fn a_conflict_is_tried_again_until_the_write_wins_or_the_tries_run_out() {
        let calls = std::cell::Cell::new(0);
        let won = block_on(retry_on_conflict(8, || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move { Ok::<_, StoreError>((n == 3).then_some(n)) }
        }));
        assert_eq!(won, Ok(3));
        calls.set(0);
        let lost: Result<(), StoreError> = block_on(retry_on_conflict(4, || {
            calls.set(calls.get() + 1);
            async { Ok(None) }
        }));
        assert_eq!((lost, calls.get()), (Err(StoreError::Conflict), 4));
        let failed: Result<(), StoreError> =
            block_on(retry_on_conflict(4, || async { Err(StoreError::Unavailable("down".into())) }));
        assert_eq!(failed, Err(StoreError::Unavailable("down".into())));
    }

    /// Polls a future that never waits (the attempts above) to its end.
    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        loop {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    #[test]
    fn a_caused_event_keeps_the_chain_and_points_at_its_cause() {
        let first = EventMeta::first(new_id(), "req-1", CustomerId::new("c").unwrap(), Utc::now());
        let next = first.caused(Utc::now());
        assert_eq!(next.correlation_id, first.correlation_id);
        assert_eq!(next.causation_id, first.event_id.to_string());
        assert_ne!(next.event_id, first.event_id);
    }
}
