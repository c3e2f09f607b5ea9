//! The outbox relay: publishes committed events in commit order, many in flight at
//! once, each with its event id as `Nats-Msg-Id` so a republish after a crash is
//! dropped by JetStream's de-duplication; deletes a row only after JetStream acked it.

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use store_adapter::Store;
use tokio_util::sync::CancellationToken;

use crate::envelope;

/// Events claimed per pass; their publishes are all in flight together.
const BATCH: i64 = 512;
/// How long a claim holds if this process dies mid-publish.
const LEASE: Duration = Duration::from_secs(30);
/// Poll interval: covers commits made by other replicas (PostgreSQL).
const POLL: Duration = Duration::from_millis(250);

/// Publishes the outbox until `stopping`, then makes one last pass and returns.
pub async fn run(store: Store, client: async_nats::Client, js: jetstream::Context, stopping: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if stopping.is_cancelled() {
            // Flush what is committed, but do not hang the shutdown on a dead NATS.
            let _ = tokio::time::timeout(Duration::from_secs(2), pass(&store, &js)).await;
            return;
        }
        if !crate::connected(&client) {
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = stopping.cancelled() => {}
            }
            continue;
        }
        match pass(&store, &js).await {
            Ok(n) if n as i64 == BATCH => {}
            Ok(_) => {
                backoff = Duration::from_millis(100);
                tokio::select! {
                    () = store.appended() => {}
                    () = tokio::time::sleep(POLL) => {}
                    () = stopping.cancelled() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, ?backoff, "outbox relay pass failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = stopping.cancelled() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The producer span of one event, when traces are on: a child of the trace the event was
/// written in (its `traceparent`), named `<subject> publish` (OpenTelemetry's messaging
/// conventions); the message carries this span as its `traceparent`.
fn publish_span(
    m: &store_adapter::outbox::OutboxMessage,
    headers: &mut async_nats::HeaderMap,
) -> Option<tracing::Span> {
    if !telemetry_adapter::tracing_on() {
        return None;
    }
    let span = tracing::info_span!(
        "publish",
        otel.name = %format!("{} publish", m.subject),
        otel.kind = "producer",
        messaging.system = "nats",
        messaging.operation.type = "publish",
        messaging.destination.name = %m.subject,
        messaging.message.id = %m.event_id,
    );
    telemetry_adapter::child_of(&span, m.traceparent.as_deref());
    if let Some(tp) = telemetry_adapter::traceparent(&span) {
        headers.insert(envelope::TRACEPARENT, tp.as_str());
    }
    Some(span)
}

/// Samples the outbox's backlog (`outbox_pending`, `outbox_oldest_age_seconds`) every
/// `interval` until `stopping`, while metrics are on.
pub async fn watch_backlog(store: Store, interval: Duration, stopping: CancellationToken) {
    if !metrics_adapter::enabled() {
        return;
    }
    let backlog = metrics_adapter::outbox().backlog();
    loop {
        match store.outbox_backlog().await {
            Ok((pending, oldest)) => {
                let age = oldest.map_or(0.0, |t| (chrono::Utc::now().naive_utc() - t).as_seconds_f64().max(0.0));
                backlog.set(pending, age);
            }
            Err(e) => tracing::debug!(error = %e, "outbox backlog for metrics"),
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = stopping.cancelled() => return,
        }
    }
}

/// One pass: claim, publish all, await the acks, delete the acked, release the rest.
/// Returns how many events were published.
///
/// # Errors
/// When the store fails, or any publish failed (those events are released for retry).
pub async fn pass(store: &Store, js: &jetstream::Context) -> Result<usize, String> {
    let claimed = store.claim_outbox(BATCH, LEASE).await.map_err(|e| e.to_string())?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let mut in_flight = Vec::with_capacity(claimed.len());
    for p in &claimed {
        let m = &p.message;
        let mut headers = envelope::headers(m);
        let span = publish_span(m, &mut headers);
        let publish = PublishMessage::build().payload(m.payload.clone().into()).headers(headers);
        in_flight.push((p.seq, js.send_publish(m.subject.clone(), publish).await, span));
    }
    let (mut acked, mut failed, mut first_error) = (Vec::new(), Vec::new(), None);
    // Each publish span ends when JetStream acked (or refused) its message.
    for (seq, sent, _span) in in_flight {
        let result = match sent {
            Ok(ack) => ack.await.map(drop).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(()) => acked.push(seq),
            Err(e) => {
                failed.push(seq);
                first_error.get_or_insert(e);
            }
        }
    }
    let published = acked.len();
    metrics_adapter::outbox().relayed(published, failed.len());
    store.delete_outbox(acked).await.map_err(|e| e.to_string())?;
    store.release_outbox(failed).await.map_err(|e| e.to_string())?;
    match first_error {
        None => {
            tracing::debug!(published, "outbox relayed");
            Ok(published)
        }
        Some(e) => Err(format!("{published} published, the rest failed: {e}")),
    }
}
