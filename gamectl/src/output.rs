//! How answers are shown: JSON shaped like grpcurl's (camelCase names, enum names,
//! RFC 3339 timestamps) or compact text for people.
//!
//! JSON differs from protojson in two deliberate ways that make it easier to script:
//! every field is present (defaults included), and 64-bit integers are numbers.

use chrono::SecondsFormat;
use grpc_adapter::pb::{mission, mypage, reward, wallet};
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
    })
}

pub fn catalog_mission_json(m: &mission::v1::CatalogMission) -> Value {
    json!({
        "missionCode": m.mission_code,
        "title": m.title,
        "rewardPoints": m.reward_points,
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

pub fn wallet_json(w: &wallet::v1::Wallet) -> Value {
    let items: Vec<Value> = w
        .items
        .iter()
        .map(|i| {
            let status = wallet::v1::WalletItemStatus::try_from(i.status).ok();
            json!({
                "rewardId": i.reward_id,
                "missionId": i.mission_id,
                "points": i.points,
                "status": enum_json(status.map(|s| s.as_str_name()), i.status),
                "giftId": i.gift_id,
            })
        })
        .collect();
    json!({
        "customerId": w.customer_id,
        "items": items,
        "availablePoints": w.available_points,
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

// ---------- text ----------

/// RFC 3339 in UTC, with as many fraction digits as needed.
pub fn timestamp(t: Option<&prost_types::Timestamp>) -> Option<String> {
    t.and_then(grpc_adapter::convert::from_timestamp)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// `MISSION_STATUS_ACHIEVED` -> `ACHIEVED`; unspecified -> `-`.
fn word(name: Option<&'static str>, value: i32) -> String {
    match name {
        Some(n) if n.ends_with("_UNSPECIFIED") => "-".to_owned(),
        // Every generated name is `<ENUM>_STATUS_<VALUE>`.
        Some(n) => n.split_once("_STATUS_").map_or(n, |(_, v)| v).to_owned(),
        None => value.to_string(),
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".to_owned()
    } else {
        s.to_owned()
    }
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
    pairs
        .iter()
        .map(|(k, v)| format!("{k:<w$}  {v}"))
        .collect::<Vec<_>>()
        .join("\n")
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
        (
            "achieved",
            timestamp(m.achieved_at.as_ref()).unwrap_or_else(|| "-".into()),
        ),
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
    table(
        &["MISSION", "CODE", "STATUS", "POINTS", "REWARD", "ACHIEVED"],
        &rows,
    )
}

pub fn catalog_text(ms: &[mission::v1::CatalogMission]) -> String {
    if ms.is_empty() {
        return "no missions in the catalog".to_owned();
    }
    let rows: Vec<Vec<String>> = ms
        .iter()
        .map(|m| {
            vec![
                m.mission_code.clone(),
                m.reward_points.to_string(),
                m.title.clone(),
            ]
        })
        .collect();
    table(&["CODE", "POINTS", "TITLE"], &rows)
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
        .map(|r| {
            vec![
                r.reward_id.clone(),
                r.mission_id.clone(),
                reward_status(r),
                r.points.to_string(),
            ]
        })
        .collect();
    table(&["REWARD", "MISSION", "STATUS", "POINTS"], &rows)
}

pub fn wallet_text(w: &wallet::v1::Wallet) -> String {
    let head = format!(
        "wallet of {}: {} points available",
        w.customer_id, w.available_points
    );
    if w.items.is_empty() {
        return format!("{head}\nno items");
    }
    let rows: Vec<Vec<String>> = w
        .items
        .iter()
        .map(|i| {
            let s = wallet::v1::WalletItemStatus::try_from(i.status).ok();
            vec![
                i.reward_id.clone(),
                i.mission_id.clone(),
                word(s.map(|s| s.as_str_name()), i.status),
                i.points.to_string(),
                or_dash(&i.gift_id),
            ]
        })
        .collect();
    format!(
        "{head}\n{}",
        table(&["REWARD", "MISSION", "STATUS", "POINTS", "GIFT"], &rows)
    )
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
        table(
            &[
                "MISSION",
                "CODE",
                "STATUS",
                "REWARD",
                "STATUS",
                "POINTS",
                "GIFT",
                "STATUS",
                "GIFT_CODE"
            ],
            &rows
        )
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
            })
        );
    }

    #[test]
    fn an_unknown_enum_value_is_shown_as_its_number() {
        let m = mission::v1::Mission {
            status: 42,
            achieved_at: None,
            ..a_mission()
        };
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
             achieved  2026-01-01T00:00:00.500Z"
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
        assert_eq!(
            j["wallet"]["items"][1]["status"],
            "WALLET_ITEM_STATUS_EXCHANGED"
        );
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
        let empty = mypage::v1::MyPage {
            customer_id: "c-9".into(),
            ..Default::default()
        };
        assert_eq!(
            page_text(&empty),
            "page of c-9 (version 0, updated never): 0 points issued, 0 exchanged\nno entries"
        );
    }
}
