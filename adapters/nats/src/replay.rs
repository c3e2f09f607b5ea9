//! Replaying streams from their first event: a projection rebuilt (or a new one started)
//! reads every event its durable consumers read, through its own [`Handler`], until it
//! has caught up with the streams. What is published after that reaches it through its
//! live consumers; the caller arranges that they write where the replay writes before
//! it starts (see the mypage rebuild).
//!
//! Each stream is read through a consumer named after the durable ([`replay_name`]),
//! created with `deliver_policy` all and removed at the end (or, after a crash, by the
//! server once it has been idle for a minute, or by the next replay).

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use futures::{FutureExt, StreamExt};

use crate::consumer::{ConsumerSpec, Delivery, HandleError, Handler};
use crate::{envelope, streams};

/// Events read at once (several customers' events are handled together).
const BATCH: usize = 512;
/// Tries of a customer's events whose handler says "retry" before the replay gives up.
const TRIES: usize = 20;

/// The consumer a replay of `durable`'s events reads through.
pub fn replay_name(durable: &str) -> String {
    format!("{durable}-replay")
}

/// What a replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Events handled.
    pub events: u64,
    /// Events the handler rejected (they would have been dead-lettered live): skipped.
    pub rejected: u64,
}

/// Whether `spec`'s stream still holds its first event: `Some(why)` when it does not (it
/// expired events under its `max_age` / `max_bytes`, so a projection cannot get back what
/// they said).
///
/// # Errors
/// JetStream unreachable.
pub async fn missing_events(js: &jetstream::Context, spec: ConsumerSpec) -> Result<Option<String>, String> {
    let Ok(mut stream) = streams::existing(js, spec.stream).await else { return Ok(None) }; // never published to
    let state = stream.info().await.map_err(|e| format!("stream {}: {e}", spec.stream.name))?.state.clone();
    Ok((state.first_sequence > 1).then(|| {
        format!(
            "stream {} no longer holds events 1..{} (removed by its retention limits): what they said would be lost",
            spec.stream.name,
            state.first_sequence - 1
        )
    }))
}

/// Reads every stream of `specs` from its first event (one after another, in order) and
/// hands the events to `handler`, one customer's events together, until each stream is
/// caught up: every event published before the moment it was caught up was handled.
///
/// # Errors
/// JetStream unreachable, or a customer's events still failing after [`TRIES`] tries.
pub async fn replay<H: Handler>(
    js: &jetstream::Context,
    specs: &[ConsumerSpec],
    handler: &H,
) -> Result<Replayed, String> {
    let mut total = Replayed::default();
    for spec in specs {
        let done = replay_one(js, *spec, handler).await?;
        tracing::info!(consumer = spec.durable, events = done.events, rejected = done.rejected, "stream replayed");
        total.events += done.events;
        total.rejected += done.rejected;
    }
    Ok(total)
}

async fn replay_one<H: Handler>(js: &jetstream::Context, spec: ConsumerSpec, handler: &H) -> Result<Replayed, String> {
    let Ok(stream) = streams::existing(js, spec.stream).await else { return Ok(Replayed::default()) };
    let name = replay_name(spec.durable);
    // A replay that crashed left its consumer (until it expires): start afresh.
    let _ = stream.delete_consumer(&name).await;
    let consumer = stream
        .create_consumer(pull::Config {
            name: Some(name.clone()),
            filter_subject: spec.filter.to_owned(),
            deliver_policy: jetstream::consumer::DeliverPolicy::All,
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(60),
            max_ack_pending: 10_000,
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await
        .map_err(|e| format!("replay consumer {name}: {e}"))?;
    let result = if consumer.cached_info().num_pending == 0 {
        Ok(Replayed::default())
    } else {
        read_all(consumer, spec, handler).await
    };
    let _ = stream.delete_consumer(&name).await;
    result
}

async fn read_all<H: Handler>(
    consumer: jetstream::consumer::Consumer<pull::Config>,
    spec: ConsumerSpec,
    handler: &H,
) -> Result<Replayed, String> {
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(BATCH)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .map_err(|e| e.to_string())?;
    let mut done = Replayed::default();
    loop {
        let first = messages.next().await.ok_or("the replay's message stream ended")?.map_err(|e| e.to_string())?;
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match messages.next().now_or_never() {
                Some(Some(Ok(m))) => batch.push(m),
                Some(Some(Err(e))) => return Err(e.to_string()),
                _ => break,
            }
        }
        // Caught up when the server had nothing more to deliver after one of them.
        let caught_up = batch.iter().any(|m| m.info().is_ok_and(|i| i.pending == 0));
        let handled = handle_batch(spec, handler, &batch).await?;
        done.events += handled.events;
        done.rejected += handled.rejected;
        for m in &batch {
            // Acks are fire-and-forget; one that is lost is redelivered and handled again
            // (handlers are idempotent) unless the replay is over.
            let _ = m.ack().await;
        }
        if caught_up {
            return Ok(done);
        }
    }
}

/// Handles a batch: each customer's events together, the customers concurrently; a
/// customer whose events say "retry" is tried again, with a pause, up to [`TRIES`] times.
async fn handle_batch<H: Handler>(
    spec: ConsumerSpec,
    handler: &H,
    batch: &[jetstream::Message],
) -> Result<Replayed, String> {
    let mut by_customer: Vec<(String, Vec<Delivery>)> = Vec::new();
    let mut done = Replayed::default();
    for m in batch {
        let Ok((meta, event_type)) = envelope::meta(m.headers.as_ref()) else {
            done.rejected += 1;
            continue;
        };
        let customer = meta.customer_id.as_str().to_owned();
        let d = Delivery {
            meta,
            event_type,
            subject: m.subject.to_string(),
            payload: m.payload.clone(),
            delivered: 1,
            consumer: spec.durable,
        };
        match by_customer.iter_mut().find(|(c, _)| *c == customer) {
            Some((_, queue)) => queue.push(d),
            None => by_customer.push((customer, vec![d])),
        }
    }
    let outcomes =
        futures::future::join_all(by_customer.iter().map(|(_, queue)| handle_customer(handler, queue))).await;
    for outcome in outcomes {
        let (events, rejected) = outcome?;
        done.events += events;
        done.rejected += rejected;
    }
    Ok(done)
}

async fn handle_customer<H: Handler>(handler: &H, queue: &[Delivery]) -> Result<(u64, u64), String> {
    let mut pending: Vec<Delivery> = queue.to_vec();
    let mut rejected = 0;
    for attempt in 1..=TRIES {
        let outcomes = handler.handle_all(&pending).await;
        let mut again = Vec::new();
        let mut last = String::new();
        for (d, outcome) in
            pending.into_iter().zip(outcomes.into_iter().map(Some).chain(std::iter::repeat_with(|| None)))
        {
            match outcome {
                Some(Ok(())) => {}
                Some(Err(HandleError::Reject(reason))) => {
                    tracing::warn!(consumer = d.consumer, event_id = %d.meta.event_id, %reason, "replay skips an event it cannot handle");
                    rejected += 1;
                }
                Some(Err(HandleError::Retry(reason))) => {
                    last = reason;
                    again.push(d);
                }
                None => again.push(d),
            }
        }
        if again.is_empty() {
            return Ok((queue.len() as u64 - rejected, rejected));
        }
        if attempt == TRIES {
            return Err(format!("{} events could not be replayed: {last}", again.len()));
        }
        tokio::time::sleep(crate::consumer::redelivery_delay(i64::try_from(attempt).unwrap_or(1))).await;
        pending = again;
    }
    Ok((queue.len() as u64 - rejected, rejected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_reads_through_a_consumer_named_after_the_durable() {
        assert_eq!(replay_name("mypage-mission"), "mypage-mission-replay");
    }
}
