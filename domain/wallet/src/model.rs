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
    pub status: ItemStatus,
    pub gift_id: Option<Uuid>,
    pub gift_code: Option<String>,
    /// The request that exchanged it: the same request again gets the same answer.
    pub exchange_request_id: Option<String>,
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
    #[error("the reward was already exchanged")]
    AlreadyExchanged,
    /// The customer's request id exchanged another reward, or this one for another gift.
    #[error(transparent)]
    RequestReused(#[from] kernel::RequestReused),
}

/// What to do with an exchange request, given the item as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeDecision {
    /// Call the gift service, then commit.
    Proceed,
    /// The same request already exchanged it: answer as before.
    AlreadyDone,
}

impl WalletItem {
    /// Policy "an allocated reward is issued into the wallet".
    pub fn issue(reward_id: Uuid, mission_id: Uuid, customer_id: CustomerId, points: i64) -> (Self, WalletEvent) {
        let item = Self {
            reward_id,
            mission_id,
            customer_id: customer_id.clone(),
            points,
            status: ItemStatus::Issued,
            gift_id: None,
            gift_code: None,
            exchange_request_id: None,
            version: 0,
        };
        (item, WalletEvent::Issued { reward_id, mission_id, customer_id, points })
    }

    /// Decides whether `cmd` may exchange this item, before any remote call.
    ///
    /// # Errors
    /// `NotFound` for another customer's item; `AlreadyExchanged` unless it was this
    /// very request; `RequestReused` when its request id exchanged it for another gift.
    pub fn decide_exchange(&self, cmd: &ExchangeReward) -> Result<ExchangeDecision, ExchangeRefusal> {
        if self.customer_id != cmd.customer_id {
            return Err(ExchangeRefusal::NotFound);
        }
        let same_request = !cmd.request_id.is_empty() && self.exchange_request_id.as_deref() == Some(&cmd.request_id);
        match self.status {
            ItemStatus::Issued => Ok(ExchangeDecision::Proceed),
            ItemStatus::Exchanged if same_request && self.gift_code.as_deref() == Some(&cmd.gift_code) => {
                Ok(ExchangeDecision::AlreadyDone)
            }
            ItemStatus::Exchanged if same_request => Err(kernel::RequestReused.into()),
            ItemStatus::Exchanged => Err(ExchangeRefusal::AlreadyExchanged),
        }
    }

    /// Records the gift the item was exchanged for.
    ///
    /// # Errors
    /// `AlreadyExchanged` when the item is no longer ISSUED.
    pub fn exchange(&mut self, gift_id: Uuid, cmd: &ExchangeReward) -> Result<WalletEvent, ExchangeRefusal> {
        if self.status != ItemStatus::Issued {
            return Err(ExchangeRefusal::AlreadyExchanged);
        }
        self.status = ItemStatus::Exchanged;
        self.gift_id = Some(gift_id);
        self.gift_code = Some(cmd.gift_code.clone());
        self.exchange_request_id = (!cmd.request_id.is_empty()).then(|| cmd.request_id.clone());
        Ok(WalletEvent::Exchanged {
            reward_id: self.reward_id,
            mission_id: self.mission_id,
            customer_id: self.customer_id.clone(),
            points: self.points,
            gift_id,
            gift_code: cmd.gift_code.clone(),
        })
    }
}

/// A customer's wallet: the balance of every item issued to them, and the first page of
/// the items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wallet {
    pub customer_id: CustomerId,
    pub available_points: i64,
    pub items: Page<WalletItem>,
}

/// The balance: points of the items not yet exchanged.
pub fn available_points<'a>(items: impl IntoIterator<Item = &'a WalletItem>) -> i64 {
    items.into_iter().filter(|i| i.status == ItemStatus::Issued).map(|i| i.points).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange_cmd(item: &WalletItem, customer: &str, request: &str) -> ExchangeReward {
        ExchangeReward::new(customer, &item.reward_id.to_string(), "coffee", request).unwrap()
    }

    #[test]
    fn given_an_allocated_reward_when_issued_then_the_item_is_issued_and_counts_as_available() {
        let c = CustomerId::new("c-11").unwrap();
        let (item, event) = WalletItem::issue(Uuid::now_v7(), Uuid::now_v7(), c.clone(), 10);
        assert_eq!(item.status, ItemStatus::Issued);
        assert!(matches!(event, WalletEvent::Issued { points: 10, .. }));
        let mut exchanged = WalletItem::issue(Uuid::now_v7(), Uuid::now_v7(), c.clone(), 50).0;
        exchanged.status = ItemStatus::Exchanged;
        assert_eq!(available_points([&item, &exchanged]), 10);
    }

    #[test]
    fn given_an_issued_item_when_its_owner_exchanges_it_then_it_is_exchanged_once() {
        let (mut item, _) = WalletItem::issue(Uuid::now_v7(), Uuid::now_v7(), CustomerId::new("c-11").unwrap(), 10);
        let cmd = exchange_cmd(&item, "c-11", "req-1");
        assert_eq!(item.decide_exchange(&cmd), Ok(ExchangeDecision::Proceed));
        let gift = Uuid::now_v7();
        let e = item.exchange(gift, &cmd).unwrap();
        assert!(matches!(e, WalletEvent::Exchanged { gift_id, .. } if gift_id == gift));
        assert_eq!((item.status, item.gift_id), (ItemStatus::Exchanged, Some(gift)));
        // the same request again: the same answer; another request: refused
        assert_eq!(item.decide_exchange(&cmd), Ok(ExchangeDecision::AlreadyDone));
        assert_eq!(item.decide_exchange(&exchange_cmd(&item, "c-11", "req-2")), Err(ExchangeRefusal::AlreadyExchanged));
        assert_eq!(item.decide_exchange(&exchange_cmd(&item, "c-11", "")), Err(ExchangeRefusal::AlreadyExchanged));
        assert_eq!(item.exchange(Uuid::now_v7(), &cmd), Err(ExchangeRefusal::AlreadyExchanged));
    }

    #[test]
    fn given_an_exchanged_item_when_its_request_id_asks_for_another_gift_then_the_request_is_reused() {
        let (mut item, _) = WalletItem::issue(Uuid::now_v7(), Uuid::now_v7(), CustomerId::new("c-11").unwrap(), 10);
        let cmd = exchange_cmd(&item, "c-11", "req-1");
        item.exchange(Uuid::now_v7(), &cmd).unwrap();
        let other_gift = ExchangeReward { gift_code: "movie-ticket".into(), ..cmd.clone() };
        assert_eq!(item.decide_exchange(&other_gift), Err(ExchangeRefusal::RequestReused(kernel::RequestReused)));
        assert_eq!(item.decide_exchange(&cmd), Ok(ExchangeDecision::AlreadyDone), "the same request still is");
    }

    #[test]
    fn given_someone_elses_item_when_exchanging_then_it_is_not_found() {
        let (item, _) = WalletItem::issue(Uuid::now_v7(), Uuid::now_v7(), CustomerId::new("c-11").unwrap(), 10);
        assert_eq!(item.decide_exchange(&exchange_cmd(&item, "c-12", "")), Err(ExchangeRefusal::NotFound));
    }

    #[test]
    fn exchange_requests_name_the_bad_field() {
        assert_eq!(ExchangeReward::new("c", "nope", "coffee", "").unwrap_err().field, "reward_id");
        let id = Uuid::now_v7().to_string();
        assert_eq!(ExchangeReward::new("c", &id, "", "").unwrap_err().field, "gift_code");
        assert_eq!(ExchangeReward::new("", &id, "coffee", "").unwrap_err().field, "customer_id");
    }
}
