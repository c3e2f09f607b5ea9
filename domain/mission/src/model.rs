//! The `Mission` aggregate and its value objects. Synchronous and pure.

use chrono::{DateTime, Utc};
use kernel::{CustomerId, ValidationError};
use uuid::Uuid;

/// A mission's code in the catalog, e.g. `daily-login`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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

/// A mission that can be achieved, and the points its reward is worth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogMission {
    pub code: MissionCode,
    pub title: String,
    pub reward_points: i64,
}

/// The missions that can be achieved.
#[derive(Debug, Clone)]
pub struct Catalog(Vec<CatalogMission>);

impl Catalog {
    pub fn new(missions: Vec<CatalogMission>) -> Self {
        Self(missions)
    }

    pub fn missions(&self) -> &[CatalogMission] {
        &self.0
    }

    /// # Errors
    /// `mission_code` when the code is not in the catalog.
    pub fn find(&self, code: &MissionCode) -> Result<&CatalogMission, ValidationError> {
        self.0
            .iter()
            .find(|m| &m.code == code)
            .ok_or_else(|| ValidationError::new("mission_code", format!("unknown mission '{}'", code.as_str())))
    }
}

impl Default for Catalog {
    fn default() -> Self {
        let m = |code: &str, title: &str, reward_points| CatalogMission {
            code: MissionCode::new(code).expect("catalog codes are valid"),
            title: title.to_owned(),
            reward_points,
        };
        Self(vec![
            m("daily-login", "Log in today", 10),
            m("first-win", "Win your first match", 50),
            m("tutorial-complete", "Finish the tutorial", 20),
            m("weekly-streak", "Play seven days in a row", 100),
        ])
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

/// A request to achieve a mission, validated.
#[derive(Debug, Clone)]
pub struct AchieveMission {
    pub customer_id: CustomerId,
    pub code: MissionCode,
    /// The client's idempotency key.
    pub request_id: String,
}

impl AchieveMission {
    /// # Errors
    /// The field at fault: `customer_id`, `mission_code` or `request_id` (at most 128 bytes).
    pub fn new(customer_id: &str, code: &str, request_id: &str) -> Result<Self, ValidationError> {
        let customer_id = CustomerId::new(customer_id)?;
        let code = MissionCode::new(code)?;
        kernel::request_id(request_id)?;
        Ok(Self { customer_id, code, request_id: request_id.to_owned() })
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
    /// Decides a new achievement.
    ///
    /// # Errors
    /// `mission_code` when the code is not in the catalog.
    pub fn achieve(
        cmd: &AchieveMission,
        catalog: &Catalog,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(Self, MissionEvent), ValidationError> {
        let entry = catalog.find(&cmd.code)?;
        let mission = Self {
            id,
            customer_id: cmd.customer_id.clone(),
            code: cmd.code.clone(),
            status: MissionStatus::Achieved,
            reward_id: None,
            reward_points: entry.reward_points,
            request_id: cmd.request_id.clone(),
            achieved_at: now,
            version: 0,
        };
        let event = MissionEvent::Achieved {
            mission_id: id,
            customer_id: cmd.customer_id.clone(),
            code: cmd.code.clone(),
            reward_points: entry.reward_points,
            achieved_at: now,
        };
        Ok((mission, event))
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
                Ok(Some(MissionEvent::Rewarded {
                    mission_id: self.id,
                    customer_id: self.customer_id.clone(),
                    reward_id,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(code: &str) -> AchieveMission {
        AchieveMission::new("c-11", code, "req-1").unwrap()
    }

    #[test]
    fn given_the_default_catalog_when_achieving_daily_login_then_the_mission_is_achieved_with_its_points() {
        let (m, e) = Mission::achieve(&cmd("daily-login"), &Catalog::default(), Uuid::now_v7(), Utc::now()).unwrap();
        assert_eq!(m.status, MissionStatus::Achieved);
        assert_eq!(m.reward_id, None);
        assert_eq!(m.reward_points, 10);
        assert!(matches!(e, MissionEvent::Achieved { reward_points: 10, .. }));
    }

    #[test]
    fn given_the_catalog_when_achieving_an_unknown_code_then_mission_code_is_refused() {
        let err = Mission::achieve(&cmd("no-such-thing"), &Catalog::default(), Uuid::now_v7(), Utc::now()).unwrap_err();
        assert_eq!(err.field, "mission_code");
    }

    #[test]
    fn malformed_input_names_the_field() {
        assert_eq!(AchieveMission::new("", "daily-login", "").unwrap_err().field, "customer_id");
        assert_eq!(AchieveMission::new("c", "Daily Login", "").unwrap_err().field, "mission_code");
        assert_eq!(AchieveMission::new("c", "daily-login", &"r".repeat(200)).unwrap_err().field, "request_id");
    }

    #[test]
    fn every_default_mission_rewards_at_least_ten_points() {
        assert!(Catalog::default().missions().iter().all(|m| m.reward_points >= 10));
        for code in ["daily-login", "first-win", "tutorial-complete"] {
            Catalog::default().find(&MissionCode::new(code).unwrap()).unwrap();
        }
    }

    #[test]
    fn given_an_achieved_mission_when_its_reward_is_recorded_then_it_is_rewarded_once() {
        let (mut m, _) = Mission::achieve(&cmd("first-win"), &Catalog::default(), Uuid::now_v7(), Utc::now()).unwrap();
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
