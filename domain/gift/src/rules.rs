//! The rules of the gift economy: which gifts exist, what each costs, how many can ever be
//! issued (stock), how many one customer may have (per day, per week or ever), and when.
//!
//! Pure functions of (catalog, history, clock). A per-customer limit works like a mission's
//! cap: a decision names the *slot* the gift takes (`ever#1`: the customer's first), and
//! the gift store holds one row per (customer, gift, slot), so two concurrent exchanges
//! cannot both take the last one. Stock is not decided here: it is a counter the store
//! takes in the same transaction as the gift (never oversold), and its refusal is
//! [`Refusal::OutOfStock`].

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
pub use kernel::schedule::{Period, Schedule};

use crate::model::GiftCode;

/// The period a per-customer limit counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitPeriod {
    Daily,
    Weekly,
    Ever,
}

impl LimitPeriod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::Ever => "ever",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "daily" => Some(Self::Daily),
            "weekly" => Some(Self::Weekly),
            "ever" => Some(Self::Ever),
            _ => None,
        }
    }

    /// The period holding `now`.
    pub fn period(self, schedule: &Schedule, now: DateTime<Utc>) -> Period {
        match self {
            Self::Daily => schedule.day(now),
            Self::Weekly => schedule.week(now),
            Self::Ever => Period::forever("ever"),
        }
    }
}

/// How many of a gift one customer may have per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub period: LimitPeriod,
    pub count: u32,
}

/// One gift of the catalog and its rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiftRule {
    pub code: GiftCode,
    pub name: String,
    pub cost_points: i64,
    /// How many can ever be issued, to all customers together; `None`: no limit.
    pub stock: Option<u32>,
    pub per_customer: Option<Limit>,
    /// A limited-time gift: available from this instant...
    pub available_from: Option<DateTime<Utc>>,
    /// ...until this one (exclusive).
    pub available_until: Option<DateTime<Utc>>,
}

/// What the store knows of a customer, as far as one decision needs it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct History {
    /// Gifts of this code the customer got in the limit's current period.
    pub in_period: u32,
}

/// Why a gift is refused. Nothing is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotYetAvailable {
        code: GiftCode,
        from: DateTime<Utc>,
    },
    NoLongerAvailable {
        code: GiftCode,
        until: DateTime<Utc>,
    },
    /// The customer has as many as the limit allows; `next` is when the next period starts
    /// (none for `ever`, or when the gift's window closes first).
    LimitReached {
        code: GiftCode,
        limit: Limit,
        next: Option<DateTime<Utc>>,
    },
    /// Every one of the stock has been issued.
    OutOfStock {
        code: GiftCode,
    },
}

impl Refusal {
    /// Machine-readable reason (the `reason` of a `google.rpc.ErrorInfo`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotYetAvailable { .. } => "GIFT_NOT_YET_AVAILABLE",
            Self::NoLongerAvailable { .. } => "GIFT_NO_LONGER_AVAILABLE",
            Self::LimitReached { .. } => "GIFT_LIMIT_REACHED",
            Self::OutOfStock { .. } => "GIFT_OUT_OF_STOCK",
        }
    }

    pub fn code(&self) -> &GiftCode {
        match self {
            Self::NotYetAvailable { code, .. }
            | Self::NoLongerAvailable { code, .. }
            | Self::LimitReached { code, .. }
            | Self::OutOfStock { code } => code,
        }
    }

    /// When the customer may try again, if ever.
    pub fn next_available(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::NotYetAvailable { from, .. } => Some(*from),
            Self::LimitReached { next, .. } => *next,
            Self::NoLongerAvailable { .. } | Self::OutOfStock { .. } => None,
        }
    }

    /// The refusal in words a customer understands, times in the catalog's time zone.
    pub fn message(&self, schedule: &Schedule) -> String {
        match self {
            Self::NotYetAvailable { code, from } => {
                format!("{} is not available yet; available from {}", code.as_str(), schedule.local(*from))
            }
            Self::NoLongerAvailable { code, until } => {
                format!("{} is no longer available; it ended at {}", code.as_str(), schedule.local(*until))
            }
            Self::OutOfStock { code } => format!("{} is out of stock", code.as_str()),
            Self::LimitReached { code, limit, next } => {
                let code = code.as_str();
                let (per, when) = match limit.period {
                    LimitPeriod::Daily => (" per day", " today"),
                    LimitPeriod::Weekly => (" per week", " this week"),
                    LimitPeriod::Ever => ("", ""),
                };
                let said = if limit.count == 1 {
                    format!("one per customer{per}: you already have a {code}{when}")
                } else {
                    format!("{} per customer{per}: you already have {} {code}{when}", limit.count, limit.count)
                };
                match next {
                    Some(t) => format!("{said}; next from {}", schedule.local(*t)),
                    None => said,
                }
            }
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message(&Schedule::default()))
    }
}

impl std::error::Error for Refusal {}

/// An accepted gift: the slot it takes (unique per customer and gift), or none when the
/// gift has no per-customer limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub slot: Option<String>,
}

/// The checks of a gift for a customer, in order: the availability window, then the
/// per-customer limit.
///
/// # Errors
/// The [`Refusal`] naming the first rule broken.
pub fn decide(
    rule: &GiftRule,
    schedule: &Schedule,
    history: &History,
    now: DateTime<Utc>,
) -> Result<Decision, Refusal> {
    let code = || rule.code.clone();
    if let Some(from) = rule.available_from
        && now < from
    {
        return Err(Refusal::NotYetAvailable { code: code(), from });
    }
    if let Some(until) = rule.available_until
        && now >= until
    {
        return Err(Refusal::NoLongerAvailable { code: code(), until });
    }
    let Some(limit) = rule.per_customer else {
        return Ok(Decision { slot: None });
    };
    let period = limit.period.period(schedule, now);
    if history.in_period >= limit.count {
        let next = period.end.filter(|next| rule.available_until.is_none_or(|until| *next < until));
        return Err(Refusal::LimitReached { code: code(), limit, next });
    }
    Ok(Decision { slot: Some(period.slot(history.in_period + 1)) })
}

/// A catalog entry or setting that breaks a rule, naming the gift and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{field}: {reason}", gift.as_ref().map(|g| format!("gift '{g}': ")).unwrap_or_default())]
pub struct CatalogError {
    pub gift: Option<String>,
    pub field: &'static str,
    pub reason: String,
}

impl CatalogError {
    fn of(gift: &str, field: &'static str, reason: impl Into<String>) -> Self {
        Self { gift: Some(gift.to_owned()), field, reason: reason.into() }
    }
}

/// The most a gift may cost (a typo of a few zeros is a mistake).
pub const MAX_COST: i64 = 1_000_000;

/// The gifts that can be had, with their rules and when limit periods reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    schedule: Schedule,
    gifts: Vec<GiftRule>,
}

impl Catalog {
    /// Checks the catalog as a whole: unique codes, sane names and costs, limits of at
    /// least one, windows that open before they close.
    ///
    /// # Errors
    /// The first [`CatalogError`], naming the gift and the field.
    pub fn new(schedule: Schedule, gifts: Vec<GiftRule>) -> Result<Self, CatalogError> {
        if gifts.is_empty() {
            return Err(CatalogError { gift: None, field: "gifts", reason: "at least one gift".into() });
        }
        let mut seen = BTreeSet::new();
        for g in &gifts {
            let code = g.code.as_str();
            if !seen.insert(code) {
                return Err(CatalogError::of(code, "code", "appears twice"));
            }
            let name = g.name.trim();
            if name.is_empty() || name.len() > 200 {
                return Err(CatalogError::of(code, "name", "must be 1-200 bytes"));
            }
            if !(1..=MAX_COST).contains(&g.cost_points) {
                return Err(CatalogError::of(code, "cost_points", format!("must be between 1 and {MAX_COST}")));
            }
            if g.per_customer.is_some_and(|l| l.count == 0) {
                return Err(CatalogError::of(code, "per_customer_limit", "count must be at least 1"));
            }
            if let (Some(from), Some(until)) = (g.available_from, g.available_until)
                && from >= until
            {
                return Err(CatalogError::of(code, "available_until", "must be after available_from"));
            }
        }
        Ok(Self { schedule, gifts })
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    pub fn gifts(&self) -> &[GiftRule] {
        &self.gifts
    }

    /// # Errors
    /// `gift_code` when the code is not in the catalog.
    pub fn find(&self, code: &GiftCode) -> Result<&GiftRule, kernel::ValidationError> {
        self.gifts
            .iter()
            .find(|g| &g.code == code)
            .ok_or_else(|| kernel::ValidationError::new("gift_code", format!("unknown gift '{}'", code.as_str())))
    }
}

impl Default for Catalog {
    /// The built-in catalog, fixed so that clients and tests can rely on it.
    fn default() -> Self {
        let once = Some(Limit { period: LimitPeriod::Ever, count: 1 });
        let g = |code: &str, name: &str, cost_points, stock, per_customer| GiftRule {
            code: GiftCode::new(code).expect("catalog codes are valid"),
            name: name.to_owned(),
            cost_points,
            stock,
            per_customer,
            available_from: None,
            available_until: None,
        };
        let gifts = vec![
            g("coffee", "Coffee", 10, None, None),
            g("movie-ticket", "Movie ticket", 50, Some(1000), None),
            g("game-skin", "Game skin", 100, Some(100), once),
            g("founders-badge", "Founder's badge", 20, Some(3), once),
        ];
        Self::new(Schedule::default(), gifts).expect("the built-in catalog is valid")
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveTime;

    use super::*;

    fn code(c: &str) -> GiftCode {
        GiftCode::new(c).unwrap()
    }

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().with_timezone(&Utc)
    }

    fn rule(c: &str, per_customer: Option<Limit>) -> GiftRule {
        GiftRule {
            code: code(c),
            name: c.into(),
            cost_points: 10,
            stock: None,
            per_customer,
            available_from: None,
            available_until: None,
        }
    }

    fn had(n: u32) -> History {
        History { in_period: n }
    }

    fn limit(period: LimitPeriod, count: u32) -> Option<Limit> {
        Some(Limit { period, count })
    }

    #[test]
    fn given_a_gift_without_limit_when_asked_any_number_of_times_then_it_takes_no_slot() {
        let d = decide(&rule("coffee", None), &Schedule::default(), &had(99), Utc::now()).unwrap();
        assert_eq!(d.slot, None);
    }

    #[test]
    fn given_one_per_customer_ever_when_the_customer_has_none_then_it_takes_the_first_slot_and_then_never_again() {
        let r = rule("game-skin", limit(LimitPeriod::Ever, 1));
        let s = Schedule::default();
        assert_eq!(decide(&r, &s, &had(0), Utc::now()).unwrap().slot.as_deref(), Some("ever#1"));
        let refused = decide(&r, &s, &had(1), Utc::now()).unwrap_err();
        assert_eq!(refused.reason(), "GIFT_LIMIT_REACHED");
        assert_eq!(refused.next_available(), None);
        assert_eq!(refused.message(&s), "one per customer: you already have a game-skin");
    }

    #[test]
    fn given_two_per_customer_per_day_when_two_are_had_then_refused_until_the_next_reset_in_the_catalogs_zone() {
        let s = Schedule { reset_at: NaiveTime::from_hms_opt(4, 0, 0).unwrap(), time_zone: chrono_tz::Asia::Seoul };
        let r = rule("coffee", limit(LimitPeriod::Daily, 2));
        // 05:00 in Seoul on the 27th
        let now = at("2026-11-26T20:00:00Z");
        assert_eq!(decide(&r, &s, &had(1), now).unwrap().slot.as_deref(), Some("2026-11-27#2"));
        let refused = decide(&r, &s, &had(2), now).unwrap_err();
        assert_eq!(refused.next_available(), Some(at("2026-11-27T19:00:00Z")));
        assert_eq!(
            refused.message(&s),
            "2 per customer per day: you already have 2 coffee today; next from 2026-11-28T04:00:00+09:00"
        );
    }

    #[test]
    fn given_one_per_week_then_the_slot_is_the_game_week() {
        let r = rule("movie-ticket", limit(LimitPeriod::Weekly, 1));
        let d = decide(&r, &Schedule::default(), &had(0), at("2026-11-26T10:00:00Z")).unwrap();
        assert_eq!(d.slot.as_deref(), Some("2026-W48#1"));
        let refused = decide(&r, &Schedule::default(), &had(1), at("2026-11-26T10:00:00Z")).unwrap_err();
        assert_eq!(refused.next_available(), Some(at("2026-11-30T00:00:00Z")));
    }

    #[test]
    fn given_a_limited_time_gift_then_it_is_refused_before_and_after_its_window() {
        let mut r = rule("xmas-hat", limit(LimitPeriod::Daily, 1));
        r.available_from = Some(at("2026-12-24T00:00:00Z"));
        r.available_until = Some(at("2026-12-26T00:00:00Z"));
        let s = Schedule::default();
        let before = decide(&r, &s, &had(0), at("2026-12-23T23:59:59Z")).unwrap_err();
        assert_eq!((before.reason(), before.next_available()), ("GIFT_NOT_YET_AVAILABLE", r.available_from));
        decide(&r, &s, &had(0), at("2026-12-24T00:00:00Z")).unwrap();
        let after = decide(&r, &s, &had(0), at("2026-12-26T00:00:00Z")).unwrap_err();
        assert_eq!(after.reason(), "GIFT_NO_LONGER_AVAILABLE");
        assert_eq!(after.message(&s), "xmas-hat is no longer available; it ended at 2026-12-26T00:00:00Z");
        // On the last day, had one: no next period inside the window.
        assert_eq!(decide(&r, &s, &had(1), at("2026-12-25T12:00:00Z")).unwrap_err().next_available(), None);
    }

    #[test]
    fn out_of_stock_says_so_without_a_next_time() {
        let r = Refusal::OutOfStock { code: code("founders-badge") };
        assert_eq!(r.message(&Schedule::default()), "founders-badge is out of stock");
        assert_eq!((r.reason(), r.next_available()), ("GIFT_OUT_OF_STOCK", None));
    }

    #[test]
    fn the_default_catalog_is_the_one_clients_rely_on() {
        let c = Catalog::default();
        let summary: Vec<_> = c
            .gifts()
            .iter()
            .map(|g| {
                (g.code.as_str(), g.name.as_str(), g.cost_points, g.stock, g.per_customer.map(|l| (l.period, l.count)))
            })
            .collect();
        let once = Some((LimitPeriod::Ever, 1));
        assert_eq!(
            summary,
            [
                ("coffee", "Coffee", 10, None, None),
                ("movie-ticket", "Movie ticket", 50, Some(1000), None),
                ("game-skin", "Game skin", 100, Some(100), once),
                ("founders-badge", "Founder's badge", 20, Some(3), once),
            ]
        );
        assert_eq!(c.schedule(), &Schedule::default());
    }

    #[test]
    fn a_broken_catalog_names_the_gift_and_the_field() {
        let err = |gifts| Catalog::new(Schedule::default(), gifts).unwrap_err().to_string();
        assert_eq!(err(vec![rule("a", None), rule("a", None)]), "gift 'a': code: appears twice");
        let mut free = rule("a", None);
        free.cost_points = 0;
        assert_eq!(err(vec![free]), "gift 'a': cost_points: must be between 1 and 1000000");
        assert_eq!(
            err(vec![rule("a", limit(LimitPeriod::Ever, 0))]),
            "gift 'a': per_customer_limit: count must be at least 1"
        );
        let mut window = rule("a", None);
        window.available_from = Some(at("2026-11-02T00:00:00Z"));
        window.available_until = Some(at("2026-11-01T00:00:00Z"));
        assert_eq!(err(vec![window]), "gift 'a': available_until: must be after available_from");
        let mut unnamed = rule("a", None);
        unnamed.name = " ".into();
        assert_eq!(err(vec![unnamed]), "gift 'a': name: must be 1-200 bytes");
        assert_eq!(err(vec![]), "gifts: at least one gift");
    }
}
