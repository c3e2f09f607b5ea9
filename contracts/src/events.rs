//! Events on the bus: each message of `game.events.v1` with the subject it is published
//! on. Its type name (the `Game-Event-Type` header) is its protobuf name, from
//! `prost::Name`, so a renamed message cannot leave a stale name behind.

use prost::{Message, Name};

use crate::pb::events::v1 as pb;
use crate::streams::subject;

/// An event message and where it is published.
pub trait Event: Message + Name + Default {
    /// The subject it is published on.
    const SUBJECT: &'static str;
}

macro_rules! events {
    ($($message:ident => $subject:ident),* $(,)?) => {
        $(impl Event for pb::$message {
            const SUBJECT: &'static str = subject::$subject;
        })*

        /// The type name of every event, with its subject.
        pub fn all() -> Vec<(String, &'static str)> {
            vec![$((pb::$message::full_name(), subject::$subject)),*]
        }
    };
}

events! {
    MissionAchieved => MISSION_ACHIEVED,
    MissionRewarded => MISSION_REWARDED,
    RewardAllocated => REWARD_ALLOCATED,
    RewardIssued => REWARD_ISSUED,
    RewardExchanged => REWARD_EXCHANGED,
    PointsExpiring => POINTS_EXPIRING,
    GiftIssued => GIFT_ISSUED,
    GiftUsed => GIFT_USED,
    NotificationSent => NOTIFICATION_SENT,
}

/// An event ready for the outbox: its subject, type name and encoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub subject: &'static str,
    pub event_type: String,
    pub payload: Vec<u8>,
}

/// Encodes `event` with its subject and type name.
pub fn encode<E: Event>(event: &E) -> Encoded {
    Encoded { subject: E::SUBJECT, event_type: E::full_name(), payload: event.encode_to_vec() }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::streams;

    #[test]
    fn type_names_are_the_protobuf_names() {
        assert_eq!(pb::MissionAchieved::full_name(), "game.events.v1.MissionAchieved");
        assert_eq!(pb::GiftUsed::full_name(), "game.events.v1.GiftUsed");
        let e = encode(&pb::RewardAllocated { customer_id: "alice".into(), ..Default::default() });
        assert_eq!(e.subject, "game.reward.v1.allocated");
        assert_eq!(e.event_type, "game.events.v1.RewardAllocated");
        assert_eq!(pb::RewardAllocated::decode(e.payload.as_slice()).unwrap().customer_id, "alice");
    }

    #[test]
    fn every_event_has_its_own_subject_in_one_stream() {
        let all = all();
        let subjects: HashSet<_> = all.iter().map(|(_, s)| *s).collect();
        assert_eq!(subjects.len(), all.len());
        for (name, subject) in &all {
            let holders = streams::ALL.iter().filter(|s| s.holds(subject)).count();
            assert_eq!(holders, 1, "{name} on {subject}");
            assert!(!streams::DEAD_LETTER.holds(subject), "{subject}");
        }
    }
}
