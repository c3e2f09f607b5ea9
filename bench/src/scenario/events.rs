//! Counts of the flow's events on the streams, read as the operator.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use contracts::streams::{self, subject};

/// Counts of the flow's events on the streams.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub achieved: u64,
    pub allocated: u64,
    pub issued: u64,
    pub rewarded: u64,
}

pub(super) struct Events {
    js: async_nats::jetstream::Context,
}

impl Events {
    /// As the operator: the system's NATS lets no one else read every stream.
    pub(super) async fn connect(nats: &e2e::NatsServer) -> Result<Self, String> {
        let (client, _) = nats.connect_as(e2e::NATS_OPERATOR).await.map_err(|e| format!("nats: {e}"))?;
        Ok(Self { js: async_nats::jetstream::new(client) })
    }

    /// Messages on `subject` in `stream` (an ephemeral consumer's pending count, as the
    /// harness counts them).
    async fn count(&self, stream: &str, subject: &str) -> u64 {
        use async_nats::jetstream::consumer::{AckPolicy, pull};
        let Ok(stream) = self.js.get_stream(stream).await else { return 0 };
        let Ok(mut consumer) = stream
            .create_consumer(pull::Config {
                filter_subject: subject.to_owned(),
                ack_policy: AckPolicy::None,
                inactive_threshold: Duration::from_secs(2),
                ..Default::default()
            })
            .await
        else {
            return 0;
        };
        consumer.info().await.map(|i| i.num_pending).unwrap_or(0)
    }

    pub(super) async fn snapshot(&self) -> Counts {
        let (achieved, allocated, issued, rewarded) = futures::join!(
            self.count(streams::MISSION.name, subject::MISSION_ACHIEVED),
            self.count(streams::REWARD.name, subject::REWARD_ALLOCATED),
            self.count(streams::WALLET.name, subject::REWARD_ISSUED),
            self.count(streams::MISSION.name, subject::MISSION_REWARDED),
        );
        Counts { achieved, allocated, issued, rewarded }
    }
}

/// Waits until every accepted mission is rewarded; `None` after `limit`.
pub(super) async fn drain(events: &Events, accepted: &AtomicU64, limit: Duration) -> Option<Counts> {
    let until = Instant::now() + limit;
    loop {
        let c = events.snapshot().await;
        if c.rewarded >= accepted.load(Ordering::Relaxed).max(c.achieved) {
            return Some(c);
        }
        if Instant::now() > until {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
