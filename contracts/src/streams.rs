//! Streams: one per publishing context, subjects `game.<context>.v1.<event>`. The data
//! only; creating and reading streams is the NATS adapter's (`nats_adapter::streams`).

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

impl StreamSpec {
    /// Whether `subject` is one of this stream's (`>` matches one or more tokens).
    pub fn holds(&self, subject: &str) -> bool {
        match self.subjects.strip_suffix('>') {
            Some(prefix) => subject.len() > prefix.len() && subject.starts_with(prefix),
            None => subject == self.subjects,
        }
    }
}

/// Every stream.
pub const ALL: &[StreamSpec] = &[MISSION, REWARD, WALLET, GIFT, NOTIFICATION, DEAD_LETTER];
