use chrono::NaiveTime;

use super::*;

fn code(c: &str) -> MissionCode {
    MissionCode::new(c).unwrap()
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().with_timezone(&Utc)
}

fn seoul_4am() -> Schedule {
    Schedule { reset_at: NaiveTime::from_hms_opt(4, 0, 0).unwrap(), time_zone: chrono_tz::Asia::Seoul }
}

fn rule(c: &str, repeat: Repeat) -> MissionRule {
    MissionRule {
        code: code(c),
        title: c.into(),
        points: 10,
        repeat,
        max_per_period: 1,
        reported_by: ReportedBy::Player,
        available_from: None,
        available_until: None,
        requires: vec![],
        points_expire_after: None,
    }
}

fn done(n: u32) -> History {
    History { in_period: n, achieved: BTreeSet::new() }
}

// ---- periods ----

#[test]
fn each_repeat_counts_in_its_own_period() {
    let s = seoul_4am();
    let now = at("2026-11-26T20:00:00Z");
    assert_eq!(period(&s, Repeat::Daily, now).unwrap().key, "2026-11-27");
    assert_eq!(period(&s, Repeat::Weekly, now).unwrap().key, "2026-W48");
    assert_eq!(period(&s, Repeat::Once, now).unwrap(), Period::forever("once"));
    assert_eq!(period(&s, Repeat::Unlimited, now), None);
}

// ---- decisions ----

#[test]
fn given_a_daily_mission_not_yet_achieved_today_when_reported_then_it_takes_todays_first_slot() {
    let d = decide(
        &rule("daily-login", Repeat::Daily),
        &seoul_4am(),
        Reporter::Player,
        &done(0),
        at("2026-11-26T20:00:00Z"),
    );
    assert_eq!(d.unwrap().slot.as_deref(), Some("2026-11-27#1"));
}

#[test]
fn given_a_daily_mission_achieved_today_when_reported_again_then_it_is_refused_until_the_next_reset() {
    let s = seoul_4am();
    let err = decide(&rule("daily-login", Repeat::Daily), &s, Reporter::Player, &done(1), at("2026-11-26T20:00:00Z"))
        .unwrap_err();
    assert_eq!(err.reason(), "MISSION_PERIOD_LIMIT_REACHED");
    assert_eq!(err.next_available(), Some(at("2026-11-27T19:00:00Z")));
    assert_eq!(err.message(&s), "daily-login was already achieved today; next from 2026-11-28T04:00:00+09:00");
}

#[test]
fn given_a_cap_of_three_per_week_when_two_are_done_then_the_third_slot_is_taken_and_a_fourth_refused() {
    let mut r = rule("weekly-streak", Repeat::Weekly);
    r.max_per_period = 3;
    let now = at("2026-11-26T10:00:00Z");
    let s = Schedule::default();
    assert_eq!(decide(&r, &s, Reporter::GameServer, &done(2), now).unwrap().slot.as_deref(), Some("2026-W48#3"));
    let err = decide(&r, &s, Reporter::GameServer, &done(3), now).unwrap_err();
    assert_eq!(err.message(&s), "weekly-streak was already achieved 3 times this week; next from 2026-11-30T00:00:00Z");
}

#[test]
fn given_a_once_mission_achieved_when_reported_again_then_it_is_refused_for_good() {
    let r = rule("tutorial-complete", Repeat::Once);
    let now = at("2026-11-26T10:00:00Z");
    assert_eq!(
        decide(&r, &Schedule::default(), Reporter::Player, &done(0), now).unwrap().slot.as_deref(),
        Some("once#1")
    );
    let err = decide(&r, &Schedule::default(), Reporter::Player, &done(1), now).unwrap_err();
    assert_eq!(err.reason(), "MISSION_ALREADY_ACHIEVED");
    assert_eq!(err.next_available(), None);
}

#[test]
fn given_an_unlimited_mission_when_reported_any_number_of_times_then_it_takes_no_slot() {
    let r = rule("match-played", Repeat::Unlimited);
    assert_eq!(decide(&r, &Schedule::default(), Reporter::Player, &done(999), Utc::now()).unwrap().slot, None);
}

#[test]
fn given_a_game_server_mission_when_a_player_reports_it_then_permission_is_denied_but_a_game_server_or_admin_may() {
    let mut r = rule("first-win", Repeat::Once);
    r.reported_by = ReportedBy::GameServer;
    let now = Utc::now();
    let err = decide(&r, &Schedule::default(), Reporter::Player, &done(0), now).unwrap_err();
    assert!(err.is_permission());
    assert_eq!(err.to_string(), "first-win is reported by the game server, not by players");
    decide(&r, &Schedule::default(), Reporter::GameServer, &done(0), now).unwrap();
    decide(&r, &Schedule::default(), Reporter::Admin, &done(0), now).unwrap();
}

#[test]
fn given_a_limited_time_event_then_it_is_refused_before_and_after_its_window() {
    let mut r = rule("halloween", Repeat::Daily);
    r.available_from = Some(at("2026-10-30T00:00:00Z"));
    r.available_until = Some(at("2026-11-01T00:00:00Z"));
    let s = Schedule::default();
    let before = decide(&r, &s, Reporter::Player, &done(0), at("2026-10-29T23:59:59Z")).unwrap_err();
    assert_eq!(before.next_available(), Some(at("2026-10-30T00:00:00Z")));
    decide(&r, &s, Reporter::Player, &done(0), at("2026-10-30T00:00:00Z")).unwrap();
    let after = decide(&r, &s, Reporter::Player, &done(0), at("2026-11-01T00:00:00Z")).unwrap_err();
    assert_eq!(after.reason(), "MISSION_NO_LONGER_AVAILABLE");
    // On the last day, done: no next period inside the window.
    let last = decide(&r, &s, Reporter::Player, &done(1), at("2026-10-31T12:00:00Z")).unwrap_err();
    assert_eq!(last.next_available(), None);
    assert!(last.message(&s).ends_with("the event ends before the next period"), "{}", last.message(&s));
}

#[test]
fn given_a_prerequisite_not_achieved_then_the_mission_is_refused_naming_it() {
    let mut r = rule("first-win", Repeat::Once);
    r.requires = vec![code("tutorial-complete")];
    let err = decide(&r, &Schedule::default(), Reporter::Admin, &done(0), Utc::now()).unwrap_err();
    assert_eq!(err.to_string(), "first-win requires tutorial-complete to be achieved first");
    let history = History { in_period: 0, achieved: BTreeSet::from([code("tutorial-complete")]) };
    decide(&r, &Schedule::default(), Reporter::Admin, &history, Utc::now()).unwrap();
}

#[test]
fn availability_says_when_next_and_what_is_left() {
    let s = Schedule::default();
    let now = at("2026-11-26T10:00:00Z");
    let r = rule("daily-login", Repeat::Daily);
    let free = availability(&r, &s, &done(0), now);
    assert!(free.available);
    assert_eq!((free.next_at, free.remaining), (Some(now), Some(1)));
    let used = availability(&r, &s, &done(1), now);
    assert!(!used.available);
    assert_eq!((used.next_at, used.remaining), (Some(at("2026-11-27T00:00:00Z")), Some(0)));
    let unlimited = availability(&rule("m", Repeat::Unlimited), &s, &done(5), now);
    assert_eq!((unlimited.available, unlimited.remaining), (true, None));
}

// ---- the catalog ----

#[test]
fn the_default_catalog_is_the_one_clients_rely_on() {
    let c = Catalog::default();
    let summary: Vec<(&str, i64, &str, &str)> =
        c.missions().iter().map(|m| (m.code.as_str(), m.points, m.repeat.as_str(), m.reported_by.as_str())).collect();
    assert_eq!(
        summary,
        [
            ("daily-login", 10, "daily", "player"),
            ("tutorial-complete", 20, "once", "player"),
            ("first-win", 50, "once", "game_server"),
            ("weekly-streak", 100, "weekly", "game_server"),
            ("match-played", 1, "unlimited", "game_server"),
        ]
    );
    assert_eq!(c.schedule(), &Schedule::default());
}

#[test]
fn a_broken_catalog_names_the_mission_and_the_field() {
    let s = Schedule::default();
    let err = |missions| Catalog::new(s, missions).unwrap_err().to_string();
    let twice = vec![rule("a", Repeat::Once), rule("a", Repeat::Daily)];
    assert_eq!(err(twice), "mission 'a': code: appears twice");
    let mut free = rule("a", Repeat::Once);
    free.points = 0;
    assert_eq!(err(vec![free]), "mission 'a': points: must be between 1 and 1000000");
    let mut capped = rule("a", Repeat::Unlimited);
    capped.max_per_period = 3;
    assert_eq!(err(vec![capped]), "mission 'a': max_per_period: only daily and weekly missions have one");
    let mut unknown = rule("a", Repeat::Once);
    unknown.requires = vec![code("b")];
    assert_eq!(err(vec![unknown]), "mission 'a': requires: unknown mission 'b'");
    let mut a = rule("a", Repeat::Once);
    a.requires = vec![code("b")];
    let mut b = rule("b", Repeat::Once);
    b.requires = vec![code("a")];
    assert!(err(vec![a, b]).contains("requires: loops"));
    let mut window = rule("a", Repeat::Daily);
    window.available_from = Some(at("2026-11-02T00:00:00Z"));
    window.available_until = Some(at("2026-11-01T00:00:00Z"));
    assert_eq!(err(vec![window]), "mission 'a': available_until: must be after available_from");
    assert_eq!(err(vec![]), "missions: at least one mission");
    let mut never = rule("a", Repeat::Daily);
    never.points_expire_after = Some(std::time::Duration::ZERO);
    assert_eq!(err(vec![never]), "mission 'a': points_expire_after: must be between 1s and 36500d");
}

#[test]
fn given_points_expire_after_when_read_then_days_hours_minutes_and_seconds_are_understood() {
    use crate::rules::parse_expiry;
    use std::time::Duration;
    assert_eq!(parse_expiry("365d"), Ok(Duration::from_secs(365 * 86_400)));
    assert_eq!(parse_expiry("12h"), Ok(Duration::from_secs(12 * 3_600)));
    assert_eq!(parse_expiry("30m"), Ok(Duration::from_secs(1_800)));
    assert_eq!(parse_expiry("2s"), Ok(Duration::from_secs(2)));
    for bad in ["", "d", "365", "1y", "-1d", "1.5d", "99999999999999999999d"] {
        assert!(parse_expiry(bad).is_err(), "{bad}");
    }
    let mut long = rule("a", Repeat::Daily);
    long.points_expire_after = Some(Duration::from_secs(36_501 * 86_400));
    assert!(Catalog::new(Schedule::default(), vec![long]).is_err());
    let mut year = rule("a", Repeat::Daily);
    year.points_expire_after = Some(Duration::from_secs(365 * 86_400));
    assert!(Catalog::new(Schedule::default(), vec![year]).is_ok());
}
