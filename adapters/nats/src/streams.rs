//! Streams: one per publishing context, subjects `game.<context>.v1.<event>`.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSpec {
    pub name: &'static str,
    pub subjects: &'static str,
}

pub const MISSION: StreamSpec = StreamSpec { name: "MISSION", subjects: "game.mission.v1.>" };
pub const REWARD: StreamSpec = StreamSpec { name: "REWARD", subjects: "game.reward.v1.>" };
pub const WALLET: StreamSpec = StreamSpec { name: "WALLET", subjects: "game.wallet.v1.>" };
pub const GIFT: StreamSpec = StreamSpec { name: "GIFT", subjects: "game.gift.v1.>" };
pub const NOTIFICATION: StreamSpec = StreamSpec { name: "NOTIFICATION", subjects: "game.notification.v1.>" };
/// Events no consumer could handle, with the reason, for an operator to look at.
pub const DEAD_LETTER: StreamSpec = StreamSpec { name: "DEADLETTER", subjects: "game.deadletter.>" };

/// Subjects of the events, named once.
pub mod subject {
    pub const MISSION_ACHIEVED: &str = "game.mission.v1.achieved";
    pub const MISSION_REWARDED: &str = "game.mission.v1.rewarded";
    pub const REWARD_ALLOCATED: &str = "game.reward.v1.allocated";
    pub const REWARD_ISSUED: &str = "game.wallet.v1.issued";
    pub const REWARD_EXCHANGED: &str = "game.wallet.v1.exchanged";
    pub const GIFT_ISSUED: &str = "game.gift.v1.issued";
    pub const GIFT_USED: &str = "game.gift.v1.used";
    pub const NOTIFICATION_SENT: &str = "game.notification.v1.sent";
}

/// Where a durable consumer dead-letters the events it can never handle.
pub fn dead_letter_subject(durable: &str) -> String {
    format!("game.deadletter.{durable}")
}

/// Creates the stream if it does not exist (its owner, or for [`DEAD_LETTER`] whoever
/// comes first, with the same config).
///
/// # Errors
/// When JetStream cannot be reached or refuses the config.
pub async fn ensure(js: &jetstream::Context, spec: StreamSpec, replicas: usize) -> Result<stream::Stream, String> {
    js.get_or_create_stream(stream::Config {
        name: spec.name.to_owned(),
        subjects: vec![spec.subjects.to_owned()],
        storage: stream::StorageType::File,
        num_replicas: replicas.max(1),
        // The de-duplication window on Nats-Msg-Id: longer than any relay retry.
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .map_err(|e| format!("stream {}: {e}", spec.name))
}

/// The stream, once its owner created it: a reader looks it up (INFO) and never creates
/// it, so it needs no right over another role's stream.
///
/// # Errors
/// When it does not exist (yet), or JetStream cannot be reached.
pub async fn existing(js: &jetstream::Context, spec: StreamSpec) -> Result<stream::Stream, String> {
    js.get_stream(spec.name).await.map_err(|e| format!("stream {} (created by its publisher): {e}", spec.name))
}
