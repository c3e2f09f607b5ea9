//! Events recorded from the published version of `proto/game/events/v1` (the files in
//! `tests/fixtures/events/`, one encoded message each) decode with the current code into
//! the same values: an event already in a stream stays readable after a change of the
//! contracts. Renumbering or retyping a field makes a fixture decode differently and
//! this test fail (and `buf breaking` in CI, before it).
//!
//! New event types get their fixture recorded once: `RECORD_EVENT_FIXTURES=1 cargo test
//! -p contracts --test event_fixtures`, then the file is committed and never rewritten.

// `..Default::default()` stays on every event although each field is set: a field added
// to an event later must not break the values these fixtures were recorded from.
#![allow(clippy::needless_update)]

use std::path::PathBuf;

use contracts::pb::events::v1 as ev;
use prost::Message;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events")
}

/// Decodes a fixture's bytes as its event type and prints the value.
type Decode = Box<dyn Fn(&[u8]) -> Result<String, prost::DecodeError>>;

/// The values the fixtures were recorded from.
fn recorded() -> Vec<(&'static str, Vec<u8>, Decode)> {
    fn entry<M: Message + Default + std::fmt::Debug + 'static>(
        name: &'static str,
        m: M,
    ) -> (&'static str, Vec<u8>, Decode) {
        (name, m.encode_to_vec(), Box::new(|b: &[u8]| M::decode(b).map(|m| format!("{m:?}"))))
    }
    let (m, r, g) = (
        "0190a1b2-0000-7000-8000-000000000001",
        "0190a1b2-0000-7000-8000-000000000002",
        "0190a1b2-0000-7000-8000-000000000003",
    );
    vec![
        entry(
            "MissionAchieved",
            ev::MissionAchieved {
                mission_id: m.into(),
                customer_id: "alice".into(),
                mission_code: "daily-login".into(),
                reward_points: 10,
                achieved_at: Some(prost_types::Timestamp { seconds: 1_764_000_000, nanos: 123_000_000 }),
                ..Default::default()
            },
        ),
        entry(
            "MissionRewarded",
            ev::MissionRewarded {
                mission_id: m.into(),
                customer_id: "alice".into(),
                reward_id: r.into(),
                ..Default::default()
            },
        ),
        entry(
            "RewardAllocated",
            ev::RewardAllocated {
                reward_id: r.into(),
                mission_id: m.into(),
                customer_id: "alice".into(),
                points: 10,
                mission_code: "daily-login".into(),
                ..Default::default()
            },
        ),
        entry(
            "RewardIssued",
            ev::RewardIssued {
                reward_id: r.into(),
                mission_id: m.into(),
                customer_id: "alice".into(),
                points: 10,
                ..Default::default()
            },
        ),
        entry(
            "RewardExchanged",
            ev::RewardExchanged {
                reward_id: r.into(),
                mission_id: m.into(),
                customer_id: "alice".into(),
                points: 10,
                gift_id: g.into(),
                gift_code: "coffee".into(),
                ..Default::default()
            },
        ),
        entry(
            "GiftIssued",
            ev::GiftIssued {
                gift_id: g.into(),
                customer_id: "alice".into(),
                reward_id: r.into(),
                gift_code: "coffee".into(),
                gift_name: "Coffee".into(),
                mission_id: m.into(),
                ..Default::default()
            },
        ),
        entry(
            "GiftUsed",
            ev::GiftUsed {
                gift_id: g.into(),
                customer_id: "alice".into(),
                reward_id: r.into(),
                gift_code: "coffee".into(),
                gift_name: "Coffee".into(),
                mission_id: m.into(),
                ..Default::default()
            },
        ),
        entry(
            "NotificationSent",
            ev::NotificationSent {
                notification_id: "0190a1b2-0000-7000-8000-000000000004".into(),
                customer_id: "alice".into(),
                channel: "email".into(),
                subject: "Your gift: Coffee".into(),
                about_event_id: "0190a1b2-0000-7000-8000-000000000005".into(),
                ..Default::default()
            },
        ),
    ]
}

#[test]
fn events_recorded_from_the_published_contracts_decode_to_the_same_values() {
    let record = std::env::var_os("RECORD_EVENT_FIXTURES").is_some();
    for (name, now, decode) in recorded() {
        let path = dir().join(format!("{name}.bin"));
        if record && !path.exists() {
            std::fs::create_dir_all(dir()).unwrap();
            std::fs::write(&path, &now).unwrap();
        }
        let then =
            std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (record it: see the module doc)", path.display()));
        let old = decode(&then).unwrap_or_else(|e| panic!("{name}: the recorded event no longer decodes: {e}"));
        let new = decode(&now).expect("decodes");
        assert_eq!(old, new, "{name}: the recorded event decodes to other values than it was recorded from");
    }
    let files = std::fs::read_dir(dir()).unwrap().count();
    assert_eq!(files, recorded().len(), "a fixture for every event type, and no other file");
}
