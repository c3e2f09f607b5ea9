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
    pub const POINTS_EXPIRING: &str = "game.wallet.v1.points_expiring";
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
    /// A `const fn` (bytes compared one by one), so that the role table finds the stream
    /// of a consumer's subject at compile time.
    pub const fn holds(&self, subject: &str) -> bool {
        let (pattern, subject) = (self.subjects.as_bytes(), subject.as_bytes());
        let wildcard = !pattern.is_empty() && pattern[pattern.len() - 1] == b'>';
        let prefix = if wildcard { pattern.len() - 1 } else { pattern.len() };
        if (wildcard && subject.len() <= prefix) || (!wildcard && subject.len() != prefix) {
            return false;
        }
        let mut i = 0;
        while i < prefix {
            if pattern[i] != subject[i] {
                return false;
            }
            i += 1;
        }
        true
    }
}

/// Every stream.
pub const ALL: &[StreamSpec] = &[MISSION, REWARD, WALLET, GIFT, NOTIFICATION, DEAD_LETTER];
