//! The points account: a balance kept as an append-only ledger, and the lots (issued
//! rewards) spending draws from.
//!
//! Each movement is one [`LedgerEntry`] carrying the balance after it, so the balance is
//! the sum of the entries and never negative. Rewards stay the seed's lots: a spend takes
//! points from them soonest expiry first, then oldest (a lot without expiry never
//! expires, so it comes after every lot that does); a lot whose points are all spent is
//! EXCHANGED, a partly spent one keeps what is left.

use chrono::{DateTime, Utc};
use kernel::CustomerId;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// An issued reward: its points enter the balance.
    Earned,
    /// Points given for a gift.
    Spent,
    Refunded,
    Expired,
    /// An admin's correction, up or down.
    Adjusted,
}

impl EntryKind {
    pub const ALL: [Self; 5] = [Self::Earned, Self::Spent, Self::Refunded, Self::Expired, Self::Adjusted];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Earned => "EARNED",
            Self::Spent => "SPENT",
            Self::Refunded => "REFUNDED",
            Self::Expired => "EXPIRED",
            Self::Adjusted => "ADJUSTED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

/// One movement of a customer's points. Never updated nor deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub entry_id: Uuid,
    pub customer_id: CustomerId,
    /// The entry's place in the customer's account: 1, 2, 3... without gaps.
    pub seq: i64,
    pub kind: EntryKind,
    /// Signed: positive into the balance, negative out of it.
    pub amount: i64,
    pub balance_after: i64,
    /// What it is about: `reward:<id>`, `gift:<id>`, `request:<id>`...
    pub reference: String,
    /// Who caused it: the token's subject, or the service acting on an event.
    pub actor: String,
    /// Why (required for refunds and adjustments).
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// A customer's points account as stored: the balance and how many entries made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub customer_id: CustomerId,
    pub balance: i64,
    /// The number of entries so far (the `seq` of the last one).
    pub entries: i64,
}

/// The balance does not cover the cost: nothing was spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not enough points: it costs {cost}, the balance is {balance}")]
pub struct NotEnoughPoints {
    pub cost: i64,
    pub balance: i64,
}

/// A movement to record: what the account must say after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub kind: EntryKind,
    pub amount: i64,
    pub reference: String,
    pub actor: String,
    pub reason: String,
}

impl Account {
    pub fn open(customer_id: CustomerId) -> Self {
        Self { customer_id, balance: 0, entries: 0 }
    }

    /// Records `m`: the entry with the balance after it.
    ///
    /// # Errors
    /// [`NotEnoughPoints`] when it would take the balance below zero (nothing changes).
    pub fn record(&mut self, m: Movement, entry_id: Uuid, at: DateTime<Utc>) -> Result<LedgerEntry, NotEnoughPoints> {
        let after = self.balance.checked_add(m.amount).filter(|b| *b >= 0);
        let Some(balance_after) = after else {
            return Err(NotEnoughPoints { cost: m.amount.saturating_neg(), balance: self.balance });
        };
        self.balance = balance_after;
        self.entries += 1;
        Ok(LedgerEntry {
            entry_id,
            customer_id: self.customer_id.clone(),
            seq: self.entries,
            kind: m.kind,
            amount: m.amount,
            balance_after,
            reference: m.reference,
            actor: m.actor,
            reason: m.reason,
            at,
        })
    }
}

/// An issued reward as a lot of points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lot {
    pub reward_id: Uuid,
    pub mission_id: Uuid,
    pub points: i64,
    pub remaining: i64,
    /// None: never expires.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Points taken from one lot by one spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Draw {
    pub reward_id: Uuid,
    pub points: i64,
}

/// Which lots pay `cost`: `first` (a reward named by the customer) before any other, then
/// soonest expiry, then oldest (reward ids are UUIDv7: they sort by issue time).
///
/// # Errors
/// [`NotEnoughPoints`] when the lots together hold less than `cost`.
pub fn plan_spend(lots: &[Lot], first: Option<Uuid>, cost: i64) -> Result<Vec<Draw>, NotEnoughPoints> {
    let balance: i64 = lots.iter().map(|l| l.remaining.max(0)).sum();
    if cost > balance {
        return Err(NotEnoughPoints { cost, balance });
    }
    let mut order: Vec<&Lot> = lots.iter().filter(|l| l.remaining > 0).collect();
    order.sort_by_key(|l| (Some(l.reward_id) != first, l.expires_at.is_none(), l.expires_at, l.reward_id));
    let mut left = cost;
    let mut draws = Vec::new();
    for lot in order {
        if left == 0 {
            break;
        }
        let take = lot.remaining.min(left);
        draws.push(Draw { reward_id: lot.reward_id, points: take });
        left -= take;
    }
    Ok(draws)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn lot(n: u128, points: i64, remaining: i64, expires_day: Option<u32>) -> Lot {
        Lot {
            reward_id: Uuid::from_u128(n),
            mission_id: Uuid::from_u128(1000 + n),
            points,
            remaining,
            expires_at: expires_day.map(|d| Utc.with_ymd_and_hms(2027, 1, d, 0, 0, 0).unwrap()),
        }
    }

    fn draws(d: &[Draw]) -> Vec<(u128, i64)> {
        d.iter().map(|d| (d.reward_id.as_u128(), d.points)).collect()
    }

    fn movement(kind: EntryKind, amount: i64) -> Movement {
        Movement { kind, amount, reference: "r".into(), actor: "c-1".into(), reason: String::new() }
    }

    #[test]
    fn given_five_lots_of_ten_when_fifty_is_spent_then_all_five_are_drawn_whole_oldest_first() {
        let lots: Vec<_> = (1..=5).rev().map(|n| lot(n, 10, 10, None)).collect();
        let plan = plan_spend(&lots, None, 50).unwrap();
        assert_eq!(draws(&plan), vec![(1, 10), (2, 10), (3, 10), (4, 10), (5, 10)]);
    }

    #[test]
    fn given_a_lot_of_a_hundred_when_ten_is_spent_then_ninety_are_left_in_it() {
        let plan = plan_spend(&[lot(1, 100, 100, None)], None, 10).unwrap();
        assert_eq!(draws(&plan), vec![(1, 10)]);
    }

    #[test]
    fn given_lots_with_and_without_expiry_when_spending_then_the_soonest_expiry_goes_first_then_the_oldest() {
        let lots = [lot(1, 10, 10, None), lot(2, 10, 10, Some(20)), lot(3, 10, 10, Some(5)), lot(4, 10, 10, None)];
        let plan = plan_spend(&lots, None, 35).unwrap();
        assert_eq!(draws(&plan), vec![(3, 10), (2, 10), (1, 10), (4, 5)]);
    }

    #[test]
    fn given_a_named_reward_when_spending_then_it_pays_first_and_the_rest_comes_from_the_others() {
        let lots = [lot(1, 10, 10, None), lot(2, 10, 10, None), lot(3, 30, 30, Some(2))];
        assert_eq!(draws(&plan_spend(&lots, Some(Uuid::from_u128(2)), 25).unwrap()), vec![(2, 10), (3, 15)]);
    }

    #[test]
    fn given_partly_spent_and_empty_lots_when_spending_then_only_what_is_left_is_drawn() {
        let lots = [lot(1, 10, 0, None), lot(2, 100, 40, None), lot(3, 10, 10, None)];
        assert_eq!(draws(&plan_spend(&lots, None, 45).unwrap()), vec![(2, 40), (3, 5)]);
    }

    #[test]
    fn given_a_short_balance_when_spending_then_nothing_is_planned_and_both_figures_are_told() {
        let lots = [lot(1, 10, 10, None), lot(2, 10, 10, None)];
        assert_eq!(plan_spend(&lots, None, 50), Err(NotEnoughPoints { cost: 50, balance: 20 }));
        assert!(plan_spend(&[], None, 0).unwrap().is_empty());
    }

    #[test]
    fn given_an_account_when_points_move_then_each_entry_carries_the_balance_after_and_their_sum_is_the_balance() {
        let mut account = Account::open(CustomerId::new("c-1").unwrap());
        let now = Utc::now();
        let mut entries = Vec::new();
        for m in [movement(EntryKind::Earned, 10), movement(EntryKind::Earned, 100), movement(EntryKind::Spent, -10)] {
            entries.push(account.record(m, Uuid::now_v7(), now).unwrap());
        }
        assert_eq!(
            entries.iter().map(|e| (e.seq, e.balance_after)).collect::<Vec<_>>(),
            vec![(1, 10), (2, 110), (3, 100)]
        );
        assert_eq!(entries.iter().map(|e| e.amount).sum::<i64>(), account.balance);
        assert_eq!(account.entries, 3);
    }

    #[test]
    fn given_a_balance_when_more_is_spent_then_it_is_refused_and_the_account_is_unchanged() {
        let mut account = Account { customer_id: CustomerId::new("c-1").unwrap(), balance: 30, entries: 3 };
        let err = account.record(movement(EntryKind::Spent, -40), Uuid::now_v7(), Utc::now()).unwrap_err();
        assert_eq!(err, NotEnoughPoints { cost: 40, balance: 30 });
        assert_eq!((account.balance, account.entries), (30, 3));
        let spent = account.record(movement(EntryKind::Spent, -30), Uuid::now_v7(), Utc::now()).unwrap();
        assert_eq!((spent.balance_after, account.balance), (0, 0), "down to zero, never below");
    }

    #[test]
    fn entry_kinds_read_back_as_written() {
        for k in EntryKind::ALL {
            assert_eq!(EntryKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(EntryKind::parse("STOLEN"), None);
    }
}
