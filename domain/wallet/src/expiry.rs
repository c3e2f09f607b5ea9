//! Points that expire: a lot issued for a mission whose catalog says
//! `points_expire_after` expires that long after it was issued. At that instant what is
//! left of it leaves the balance as an `EXPIRED` entry (once: the lot is emptied in the
//! same transaction), and from that instant it is never spent, even before the entry is
//! written.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::WalletItem;

/// Points of one customer expiring on one day (UTC), as told to them beforehand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiryNotice {
    pub customer_id: kernel::CustomerId,
    pub date: chrono::NaiveDate,
    /// What is left, when noticed, in the lots expiring that day.
    pub points: i64,
    /// The soonest of their instants that day.
    pub expires_at: DateTime<Utc>,
}

/// The notices due at `now` for `lots`: per customer and expiry date, the points left in
/// the lots expiring after `now` and at most `within` from it.
pub fn notices(lots: &[WalletItem], now: DateTime<Utc>, within: Duration) -> Vec<ExpiryNotice> {
    let until = chrono::Duration::from_std(within).ok().and_then(|w| now.checked_add_signed(w)).unwrap_or(now);
    let mut out: Vec<ExpiryNotice> = Vec::new();
    for lot in lots.iter().filter(|l| l.remaining > 0) {
        let Some(at) = lot.expires_at.filter(|at| *at > now && *at <= until) else { continue };
        let date = at.date_naive();
        match out.iter_mut().find(|n| n.customer_id == lot.customer_id && n.date == date) {
            Some(n) => {
                n.points += lot.remaining;
                n.expires_at = n.expires_at.min(at);
            }
            None => out.push(ExpiryNotice {
                customer_id: lot.customer_id.clone(),
                date,
                points: lot.remaining,
                expires_at: at,
            }),
        }
    }
    out.sort_by_key(|n| n.expires_at);
    out
}

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
    fn given_lots_expiring_within_the_notice_when_noticed_then_one_notice_per_customer_and_date() {
        let mut other = lot(5, Some(5));
        other.customer_id = CustomerId::new("c-2").unwrap();
        let mut spent = lot(50, Some(5));
        spent.remaining = 0;
        let mut late_that_day = lot(30, Some(5));
        late_that_day.expires_at = Some(day(5) + chrono::Duration::hours(20));
        let lots = [lot(10, Some(5)), late_that_day, spent, other, lot(7, Some(9)), lot(8, Some(2)), lot(99, None)];
        let week = Duration::from_secs(7 * 86_400);
        let found: Vec<_> = notices(&lots, day(3), week)
            .into_iter()
            .map(|n| (n.customer_id.to_string(), n.date.to_string(), n.points))
            .collect();
        assert_eq!(
            found,
            vec![
                ("c-1".to_owned(), "2027-01-05".to_owned(), 40),
                ("c-2".to_owned(), "2027-01-05".to_owned(), 5),
                ("c-1".to_owned(), "2027-01-09".to_owned(), 7),
            ]
        );
        assert!(notices(&lots, day(3), Duration::from_secs(86_400)).is_empty(), "none within a day");
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
