//! The `Reward` aggregate. Synchronous and pure.

use kernel::CustomerId;
use uuid::Uuid;

/// ALLOCATED -> ISSUED -> EXCHANGED; a status never moves backwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RewardStatus {
    Allocated,
    Issued,
    Exchanged,
}

impl RewardStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allocated => "ALLOCATED",
            Self::Issued => "ISSUED",
            Self::Exchanged => "EXCHANGED",
        }
    }

    /// The statuses a reward may move forward to `self` from ([`Reward::advance`]): the
    /// condition a store checks when it moves a reward without reading it first.
    pub fn before(self) -> &'static [Self] {
        match self {
            Self::Allocated => &[],
            Self::Issued => &[Self::Allocated],
            Self::Exchanged => &[Self::Allocated, Self::Issued],
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "ALLOCATED" => Some(Self::Allocated),
            "ISSUED" => Some(Self::Issued),
            "EXCHANGED" => Some(Self::Exchanged),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reward {
    pub id: Uuid,
    pub mission_id: Uuid,
    pub customer_id: CustomerId,
    pub points: i64,
    pub status: RewardStatus,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewardEvent {
    Allocated {
        reward_id: Uuid,
        mission_id: Uuid,
        customer_id: CustomerId,
        points: i64,
        mission_code: String,
        /// The mission's `points_expire_after` as achieved (None: never), for the wallet.
        points_expire_after: Option<std::time::Duration>,
    },
}

impl Reward {
    /// Policy "a reward for every achieved mission": the reward is worth the mission's points.
    pub fn allocate(
        id: Uuid,
        mission_id: Uuid,
        customer_id: CustomerId,
        points: i64,
        mission_code: &str,
        points_expire_after: Option<std::time::Duration>,
    ) -> (Self, RewardEvent) {
        let reward = Self {
            id,
            mission_id,
            customer_id: customer_id.clone(),
            points,
            status: RewardStatus::Allocated,
            version: 0,
        };
        let event = RewardEvent::Allocated {
            reward_id: id,
            mission_id,
            customer_id,
            points,
            mission_code: mission_code.to_owned(),
            points_expire_after,
        };
        (reward, event)
    }

    /// Moves the status forward to `to`; returns whether anything changed. An older
    /// status arriving late changes nothing.
    pub fn advance(&mut self, to: RewardStatus) -> bool {
        if to > self.status {
            self.status = to;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reward() -> Reward {
        Reward::allocate(Uuid::now_v7(), Uuid::now_v7(), CustomerId::new("c-11").unwrap(), 10, "daily-login", None).0
    }

    #[test]
    fn given_any_two_statuses_when_advancing_then_a_reward_moves_exactly_from_the_statuses_before_the_target() {
        use RewardStatus::{Allocated, Exchanged, Issued};
        for to in [Allocated, Issued, Exchanged] {
            for from in [Allocated, Issued, Exchanged] {
                let mut r = reward();
                r.status = from;
                assert_eq!(r.advance(to), to.before().contains(&from), "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn given_an_achieved_mission_when_allocating_then_the_reward_is_allocated_with_its_points() {
        let mission = Uuid::now_v7();
        let (r, e) = Reward::allocate(Uuid::now_v7(), mission, CustomerId::new("c").unwrap(), 50, "first-win", None);
        assert_eq!((r.status, r.points, r.mission_id), (RewardStatus::Allocated, 50, mission));
        assert!(matches!(e, RewardEvent::Allocated { points: 50, .. }));
    }

    #[test]
    fn given_an_allocated_reward_when_issued_then_exchanged_then_the_status_moves_forward() {
        let mut r = reward();
        assert!(r.advance(RewardStatus::Issued));
        assert!(r.advance(RewardStatus::Exchanged));
        assert_eq!(r.status, RewardStatus::Exchanged);
    }

    #[test]
    fn given_an_exchanged_reward_when_a_late_issued_arrives_then_nothing_moves_backwards() {
        let mut r = reward();
        r.advance(RewardStatus::Exchanged);
        assert!(!r.advance(RewardStatus::Issued));
        assert!(!r.advance(RewardStatus::Exchanged));
        assert_eq!(r.status, RewardStatus::Exchanged);
    }
}
