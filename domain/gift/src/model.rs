//! The `Gift` aggregate and the catalog. Synchronous and pure.

use chrono::{DateTime, Utc};
use kernel::{CustomerId, ValidationError};
use uuid::Uuid;

use crate::rules::{Decision, GiftRule, Refusal};

/// A gift's code in the catalog, e.g. `coffee`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GiftCode(String);

impl GiftCode {
    /// # Errors
    /// `gift_code` when empty, longer than 64 bytes, or not `a-z 0-9 - _`.
    pub fn new(raw: impl Into<String>) -> Result<Self, ValidationError> {
        let raw = raw.into();
        kernel::code("gift_code", &raw)?;
        Ok(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GiftStatus {
    Issued,
    Used,
    /// Cancelled before use (its points refunded by the wallet).
    Cancelled,
}

impl GiftStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issued => "ISSUED",
            Self::Used => "USED",
            Self::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "ISSUED" => Some(Self::Issued),
            "USED" => Some(Self::Used),
            "CANCELLED" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// A request to issue a gift for a reward, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueGift {
    pub customer_id: CustomerId,
    pub reward_id: Uuid,
    pub mission_id: Uuid,
    pub code: GiftCode,
    /// What the reward is worth.
    pub points: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gift {
    pub id: Uuid,
    pub customer_id: CustomerId,
    pub reward_id: Uuid,
    pub mission_id: Uuid,
    pub code: GiftCode,
    pub name: String,
    pub status: GiftStatus,
    pub issued_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    /// The per-customer limit's slot it took (`ever#1`), unique per customer and gift;
    /// `None` when the gift has no per-customer limit.
    pub slot: Option<String>,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GiftEvent {
    Issued(Gift),
    Used(Gift),
}

/// Business refusals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GiftRefusal {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("not enough points: {} costs {cost}, the reward is worth {points}", code.as_str())]
    NotEnoughPoints { code: GiftCode, cost: i64, points: i64 },
    #[error("the reward was already exchanged for another gift")]
    RewardTaken,
    #[error("the gift was already used")]
    AlreadyUsed,
    #[error("the gift was cancelled")]
    Cancelled,
    #[error("gift not found")]
    NotOwner,
    /// The catalog's rules refuse it: window, per-customer limit, stock.
    #[error(transparent)]
    Rule(#[from] Refusal),
}

impl Gift {
    /// Whether the reward's points pay for `rule`'s gift.
    ///
    /// # Errors
    /// `NotEnoughPoints`.
    pub fn check_points(cmd: &IssueGift, rule: &GiftRule) -> Result<(), GiftRefusal> {
        if cmd.points < rule.cost_points {
            return Err(GiftRefusal::NotEnoughPoints {
                code: rule.code.clone(),
                cost: rule.cost_points,
                points: cmd.points,
            });
        }
        Ok(())
    }

    /// A new gift of `rule` for a reward, in the slot the rules decided.
    ///
    /// # Errors
    /// `NotEnoughPoints`.
    pub fn issue(
        cmd: &IssueGift,
        rule: &GiftRule,
        decision: Decision,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(Self, GiftEvent), GiftRefusal> {
        Self::check_points(cmd, rule)?;
        let gift = Self {
            id,
            customer_id: cmd.customer_id.clone(),
            reward_id: cmd.reward_id,
            mission_id: cmd.mission_id,
            code: cmd.code.clone(),
            name: rule.name.clone(),
            status: GiftStatus::Issued,
            issued_at: now,
            used_at: None,
            slot: decision.slot,
            version: 0,
        };
        Ok((gift.clone(), GiftEvent::Issued(gift)))
    }

    /// Whether `cmd` asks again for this very gift (a retry), rather than something else
    /// for the same reward.
    pub fn answers(&self, cmd: &IssueGift) -> bool {
        self.customer_id == cmd.customer_id && self.code == cmd.code
    }

    /// Uses the gift, once.
    ///
    /// # Errors
    /// `NotOwner` when `by` is given and is not the owner; `AlreadyUsed`.
    pub fn use_by(&mut self, by: Option<&CustomerId>, now: DateTime<Utc>) -> Result<GiftEvent, GiftRefusal> {
        if by.is_some_and(|c| c != &self.customer_id) {
            return Err(GiftRefusal::NotOwner);
        }
        match self.status {
            GiftStatus::Used => return Err(GiftRefusal::AlreadyUsed),
            GiftStatus::Cancelled => return Err(GiftRefusal::Cancelled),
            GiftStatus::Issued => {}
        }
        self.status = GiftStatus::Used;
        self.used_at = Some(now);
        Ok(GiftEvent::Used(self.clone()))
    }

    /// Cancels the gift (its points are being refunded): only an unused one. Answers
    /// whether it changed: a gift cancelled already is left as it is (the wallet asks
    /// again when it failed after a first cancel). It keeps its per-customer slot.
    ///
    /// # Errors
    /// `AlreadyUsed` (nothing changes).
    pub fn cancel(&mut self) -> Result<bool, GiftRefusal> {
        match self.status {
            GiftStatus::Used => Err(GiftRefusal::AlreadyUsed),
            GiftStatus::Cancelled => Ok(false),
            GiftStatus::Issued => {
                self.status = GiftStatus::Cancelled;
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Catalog;

    fn cmd(code: &str, points: i64) -> IssueGift {
        IssueGift {
            customer_id: CustomerId::new("c-11").unwrap(),
            reward_id: Uuid::now_v7(),
            mission_id: Uuid::now_v7(),
            code: GiftCode::new(code).unwrap(),
            points,
        }
    }

    fn issue(code: &str, points: i64) -> Result<(Gift, GiftEvent), GiftRefusal> {
        let catalog = Catalog::default();
        let rule = catalog.find(&GiftCode::new(code).unwrap()).unwrap();
        Gift::issue(&cmd(code, points), rule, Decision { slot: None }, Uuid::now_v7(), Utc::now())
    }

    #[test]
    fn given_a_reward_worth_ten_when_exchanged_for_coffee_then_a_gift_is_issued() {
        let (g, e) = issue("coffee", 10).unwrap();
        assert_eq!((g.status, g.name.as_str()), (GiftStatus::Issued, "Coffee"));
        assert!(matches!(e, GiftEvent::Issued(_)));
    }

    #[test]
    fn given_a_reward_worth_ten_when_asking_for_a_movie_ticket_then_points_are_short() {
        let refused = issue("movie-ticket", 10).unwrap_err();
        assert_eq!(
            refused,
            GiftRefusal::NotEnoughPoints { code: GiftCode::new("movie-ticket").unwrap(), cost: 50, points: 10 }
        );
        assert_eq!(refused.to_string(), "not enough points: movie-ticket costs 50, the reward is worth 10");
    }

    #[test]
    fn an_unknown_gift_names_the_field() {
        let err = Catalog::default().find(&GiftCode::new("yacht").unwrap()).unwrap_err();
        assert_eq!(err.field, "gift_code");
    }

    #[test]
    fn given_an_issued_gift_when_used_twice_then_the_second_use_is_refused() {
        let (mut g, _) = issue("coffee", 10).unwrap();
        let owner = g.customer_id.clone();
        assert_eq!(g.use_by(Some(&CustomerId::new("someone-else").unwrap()), Utc::now()), Err(GiftRefusal::NotOwner));
        assert!(matches!(g.use_by(Some(&owner), Utc::now()), Ok(GiftEvent::Used(_))));
        assert_eq!(g.status, GiftStatus::Used);
        assert_eq!(g.use_by(None, Utc::now()), Err(GiftRefusal::AlreadyUsed));
    }

    #[test]
    fn given_an_issued_gift_when_cancelled_twice_then_it_is_cancelled_once_and_can_no_longer_be_used() {
        let (mut g, _) = issue("coffee", 10).unwrap();
        assert_eq!(g.cancel(), Ok(true));
        assert_eq!(g.status, GiftStatus::Cancelled);
        assert_eq!(g.cancel(), Ok(false), "asked again: as it is");
        assert_eq!(g.use_by(None, Utc::now()), Err(GiftRefusal::Cancelled));
    }

    #[test]
    fn given_a_used_gift_when_cancelled_then_it_is_refused_and_stays_used() {
        let (mut g, _) = issue("coffee", 10).unwrap();
        g.use_by(None, Utc::now()).unwrap();
        assert_eq!(g.cancel(), Err(GiftRefusal::AlreadyUsed));
        assert_eq!(g.status, GiftStatus::Used);
        assert_eq!(GiftStatus::parse(GiftStatus::Cancelled.as_str()), Some(GiftStatus::Cancelled));
    }
}
