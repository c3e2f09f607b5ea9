//! The outbox relay: publishes committed events in commit order, many in flight at
//! once, each with its event id as `Nats-Msg-Id` so a republish after a crash is
//! dropped by JetStream's de-duplication; deletes a row only after JetStream acked it.

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use kernel::outbox::{Outbox, OutboxMessage};
use tokio_util::sync::CancellationToken;

use crate::envelope;

/// Events claimed per pass; their publishes are all in flight together.
const BATCH: i64 = 512;
/// How long a claim holds if this process dies mid-publish.
const LEASE: Duration = Duration::from_secs(30);
/// Poll interval: covers commits made by other replicas (PostgreSQL).
const POLL: Duration = Duration::from_millis(250);

/// Publishes the outbox until `stopping`, then makes one last pass and returns.
pub async fn run(store: impl Outbox, client: async_nats::Client, js: jetstream::Context, stopping: CancellationToken) {
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
fn publish_span(m: &OutboxMessage, headers: &mut async_nats::HeaderMap) -> Option<tracing::Span> {
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
pub async fn watch_backlog(store: impl Outbox, interval: Duration, stopping: CancellationToken) {
    if !metrics_adapter::enabled() {
        return;
    }
    let backlog = metrics_adapter::outbox().backlog();
    loop {
        match store.backlog().await {
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
/// The acks are awaited together: each has its own timeout (the JetStream context's, 5 s
/// by default), which starts when it is awaited, so awaiting them one after another
/// would add those timeouts up. When the stream's leader is lost with events in flight
/// (killed, or frozen with the client's socket still open), none of their acks come, and
/// a pass of n events in flight stalled n x 5 s before it released them: with 20 in
/// flight the flow stopped for 100 s. Awaited together, a pass lasts at most one
/// timeout; the events without an ack are released and published again (the same
/// `Nats-Msg-Id`: JetStream drops the copy of one it had stored).
///
/// # Errors
/// When the store fails, or any publish failed (those events are released for retry).
pub async fn pass(store: &impl Outbox, js: &jetstream::Context) -> Result<usize, String> {
    let claimed = store.claim(BATCH, LEASE).await.map_err(|e| e.to_string())?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let began = std::time::Instant::now();
    let mut in_flight = Vec::with_capacity(claimed.len());
    let (mut acked, mut failed, mut first_error) = (Vec::new(), Vec::new(), None);
    for p in &claimed {
        if first_error.is_some() {
            // The connection refuses publishes: the rest wait for the next pass.
            failed.push(p.seq);
            continue;
        }
        let m = &p.message;
        let mut headers = envelope::headers(m);
        let span = publish_span(m, &mut headers);
        let publish = PublishMessage::build().payload(m.payload.clone().into()).headers(headers);
        match js.send_publish(m.subject.clone(), publish).await {
            Ok(ack) => in_flight.push((p.seq, ack, span)),
            Err(e) => {
                failed.push(p.seq);
                first_error = Some(e.to_string());
            }
        }
    }
    // Each publish span ends when JetStream acked (or refused) its message.
    let acks = futures::future::join_all(in_flight.into_iter().map(|(seq, ack, span)| async move {
        let result = ack.await.map(drop).map_err(|e| e.to_string());
        drop(span);
        (seq, result)
    }))
    .await;
    for (seq, result) in acks {
        match result {
            Ok(()) => acked.push(seq),
            Err(e) => {
                failed.push(seq);
                first_error.get_or_insert(e);
            }
        }
    }
    let published = acked.len();
    if !failed.is_empty() {
        tracing::info!(published, failed = failed.len(), took = ?began.elapsed(), "outbox relay pass incomplete");
    }
    metrics_adapter::outbox().relayed(published, failed.len());
    store.delete(acked).await.map_err(|e| e.to_string())?;
    store.release(failed).await.map_err(|e| e.to_string())?;
    match first_error {
        None => {
            tracing::debug!(published, "outbox relayed");
            Ok(published)
        }
        Some(e) => Err(format!("{published} published, the rest failed: {e}")),
    }
}
