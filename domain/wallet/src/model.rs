//! The `WalletItem` aggregate (one per reward) and the `Wallet` it belongs to.

use kernel::paging::Page;
use kernel::{CustomerId, ValidationError};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ItemStatus {
    Issued,
    Exchanged,
}

impl ItemStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issued => "ISSUED",
            Self::Exchanged => "EXCHANGED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "ISSUED" => Some(Self::Issued),
            "EXCHANGED" => Some(Self::Exchanged),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletItem {
    pub reward_id: Uuid,
    pub mission_id: Uuid,
    pub customer_id: CustomerId,
    pub points: i64,
    /// The points not spent yet (a lot partly spent shows what is left).
    pub remaining: i64,
    pub status: ItemStatus,
    /// The gift that took its last points.
    pub gift_id: Option<Uuid>,
    pub gift_code: Option<String>,
    /// The request that exchanged it before points were an account (kept for the record;
    /// a spend's request id is on the spend now).
    pub exchange_request_id: Option<String>,
    /// When what is left of it expires (None: never): issue time plus the mission's
    /// `points_expire_after`. A refund keeps it.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalletEvent {
    Issued {
        reward_id: Uuid,
        mission_id: Uuid,
        customer_id: CustomerId,
        points: i64,
    },
    Exchanged {
        reward_id: Uuid,
        mission_id: Uuid,
        customer_id: CustomerId,
        points: i64,
        gift_id: Uuid,
        gift_code: String,
    },
    /// Some of the customer's points expire on `date` (UTC): told once per date.
    PointsExpiring(crate::expiry::ExpiryNotice),
}

/// A request to exchange a reward for a gift, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeReward {
    pub customer_id: CustomerId,
    pub reward_id: Uuid,
    pub gift_code: String,
    /// Empty: every call is a new request.
    pub request_id: String,
}

impl ExchangeReward {
    /// # Errors
    /// The field at fault: `customer_id`, `reward_id`, `gift_code` or `request_id`.
    pub fn new(customer_id: &str, reward_id: &str, gift_code: &str, request_id: &str) -> Result<Self, ValidationError> {
        let customer_id = CustomerId::new(customer_id)?;
        let reward_id = kernel::parse_id("reward_id", reward_id)?;
        kernel::code("gift_code", gift_code)?;
        kernel::request_id(request_id)?;
        Ok(Self { customer_id, reward_id, gift_code: gift_code.to_owned(), request_id: request_id.to_owned() })
    }
}

/// Why an exchange cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeRefusal {
    /// Unknown, or someone else's: the same answer, so nobody learns what others hold.
    #[error("reward not found in the wallet")]
    NotFound,
    /// Every point of the reward was spent already.
    #[error("the reward was already exchanged")]
    AlreadyExchanged,
    /// The customer's request id spent points on another request.
    #[error(transparent)]
    RequestReused(#[from] kernel::RequestReused),
    /// The balance does not cover the gift's cost.
    #[error(transparent)]
    NotEnoughPoints(#[from] crate::ledger::NotEnoughPoints),
}

impl WalletItem {
    /// Policy "an allocated reward is issued into the wallet".
    pub fn issue(reward_id: Uuid, mission_id: Uuid, customer_id: CustomerId, points: i64) -> (Self, WalletEvent) {
        let item = Self {
            reward_id,
            mission_id,
            customer_id: customer_id.clone(),
            points,
            remaining: points,
            status: ItemStatus::Issued,
            gift_id: None,
            gift_code: None,
            exchange_request_id: None,
            expires_at: None,
            version: 0,
        };
        (item, WalletEvent::Issued { reward_id, mission_id, customer_id, points })
    }

    /// The reward as a lot of points to spend from.
    pub fn lot(&self) -> crate::ledger::Lot {
        crate::ledger::Lot {
            reward_id: self.reward_id,
            mission_id: self.mission_id,
            points: self.points,
            remaining: self.remaining,
            expires_at: self.expires_at,
        }
    }

    /// Takes `points` of what is left for `gift_id`. The item whose last points go is
    /// EXCHANGED for that gift, with its `RewardExchanged`; a partly spent one stays ISSUED.
    ///
    /// # Errors
    /// `AlreadyExchanged` when fewer than `points` are left (nothing changes).
    pub fn draw(
        &mut self,
        points: i64,
        gift_id: Uuid,
        gift_code: &str,
    ) -> Result<Option<WalletEvent>, ExchangeRefusal> {
        if self.status != ItemStatus::Issued || points <= 0 || points > self.remaining {
            return Err(ExchangeRefusal::AlreadyExchanged);
        }
        self.remaining -= points;
        if self.remaining > 0 {
            return Ok(None);
        }
        self.status = ItemStatus::Exchanged;
        self.gift_id = Some(gift_id);
        self.gift_code = Some(gift_code.to_owned());
        Ok(Some(WalletEvent::Exchanged {
            reward_id: self.reward_id,
            mission_id: self.mission_id,
            customer_id: self.customer_id.clone(),
            points: self.points,
            gift_id,
            gift_code: gift_code.to_owned(),
        }))
    }
}

/// A customer's wallet: the balance of their points account, and the first page of the
/// items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wallet {
    pub customer_id: CustomerId,
    /// The balance, under its seed name.
    pub available_points: i64,
    /// The points account's balance: the sum of the customer's ledger entries.
    pub balance: i64,
    pub items: Page<WalletItem>,
    /// What expires next and when (None: nothing in the balance expires).
    pub next_expiry: Option<crate::expiry::NextExpiry>,
}

/// The points left in the items (equal to the account's balance while nothing but
/// earning and spending moves points).
pub fn available_points<'a>(items: impl IntoIterator<Item = &'a WalletItem>) -> i64 {
    items.into_iter().filter(|i| i.status == ItemStatus::Issued).map(|i| i.remaining).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(points: i64) -> WalletItem {
        WalletItem::issue(Uuid::now_v7(), Uuid::now_v7(), CustomerId::new("c-11").unwrap(), points).0
    }

    #[test]
    fn given_an_allocated_reward_when_issued_then_the_item_is_issued_and_counts_as_available() {
        let c = CustomerId::new("c-11").unwrap();
        let (item, event) = WalletItem::issue(Uuid::now_v7(), Uuid::now_v7(), c.clone(), 10);
        assert_eq!((item.status, item.remaining), (ItemStatus::Issued, 10));
        assert!(matches!(event, WalletEvent::Issued { points: 10, .. }));
        let mut exchanged = issued(50);
        exchanged.draw(50, Uuid::now_v7(), "movie-ticket").unwrap();
        let mut partly = issued(100);
        partly.draw(10, Uuid::now_v7(), "coffee").unwrap();
        assert_eq!(available_points([&item, &exchanged, &partly]), 10 + 90);
    }

    #[test]
    fn given_a_reward_of_a_hundred_when_ten_are_drawn_then_it_stays_issued_with_ninety_left() {
        let mut item = issued(100);
        assert_eq!(item.draw(10, Uuid::now_v7(), "coffee"), Ok(None), "no event: not exchanged");
        assert_eq!((item.status, item.remaining, item.gift_id), (ItemStatus::Issued, 90, None));
    }

    #[test]
    fn given_a_reward_when_its_last_points_are_drawn_then_it_is_exchanged_for_that_gift_once() {
        let mut item = issued(10);
        let gift = Uuid::now_v7();
        let event = item.draw(10, gift, "coffee").unwrap().expect("exchanged");
        assert!(matches!(event, WalletEvent::Exchanged { gift_id, points: 10, .. } if gift_id == gift));
        assert_eq!((item.status, item.remaining, item.gift_id), (ItemStatus::Exchanged, 0, Some(gift)));
        assert_eq!(item.draw(1, Uuid::now_v7(), "coffee"), Err(ExchangeRefusal::AlreadyExchanged));
    }

    #[test]
    fn given_a_reward_when_more_than_is_left_is_drawn_then_nothing_changes() {
        let mut item = issued(10);
        assert_eq!(item.draw(11, Uuid::now_v7(), "coffee"), Err(ExchangeRefusal::AlreadyExchanged));
        assert_eq!(item.draw(0, Uuid::now_v7(), "coffee"), Err(ExchangeRefusal::AlreadyExchanged));
        assert_eq!((item.status, item.remaining), (ItemStatus::Issued, 10));
    }

    #[test]
    fn exchange_requests_name_the_bad_field() {
        assert_eq!(ExchangeReward::new("c", "nope", "coffee", "").unwrap_err().field, "reward_id");
        let id = Uuid::now_v7().to_string();
        assert_eq!(ExchangeReward::new("c", &id, "", "").unwrap_err().field, "gift_code");
        assert_eq!(ExchangeReward::new("", &id, "coffee", "").unwrap_err().field, "customer_id");
    }
}
