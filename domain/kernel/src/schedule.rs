//! Game days and game weeks: when the economy's periods reset. Missions count their caps
//! and gifts their per-customer limits in the same periods, so the arithmetic lives once.
//!
//! A period resets at a time of day in a time zone (daylight saving included); weeks start
//! on Monday. A period is named by a key (`2026-11-26`, `2026-W48`) that slot keys start
//! with, so a store can count what a customer did in the current period by prefix.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// When periods reset: a time of day in a time zone. Default: 00:00 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub reset_at: NaiveTime,
    pub time_zone: Tz,
}

impl Default for Schedule {
    fn default() -> Self {
        Self { reset_at: NaiveTime::MIN, time_zone: Tz::UTC }
    }
}

/// A stretch of time in which a capped thing counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// Names the period in slot keys: `2026-11-26` (a game day), `2026-W48` (a game week),
    /// `once` / `ever`.
    pub key: String,
    pub start: DateTime<Utc>,
    /// When the next period starts (`None` when there is no next).
    pub end: Option<DateTime<Utc>>,
}

impl Period {
    /// The one period that never ends, named `key`.
    pub fn forever(key: &str) -> Self {
        Self { key: key.to_owned(), start: DateTime::<Utc>::MIN_UTC, end: None }
    }

    /// The slot key of the `n`th time (from 1) in this period: `2026-11-26#2`.
    pub fn slot(&self, n: u32) -> String {
        format!("{}#{n}", self.key)
    }
}

impl Schedule {
    /// The instant the period resets on local date `date`. A reset time that does not exist
    /// that day (the clock jumps over it) is taken as the same wall time in the offset
    /// before the jump, i.e. shifted forward by the gap; one that happens twice (the clock
    /// falls back) is the first.
    pub fn reset_on(&self, date: NaiveDate) -> DateTime<Utc> {
        let local = NaiveDateTime::new(date, self.reset_at);
        match self.time_zone.from_local_datetime(&local).earliest() {
            Some(t) => t.with_timezone(&Utc),
            None => {
                // In a gap: use the offset a few hours earlier (before the jump).
                let before = local - Duration::hours(3);
                let offset = self
                    .time_zone
                    .from_local_datetime(&before)
                    .earliest()
                    .map_or(Duration::zero(), |t| t.naive_local() - t.naive_utc());
                DateTime::from_naive_utc_and_offset(local - offset, Utc)
            }
        }
    }

    /// The game day `now` falls in: the local date, or the day before while that date's
    /// reset has not come yet.
    pub fn game_day(&self, now: DateTime<Utc>) -> NaiveDate {
        let date = now.with_timezone(&self.time_zone).date_naive();
        if now < self.reset_on(date) { date.pred_opt().unwrap_or(date) } else { date }
    }

    /// The game day holding `now`.
    pub fn day(&self, now: DateTime<Utc>) -> Period {
        let day = self.game_day(now);
        Period {
            key: day.format("%Y-%m-%d").to_string(),
            start: self.reset_on(day),
            end: day.succ_opt().map(|d| self.reset_on(d)),
        }
    }

    /// The game week (from Monday's reset) holding `now`.
    pub fn week(&self, now: DateTime<Utc>) -> Period {
        let day = self.game_day(now);
        let monday = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
        let week = monday.iso_week();
        Period {
            key: format!("{}-W{:02}", week.year(), week.week()),
            start: self.reset_on(monday),
            end: monday.checked_add_signed(Duration::days(7)).map(|d| self.reset_on(d)),
        }
    }

    /// An instant as the players of this schedule read it (RFC 3339 with the local offset).
    pub fn local(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.time_zone).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().with_timezone(&Utc)
    }

    fn seoul_4am() -> Schedule {
        Schedule { reset_at: NaiveTime::from_hms_opt(4, 0, 0).unwrap(), time_zone: chrono_tz::Asia::Seoul }
    }

    #[test]
    fn given_a_4am_seoul_reset_when_it_is_3am_local_then_the_game_day_is_still_yesterday() {
        let s = seoul_4am();
        // 03:00 in Seoul (UTC+9) on the 27th is 18:00 UTC on the 26th.
        let p = s.day(at("2026-11-26T18:00:00Z"));
        assert_eq!(p.key, "2026-11-26");
        assert_eq!(s.local(p.start), "2026-11-26T04:00:00+09:00");
        assert_eq!(s.local(p.end.unwrap()), "2026-11-27T04:00:00+09:00");
        // One second after the reset: the 27th.
        assert_eq!(s.day(at("2026-11-26T19:00:01Z")).key, "2026-11-27");
        // Exactly at the reset: the new day.
        assert_eq!(s.day(at("2026-11-26T19:00:00Z")).key, "2026-11-27");
    }

    #[test]
    fn given_weeks_start_on_monday_at_the_reset_when_it_is_monday_before_the_reset_then_it_is_last_week() {
        let s = seoul_4am();
        // Monday 2026-11-30 02:00 in Seoul: still Sunday's game day, week 48.
        let early = s.week(at("2026-11-29T17:00:00Z"));
        assert_eq!(early.key, "2026-W48");
        assert_eq!(s.local(early.start), "2026-11-23T04:00:00+09:00");
        assert_eq!(s.local(early.end.unwrap()), "2026-11-30T04:00:00+09:00");
        // Monday 05:00: week 49.
        assert_eq!(s.week(at("2026-11-29T20:00:00Z")).key, "2026-W49");
    }

    #[test]
    fn given_a_zone_with_daylight_saving_then_a_day_is_23_or_25_hours_and_resets_stay_at_local_time() {
        let s = Schedule { reset_at: NaiveTime::from_hms_opt(4, 0, 0).unwrap(), time_zone: chrono_tz::Europe::Berlin };
        // Clocks go back on Sunday 2026-10-25 (03:00 CEST -> 02:00 CET): a 25-hour day.
        let p = s.day(at("2026-10-25T12:00:00Z"));
        assert_eq!(s.local(p.start), "2026-10-25T04:00:00+01:00");
        let sat = s.day(at("2026-10-24T12:00:00Z"));
        assert_eq!(s.local(sat.start), "2026-10-24T04:00:00+02:00");
        assert_eq!(sat.end.unwrap() - sat.start, Duration::hours(25));
        // Clocks go forward on Sunday 2026-03-29 (02:00 CET -> 03:00 CEST): a 23-hour day.
        let sat = s.day(at("2026-03-28T12:00:00Z"));
        assert_eq!(sat.end.unwrap() - sat.start, Duration::hours(23));
    }

    #[test]
    fn given_a_reset_time_the_clock_skips_then_the_reset_moves_forward_by_the_gap() {
        // 02:30 does not exist in Berlin on 2026-03-29: the reset is at 03:30 CEST (01:30 UTC).
        let s = Schedule { reset_at: NaiveTime::from_hms_opt(2, 30, 0).unwrap(), time_zone: chrono_tz::Europe::Berlin };
        let day = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        assert_eq!(s.reset_on(day), at("2026-03-29T01:30:00Z"));
        // And one that happens twice (02:30 on 2026-10-25) is the first: 02:30 CEST.
        assert_eq!(s.reset_on(NaiveDate::from_ymd_opt(2026, 10, 25).unwrap()), at("2026-10-25T00:30:00Z"));
    }

    #[test]
    fn a_slot_is_the_period_key_and_the_count() {
        assert_eq!(Period::forever("once").slot(1), "once#1");
        assert_eq!(Schedule::default().day(at("2026-11-26T10:00:00Z")).slot(3), "2026-11-26#3");
    }
}
