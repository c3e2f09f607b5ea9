//! How answers are shown: JSON shaped like grpcurl's (camelCase names, enum names,
//! RFC 3339 timestamps) or compact text for people.
//!
//! JSON differs from protojson in two deliberate ways that make it easier to script:
//! every field is present (defaults included), and 64-bit integers are numbers.

use chrono::SecondsFormat;
use grpc_adapter::pb::{auth, gift, mission, mypage, notification, reward, wallet};
use serde_json::{Value, json};

// ---------- JSON ----------

/// An enum value as protojson writes it: its name, or the number when unknown.
fn enum_json(name: Option<&'static str>, value: i32) -> Value {
    name.map_or_else(|| json!(value), |n| json!(n))
}

fn timestamp_json(t: Option<&prost_types::Timestamp>) -> Value {
    timestamp(t).map_or(Value::Null, Value::String)
}

pub fn mission_json(m: &mission::v1::Mission) -> Value {
    let status = mission::v1::MissionStatus::try_from(m.status).ok();
    json!({
        "missionId": m.mission_id,
        "customerId": m.customer_id,
        "missionCode": m.mission_code,
        "status": enum_json(status.map(|s| s.as_str_name()), m.status),
        "rewardId": m.reward_id,
        "achievedAt": timestamp_json(m.achieved_at.as_ref()),
        "rewardPoints": m.reward_points,
        "reportedBy": m.reported_by,
        "slot": m.slot,
    })
}

pub fn catalog_mission_json(m: &mission::v1::CatalogMission) -> Value {
    let repeat = mission::v1::Repeat::try_from(m.repeat).ok();
    let by = mission::v1::Reporter::try_from(m.reported_by).ok();
    json!({
        "missionCode": m.mission_code,
        "title": m.title,
        "rewardPoints": m.reward_points,
        "repeat": enum_json(repeat.map(|r| r.as_str_name()), m.repeat),
        "maxPerPeriod": m.max_per_period,
        "reportedBy": enum_json(by.map(|r| r.as_str_name()), m.reported_by),
        "availableFrom": timestamp_json(m.available_from.as_ref()),
        "availableUntil": timestamp_json(m.available_until.as_ref()),
        "requires": m.requires,
    })
}

/// The mission catalog: the rules, when periods reset, and (when asked for a customer)
/// where each mission stands for them.
pub fn catalog_json(c: &mission::v1::ListCatalogResponse, a: Option<&mission::v1::GetAvailabilityResponse>) -> Value {
    let mut v = json!({
        "missions": c.missions.iter().map(catalog_mission_json).collect::<Vec<_>>(),
        "resetAt": c.reset_at,
        "timeZone": c.time_zone,
    });
    if let Some(a) = a {
        v["availability"] = json!({
            "customerId": a.customer_id,
            "asOf": timestamp_json(a.as_of.as_ref()),
            "missions": a.missions.iter().map(availability_json).collect::<Vec<_>>(),
        });
    }
    v
}

pub fn availability_json(a: &mission::v1::MissionAvailability) -> Value {
    json!({
        "missionCode": a.mission_code,
        "available": a.available,
        "reason": a.reason,
        "message": a.message,
        "nextAvailableAt": timestamp_json(a.next_available_at.as_ref()),
        "remainingInPeriod": a.remaining_in_period,
    })
}

pub fn reward_json(r: &reward::v1::Reward) -> Value {
    let status = reward::v1::RewardStatus::try_from(r.status).ok();
    json!({
        "rewardId": r.reward_id,
        "missionId": r.mission_id,
        "customerId": r.customer_id,
        "points": r.points,
        "status": enum_json(status.map(|s| s.as_str_name()), r.status),
    })
}

pub fn wallet_item_json(i: &wallet::v1::WalletItem) -> Value {
    let status = wallet::v1::WalletItemStatus::try_from(i.status).ok();
    json!({
        "rewardId": i.reward_id,
        "missionId": i.mission_id,
        "points": i.points,
        "status": enum_json(status.map(|s| s.as_str_name()), i.status),
        "giftId": i.gift_id,
    })
}

pub fn wallet_json(w: &wallet::v1::Wallet) -> Value {
    json!({
        "customerId": w.customer_id,
        "items": w.items.iter().map(wallet_item_json).collect::<Vec<_>>(),
        "availablePoints": w.available_points,
    })
}

/// `{"item": {...}, "giftId": "..."}` (item omitted when absent).
pub fn exchange_json(r: &wallet::v1::ExchangeRewardResponse) -> Value {
    let mut v = wrap("item", r.item.as_ref().map(wallet_item_json));
    v["giftId"] = json!(r.gift_id);
    v
}

pub fn exchange_status_json(s: &wallet::v1::GetExchangeStatusResponse) -> Value {
    let state = wallet::v1::BreakerState::try_from(s.breaker_state).ok();
    json!({
        "breakerState": enum_json(state.map(|s| s.as_str_name()), s.breaker_state),
        "retryAfterSeconds": s.retry_after_seconds,
        "failureRate": s.failure_rate,
        "slowCallRate": s.slow_call_rate,
        "callsInWindow": s.calls_in_window,
        "rejectedCalls": s.rejected_calls,
        "transitions": s.transitions,
    })
}

pub fn gift_json(g: &gift::v1::Gift) -> Value {
    let status = gift::v1::GiftStatus::try_from(g.status).ok();
    json!({
        "giftId": g.gift_id,
        "customerId": g.customer_id,
        "rewardId": g.reward_id,
        "giftCode": g.gift_code,
        "name": g.name,
        "status": enum_json(status.map(|s| s.as_str_name()), g.status),
        "issuedAt": timestamp_json(g.issued_at.as_ref()),
        "usedAt": timestamp_json(g.used_at.as_ref()),
        "missionId": g.mission_id,
    })
}

pub fn catalog_gift_json(g: &gift::v1::CatalogGift) -> Value {
    json!({
        "giftCode": g.gift_code,
        "name": g.name,
        "costPoints": g.cost_points,
        "stock": g.stock,
        "remaining": g.remaining,
        "perCustomerLimit": g.per_customer_limit.as_ref().map(|l| json!({"period": l.period, "count": l.count})),
        "availableFrom": timestamp_json(g.available_from.as_ref()),
        "availableUntil": timestamp_json(g.available_until.as_ref()),
    })
}

pub fn notification_json(n: &notification::v1::Notification) -> Value {
    json!({
        "notificationId": n.notification_id,
        "customerId": n.customer_id,
        "channel": n.channel,
        "subject": n.subject,
        "eventId": n.event_id,
        "sentAt": timestamp_json(n.sent_at.as_ref()),
        "recipient": n.recipient,
    })
}

pub fn page_json(p: &mypage::v1::MyPage) -> Value {
    let entries: Vec<Value> = p
        .entries
        .iter()
        .map(|e| {
            let ms = mypage::v1::MissionStatus::try_from(e.mission_status).ok();
            let rs = mypage::v1::RewardStatus::try_from(e.reward_status).ok();
            let gs = mypage::v1::GiftStatus::try_from(e.gift_status).ok();
            json!({
                "missionId": e.mission_id,
                "missionCode": e.mission_code,
                "missionStatus": enum_json(ms.map(|s| s.as_str_name()), e.mission_status),
                "rewardId": e.reward_id,
                "rewardStatus": enum_json(rs.map(|s| s.as_str_name()), e.reward_status),
                "points": e.points,
                "giftId": e.gift_id,
                "giftStatus": enum_json(gs.map(|s| s.as_str_name()), e.gift_status),
                "giftCode": e.gift_code,
            })
        })
        .collect();
    json!({
        "customerId": p.customer_id,
        "entries": entries,
        "pointsIssued": p.points_issued,
        "pointsExchanged": p.points_exchanged,
        "version": p.version,
        "updatedAt": timestamp_json(p.updated_at.as_ref()),
    })
}

/// A response message with one optional field, as grpcurl prints it (absent = omitted).
pub fn wrap(field: &str, value: Option<Value>) -> Value {
    let mut o = serde_json::Map::new();
    if let Some(v) = value {
        o.insert(field.to_owned(), v);
    }
    Value::Object(o)
}

/// What `whoami` shows: the token's payload as it is, plus when it expires and whether
/// it already has.
pub fn whoami_json(c: &crate::auth::Claims, now: i64, from: &str) -> Value {
    json!({
        "customerId": c.sub,
        "role": c.role,
        "expiresAt": c.exp.and_then(epoch).map_or(Value::Null, Value::String),
        "expired": c.expired_at(now),
        "tokenFrom": from,
        "claims": c.payload,
    })
}

// ---------- text ----------

/// Seconds since the epoch as RFC 3339 (UTC).
fn epoch(secs: i64) -> Option<String> {
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
fn word(name: Option<&'static str>, value: i32) -> String {
    match name {
        Some(n) if n.ends_with("_UNSPECIFIED") => "-".to_owned(),
        // Every generated name is `<ENUM>_STATUS_<VALUE>` or `<ENUM>_STATE_<VALUE>`.
        Some(n) => n.split_once("_STATUS_").or_else(|| n.split_once("_STATE_")).map_or(n, |(_, v)| v).to_owned(),
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
                row.push(here.map_or("-", |x| if x.available { "yes" } else { "no" }).to_owned());
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

pub fn audit_json(e: &auth::v1::AuditEntry) -> Value {
    json!({
        "at": timestamp_json(e.at.as_ref()),
        "actor": e.actor,
        "action": e.action,
        "subject": e.subject,
        "detail": e.detail,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ts() -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp {
            seconds: 1_767_225_600, // 2026-01-01T00:00:00Z
            nanos: 500_000_000,
        })
    }

    fn a_mission() -> mission::v1::Mission {
        mission::v1::Mission {
            mission_id: "m-1".into(),
            customer_id: "c-1".into(),
            mission_code: "first-login".into(),
            status: mission::v1::MissionStatus::Achieved as i32,
            reward_id: String::new(),
            achieved_at: ts(),
            reward_points: 100,
            reported_by: "studio-1".into(),
            slot: "once#1".into(),
        }
    }

    #[test]
    fn a_mission_in_json_has_camel_case_names_enum_names_and_rfc3339_time() {
        assert_eq!(
            mission_json(&a_mission()),
            json!({
                "missionId": "m-1",
                "customerId": "c-1",
                "missionCode": "first-login",
                "status": "MISSION_STATUS_ACHIEVED",
                "rewardId": "",
                "achievedAt": "2026-01-01T00:00:00.500Z",
                "rewardPoints": 100,
                "reportedBy": "studio-1",
                "slot": "once#1",
            })
        );
    }

    #[test]
    fn an_unknown_enum_value_is_shown_as_its_number() {
        let m = mission::v1::Mission { status: 42, achieved_at: None, ..a_mission() };
        let j = mission_json(&m);
        assert_eq!(j["status"], json!(42));
        assert_eq!(j["achievedAt"], Value::Null);
        assert!(mission_text(&m).contains("status    42"));
    }

    #[test]
    fn a_mission_in_text_shows_words_and_dashes_for_what_is_not_there_yet() {
        assert_eq!(
            mission_text(&a_mission()),
            "mission   m-1\n\
             customer  c-1\n\
             code      first-login\n\
             status    ACHIEVED\n\
             points    100\n\
             reward    -\n\
             achieved  2026-01-01T00:00:00.500Z\n\
             reported  studio-1\n\
             slot      once#1"
        );
    }

    #[test]
    fn missions_are_a_table_with_aligned_columns() {
        let rewarded = mission::v1::Mission {
            mission_id: "m-22".into(),
            status: mission::v1::MissionStatus::Rewarded as i32,
            reward_id: "r-1".into(),
            ..a_mission()
        };
        assert_eq!(
            missions_text(&[a_mission(), rewarded]),
            "MISSION  CODE         STATUS    POINTS  REWARD  ACHIEVED\n\
             m-1      first-login  ACHIEVED  100     -       2026-01-01T00:00:00.500Z\n\
             m-22     first-login  REWARDED  100     r-1     2026-01-01T00:00:00.500Z"
        );
        assert_eq!(missions_text(&[]), "no missions");
    }

    fn a_wallet() -> wallet::v1::Wallet {
        wallet::v1::Wallet {
            customer_id: "c-1".into(),
            items: vec![
                wallet::v1::WalletItem {
                    reward_id: "r-1".into(),
                    mission_id: "m-1".into(),
                    points: 100,
                    status: wallet::v1::WalletItemStatus::Issued as i32,
                    gift_id: String::new(),
                },
                wallet::v1::WalletItem {
                    reward_id: "r-2".into(),
                    mission_id: "m-2".into(),
                    points: 50,
                    status: wallet::v1::WalletItemStatus::Exchanged as i32,
                    gift_id: "g-1".into(),
                },
            ],
            available_points: 100,
        }
    }

    #[test]
    fn a_wallet_in_json_lists_its_items() {
        let j = wrap("wallet", Some(wallet_json(&a_wallet())));
        assert_eq!(j["wallet"]["availablePoints"], json!(100));
        assert_eq!(j["wallet"]["items"][1]["status"], "WALLET_ITEM_STATUS_EXCHANGED");
        assert_eq!(j["wallet"]["items"][1]["giftId"], "g-1");
        assert_eq!(j["wallet"]["items"][0]["rewardId"], "r-1");
        assert_eq!(wrap("wallet", None), json!({}));
    }

    #[test]
    fn a_wallet_in_text_has_a_headline_and_a_table() {
        assert_eq!(
            wallet_text(&a_wallet()),
            "wallet of c-1: 100 points available\n\
             REWARD  MISSION  STATUS     POINTS  GIFT\n\
             r-1     m-1      ISSUED     100     -\n\
             r-2     m-2      EXCHANGED  50      g-1"
        );
    }

    fn a_page() -> mypage::v1::MyPage {
        mypage::v1::MyPage {
            customer_id: "c-1".into(),
            entries: vec![mypage::v1::Entry {
                mission_id: "m-1".into(),
                mission_code: "first-login".into(),
                mission_status: mypage::v1::MissionStatus::Rewarded as i32,
                reward_id: "r-1".into(),
                reward_status: mypage::v1::RewardStatus::Issued as i32,
                points: 100,
                gift_id: String::new(),
                gift_status: mypage::v1::GiftStatus::Unspecified as i32,
                gift_code: String::new(),
            }],
            points_issued: 100,
            points_exchanged: 0,
            version: 3,
            updated_at: ts(),
            ..Default::default()
        }
    }

    #[test]
    fn a_page_in_json_names_every_status() {
        let j = page_json(&a_page());
        assert_eq!(j["version"], json!(3));
        assert_eq!(j["pointsIssued"], json!(100));
        assert_eq!(j["updatedAt"], "2026-01-01T00:00:00.500Z");
        let e = &j["entries"][0];
        assert_eq!(e["missionStatus"], "MISSION_STATUS_REWARDED");
        assert_eq!(e["rewardStatus"], "REWARD_STATUS_ISSUED");
        assert_eq!(e["giftStatus"], "GIFT_STATUS_UNSPECIFIED");
        assert_eq!(e["giftCode"], "");
    }

    #[test]
    fn a_page_in_text_shows_statuses_as_words() {
        assert_eq!(
            page_text(&a_page()),
            "page of c-1 (version 3, updated 2026-01-01T00:00:00.500Z): 100 points issued, 0 exchanged\n\
             MISSION  CODE         STATUS    REWARD  STATUS  POINTS  GIFT  STATUS  GIFT_CODE\n\
             m-1      first-login  REWARDED  r-1     ISSUED  100     -     -       -"
        );
        let empty = mypage::v1::MyPage { customer_id: "c-9".into(), ..Default::default() };
        assert_eq!(
            page_text(&empty),
            "page of c-9 (version 0, updated never): 0 points issued, 0 exchanged\nno entries"
        );
    }

    fn an_exchange() -> wallet::v1::ExchangeRewardResponse {
        wallet::v1::ExchangeRewardResponse { item: Some(a_wallet().items[1].clone()), gift_id: "g-1".into() }
    }

    #[test]
    fn an_exchange_in_json_has_the_item_and_the_gift_id() {
        assert_eq!(
            exchange_json(&an_exchange()),
            json!({
                "item": {
                    "rewardId": "r-2",
                    "missionId": "m-2",
                    "points": 50,
                    "status": "WALLET_ITEM_STATUS_EXCHANGED",
                    "giftId": "g-1",
                },
                "giftId": "g-1",
            })
        );
        let bare = wallet::v1::ExchangeRewardResponse { item: None, gift_id: "g-2".into() };
        assert_eq!(exchange_json(&bare), json!({"giftId": "g-2"}));
    }

    #[test]
    fn an_exchange_in_text_shows_the_item_and_its_gift() {
        assert_eq!(
            exchange_text(&an_exchange()),
            "reward   r-2\n\
             mission  m-2\n\
             status   EXCHANGED\n\
             points   50\n\
             gift     g-1"
        );
    }

    fn a_breaker() -> wallet::v1::GetExchangeStatusResponse {
        wallet::v1::GetExchangeStatusResponse {
            breaker_state: wallet::v1::BreakerState::Open as i32,
            retry_after_seconds: 7,
            failure_rate: 0.6,
            slow_call_rate: 0.125,
            calls_in_window: 5,
            rejected_calls: 12,
            transitions: 1,
        }
    }

    #[test]
    fn the_exchange_status_in_json_names_the_state_and_keeps_numbers() {
        assert_eq!(
            exchange_status_json(&a_breaker()),
            json!({
                "breakerState": "BREAKER_STATE_OPEN",
                "retryAfterSeconds": 7,
                "failureRate": 0.6,
                "slowCallRate": 0.125,
                "callsInWindow": 5,
                "rejectedCalls": 12,
                "transitions": 1,
            })
        );
    }

    #[test]
    fn the_exchange_status_in_text_shows_the_state_as_a_word_and_rates_as_percentages() {
        assert_eq!(
            exchange_status_text(&a_breaker()),
            "breaker       OPEN\n\
             retry after   7 s\n\
             failure rate  60%\n\
             slow calls    12.5%\n\
             calls         5 in the window\n\
             rejected      12\n\
             transitions   1"
        );
        let closed = wallet::v1::GetExchangeStatusResponse {
            breaker_state: wallet::v1::BreakerState::HalfOpen as i32,
            ..Default::default()
        };
        let text = exchange_status_text(&closed);
        assert!(text.starts_with("breaker       HALF_OPEN\nretry after   -\nfailure rate  0%"), "{text}");
    }

    fn a_gift() -> gift::v1::Gift {
        gift::v1::Gift {
            gift_id: "g-1".into(),
            customer_id: "c-1".into(),
            reward_id: "r-1".into(),
            gift_code: "coffee".into(),
            name: "Coffee".into(),
            status: gift::v1::GiftStatus::Issued as i32,
            issued_at: ts(),
            used_at: None,
            mission_id: "m-1".into(),
        }
    }

    #[test]
    fn a_gift_in_json_has_every_field() {
        assert_eq!(
            wrap("gift", Some(gift_json(&a_gift()))),
            json!({"gift": {
                "giftId": "g-1",
                "customerId": "c-1",
                "rewardId": "r-1",
                "giftCode": "coffee",
                "name": "Coffee",
                "status": "GIFT_STATUS_ISSUED",
                "issuedAt": "2026-01-01T00:00:00.500Z",
                "usedAt": null,
                "missionId": "m-1",
            }})
        );
    }

    #[test]
    fn a_gift_in_text_and_a_list_of_gifts_as_a_table() {
        assert_eq!(
            gift_text(&a_gift()),
            "gift      g-1\n\
             customer  c-1\n\
             code      coffee\n\
             name      Coffee\n\
             status    ISSUED\n\
             reward    r-1\n\
             mission   m-1\n\
             issued    2026-01-01T00:00:00.500Z\n\
             used      -"
        );
        let used = gift::v1::Gift {
            gift_id: "g-22".into(),
            status: gift::v1::GiftStatus::Used as i32,
            used_at: ts(),
            ..a_gift()
        };
        assert_eq!(
            gifts_text(&[a_gift(), used]),
            "GIFT  CODE    STATUS  REWARD  ISSUED                    USED\n\
             g-1   coffee  ISSUED  r-1     2026-01-01T00:00:00.500Z  -\n\
             g-22  coffee  USED    r-1     2026-01-01T00:00:00.500Z  2026-01-01T00:00:00.500Z"
        );
        assert_eq!(gifts_text(&[]), "no gifts");
    }

    #[test]
    fn the_gift_catalog_shows_codes_costs_what_is_left_limits_and_names() {
        let catalog = [
            gift::v1::CatalogGift {
                gift_code: "coffee".into(),
                name: "Coffee".into(),
                cost_points: 10,
                ..Default::default()
            },
            gift::v1::CatalogGift {
                gift_code: "founders-badge".into(),
                name: "Founder's badge".into(),
                cost_points: 20,
                stock: Some(3),
                remaining: Some(1),
                per_customer_limit: Some(gift::v1::PerCustomerLimit { period: "ever".into(), count: 1 }),
                ..Default::default()
            },
        ];
        assert_eq!(
            gift_catalog_text(&catalog),
            "CODE            COST  LEFT  PER CUSTOMER  NAME\n\
             coffee          10    -     -             Coffee\n\
             founders-badge  20    1/3   1 ever        Founder's badge"
        );
        assert_eq!(
            catalog_gift_json(&catalog[1]),
            json!({
                "giftCode": "founders-badge", "name": "Founder's badge", "costPoints": 20, "stock": 3, "remaining": 1,
                "perCustomerLimit": {"period": "ever", "count": 1}, "availableFrom": null, "availableUntil": null,
            })
        );
        assert_eq!(catalog_gift_json(&catalog[0])["stock"], Value::Null);
        assert_eq!(gift_catalog_text(&[]), "no gifts in the catalog");
    }

    fn mission_catalog() -> mission::v1::ListCatalogResponse {
        let m = |code: &str, points, repeat: mission::v1::Repeat, max, by: mission::v1::Reporter| {
            mission::v1::CatalogMission {
                mission_code: code.into(),
                title: code.to_uppercase(),
                reward_points: points,
                repeat: repeat as i32,
                max_per_period: max,
                reported_by: by as i32,
                ..Default::default()
            }
        };
        use mission::v1::{Repeat, Reporter};
        let mut boss = m("boss", 50, Repeat::Once, 1, Reporter::GameServer);
        boss.requires = vec!["daily-login".into()];
        mission::v1::ListCatalogResponse {
            missions: vec![
                m("daily-login", 10, Repeat::Daily, 2, Reporter::Player),
                boss,
                m("match-played", 1, Repeat::Unlimited, 0, Reporter::GameServer),
            ],
            reset_at: "04:00:00".into(),
            time_zone: "Asia/Seoul".into(),
        }
    }

    #[test]
    fn the_mission_catalog_shows_each_rule_and_when_periods_reset() {
        assert_eq!(
            catalog_text(&mission_catalog(), None),
            "CODE          POINTS  REPEAT     REPORTED BY  TITLE\n\
             daily-login   10      daily x2   player       DAILY-LOGIN\n\
             boss          50      once       game server  BOSS\n\
             match-played  1       unlimited  game server  MATCH-PLAYED\n\
             boss: requires daily-login\n\
             days start at 04:00:00 Asia/Seoul; weeks on Monday"
        );
        let j = catalog_json(&mission_catalog(), None);
        assert_eq!(j["missions"][0]["repeat"], "REPEAT_DAILY");
        assert_eq!(j["missions"][0]["maxPerPeriod"], 2);
        assert_eq!(j["missions"][1]["reportedBy"], "REPORTER_GAME_SERVER");
        assert_eq!((j["resetAt"].as_str(), j["timeZone"].as_str()), (Some("04:00:00"), Some("Asia/Seoul")));
        assert!(j.get("availability").is_none());
    }

    #[test]
    fn with_availability_the_catalog_says_what_the_customer_can_do_now_and_when_next() {
        let a = |code: &str, available, left: Option<u32>, next, message: &str| mission::v1::MissionAvailability {
            mission_code: code.into(),
            available,
            reason: if available { String::new() } else { "WHY".into() },
            message: message.into(),
            next_available_at: next,
            remaining_in_period: left,
        };
        let availability = mission::v1::GetAvailabilityResponse {
            customer_id: "alice".into(),
            missions: vec![
                a("daily-login", false, Some(0), ts(), "daily-login was already achieved 2 times today"),
                a("boss", false, Some(1), None, "boss requires daily-login to be achieved first"),
                a("match-played", true, None, ts(), ""),
            ],
            as_of: ts(),
        };
        let text = catalog_text(&mission_catalog(), Some(&availability));
        assert!(
            text.starts_with(
                "CODE          POINTS  REPEAT     REPORTED BY  NOW  LEFT  NEXT                      TITLE\n\
                 daily-login   10      daily x2   player       no   0     2026-01-01T00:00:00.500Z  DAILY-LOGIN\n\
                 boss          50      once       game server  no   1     never                     BOSS\n\
                 match-played  1       unlimited  game server  yes  -     -                         MATCH-PLAYED\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("for alice:\n  daily-login: daily-login was already achieved 2 times today\n  boss: boss requires daily-login to be achieved first"), "{text}");
        let j = catalog_json(&mission_catalog(), Some(&availability));
        assert_eq!(j["availability"]["missions"][0]["remainingInPeriod"], 0);
        assert_eq!(j["availability"]["missions"][2]["remainingInPeriod"], Value::Null);
        assert_eq!(j["availability"]["missions"][0]["available"], false);
    }

    #[test]
    fn notifications_in_json_and_text() {
        let n = notification::v1::Notification {
            notification_id: "n-1".into(),
            customer_id: "c-1".into(),
            channel: "email".into(),
            subject: "Your gift: Coffee".into(),
            event_id: "e-1".into(),
            sent_at: ts(),
            recipient: "c-1@players.game-rewards.local".into(),
        };
        assert_eq!(
            notification_json(&n),
            json!({
                "notificationId": "n-1",
                "customerId": "c-1",
                "channel": "email",
                "subject": "Your gift: Coffee",
                "eventId": "e-1",
                "sentAt": "2026-01-01T00:00:00.500Z",
                "recipient": "c-1@players.game-rewards.local",
            })
        );
        assert_eq!(
            notifications_text(&[n]),
            "NOTIFICATION  SENT                      CHANNEL  RECIPIENT                       SUBJECT\n\
             n-1           2026-01-01T00:00:00.500Z  email    c-1@players.game-rewards.local  Your gift: Coffee"
        );
        assert_eq!(notifications_text(&[]), "no notifications");
    }

    fn claims(exp: Option<i64>) -> crate::auth::Claims {
        crate::auth::Claims {
            sub: "alice".into(),
            role: "customer".into(),
            exp,
            iss: Some("game-rewards".into()),
            payload: json!({"sub": "alice", "role": "customer", "exp": exp}),
        }
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(duration(3600), "1h");
        assert_eq!(duration(90), "1m30s");
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(3725), "1h2m5s");
    }

    #[test]
    fn whoami_says_who_what_and_until_when() {
        let exp = 1_767_225_600; // 2026-01-01T00:00:00Z
        assert_eq!(
            whoami_text(&claims(Some(exp)), exp - 3600, "/data/token"),
            "customer  alice\n\
             role      customer\n\
             issuer    game-rewards\n\
             expires   2026-01-01T00:00:00Z (in 1h)\n\
             token     /data/token"
        );
        let late = whoami_text(&claims(Some(exp)), exp + 120, "--token");
        assert!(late.contains("(expired 2m ago: run gamectl login)"), "{late}");
        let v = whoami_json(&claims(Some(exp)), exp + 1, "--token");
        assert_eq!(v["customerId"], "alice");
        assert_eq!(v["role"], "customer");
        assert_eq!(v["expiresAt"], "2026-01-01T00:00:00Z");
        assert_eq!(v["expired"], true);
        assert_eq!(v["claims"]["exp"], exp);
        assert!(whoami_text(&claims(None), 0, "x").contains("expires   never"));
    }
}
