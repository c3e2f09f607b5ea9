//! Spending points on a gift: the request, and the spend as committed.

use chrono::{DateTime, Utc};
use kernel::{CustomerId, RequestReused, ValidationError};
use uuid::Uuid;

use crate::ExchangeReward;
use crate::ledger::{Draw, Lot};

/// A request to spend points on a gift, validated: `RedeemGift` (from the whole balance)
/// or `ExchangeReward` (that reward first, then the rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendPoints {
    pub customer_id: CustomerId,
    pub gift_code: String,
    /// Empty: every call is a new request.
    pub request_id: String,
    /// The reward that pays first (`ExchangeReward`).
    pub reward_id: Option<Uuid>,
}

impl SpendPoints {
    /// # Errors
    /// The field at fault: `customer_id`, `gift_code` or `request_id`.
    pub fn redeem(customer_id: &str, gift_code: &str, request_id: &str) -> Result<Self, ValidationError> {
        let customer_id = CustomerId::new(customer_id)?;
        kernel::code("gift_code", gift_code)?;
        kernel::request_id(request_id)?;
        Ok(Self { customer_id, gift_code: gift_code.to_owned(), request_id: request_id.to_owned(), reward_id: None })
    }
}

impl From<ExchangeReward> for SpendPoints {
    fn from(e: ExchangeReward) -> Self {
        Self {
            customer_id: e.customer_id,
            gift_code: e.gift_code,
            request_id: e.request_id,
            reward_id: Some(e.reward_id),
        }
    }
}

/// Points given for one gift, as committed with its `SPENT` entry: what the same request
/// is answered again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spend {
    pub spend_id: Uuid,
    pub customer_id: CustomerId,
    /// Empty: none.
    pub request_id: String,
    pub gift_code: String,
    /// The reward named by `ExchangeReward`.
    pub reward_id: Option<Uuid>,
    pub cost: i64,
    pub gift_id: Uuid,
    pub entry_id: Uuid,
    pub balance_after: i64,
    pub draws: Vec<Draw>,
    pub at: DateTime<Utc>,
}

impl Spend {
    /// Whether `cmd` is this very request again (same gift, same reward).
    ///
    /// # Errors
    /// [`RequestReused`] when its request id comes with other parameters.
    pub fn answers(&self, cmd: &SpendPoints) -> Result<(), RequestReused> {
        if self.gift_code == cmd.gift_code && self.reward_id == cmd.reward_id { Ok(()) } else { Err(RequestReused) }
    }
}

/// The id the gift service keys its idempotency on ("one gift per reward"): the first
/// lot drawn when this spend is the first to touch it (a whole reward exchanged, as
/// before points were an account: asking again returns the same gift), otherwise the
/// spend's own id (a reward already partly spent would be answered its earlier gift).
pub fn gift_key(draws: &[Draw], lots: &[Lot], spend_id: Uuid) -> Uuid {
    draws
        .first()
        .and_then(|d| lots.iter().find(|l| l.reward_id == d.reward_id))
        .filter(|l| l.remaining == l.points)
        .map_or(spend_id, |l| l.reward_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lot(n: u128, points: i64, remaining: i64) -> Lot {
        Lot { reward_id: Uuid::from_u128(n), mission_id: Uuid::nil(), points, remaining, expires_at: None }
    }

    #[test]
    fn given_an_untouched_first_lot_then_the_gift_is_keyed_by_its_reward_otherwise_by_the_spend() {
        let spend = Uuid::from_u128(99);
        let draws = [Draw { reward_id: Uuid::from_u128(1), points: 10 }];
        assert_eq!(gift_key(&draws, &[lot(1, 100, 100)], spend), Uuid::from_u128(1));
        assert_eq!(gift_key(&draws, &[lot(1, 100, 90)], spend), spend, "partly spent: its gift is taken");
        assert_eq!(gift_key(&[], &[], spend), spend);
    }

    #[test]
    fn given_a_spend_when_its_request_comes_again_then_only_the_same_parameters_are_answered() {
        let cmd = SpendPoints::redeem("c-1", "coffee", "r-1").unwrap();
        let spend = Spend {
            spend_id: Uuid::now_v7(),
            customer_id: cmd.customer_id.clone(),
            request_id: "r-1".into(),
            gift_code: "coffee".into(),
            reward_id: None,
            cost: 10,
            gift_id: Uuid::now_v7(),
            entry_id: Uuid::now_v7(),
            balance_after: 0,
            draws: vec![],
            at: Utc::now(),
        };
        assert_eq!(spend.answers(&cmd), Ok(()));
        let other_gift = SpendPoints { gift_code: "movie-ticket".into(), ..cmd.clone() };
        assert_eq!(spend.answers(&other_gift), Err(RequestReused));
        let exchange = SpendPoints { reward_id: Some(Uuid::now_v7()), ..cmd };
        assert_eq!(spend.answers(&exchange), Err(RequestReused));
    }

    #[test]
    fn redeem_requests_name_the_bad_field() {
        assert_eq!(SpendPoints::redeem("", "coffee", "").unwrap_err().field, "customer_id");
        assert_eq!(SpendPoints::redeem("c", "Coffee!", "").unwrap_err().field, "gift_code");
        assert_eq!(SpendPoints::redeem("c", "coffee", &"x".repeat(200)).unwrap_err().field, "request_id");
    }
}
