//! Points that expire: a lot issued for a mission whose catalog says
//! `points_expire_after` expires that long after it was issued. At that instant what is
//! left of it leaves the balance as an `EXPIRED` entry (once: the lot is emptied in the
//! same transaction), and from that instant it is never spent, even before the entry is
//! written.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::WalletItem;

/// When a lot issued at `issued_at` expires; None: never.
pub fn expires_at(issued_at: DateTime<Utc>, after: Option<Duration>) -> Option<DateTime<Utc>> {
    after.and_then(|d| chrono::Duration::from_std(d).ok()).and_then(|d| issued_at.checked_add_signed(d))
}

/// The points that expire next, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextExpiry {
    /// What is left in the lots expiring at `at`.
    pub points: i64,
    pub at: DateTime<Utc>,
}

impl WalletItem {
    /// Whether its expiry has come at `now` (a lot without one never expires).
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Takes what is left of an expired lot: the points that expire (0 when nothing is
    /// left or its time has not come; nothing changes then).
    pub fn expire(&mut self, now: DateTime<Utc>) -> i64 {
        if !self.is_expired(now) || self.remaining <= 0 {
            return 0;
        }
        std::mem::take(&mut self.remaining)
    }
}

/// The lots a spend or a debit may draw from at `now`: those with points left whose
/// expiry has not come.
pub fn spendable(items: Vec<WalletItem>, now: DateTime<Utc>) -> Vec<WalletItem> {
    items.into_iter().filter(|i| i.remaining > 0 && !i.is_expired(now)).collect()
}

/// The soonest expiry among `lots` with points left, and the points it takes.
pub fn next_expiry(lots: &[WalletItem]) -> Option<NextExpiry> {
    let at = lots.iter().filter(|l| l.remaining > 0).filter_map(|l| l.expires_at).min()?;
    let points = lots.iter().filter(|l| l.remaining > 0 && l.expires_at == Some(at)).map(|l| l.remaining).sum();
    Some(NextExpiry { points, at })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use kernel::CustomerId;
    use uuid::Uuid;

    use super::*;

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 1, d, 0, 0, 0).unwrap()
    }

    fn lot(points: i64, expires: Option<u32>) -> WalletItem {
        let mut item = WalletItem::issue(Uuid::now_v7(), Uuid::now_v7(), CustomerId::new("c-1").unwrap(), points).0;
        item.expires_at = expires.map(day);
        item
    }

    #[test]
    fn given_a_mission_expiry_when_issued_then_the_lot_expires_that_long_after() {
        assert_eq!(expires_at(day(1), Some(Duration::from_secs(4 * 86_400))), Some(day(5)));
        assert_eq!(expires_at(day(1), None), None, "default: never");
    }

    #[test]
    fn given_a_lot_when_its_expiry_comes_then_what_is_left_expires_once() {
        let mut item = lot(100, Some(5));
        item.remaining = 40;
        assert_eq!(item.expire(day(4)), 0, "not yet");
        assert_eq!(item.remaining, 40);
        assert_eq!(item.expire(day(5)), 40, "at that instant");
        assert_eq!(item.remaining, 0);
        assert_eq!(item.expire(day(6)), 0, "nothing left to expire again");
        let mut never = lot(10, None);
        assert_eq!(never.expire(day(31)), 0);
    }

    #[test]
    fn given_expired_and_live_lots_when_spending_then_only_live_ones_pay() {
        let items = vec![lot(10, Some(2)), lot(20, Some(9)), lot(30, None), lot(0, Some(9))];
        let left: Vec<_> = spendable(items, day(3)).into_iter().map(|i| i.points).collect();
        assert_eq!(left, vec![20, 30]);
    }

    #[test]
    fn given_lots_when_asked_what_expires_next_then_the_soonest_with_all_its_points() {
        let mut spent = lot(50, Some(2));
        spent.remaining = 0;
        let lots = [spent, lot(10, Some(5)), lot(30, Some(5)), lot(20, Some(9)), lot(99, None)];
        assert_eq!(next_expiry(&lots), Some(NextExpiry { points: 40, at: day(5) }));
        assert_eq!(next_expiry(&[lot(99, None)]), None);
    }
}
