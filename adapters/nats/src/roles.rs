//! Who does what on the bus: each service's role, the stream it owns, the durable
//! consumers it reads through and the key-value buckets it keeps. Services take their
//! consumer specs from here and [`crate::access`] derives each role's permissions from
//! the same table, so a new consumer cannot be declared without being authorised.

use crate::consumer::ConsumerSpec;
use crate::streams::{self, StreamSpec, subject};

/// One service as the bus sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Role {
    /// The service's name: its NATS connection name and its inbox prefix
    /// ([`inbox_prefix`]).
    pub name: &'static str,
    /// The stream it publishes its events to and creates.
    pub stream: Option<StreamSpec>,
    /// The durable consumers it reads other roles' events through.
    pub consumers: &'static [ConsumerSpec],
    /// The key-value buckets it owns.
    pub buckets: &'static [&'static str],
}

/// Where a role's replies arrive (JetStream API answers, pulled messages, KV watches):
/// its own prefix, so that it alone may subscribe there and no role reads another's.
pub fn inbox_prefix(role: &str) -> String {
    format!("_INBOX.{role}")
}

/// The bucket my page keeps its pages in (`MYPAGE_BUCKET`); the permissions cover this
/// name only.
pub const MYPAGE_BUCKET: &str = "mypage";

pub mod mission {
    use super::*;

    /// Policy "a reward allocated for a mission is recorded on it".
    pub const RECORD_REWARD: ConsumerSpec =
        ConsumerSpec { stream: streams::REWARD, durable: "mission-record-reward", filter: subject::REWARD_ALLOCATED };

    pub const ROLE: Role =
        Role { name: "mission", stream: Some(streams::MISSION), consumers: &[RECORD_REWARD], buckets: &[] };
}

pub mod reward {
    use super::*;

    /// Policy "a reward for every achieved mission".
    pub const ALLOCATE: ConsumerSpec =
        ConsumerSpec { stream: streams::MISSION, durable: "reward-allocate", filter: subject::MISSION_ACHIEVED };
    /// Policy "the reward follows the wallet": issued.
    pub const ISSUED: ConsumerSpec =
        ConsumerSpec { stream: streams::WALLET, durable: "reward-issued", filter: subject::REWARD_ISSUED };
    /// Policy "the reward follows the wallet": exchanged.
    pub const EXCHANGED: ConsumerSpec =
        ConsumerSpec { stream: streams::WALLET, durable: "reward-exchanged", filter: subject::REWARD_EXCHANGED };

    pub const ROLE: Role =
        Role { name: "reward", stream: Some(streams::REWARD), consumers: &[ALLOCATE, ISSUED, EXCHANGED], buckets: &[] };
}

pub mod wallet {
    use super::*;

    /// Policy "an allocated reward is issued into the wallet".
    pub const ISSUE: ConsumerSpec =
        ConsumerSpec { stream: streams::REWARD, durable: "wallet-issue", filter: subject::REWARD_ALLOCATED };

    pub const ROLE: Role = Role { name: "wallet", stream: Some(streams::WALLET), consumers: &[ISSUE], buckets: &[] };
}

pub mod gift {
    use super::*;

    /// Called synchronously by the wallet; it only publishes.
    pub const ROLE: Role = Role { name: "gift", stream: Some(streams::GIFT), consumers: &[], buckets: &[] };
}

pub mod notification {
    use super::*;

    /// Policy "an issued gift is e-mailed to its customer".
    pub const GIFT_ISSUED: ConsumerSpec =
        ConsumerSpec { stream: streams::GIFT, durable: "notification-gift-issued", filter: subject::GIFT_ISSUED };
    /// Policy "a used gift is e-mailed to its customer".
    pub const GIFT_USED: ConsumerSpec =
        ConsumerSpec { stream: streams::GIFT, durable: "notification-gift-used", filter: subject::GIFT_USED };

    pub const ROLE: Role = Role {
        name: "notification",
        stream: Some(streams::NOTIFICATION),
        consumers: &[GIFT_ISSUED, GIFT_USED],
        buckets: &[],
    };
}

pub mod mypage {
    use super::*;

    /// One durable consumer per source stream; the projection is idempotent and
    /// order-tolerant, so no inbox is needed: a redelivered fact changes nothing.
    pub const CONSUMERS: [ConsumerSpec; 4] = [
        ConsumerSpec { stream: streams::MISSION, durable: "mypage-mission", filter: "game.mission.v1.>" },
        ConsumerSpec { stream: streams::REWARD, durable: "mypage-reward", filter: "game.reward.v1.>" },
        ConsumerSpec { stream: streams::WALLET, durable: "mypage-wallet", filter: "game.wallet.v1.>" },
        ConsumerSpec { stream: streams::GIFT, durable: "mypage-gift", filter: "game.gift.v1.>" },
    ];

    pub const ROLE: Role = Role { name: "mypage", stream: None, consumers: &CONSUMERS, buckets: &[MYPAGE_BUCKET] };
}

pub mod ops {
    use super::*;

    /// The dead letters as admin RPCs: reads and removes messages of the `DEADLETTER`
    /// stream and publishes the events back on the subjects the consumers read
    /// ([`crate::access`] grants exactly that); no stream, consumer or bucket of its own.
    pub const ROLE: Role = Role { name: "ops", stream: None, consumers: &[], buckets: &[] };
}

/// Every role that talks to NATS (auth and the gateway do not).
pub const ALL: [Role; 7] =
    [mission::ROLE, reward::ROLE, wallet::ROLE, gift::ROLE, notification::ROLE, mypage::ROLE, ops::ROLE];

/// The role of a service, by name.
pub fn find(name: &str) -> Option<&'static Role> {
    ALL.iter().find(|r| r.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_durable_is_named_after_its_role_and_declared_once() {
        let mut seen = std::collections::HashSet::new();
        for role in ALL {
            for c in role.consumers {
                assert!(c.durable.starts_with(&format!("{}-", role.name)), "{} belongs to {}", c.durable, role.name);
                assert!(seen.insert(c.durable), "{} declared twice", c.durable);
            }
        }
    }

    #[test]
    fn a_role_reads_only_other_roles_streams_and_each_stream_has_one_owner() {
        let owners: Vec<&str> = ALL.iter().filter_map(|r| r.stream.map(|s| s.name)).collect();
        let mut unique = owners.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(owners.len(), unique.len(), "one owner per stream: {owners:?}");
        for role in ALL {
            for c in role.consumers {
                assert_ne!(Some(c.stream), role.stream, "{} reads its own stream", c.durable);
                assert!(
                    owners.contains(&c.stream.name),
                    "{} reads {}, which nobody publishes",
                    c.durable,
                    c.stream.name
                );
            }
        }
    }

    #[test]
    fn roles_are_found_by_name() {
        assert_eq!(find("wallet"), Some(&wallet::ROLE));
        assert_eq!(find("gateway"), None);
        assert_eq!(inbox_prefix("wallet"), "_INBOX.wallet");
    }
}
