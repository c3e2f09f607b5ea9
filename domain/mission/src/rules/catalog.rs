//! The mission catalog: the missions that exist and the schedule their periods follow,
//! checked when loaded.

use std::collections::{BTreeMap, BTreeSet};

use super::{MissionRule, Repeat, ReportedBy, Schedule};
use crate::model::MissionCode;

/// A catalog entry or setting that breaks a rule, naming the mission and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{field}: {reason}", mission.as_ref().map(|m| format!("mission '{m}': ")).unwrap_or_default())]
pub struct CatalogError {
    pub mission: Option<String>,
    pub field: &'static str,
    pub reason: String,
}

impl CatalogError {
    fn of(mission: &str, field: &'static str, reason: impl Into<String>) -> Self {
        Self { mission: Some(mission.to_owned()), field, reason: reason.into() }
    }
}

/// The missions that can be achieved, with their rules and when periods reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    schedule: Schedule,
    missions: Vec<MissionRule>,
}

/// The most points one achievement may be worth (a typo of a few zeros is a mistake).
pub const MAX_POINTS: i64 = 1_000_000;
/// The longest `points_expire_after` (a century: longer is "never", say so by leaving it out).
pub const MAX_EXPIRY: std::time::Duration = std::time::Duration::from_secs(36_500 * 86_400);

/// Reads a `points_expire_after` as written: a whole number and a unit, `d`, `h`, `m` or
/// `s` ("365d", "12h", "2s").
///
/// # Errors
/// What is wrong with it, for a [`CatalogError`] on the field.
pub fn parse_expiry(raw: &str) -> Result<std::time::Duration, String> {
    let raw = raw.trim();
    let bad = || format!("'{raw}' is not a whole number followed by d, h, m or s (e.g. \"365d\")");
    let unit = raw.chars().last().ok_or_else(bad)?;
    let per = match unit {
        'd' => 86_400,
        'h' => 3_600,
        'm' => 60,
        's' => 1,
        _ => return Err(bad()),
    };
    let n: u64 = raw[..raw.len() - 1].parse().map_err(|_| bad())?;
    n.checked_mul(per).map(std::time::Duration::from_secs).ok_or_else(bad)
}

impl Catalog {
    /// Checks the catalog as a whole: unique codes, sane points and titles, caps only where
    /// they mean something, windows that open before they close, prerequisites that exist
    /// and never loop.
    ///
    /// # Errors
    /// The first [`CatalogError`], naming the mission and the field.
    pub fn new(schedule: Schedule, missions: Vec<MissionRule>) -> Result<Self, CatalogError> {
        if missions.is_empty() {
            return Err(CatalogError { mission: None, field: "missions", reason: "at least one mission".into() });
        }
        let mut seen = BTreeSet::new();
        for m in &missions {
            let code = m.code.as_str();
            if !seen.insert(code) {
                return Err(CatalogError::of(code, "code", "appears twice"));
            }
            let title = m.title.trim();
            if title.is_empty() || title.len() > 200 {
                return Err(CatalogError::of(code, "title", "must be 1-200 bytes"));
            }
            if !(1..=MAX_POINTS).contains(&m.points) {
                return Err(CatalogError::of(code, "points", format!("must be between 1 and {MAX_POINTS}")));
            }
            if m.max_per_period == 0 {
                return Err(CatalogError::of(code, "max_per_period", "must be at least 1"));
            }
            if m.max_per_period != 1 && matches!(m.repeat, Repeat::Once | Repeat::Unlimited) {
                return Err(CatalogError::of(code, "max_per_period", "only daily and weekly missions have one"));
            }
            if let (Some(from), Some(until)) = (m.available_from, m.available_until)
                && from >= until
            {
                return Err(CatalogError::of(code, "available_until", "must be after available_from"));
            }
            if let Some(after) = m.points_expire_after
                && (after.is_zero() || after > MAX_EXPIRY)
            {
                return Err(CatalogError::of(code, "points_expire_after", "must be between 1s and 36500d"));
            }
        }
        for m in &missions {
            for r in &m.requires {
                if r == &m.code {
                    return Err(CatalogError::of(m.code.as_str(), "requires", "a mission cannot require itself"));
                }
                if !seen.contains(r.as_str()) {
                    return Err(CatalogError::of(
                        m.code.as_str(),
                        "requires",
                        format!("unknown mission '{}'", r.as_str()),
                    ));
                }
            }
        }
        let catalog = Self { schedule, missions };
        catalog.check_no_cycle()?;
        Ok(catalog)
    }

    fn check_no_cycle(&self) -> Result<(), CatalogError> {
        // Depth-first search; a mission met again on the current path closes a loop.
        let edges: BTreeMap<&str, Vec<&str>> = self
            .missions
            .iter()
            .map(|m| (m.code.as_str(), m.requires.iter().map(MissionCode::as_str).collect()))
            .collect();
        fn visit<'a>(
            at: &'a str,
            edges: &BTreeMap<&'a str, Vec<&'a str>>,
            path: &mut Vec<&'a str>,
            done: &mut BTreeSet<&'a str>,
        ) -> Result<(), CatalogError> {
            if done.contains(at) {
                return Ok(());
            }
            if path.contains(&at) {
                return Err(CatalogError::of(at, "requires", format!("loops: {} -> {at}", path.join(" -> "))));
            }
            path.push(at);
            for next in edges.get(at).into_iter().flatten() {
                visit(next, edges, path, done)?;
            }
            path.pop();
            done.insert(at);
            Ok(())
        }
        let mut done = BTreeSet::new();
        for code in edges.keys() {
            visit(code, &edges, &mut Vec::new(), &mut done)?;
        }
        Ok(())
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    pub fn missions(&self) -> &[MissionRule] {
        &self.missions
    }

    /// # Errors
    /// `mission_code` when the code is not in the catalog.
    pub fn find(&self, code: &MissionCode) -> Result<&MissionRule, kernel::ValidationError> {
        self.missions
            .iter()
            .find(|m| &m.code == code)
            .ok_or_else(|| kernel::ValidationError::new("mission_code", format!("unknown mission '{}'", code.as_str())))
    }
}

impl Default for Catalog {
    /// The built-in catalog, fixed so that clients and tests can rely on it.
    fn default() -> Self {
        let m = |code: &str, title: &str, points, repeat, reported_by| MissionRule {
            code: MissionCode::new(code).expect("catalog codes are valid"),
            title: title.to_owned(),
            points,
            repeat,
            max_per_period: 1,
            reported_by,
            available_from: None,
            available_until: None,
            requires: Vec::new(),
            points_expire_after: None,
        };
        let missions = vec![
            m("daily-login", "Log in today", 10, Repeat::Daily, ReportedBy::Player),
            m("tutorial-complete", "Finish the tutorial", 20, Repeat::Once, ReportedBy::Player),
            m("first-win", "Win your first match", 50, Repeat::Once, ReportedBy::GameServer),
            m("weekly-streak", "Play seven days in a row", 100, Repeat::Weekly, ReportedBy::GameServer),
            m("match-played", "Play a match", 1, Repeat::Unlimited, ReportedBy::GameServer),
        ];
        Self::new(Schedule::default(), missions).expect("the built-in catalog is valid")
    }
}
