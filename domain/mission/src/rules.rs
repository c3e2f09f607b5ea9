//! The rules of the mission economy: which missions exist, what each is worth, how often a
//! customer may achieve it, when, after what, and who may report it.
//!
//! Everything here is a pure function of (catalog, history, clock). A decision names the
//! *slot* an achievement takes (`2026-11-26#1`: the first achievement of that game day);
//! the mission store holds a unique key per (customer, mission, slot), so two concurrent
//! reports can never both take the last slot — the loser re-reads the history and is
//! refused. Periods reset at the catalog's `reset_at` in its time zone (daylight saving
//! included); weeks start on Monday.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
pub use kernel::schedule::{Period, Schedule};

use crate::model::MissionCode;

mod catalog;
pub use catalog::{Catalog, CatalogError, MAX_EXPIRY, MAX_POINTS, parse_expiry};

/// How often a customer may achieve a mission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    Once,
    /// Up to `max_per_period` times per game day.
    Daily,
    /// Up to `max_per_period` times per game week (Monday to Monday).
    Weekly,
    Unlimited,
}

impl Repeat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Once => "once",
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::Unlimited => "unlimited",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "once" => Some(Self::Once),
            "daily" => Some(Self::Daily),
            "weekly" => Some(Self::Weekly),
            "unlimited" => Some(Self::Unlimited),
            _ => None,
        }
    }

    /// The period in words, for messages ("today", "this week").
    fn this_period(self) -> &'static str {
        match self {
            Self::Daily => "today",
            Self::Weekly => "this week",
            Self::Once | Self::Unlimited => "",
        }
    }
}

/// Who may report that a customer achieved a mission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportedBy {
    /// The player, for themselves (game servers and admins may too).
    Player,
    /// Only a trusted game server (or an admin): what a client cannot be trusted to say.
    GameServer,
}

impl ReportedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Player => "player",
            Self::GameServer => "game_server",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "player" => Some(Self::Player),
            "game_server" => Some(Self::GameServer),
            _ => None,
        }
    }
}

/// The kind of caller reporting an achievement (from the verified token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reporter {
    /// A player reporting for themselves (that it is themselves is checked at the edge).
    Player,
    GameServer,
    Admin,
}

/// One mission of the catalog and its rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissionRule {
    pub code: MissionCode,
    pub title: String,
    /// What the mission's reward is worth.
    pub points: i64,
    pub repeat: Repeat,
    /// For daily and weekly missions: achievements per period (default 1).
    pub max_per_period: u32,
    pub reported_by: ReportedBy,
    /// Limited-time events: achievable from this instant...
    pub available_from: Option<DateTime<Utc>>,
    /// ...until this one (exclusive).
    pub available_until: Option<DateTime<Utc>>,
    /// Missions the customer must have achieved before this one.
    pub requires: Vec<MissionCode>,
    /// How long the reward's points stay spendable once issued; None: never expire.
    pub points_expire_after: Option<std::time::Duration>,
}

impl MissionRule {
    /// Achievements allowed per period (`once`: 1 ever; `unlimited`: no cap).
    pub fn cap(&self) -> Option<u32> {
        match self.repeat {
            Repeat::Once => Some(1),
            Repeat::Daily | Repeat::Weekly => Some(self.max_per_period),
            Repeat::Unlimited => None,
        }
    }

    /// Whether a decision can start from an empty history: no prerequisites, and either
    /// nothing to count (`unlimited`) or a cap of one, which the unique slot enforces by
    /// itself (a taken slot fails the insert, and the decision is made again on a read).
    pub fn decides_without_history(&self) -> bool {
        self.requires.is_empty() && matches!(self.cap(), None | Some(1))
    }
}

/// The period of a capped rule that holds `now` (`once`: the one period that never ends);
/// `None` for `unlimited`.
pub fn period(schedule: &Schedule, repeat: Repeat, now: DateTime<Utc>) -> Option<Period> {
    match repeat {
        Repeat::Unlimited => None,
        Repeat::Once => Some(Period::forever("once")),
        Repeat::Daily => Some(schedule.day(now)),
        Repeat::Weekly => Some(schedule.week(now)),
    }
}

/// What the store knows of a customer, as far as one decision needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// Achievements of this mission in the current period (any period for `once`).
    pub in_period: u32,
    /// Which of the mission's prerequisites the customer has achieved.
    pub achieved: BTreeSet<MissionCode>,
}

/// Why an achievement is refused. Nothing is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A player reported a mission only a game server may report.
    ReportedByGameServer {
        code: MissionCode,
    },
    NotYetAvailable {
        code: MissionCode,
        from: DateTime<Utc>,
    },
    NoLongerAvailable {
        code: MissionCode,
        until: DateTime<Utc>,
    },
    /// A `once` mission achieved before.
    AlreadyAchieved {
        code: MissionCode,
    },
    /// The period's cap is reached; `next` is when the next period starts, if the mission
    /// is still available then.
    PeriodLimitReached {
        code: MissionCode,
        repeat: Repeat,
        max: u32,
        next: Option<DateTime<Utc>>,
    },
    PrerequisiteMissing {
        code: MissionCode,
        missing: MissionCode,
    },
}

impl Refusal {
    /// Machine-readable reason (the `reason` of a `google.rpc.ErrorInfo`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ReportedByGameServer { .. } => "MISSION_REPORTED_BY_GAME_SERVER",
            Self::NotYetAvailable { .. } => "MISSION_NOT_YET_AVAILABLE",
            Self::NoLongerAvailable { .. } => "MISSION_NO_LONGER_AVAILABLE",
            Self::AlreadyAchieved { .. } => "MISSION_ALREADY_ACHIEVED",
            Self::PeriodLimitReached { .. } => "MISSION_PERIOD_LIMIT_REACHED",
            Self::PrerequisiteMissing { .. } => "MISSION_PREREQUISITE_MISSING",
        }
    }

    /// The mission refused.
    pub fn code(&self) -> &MissionCode {
        match self {
            Self::ReportedByGameServer { code }
            | Self::NotYetAvailable { code, .. }
            | Self::NoLongerAvailable { code, .. }
            | Self::AlreadyAchieved { code }
            | Self::PeriodLimitReached { code, .. }
            | Self::PrerequisiteMissing { code, .. } => code,
        }
    }

    /// When the customer may try again, if ever.
    pub fn next_available(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::NotYetAvailable { from, .. } => Some(*from),
            Self::PeriodLimitReached { next, .. } => *next,
            _ => None,
        }
    }

    /// Whether the caller lacks the right (PERMISSION_DENIED) rather than the customer
    /// having used up the mission (FAILED_PRECONDITION).
    pub fn is_permission(&self) -> bool {
        matches!(self, Self::ReportedByGameServer { .. })
    }

    /// The refusal in words a player understands, times in the catalog's time zone.
    pub fn message(&self, schedule: &Schedule) -> String {
        match self {
            Self::ReportedByGameServer { code } => {
                format!("{} is reported by the game server, not by players", code.as_str())
            }
            Self::NotYetAvailable { code, from } => {
                format!("{} is not available yet; available from {}", code.as_str(), schedule.local(*from))
            }
            Self::NoLongerAvailable { code, until } => {
                format!("{} is no longer available; it ended at {}", code.as_str(), schedule.local(*until))
            }
            Self::AlreadyAchieved { code } => {
                format!("{} was already achieved; it can be achieved once", code.as_str())
            }
            Self::PeriodLimitReached { code, repeat, max, next } => {
                let done = if *max == 1 {
                    format!("{} was already achieved {}", code.as_str(), repeat.this_period())
                } else {
                    format!("{} was already achieved {max} times {}", code.as_str(), repeat.this_period())
                };
                match next {
                    Some(t) => format!("{done}; next from {}", schedule.local(*t)),
                    None => format!("{done}; the event ends before the next period"),
                }
            }
            Self::PrerequisiteMissing { code, missing } => {
                format!("{} requires {} to be achieved first", code.as_str(), missing.as_str())
            }
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message(&Schedule::default()))
    }
}

impl std::error::Error for Refusal {}

/// An accepted achievement: the slot it takes (unique per customer and mission), or none
/// for an `unlimited` mission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub slot: Option<String>,
}

/// Where a mission stands for a customer now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    pub code: MissionCode,
    /// The customer can achieve it now (whoever may report it).
    pub available: bool,
    /// Why not, when not.
    pub refusal: Option<Refusal>,
    /// When it can next be achieved: now when available; `None` when never again.
    pub next_at: Option<DateTime<Utc>>,
    /// Achievements left in the current period (`None`: no cap).
    pub remaining: Option<u32>,
}

/// The checks every report goes through, in order: who reports, the availability window,
/// prerequisites, the period's cap.
///
/// # Errors
/// The [`Refusal`] naming the first rule broken.
pub fn decide(
    rule: &MissionRule,
    schedule: &Schedule,
    reporter: Reporter,
    history: &History,
    now: DateTime<Utc>,
) -> Result<Decision, Refusal> {
    if reporter == Reporter::Player && rule.reported_by == ReportedBy::GameServer {
        return Err(Refusal::ReportedByGameServer { code: rule.code.clone() });
    }
    check(rule, schedule, history, now)
}

/// The rules that depend on the customer and the clock, not on who reports.
fn check(rule: &MissionRule, schedule: &Schedule, history: &History, now: DateTime<Utc>) -> Result<Decision, Refusal> {
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
    if let Some(missing) = rule.requires.iter().find(|r| !history.achieved.contains(*r)) {
        return Err(Refusal::PrerequisiteMissing { code: code(), missing: missing.clone() });
    }
    let (Some(period), Some(cap)) = (period(schedule, rule.repeat, now), rule.cap()) else {
        return Ok(Decision { slot: None });
    };
    if history.in_period >= cap {
        return Err(match rule.repeat {
            Repeat::Once => Refusal::AlreadyAchieved { code: code() },
            repeat => Refusal::PeriodLimitReached {
                code: code(),
                repeat,
                max: cap,
                next: period.end.filter(|next| rule.available_until.is_none_or(|until| *next < until)),
            },
        });
    }
    Ok(Decision { slot: Some(period.slot(history.in_period + 1)) })
}

/// Where `rule` stands for a customer with `history` at `now`.
pub fn availability(rule: &MissionRule, schedule: &Schedule, history: &History, now: DateTime<Utc>) -> Availability {
    let remaining = rule.cap().map(|cap| cap.saturating_sub(history.in_period));
    match check(rule, schedule, history, now) {
        Ok(_) => {
            Availability { code: rule.code.clone(), available: true, refusal: None, next_at: Some(now), remaining }
        }
        Err(refusal) => Availability {
            code: rule.code.clone(),
            available: false,
            next_at: refusal.next_available(),
            refusal: Some(refusal),
            remaining,
        },
    }
}

#[cfg(test)]
mod tests;
