//! The `Mission` aggregate and its value objects. Synchronous and pure.

use chrono::{DateTime, Utc};
use kernel::{CustomerId, ValidationError};
use uuid::Uuid;

use crate::rules::{Decision, MissionRule, Reporter};

/// A mission's code in the catalog, e.g. `daily-login`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MissionCode(String);

impl MissionCode {
    /// # Errors
    /// `mission_code` when empty, longer than 64 bytes, or not lowercase ASCII letters,
    /// digits, `-` and `_`.
    pub fn new(raw: impl Into<String>) -> Result<Self, ValidationError> {
        let raw = raw.into();
        kernel::code("mission_code", &raw)?;
        Ok(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MissionStatus {
    Achieved,
    Rewarded,
}

impl MissionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Achieved => "ACHIEVED",
            Self::Rewarded => "REWARDED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "ACHIEVED" => Some(Self::Achieved),
            "REWARDED" => Some(Self::Rewarded),
            _ => None,
        }
    }
}

/// Who reports an achievement: the kind of caller, and its subject (the verified token's
/// `sub`: a player's id, a game server's client id, an operator's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub kind: Reporter,
    pub subject: String,
}

/// A request to achieve a mission, validated.
#[derive(Debug, Clone)]
pub struct AchieveMission {
    pub customer_id: CustomerId,
    pub code: MissionCode,
    /// The client's idempotency key.
    pub request_id: String,
    pub caller: Caller,
}

impl AchieveMission {
    /// # Errors
    /// The field at fault: `customer_id`, `mission_code` or `request_id` (at most 128 bytes).
    pub fn new(customer_id: &str, code: &str, request_id: &str, caller: Caller) -> Result<Self, ValidationError> {
        let customer_id = CustomerId::new(customer_id)?;
        let code = MissionCode::new(code)?;
        kernel::request_id(request_id)?;
        Ok(Self { customer_id, code, request_id: request_id.to_owned(), caller })
    }
}

/// The aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mission {
    pub id: Uuid,
    pub customer_id: CustomerId,
    pub code: MissionCode,
    pub status: MissionStatus,
    pub reward_id: Option<Uuid>,
    pub reward_points: i64,
    pub request_id: String,
    pub achieved_at: DateTime<Utc>,
    /// The period slot the achievement took (`2026-11-26#1`), unique per customer and
    /// mission; `None` for an `unlimited` mission.
    pub slot: Option<String>,
    /// The subject of whoever reported it (the player, a game server, an operator).
    pub reported_by: String,
    /// Optimistic-concurrency version, bumped by every change.
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MissionEvent {
    Achieved {
        mission_id: Uuid,
        customer_id: CustomerId,
        code: MissionCode,
        reward_points: i64,
        achieved_at: DateTime<Utc>,
        /// The catalog's `points_expire_after` as achieved (None: never).
        points_expire_after: Option<std::time::Duration>,
    },
    Rewarded {
        mission_id: Uuid,
        customer_id: CustomerId,
        reward_id: Uuid,
    },
}

/// Refusals of the aggregate (business rules, not technical failures).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MissionRefusal {
    #[error("mission {mission} already recorded reward {recorded}, not {offered}")]
    OtherRewardRecorded { mission: Uuid, recorded: Uuid, offered: Uuid },
    /// The customer's request id achieved another mission code.
    #[error(transparent)]
    RequestReused(#[from] kernel::RequestReused),
}

impl Mission {
    /// A new achievement of `rule`, in the slot the rules decided.
    pub fn achieve(
        cmd: &AchieveMission,
        rule: &MissionRule,
        decision: Decision,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> (Self, MissionEvent) {
        let mission = Self {
            id,
            customer_id: cmd.customer_id.clone(),
            code: cmd.code.clone(),
            status: MissionStatus::Achieved,
            reward_id: None,
            reward_points: rule.points,
            request_id: cmd.request_id.clone(),
            achieved_at: now,
            slot: decision.slot,
            reported_by: cmd.caller.subject.clone(),
            version: 0,
        };
        let event = MissionEvent::Achieved {
            mission_id: id,
            customer_id: cmd.customer_id.clone(),
            code: cmd.code.clone(),
            reward_points: rule.points,
            achieved_at: now,
            points_expire_after: rule.points_expire_after,
        };
        (mission, event)
    }

    /// Records the reward the mission earned. Recording the same reward again changes
    /// nothing and emits nothing.
    ///
    /// # Errors
    /// [`MissionRefusal::OtherRewardRecorded`] when a different reward is already recorded.
    pub fn record_reward(&mut self, reward_id: Uuid) -> Result<Option<MissionEvent>, MissionRefusal> {
        match self.reward_id {
            Some(recorded) if recorded == reward_id => Ok(None),
            Some(recorded) => {
                Err(MissionRefusal::OtherRewardRecorded { mission: self.id, recorded, offered: reward_id })
            }
            None => {
                self.reward_id = Some(reward_id);
                self.status = MissionStatus::Rewarded;
                Ok(Some(Self::rewarded(self.id, &self.customer_id, reward_id)))
            }
        }
    }

    /// What recording the first reward of a mission says ([`Self::record_reward`]); a
    /// store that records it without reading the mission first (only where no reward is
    /// recorded yet) emits it when it did.
    pub fn rewarded(mission_id: Uuid, customer_id: &CustomerId, reward_id: Uuid) -> MissionEvent {
        MissionEvent::Rewarded { mission_id, customer_id: customer_id.clone(), reward_id }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Catalog;

    fn cmd(code: &str) -> AchieveMission {
        let player = Caller { kind: Reporter::Player, subject: "c-11".into() };
        AchieveMission::new("c-11", code, "req-1", player).unwrap()
    }

    fn achieve(code: &str, slot: Option<&str>) -> (Mission, MissionEvent) {
        let catalog = Catalog::default();
        let rule = catalog.find(&MissionCode::new(code).unwrap()).unwrap();
        Mission::achieve(&cmd(code), rule, Decision { slot: slot.map(str::to_owned) }, Uuid::now_v7(), Utc::now())
    }

    #[test]
    fn given_the_default_catalog_when_achieving_daily_login_then_the_mission_is_achieved_with_its_points_and_slot() {
        let (m, e) = achieve("daily-login", Some("2026-11-26#1"));
        assert_eq!(m.status, MissionStatus::Achieved);
        assert_eq!(m.reward_id, None);
        assert_eq!(m.reward_points, 10);
        assert_eq!(m.slot.as_deref(), Some("2026-11-26#1"));
        assert_eq!(m.reported_by, "c-11");
        assert!(matches!(e, MissionEvent::Achieved { reward_points: 10, .. }));
    }

    #[test]
    fn malformed_input_names_the_field() {
        let p = || Caller { kind: Reporter::Player, subject: "c".into() };
        assert_eq!(AchieveMission::new("", "daily-login", "", p()).unwrap_err().field, "customer_id");
        assert_eq!(AchieveMission::new("c", "Daily Login", "", p()).unwrap_err().field, "mission_code");
        assert_eq!(AchieveMission::new("c", "daily-login", &"r".repeat(200), p()).unwrap_err().field, "request_id");
    }

    #[test]
    fn given_an_achieved_mission_when_its_reward_is_recorded_then_it_is_rewarded_once() {
        let (mut m, _) = achieve("first-win", Some("once#1"));
        let reward = Uuid::now_v7();
        let e = m.record_reward(reward).unwrap();
        assert!(matches!(e, Some(MissionEvent::Rewarded { reward_id, .. }) if reward_id == reward));
        assert_eq!(m.status, MissionStatus::Rewarded);
        assert_eq!(m.reward_id, Some(reward));
        // the same reward again: nothing happens
        assert_eq!(m.record_reward(reward).unwrap(), None);
        // another reward: refused, nothing changes
        assert!(m.record_reward(Uuid::now_v7()).is_err());
        assert_eq!(m.reward_id, Some(reward));
    }
}
