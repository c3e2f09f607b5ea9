//! The wallet's points economy: what is minted, spent, expired, refunded and adjusted,
//! and what is outstanding (the studio's liability). Counted where the wallet commits
//! each movement (once per entry, not per request answered again).

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::{enabled, register};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MissionLabel {
    pub mission: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GiftLabel {
    pub gift: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabel {
    /// `credit` or `debit`.
    pub direction: &'static str,
}

pub struct Points {
    pub earned: Family<MissionLabel, Counter>,
    pub spent: Family<GiftLabel, Counter>,
    pub expired: Counter,
    pub refunded: Counter,
    pub adjusted: Family<DirectionLabel, Counter>,
    pub outstanding: Gauge,
}

/// The family group, registered on first use (the wallet's).
pub fn points() -> &'static Points {
    static G: OnceLock<Points> = OnceLock::new();
    G.get_or_init(|| {
        let g = Points {
            earned: Family::default(),
            spent: Family::default(),
            expired: Counter::default(),
            refunded: Counter::default(),
            adjusted: Family::default(),
            outstanding: Gauge::default(),
        };
        register("points_earned", "Points minted into wallets by issued rewards, by mission code.", g.earned.clone());
        register("points_spent", "Points spent on gifts, by gift code.", g.spent.clone());
        register("points_expired", "Points that left balances when their lots expired.", g.expired.clone());
        register("points_refunded", "Points given back by refunds of gifts.", g.refunded.clone());
        register("points_adjusted", "Points moved by admins' adjustments, by direction.", g.adjusted.clone());
        register("points_outstanding", "The sum of every customer's balance, as last read from the store.", {
            g.outstanding.clone()
        });
        for direction in ["credit", "debit"] {
            let _ = g.adjusted.get_or_create(&DirectionLabel { direction });
        }
        g
    })
}

fn amount(points: i64) -> u64 {
    points.unsigned_abs()
}

impl Points {
    pub fn earned(&self, mission: &str, points: i64) {
        if enabled() {
            self.earned.get_or_create(&MissionLabel { mission: mission.to_owned() }).inc_by(amount(points));
        }
    }

    pub fn spent(&self, gift: &str, points: i64) {
        if enabled() {
            self.spent.get_or_create(&GiftLabel { gift: gift.to_owned() }).inc_by(amount(points));
        }
    }

    pub fn expired(&self, points: i64) {
        if enabled() {
            self.expired.inc_by(amount(points));
        }
    }

    pub fn refunded(&self, points: i64) {
        if enabled() {
            self.refunded.inc_by(amount(points));
        }
    }

    /// A signed adjustment: a credit above zero, a debit below.
    pub fn adjusted(&self, points: i64) {
        if enabled() {
            let direction = if points >= 0 { "credit" } else { "debit" };
            self.adjusted.get_or_create(&DirectionLabel { direction }).inc_by(amount(points));
        }
    }

    pub fn outstanding(&self, points: i64) {
        self.outstanding.set(points);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_points_families_are_exposed_under_their_names() {
        crate::enable();
        let p = points();
        p.earned("daily-login", 10);
        p.spent("coffee", 10);
        p.expired(-40);
        p.refunded(50);
        p.adjusted(-3);
        p.outstanding(1234);
        let text = crate::encode();
        for line in [
            "points_earned_total{mission=\"daily-login\"} 10",
            "points_spent_total{gift=\"coffee\"} 10",
            "points_expired_total 40",
            "points_refunded_total 50",
            "points_adjusted_total{direction=\"debit\"} 3",
            "points_adjusted_total{direction=\"credit\"} 0",
            "points_outstanding 1234",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
