//! What the bus shows of the flow, polled into metrics while they are on:
//! - the owner of a stream reports, for every durable on it (the role table says which),
//!   `consumer_lag` (JetStream's `num_pending`) and `consumer_ack_pending`: the producer
//!   keeps reporting the backlog of a consumer whose role is down;
//! - a role that consumes reports `deadletter_messages`, the depth of the dead-letter
//!   stream.

use std::time::Duration;

use async_nats::jetstream;
use tokio_util::sync::CancellationToken;

use crate::roles;
use crate::streams::{self, StreamSpec};

/// How often the bus is asked.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// The durables reading `stream`, by the role table.
pub fn durables_on(stream: StreamSpec) -> impl Iterator<Item = &'static str> {
    roles::ALL.iter().flat_map(|r| r.consumers).filter(move |c| c.stream == stream).map(|c| c.durable)
}

async fn every(stopping: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(INTERVAL) => true,
        () = stopping.cancelled() => false,
    }
}

/// Reports the lag of every durable on `stream` until `stopping`.
pub async fn stream_consumers(js: jetstream::Context, stream: StreamSpec, stopping: CancellationToken) {
    if !metrics_adapter::enabled() {
        return;
    }
    let metrics = metrics_adapter::consumers();
    loop {
        match js.get_stream(stream.name).await {
            Ok(s) => {
                for durable in durables_on(stream) {
                    // A durable its role has not created yet has no lag to show.
                    if let Ok(info) = s.consumer_info(durable).await {
                        metrics.pending(durable, info.num_pending, info.num_ack_pending as u64);
                    }
                }
            }
            Err(e) => tracing::debug!(stream = stream.name, error = %e, "stream info for metrics"),
        }
        if !every(&stopping).await {
            return;
        }
    }
}

/// Reports the depth of the dead-letter stream until `stopping`.
pub async fn dead_letters(js: jetstream::Context, stopping: CancellationToken) {
    if !metrics_adapter::enabled() {
        return;
    }
    loop {
        match js.get_stream(streams::DEAD_LETTER.name).await {
            Ok(s) => metrics_adapter::consumers().dead_letters(s.cached_info().state.messages),
            // Not created yet: nothing was ever dead-lettered.
            Err(e) if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(_)) => {
                metrics_adapter::consumers().dead_letters(0);
            }
            Err(e) => tracing::debug!(error = %e, "dead-letter stream info for metrics"),
        }
        if !every(&stopping).await {
            return;
        }
    }
}
