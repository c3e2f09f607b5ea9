//! Durable pull consumers: one `filter_subject` each, explicit ack only after the
//! handler committed, redelivery with backoff, and the dead-letter stream for events
//! that can never be handled. Replicas of a service bind the same durable consumer, so
//! they share the work; a restarted one resumes where the durable stopped.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull, message::PublishMessage};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use kernel::{EventMeta, Inbound};
use metrics_adapter::Outcome;
use tokio_util::sync::CancellationToken;

use crate::NatsSettings;
use crate::envelope;
use crate::streams;

/// A durable consumer: its name is `<consumer-context>-<policy>` (declared in the role
/// table).
pub use contracts::roles::ConsumerSpec;

/// One delivered event.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub meta: EventMeta,
    pub event_type: String,
    pub subject: String,
    pub payload: Bytes,
    /// 1 on first delivery.
    pub delivered: i64,
    pub consumer: &'static str,
}

impl Delivery {
    /// The inbox key of this event for this consumer.
    pub fn inbound(&self) -> Inbound {
        Inbound { consumer: self.consumer, event_id: self.meta.event_id }
    }
}

/// Why a handler did not handle an event.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Try again later (a dependency is down, or what the event refers to is not there yet).
    #[error("retry: {0}")]
    Retry(String),
    /// Can never be handled (undecodable, breaks a rule): dead-letter it.
    #[error("reject: {0}")]
    Reject(String),
}

/// Handles events; must be idempotent (the inbox makes it so).
pub trait Handler: Send + Sync + 'static {
    /// Most events handled at once (of different customers). Their writes meet in the
    /// store's group commit, so a backlog drains in a few transactions instead of one per
    /// event. A handler that calls something outside (an SMTP server) takes fewer.
    const IN_HAND: usize = 128;

    fn handle(&self, delivery: &Delivery) -> impl Future<Output = Result<(), HandleError>> + Send;

    /// Handles one customer's events, in delivery order, with one outcome per event.
    /// By default one after another; a handler that can fold several events into one
    /// write overrides it.
    fn handle_all(&self, deliveries: &[Delivery]) -> impl Future<Output = Vec<Result<(), HandleError>>> + Send {
        async move {
            let mut outcomes = Vec::with_capacity(deliveries.len());
            for d in deliveries {
                outcomes.push(self.handle(d).await);
            }
            outcomes
        }
    }
}

/// How long a consumer waits quietly (INFO) at start for its stream, which its publisher
/// creates when it starts (on a first start, maybe after the consumer): a wait past it is
/// a WARN, as is any interruption once it has consumed.
pub const EXPECTED_WAIT: Duration = Duration::from_secs(30);

/// Consumes until `stopping`; finishes the events in hand before returning.
pub async fn run<H: Handler>(
    js: jetstream::Context,
    settings: NatsSettings,
    spec: ConsumerSpec,
    handler: Arc<H>,
    stopping: CancellationToken,
) {
    const FIRST_BACKOFF: Duration = Duration::from_millis(200);
    let mut backoff = FIRST_BACKOFF;
    // Until it first binds: the stream's publisher may be starting beside it.
    let mut starting = Some(tokio::time::Instant::now());
    while !stopping.is_cancelled() {
        let mut bound = false;
        match consume(&js, &settings, spec, handler.as_ref(), &stopping, &mut bound).await {
            Ok(()) => return,
            Err(e) => {
                if bound {
                    // It consumed until now: a new fault, not the same one again.
                    backoff = FIRST_BACKOFF;
                    starting = None;
                }
                if starting.is_some_and(|t| t.elapsed() < EXPECTED_WAIT) {
                    tracing::info!(consumer = spec.durable, error = %e, ?backoff, "waiting for the stream to bind to");
                } else {
                    tracing::warn!(consumer = spec.durable, error = %e, ?backoff, "consumer interrupted; rebinding");
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = stopping.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Creates (or binds) the durable consumer on the producer's stream, which it waits for
/// rather than creates (a reader has no right over another role's stream), and makes
/// sure the dead-letter stream exists.
///
/// # Errors
/// When the producer's stream does not exist yet, or JetStream cannot be reached.
pub async fn bind(
    js: &jetstream::Context,
    settings: &NatsSettings,
    spec: ConsumerSpec,
) -> Result<jetstream::consumer::Consumer<pull::Config>, String> {
    let stream = streams::existing(js, spec.stream).await?;
    streams::ensure_limited(js, streams::DEAD_LETTER, settings.stream_replicas, settings.deadletter_limits()).await?;
    stream
        .get_or_create_consumer(
            spec.durable,
            pull::Config {
                durable_name: Some(spec.durable.to_owned()),
                filter_subject: spec.filter.to_owned(),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(settings.ack_wait_seconds.max(1)),
                max_deliver: settings.max_deliver.max(1),
                max_ack_pending: 10_000,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| format!("consumer {}: {e}", spec.durable))
}

/// What settling an event needs: where to ack and dead-letter, and the redelivery limits.
#[derive(Clone, Copy)]
struct Settler<'a> {
    js: &'a jetstream::Context,
    settings: &'a NatsSettings,
    spec: ConsumerSpec,
    /// When the events in hand arrived (their handle time runs from there).
    received: tokio::time::Instant,
}

async fn consume<H: Handler>(
    js: &jetstream::Context,
    settings: &NatsSettings,
    spec: ConsumerSpec,
    handler: &H,
    stopping: &CancellationToken,
    bound: &mut bool,
) -> Result<(), String> {
    let consumer = bind(js, settings, spec).await?;
    let mut messages = consumer
        .stream()
        // Pulls of a few dozen: replicas of a service share the work instead of one
        // hoarding it, and a backlog still arrives in batches worth handling together.
        .max_messages_per_batch(64)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .map_err(|e| e.to_string())?;
    *bound = true;
    tracing::info!(consumer = spec.durable, filter = spec.filter, "consuming");
    metrics_adapter::consumers().declare(spec.durable);
    loop {
        let next = tokio::select! {
            next = messages.next() => next,
            () = stopping.cancelled() => {
                hand_back(spec, &mut messages).await;
                return Ok(());
            }
        };
        let received = tokio::time::Instant::now();
        let mut in_hand = vec![delivered(next)?];
        // Whatever else has already arrived is handled together with it.
        let mut interrupted = None;
        while in_hand.len() < H::IN_HAND.max(1) {
            match messages.next().now_or_never() {
                None => break,
                Some(next) => match delivered(next) {
                    Ok(m) => in_hand.push(m),
                    Err(e) => {
                        interrupted = Some(e);
                        break;
                    }
                },
            }
        }
        settle_all(Settler { js, settings, spec, received }, handler, in_hand).await;
        if let Some(e) = interrupted {
            return Err(e);
        }
    }
}

/// On shutdown: the events already delivered to this replica but not taken in hand are
/// handed back (nak, no delay), so another replica gets them now rather than after
/// `ack_wait`.
async fn hand_back(spec: ConsumerSpec, messages: &mut pull::Stream) {
    let mut handed_back = 0;
    while let Some(Some(Ok(m))) = messages.next().now_or_never() {
        if m.ack_with(AckKind::Nak(None)).await.is_ok() {
            handed_back += 1;
        }
    }
    if handed_back > 0 {
        tracing::info!(consumer = spec.durable, handed_back, "events not handled handed back on shutdown");
    }
}

fn delivered(next: Option<Result<jetstream::Message, impl std::fmt::Display>>) -> Result<jetstream::Message, String> {
    match next {
        Some(Ok(m)) => Ok(m),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("message stream ended".into()),
    }
}

/// Handles `messages` concurrently, except that one customer's events are handled one
/// after another in delivery order (the order a single consumer used to give them).
async fn settle_all<H: Handler>(to: Settler<'_>, handler: &H, messages: Vec<jetstream::Message>) {
    let mut by_customer: Vec<(String, Vec<jetstream::Message>)> = Vec::new();
    for m in messages {
        let customer = m
            .headers
            .as_ref()
            .and_then(|h| h.get(envelope::CUSTOMER_ID))
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        match by_customer.iter_mut().find(|(c, _)| *c == customer) {
            Some((_, queue)) => queue.push(m),
            None => by_customer.push((customer, vec![m])),
        }
    }
    futures::future::join_all(by_customer.into_iter().map(|(_, queue)| settle_one_customer(to, handler, queue))).await;
}

/// Handles one customer's events and acknowledges each by its outcome.
async fn settle_one_customer<H: Handler>(to: Settler<'_>, handler: &H, messages: Vec<jetstream::Message>) {
    let mut outcomes: Vec<Option<Result<(), HandleError>>> = Vec::with_capacity(messages.len());
    let mut deliveries = Vec::with_capacity(messages.len());
    // The process spans (one per event, when traces are on) end once their events are
    // settled, with the outcome on them.
    let mut spans = Vec::with_capacity(messages.len());
    for message in &messages {
        match envelope::meta(message.headers.as_ref()) {
            Err(e) => {
                outcomes.push(Some(Err(HandleError::Reject(e.to_string()))));
                spans.push(None);
            }
            Ok((mut meta, event_type)) => {
                spans.push(process_span(to.spec, &message.subject, &mut meta));
                deliveries.push(Delivery {
                    meta,
                    event_type,
                    subject: message.subject.to_string(),
                    payload: message.payload.clone(),
                    delivered: delivered_count(message),
                    consumer: to.spec.durable,
                });
                outcomes.push(None);
            }
        }
    }
    let mut handled = handler.handle_all(&deliveries).await.into_iter();
    for ((message, outcome), span) in messages.into_iter().zip(outcomes).zip(spans) {
        let outcome = outcome
            .or_else(|| handled.next())
            .unwrap_or_else(|| Err(HandleError::Retry(format!("{} gave fewer outcomes than events", to.spec.durable))));
        if let (Some(span), Err(HandleError::Retry(why) | HandleError::Reject(why))) = (&span, &outcome) {
            // A handler that failed makes its process span an error (redelivered or
            // dead-lettered: the `consumer_handled_total` outcome says which).
            span.record("otel.status_code", "ERROR");
            span.record("otel.status_description", why.as_str());
        }
        settle(to, message, outcome).await;
    }
}

/// The consumer span of one event, when traces are on: a child of its producer span (the
/// message's `traceparent`), named `<subject> process`; the events the handler causes
/// carry this span as their `traceparent` (through `meta`).
fn process_span(spec: ConsumerSpec, subject: &str, meta: &mut EventMeta) -> Option<tracing::Span> {
    if !telemetry_adapter::tracing_on() {
        return None;
    }
    let span = tracing::info_span!(
        "process",
        otel.name = %format!("{subject} process"),
        otel.kind = "consumer",
        messaging.system = "nats",
        messaging.operation.type = "process",
        messaging.destination.name = %subject,
        messaging.consumer.group.name = spec.durable,
        messaging.message.id = %meta.event_id,
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
    );
    telemetry_adapter::child_of(&span, meta.traceparent.as_deref());
    if let Some(tp) = telemetry_adapter::traceparent(&span) {
        meta.traceparent = Some(tp);
    }
    Some(span)
}

fn delivered_count(message: &jetstream::Message) -> i64 {
    message.info().map(|i| i.delivered).unwrap_or(1)
}

/// Acknowledges one event by its outcome: ack, redeliver later, or dead-letter.
async fn settle(to: Settler<'_>, message: jetstream::Message, outcome: Result<(), HandleError>) {
    let Settler { js, settings, spec, received } = to;
    let delivered = delivered_count(&message);
    let (ack, counted) = match outcome {
        Ok(()) => {
            tracing::debug!(consumer = spec.durable, subject = %message.subject, delivered, "event handled");
            let event_id = message.headers.as_ref().and_then(|h| h.get(envelope::EVENT_ID)).map(|v| v.as_str());
            let duplicate = event_id.is_some_and(|id| metrics_adapter::duplicates::take(spec.durable, id));
            (AckKind::Ack, if duplicate { Outcome::Duplicate } else { Outcome::Ok })
        }
        Err(HandleError::Retry(reason)) if delivered < settings.max_deliver => {
            let delay = redelivery_delay(delivered);
            tracing::info!(consumer = spec.durable, delivered, ?delay, %reason, "event will be redelivered");
            (AckKind::Nak(Some(delay)), Outcome::Retry)
        }
        Err(HandleError::Retry(reason) | HandleError::Reject(reason)) => {
            match dead_letter(js, spec, &message, &reason, delivered).await {
                Ok(()) => {
                    tracing::error!(consumer = spec.durable, delivered, %reason, "event dead-lettered");
                    (AckKind::Term, Outcome::DeadLetter)
                }
                Err(e) => {
                    tracing::warn!(consumer = spec.durable, error = %e, "dead-letter publish failed");
                    (AckKind::Nak(Some(redelivery_delay(delivered))), Outcome::Retry)
                }
            }
        }
    };
    metrics_adapter::consumers().settled(spec.durable, counted, received.elapsed().as_secs_f64());
    if let Err(e) = message.ack_with(ack).await {
        // The event will be redelivered after ack_wait; the inbox absorbs it.
        tracing::warn!(consumer = spec.durable, error = %e, "ack failed");
    }
}

/// 100 ms, 200 ms, 400 ms ... at most 30 s.
pub fn redelivery_delay(delivered: i64) -> Duration {
    let exp = u32::try_from(delivered.clamp(1, 20) - 1).unwrap_or(0);
    (Duration::from_millis(100) * 2u32.pow(exp)).min(Duration::from_secs(30))
}

pub const DEAD_LETTER_REASON: &str = "Game-Dead-Letter-Reason";
pub const DEAD_LETTER_CONSUMER: &str = "Game-Dead-Letter-Consumer";
pub const DEAD_LETTER_SUBJECT: &str = "Game-Dead-Letter-Subject";
/// The event's sequence number in its own stream: a redrive reads the event back from
/// there (`crate::dlq`), so a dead letter names an event but never supplies one.
pub const DEAD_LETTER_SEQUENCE: &str = "Game-Dead-Letter-Stream-Sequence";

async fn dead_letter(
    js: &jetstream::Context,
    spec: ConsumerSpec,
    message: &jetstream::Message,
    reason: &str,
    delivered: i64,
) -> Result<(), String> {
    let mut headers = message.headers.clone().unwrap_or_default();
    let original_id = headers.get(envelope::MSG_ID).map(|v| v.as_str().to_owned()).unwrap_or_default();
    headers.insert(envelope::MSG_ID, format!("{}-{original_id}-{delivered}", spec.durable).as_str());
    headers.insert(DEAD_LETTER_REASON, reason.replace(['\r', '\n'], " ").as_str());
    headers.insert(DEAD_LETTER_CONSUMER, spec.durable);
    headers.insert(DEAD_LETTER_SUBJECT, message.subject.as_str());
    if let Ok(info) = message.info() {
        headers.insert(DEAD_LETTER_SEQUENCE, info.stream_sequence.to_string().as_str());
    }
    let publish = PublishMessage::build().payload(message.payload.clone()).headers(headers);
    js.send_publish(streams::dead_letter_subject(spec.durable), publish)
        .await
        .map_err(|e| e.to_string())?
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redelivery_backs_off_exponentially_up_to_a_bound() {
        assert_eq!(redelivery_delay(1), Duration::from_millis(100));
        assert_eq!(redelivery_delay(3), Duration::from_millis(400));
        assert_eq!(redelivery_delay(50), Duration::from_secs(30));
    }
}
