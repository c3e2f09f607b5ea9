//! Events made by hand, as a test (or an attacker) would put them on the bus.

use contracts::pb::events::v1 as ev;
use prost::{Message, Name};

/// The envelope headers of an event: `msg_id` is JetStream's de-duplication id.
pub fn headers(
    event_type: &str,
    event_id: &str,
    msg_id: &str,
    customer: &str,
    correlation: &str,
) -> async_nats::HeaderMap {
    let mut h = async_nats::HeaderMap::new();
    h.insert("Nats-Msg-Id", msg_id);
    h.insert("Game-Event-Id", event_id);
    h.insert("Game-Event-Type", event_type);
    h.insert("Game-Correlation-Id", correlation);
    h.insert("Game-Causation-Id", "test");
    h.insert("Game-Customer-Id", customer);
    h.insert("Game-Occurred-At", "2026-11-25T12:00:00Z");
    h
}

/// A `RewardAllocated` no mission earned: `points` for `customer`, new ids.
pub fn reward_allocated(customer: &str, points: i64) -> (async_nats::HeaderMap, bytes::Bytes) {
    let (reward_id, mission_id) = (uuid::Uuid::now_v7().to_string(), uuid::Uuid::now_v7().to_string());
    let body = ev::RewardAllocated {
        reward_id: reward_id.clone(),
        mission_id: mission_id.clone(),
        customer_id: customer.into(),
        points,
        mission_code: "daily-login".into(),
        points_expire_after_seconds: 0,
    };
    let event_id = uuid::Uuid::now_v7().to_string();
    let h = headers(&ev::RewardAllocated::full_name(), &event_id, &event_id, customer, &mission_id);
    (h, body.encode_to_vec().into())
}

/// A `MissionAchieved` no game server reported: `points` for `customer`, new ids.
pub fn mission_achieved(customer: &str, points: i64) -> (async_nats::HeaderMap, bytes::Bytes) {
    let mission_id = uuid::Uuid::now_v7().to_string();
    let body = ev::MissionAchieved {
        mission_id: mission_id.clone(),
        customer_id: customer.into(),
        mission_code: "daily-login".into(),
        reward_points: points,
        achieved_at: None,
        points_expire_after_seconds: 0,
    };
    let event_id = uuid::Uuid::now_v7().to_string();
    let h = headers(&ev::MissionAchieved::full_name(), &event_id, &event_id, customer, &mission_id);
    (h, body.encode_to_vec().into())
}
