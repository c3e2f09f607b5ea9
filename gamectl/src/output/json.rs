//! Answers as JSON shaped like grpcurl's (camelCase names, enum names, RFC 3339
//! timestamps), every field present and 64-bit integers as numbers.

use contracts::pb::{auth, gift, mission, mypage, notification, reward, wallet};
use serde_json::{Value, json};

use super::text::{epoch, timestamp};

/// An enum value as protojson writes it: its name, or the number when unknown.
pub(super) fn enum_json(name: Option<&'static str>, value: i32) -> Value {
    name.map_or_else(|| json!(value), |n| json!(n))
}

pub(super) fn timestamp_json(t: Option<&prost_types::Timestamp>) -> Value {
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
        "remainingPoints": i.remaining_points,
        "expiresAt": timestamp_json(i.expires_at.as_ref()),
    })
}

pub fn wallet_json(w: &wallet::v1::Wallet) -> Value {
    json!({
        "customerId": w.customer_id,
        "items": w.items.iter().map(wallet_item_json).collect::<Vec<_>>(),
        "availablePoints": w.available_points,
        "balance": w.balance,
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

pub fn audit_json(e: &auth::v1::AuditEntry) -> Value {
    json!({
        "at": timestamp_json(e.at.as_ref()),
        "actor": e.actor,
        "action": e.action,
        "subject": e.subject,
        "detail": e.detail,
    })
}
