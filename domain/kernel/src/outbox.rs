//! The transactional outbox as the relay sees it: events committed with the state change
//! that caused them, waiting to be published. The store adapter keeps them
//! (`store_adapter::outbox`); the NATS relay reads them through [`Outbox`], as the
//! application services read their stores through their ports.

use std::future::Future;
use std::time::Duration;

use chrono::{NaiveDateTime, SubsecRound as _};

use crate::{EventMeta, StoreError};

/// An event on its way out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    pub event_id: String,
    /// NATS subject, e.g. `game.mission.v1.achieved`.
    pub subject: String,
    /// Fully qualified protobuf message name of the payload.
    pub event_type: String,
    pub correlation_id: String,
    pub causation_id: String,
    pub customer_id: String,
    pub traceparent: Option<String>,
    pub occurred_at: NaiveDateTime,
    pub payload: Vec<u8>,
}

impl OutboxMessage {
    pub fn new(meta: &EventMeta, subject: &str, event_type: &str, payload: Vec<u8>) -> Self {
        Self {
            event_id: meta.event_id.to_string(),
            subject: subject.to_owned(),
            event_type: event_type.to_owned(),
            correlation_id: meta.correlation_id.clone(),
            causation_id: meta.causation_id.clone(),
            customer_id: meta.customer_id.to_string(),
            traceparent: meta.traceparent.clone(),
            // microseconds: what both backends keep
            occurred_at: meta.occurred_at.naive_utc().trunc_subsecs(6),
            payload,
        }
    }
}

/// An event claimed by a relay, with its position in commit order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub seq: i64,
    pub message: OutboxMessage,
}

/// The outbox a relay publishes from.
///
/// # Errors
/// Every method answers [`StoreError::Unavailable`] when the store cannot be used; a
/// relay tries again later.
pub trait Outbox: Send + Sync + 'static {
    /// Claims up to `limit` unclaimed (or lease-expired) events, oldest first, for
    /// `lease`: another relay (a replica) does not take them meanwhile.
    fn claim(&self, limit: i64, lease: Duration) -> impl Future<Output = Result<Vec<Pending>, StoreError>> + Send;

    /// Removes published events.
    fn delete(&self, seqs: Vec<i64>) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Gives claimed events back (publishing failed), so the next pass retries them.
    fn release(&self, seqs: Vec<i64>) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// How many events wait, and when the oldest of them occurred.
    fn backlog(&self) -> impl Future<Output = Result<(i64, Option<NaiveDateTime>), StoreError>> + Send;

    /// Resolves when an event was appended in this process (a relay waits for it instead
    /// of polling only).
    fn appended(&self) -> impl Future<Output = ()> + Send;
}
