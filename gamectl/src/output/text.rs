//! Answers as compact text for people: tables, fields, durations.

use chrono::SecondsFormat;
use contracts::pb::{auth, gift, mission, mypage, notification, reward, wallet};

/// Seconds since the epoch as RFC 3339 (UTC).
pub(super) fn epoch(secs: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(secs, 0).map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// `3600` -> `1h`, `90` -> `1m30s`, `59` -> `59s`.
pub fn duration(secs: i64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

pub fn whoami_text(c: &crate::auth::Claims, now: i64, from: &str) -> String {
    let expires = match c.exp {
        None => "never".to_owned(),
        Some(exp) => {
            let at = epoch(exp).unwrap_or_else(|| exp.to_string());
            if exp <= now {
                format!("{at} (expired {} ago: run gamectl login)", duration(now - exp))
            } else {
                format!("{at} (in {})", duration(exp - now))
            }
        }
    };
    fields(&[
        ("customer", c.sub.clone()),
        ("role", or_dash(&c.role)),
        ("issuer", or_dash(c.iss.as_deref().unwrap_or_default())),
        ("expires", expires),
        ("token", from.to_owned()),
    ])
}

/// RFC 3339 in UTC, with as many fraction digits as needed.
pub fn timestamp(t: Option<&prost_types::Timestamp>) -> Option<String> {
    t.and_then(grpc_adapter::convert::from_timestamp).map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// `MISSION_STATUS_ACHIEVED` -> `ACHIEVED`; unspecified -> `-`.
pub(super) fn word(name: Option<&'static str>, value: i32) -> String {
    match name {
        Some(n) if n.ends_with("_UNSPECIFIED") => "-".to_owned(),
        // Every generated name is `<ENUM>_STATUS_<VALUE>`, `<ENUM>_STATE_<VALUE>` or `<ENUM>_KIND_<VALUE>`.
        Some(n) => n
            .split_once("_STATUS_")
            .or_else(|| n.split_once("_STATE_"))
            .or_else(|| n.split_once("_KIND_"))
            .map_or(n, |(_, v)| v)
            .to_owned(),
        None => value.to_string(),
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() { "-".to_owned() } else { s.to_owned() }
}

/// Left-aligned columns separated by two spaces, no trailing blanks.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.trim_end().to_owned()
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// `key  value` lines, keys aligned.
fn fields(pairs: &[(&str, String)]) -> String {
    let w = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs.iter().map(|(k, v)| format!("{k:<w$}  {v}")).collect::<Vec<_>>().join("\n")
}

fn mission_status(m: &mission::v1::Mission) -> String {
    let s = mission::v1::MissionStatus::try_from(m.status).ok();
    word(s.map(|s| s.as_str_name()), m.status)
}

pub fn mission_text(m: &mission::v1::Mission) -> String {
    fields(&[
        ("mission", m.mission_id.clone()),
        ("customer", m.customer_id.clone()),
        ("code", m.mission_code.clone()),
        ("status", mission_status(m)),
        ("points", m.reward_points.to_string()),
        ("reward", or_dash(&m.reward_id)),
        ("achieved", timestamp(m.achieved_at.as_ref()).unwrap_or_else(|| "-".into())),
        ("reported", or_dash(&m.reported_by)),
        ("slot", or_dash(&m.slot)),
    ])
}

pub fn missions_text(ms: &[mission::v1::Mission]) -> String {
    if ms.is_empty() {
        return "no missions".to_owned();
    }
    let rows: Vec<Vec<String>> = ms
        .iter()
        .map(|m| {
            vec![
                m.mission_id.clone(),
                m.mission_code.clone(),
                mission_status(m),
                m.reward_points.to_string(),
                or_dash(&m.reward_id),
                timestamp(m.achieved_at.as_ref()).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(&["MISSION", "CODE", "STATUS", "POINTS", "REWARD", "ACHIEVED"], &rows)
}

/// `REPEAT_DAILY` with 2 per period -> `daily x2`.
fn repeat_text(m: &mission::v1::CatalogMission) -> String {
    let r = mission::v1::Repeat::try_from(m.repeat).ok();
    let name = match r.map(|r| r.as_str_name()) {
        Some(n) if !n.ends_with("_UNSPECIFIED") => n.trim_start_matches("REPEAT_").to_ascii_lowercase(),
        Some(_) => "-".to_owned(),
        None => m.repeat.to_string(),
    };
    if m.max_per_period > 1 { format!("{name} x{}", m.max_per_period) } else { name }
}

fn reporter_text(m: &mission::v1::CatalogMission) -> String {
    match mission::v1::Reporter::try_from(m.reported_by) {
        Ok(mission::v1::Reporter::Player) => "player".to_owned(),
        Ok(mission::v1::Reporter::GameServer) => "game server".to_owned(),
        _ => "-".to_owned(),
    }
}

/// The mission catalog as a table, with where each mission stands for a customer when
/// `availability` is given, then the conditions (windows, prerequisites) and the reset.
pub fn catalog_text(
    c: &mission::v1::ListCatalogResponse,
    availability: Option<&mission::v1::GetAvailabilityResponse>,
) -> String {
    if c.missions.is_empty() {
        return "no missions in the catalog".to_owned();
    }
    let mut headers = vec!["CODE", "POINTS", "REPEAT", "REPORTED BY"];
    if availability.is_some() {
        headers.extend(["NOW", "LEFT", "NEXT"]);
    }
    headers.push("TITLE");
    let rows: Vec<Vec<String>> = c
        .missions
        .iter()
        .map(|m| {
            let mut row = vec![m.mission_code.clone(), m.reward_points.to_string(), repeat_text(m), reporter_text(m)];
            if let Some(a) = availability {
                let here = a.missions.iter().find(|x| x.mission_code == m.mission_code);
                // A mission the game reports is not the player's to do: say who does it.
                let by_game = m.reported_by == mission::v1::Reporter::GameServer as i32;
                row.push(
                    here.map_or("-", |x| match (x.available, by_game) {
                        (true, true) => "by the game",
                        (true, false) => "yes",
                        (false, _) => "no",
                    })
                    .to_owned(),
                );
                row.push(here.and_then(|x| x.remaining_in_period).map_or_else(|| "-".to_owned(), |n| n.to_string()));
                let next = here.filter(|x| !x.available).map(|x| timestamp(x.next_available_at.as_ref()));
                row.push(match next {
                    None => "-".to_owned(),
                    Some(Some(t)) => t,
                    Some(None) => "never".to_owned(),
                });
            }
            row.push(m.title.clone());
            row
        })
        .collect();
    let mut out = table(&headers, &rows);
    for m in &c.missions {
        let mut conditions = Vec::new();
        if !m.requires.is_empty() {
            conditions.push(format!("requires {}", m.requires.join(", ")));
        }
        if let Some(from) = timestamp(m.available_from.as_ref()) {
            conditions.push(format!("from {from}"));
        }
        if let Some(until) = timestamp(m.available_until.as_ref()) {
            conditions.push(format!("until {until}"));
        }
        if !conditions.is_empty() {
            out.push_str(&format!("\n{}: {}", m.mission_code, conditions.join("; ")));
        }
    }
    if !c.reset_at.is_empty() {
        out.push_str(&format!("\ndays start at {} {}; weeks on Monday", c.reset_at, c.time_zone));
    }
    if let Some(a) = availability {
        let why: Vec<String> = a
            .missions
            .iter()
            .filter(|x| !x.available && !x.message.is_empty())
            .map(|x| format!("{}: {}", x.mission_code, x.message))
            .collect();
        if !why.is_empty() {
            out.push_str(&format!("\nfor {}:\n  {}", a.customer_id, why.join("\n  ")));
        }
    }
    out
}

fn reward_status(r: &reward::v1::Reward) -> String {
    let s = reward::v1::RewardStatus::try_from(r.status).ok();
    word(s.map(|s| s.as_str_name()), r.status)
}

pub fn reward_text(r: &reward::v1::Reward) -> String {
    fields(&[
        ("reward", r.reward_id.clone()),
        ("customer", r.customer_id.clone()),
        ("mission", r.mission_id.clone()),
        ("status", reward_status(r)),
        ("points", r.points.to_string()),
    ])
}

pub fn rewards_text(rs: &[reward::v1::Reward]) -> String {
    if rs.is_empty() {
        return "no rewards".to_owned();
    }
    let rows: Vec<Vec<String>> = rs
        .iter()
        .map(|r| vec![r.reward_id.clone(), r.mission_id.clone(), reward_status(r), r.points.to_string()])
        .collect();
    table(&["REWARD", "MISSION", "STATUS", "POINTS"], &rows)
}

/// `text`, and when there is a next page, how to read it.
pub fn with_next_page(text: String, next: &str) -> String {
    if next.is_empty() { text } else { format!("{text}\nmore: --page-token {next}  (or --all)") }
}

pub fn wallet_text(w: &wallet::v1::Wallet) -> String {
    let head = format!("wallet of {}: {} points available", w.customer_id, w.available_points);
    if w.items.is_empty() {
        return format!("{head}\nno items");
    }
    let rows: Vec<Vec<String>> = w
        .items
        .iter()
        .map(|i| {
            vec![
                i.reward_id.clone(),
                i.mission_id.clone(),
                wallet_item_status(i),
                i.points.to_string(),
                or_dash(&i.gift_id),
            ]
        })
        .collect();
    format!("{head}\n{}", table(&["REWARD", "MISSION", "STATUS", "POINTS", "GIFT"], &rows))
}

fn wallet_item_status(i: &wallet::v1::WalletItem) -> String {
    let s = wallet::v1::WalletItemStatus::try_from(i.status).ok();
    word(s.map(|s| s.as_str_name()), i.status)
}

/// The item exchanged and the gift it became.
pub fn exchange_text(r: &wallet::v1::ExchangeRewardResponse) -> String {
    let gift = or_dash(&r.gift_id);
    let Some(i) = r.item.as_ref() else {
        return fields(&[("gift", gift)]);
    };
    fields(&[
        ("reward", i.reward_id.clone()),
        ("mission", i.mission_id.clone()),
        ("status", wallet_item_status(i)),
        ("points", i.points.to_string()),
        ("gift", gift),
    ])
}

/// A rate in [0, 1] as a percentage.
fn percent(rate: f64) -> String {
    let p = format!("{:.1}", rate * 100.0);
    format!("{}%", p.strip_suffix(".0").unwrap_or(&p))
}

pub fn exchange_status_text(s: &wallet::v1::GetExchangeStatusResponse) -> String {
    let state = wallet::v1::BreakerState::try_from(s.breaker_state).ok();
    fields(&[
        ("breaker", word(state.map(|s| s.as_str_name()), s.breaker_state)),
        (
            "retry after",
            if s.retry_after_seconds == 0 { "-".to_owned() } else { format!("{} s", s.retry_after_seconds) },
        ),
        ("failure rate", percent(s.failure_rate)),
        ("slow calls", percent(s.slow_call_rate)),
        ("calls", format!("{} in the window", s.calls_in_window)),
        ("rejected", s.rejected_calls.to_string()),
        ("transitions", s.transitions.to_string()),
    ])
}

fn gift_status(g: &gift::v1::Gift) -> String {
    let s = gift::v1::GiftStatus::try_from(g.status).ok();
    word(s.map(|s| s.as_str_name()), g.status)
}

pub fn gift_text(g: &gift::v1::Gift) -> String {
    fields(&[
        ("gift", g.gift_id.clone()),
        ("customer", g.customer_id.clone()),
        ("code", g.gift_code.clone()),
        ("name", g.name.clone()),
        ("status", gift_status(g)),
        ("reward", or_dash(&g.reward_id)),
        ("mission", or_dash(&g.mission_id)),
        ("issued", timestamp(g.issued_at.as_ref()).unwrap_or_else(|| "-".into())),
        ("used", timestamp(g.used_at.as_ref()).unwrap_or_else(|| "-".into())),
    ])
}

pub fn gifts_text(gs: &[gift::v1::Gift]) -> String {
    if gs.is_empty() {
        return "no gifts".to_owned();
    }
    let rows: Vec<Vec<String>> = gs
        .iter()
        .map(|g| {
            vec![
                g.gift_id.clone(),
                g.gift_code.clone(),
                gift_status(g),
                or_dash(&g.reward_id),
                timestamp(g.issued_at.as_ref()).unwrap_or_else(|| "-".into()),
                timestamp(g.used_at.as_ref()).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(&["GIFT", "CODE", "STATUS", "REWARD", "ISSUED", "USED"], &rows)
}

pub fn gift_catalog_text(gs: &[gift::v1::CatalogGift]) -> String {
    if gs.is_empty() {
        return "no gifts in the catalog".to_owned();
    }
    let rows: Vec<Vec<String>> = gs
        .iter()
        .map(|g| {
            let left = match (g.remaining, g.stock) {
                (Some(left), Some(stock)) => format!("{left}/{stock}"),
                (Some(left), None) => left.to_string(),
                _ => "-".to_owned(),
            };
            let limit =
                g.per_customer_limit.as_ref().map_or_else(|| "-".to_owned(), |l| format!("{} {}", l.count, l.period));
            vec![g.gift_code.clone(), g.cost_points.to_string(), left, limit, g.name.clone()]
        })
        .collect();
    table(&["CODE", "COST", "LEFT", "PER CUSTOMER", "NAME"], &rows)
}

pub fn audit_text(es: &[auth::v1::AuditEntry]) -> String {
    if es.is_empty() {
        return "no audit entries".to_owned();
    }
    let rows: Vec<Vec<String>> = es
        .iter()
        .map(|e| {
            vec![
                timestamp(e.at.as_ref()).unwrap_or_else(|| "-".into()),
                or_dash(&e.actor),
                or_dash(&e.action),
                or_dash(&e.subject),
                or_dash(&e.detail),
            ]
        })
        .collect();
    table(&["AT", "ACTOR", "ACTION", "SUBJECT", "DETAIL"], &rows)
}

pub fn notifications_text(ns: &[notification::v1::Notification]) -> String {
    if ns.is_empty() {
        return "no notifications".to_owned();
    }
    let rows: Vec<Vec<String>> = ns
        .iter()
        .map(|n| {
            vec![
                n.notification_id.clone(),
                timestamp(n.sent_at.as_ref()).unwrap_or_else(|| "-".into()),
                or_dash(&n.channel),
                or_dash(&n.recipient),
                or_dash(&n.subject),
            ]
        })
        .collect();
    table(&["NOTIFICATION", "SENT", "CHANNEL", "RECIPIENT", "SUBJECT"], &rows)
}

pub fn page_text(p: &mypage::v1::MyPage) -> String {
    let updated = timestamp(p.updated_at.as_ref()).unwrap_or_else(|| "never".into());
    let head = format!(
        "page of {} (version {}, updated {updated}): {} points issued, {} exchanged",
        p.customer_id, p.version, p.points_issued, p.points_exchanged
    );
    if p.entries.is_empty() {
        return format!("{head}\nno entries");
    }
    let rows: Vec<Vec<String>> = p
        .entries
        .iter()
        .map(|e| {
            let ms = mypage::v1::MissionStatus::try_from(e.mission_status).ok();
            let rs = mypage::v1::RewardStatus::try_from(e.reward_status).ok();
            let gs = mypage::v1::GiftStatus::try_from(e.gift_status).ok();
            vec![
                or_dash(&e.mission_id),
                or_dash(&e.mission_code),
                word(ms.map(|s| s.as_str_name()), e.mission_status),
                or_dash(&e.reward_id),
                word(rs.map(|s| s.as_str_name()), e.reward_status),
                e.points.to_string(),
                or_dash(&e.gift_id),
                word(gs.map(|s| s.as_str_name()), e.gift_status),
                or_dash(&e.gift_code),
            ]
        })
        .collect();
    format!(
        "{head}\n{}",
        table(&["MISSION", "CODE", "STATUS", "REWARD", "STATUS", "POINTS", "GIFT", "STATUS", "GIFT_CODE"], &rows)
    )
}
