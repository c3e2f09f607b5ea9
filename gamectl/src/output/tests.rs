use contracts::pb::{gift, mission, mypage, notification, wallet};
use serde_json::{Value, json};

use super::*;

mod whoami;

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
                remaining_points: 100,
                expires_at: None,
            },
            wallet::v1::WalletItem {
                reward_id: "r-2".into(),
                mission_id: "m-2".into(),
                points: 50,
                status: wallet::v1::WalletItemStatus::Exchanged as i32,
                gift_id: "g-1".into(),
                remaining_points: 0,
                expires_at: None,
            },
        ],
        available_points: 100,
        balance: 100,
        next_expiry_points: 0,
        next_expiry_at: None,
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
    assert_eq!(page_text(&empty), "page of c-9 (version 0, updated never): 0 points issued, 0 exchanged\nno entries");
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
                "remainingPoints": 0,
                "expiresAt": null,
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
    let used =
        gift::v1::Gift { gift_id: "g-22".into(), status: gift::v1::GiftStatus::Used as i32, used_at: ts(), ..a_gift() };
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
    let m =
        |code: &str, points, repeat: mission::v1::Repeat, max, by: mission::v1::Reporter| mission::v1::CatalogMission {
            mission_code: code.into(),
            title: code.to_uppercase(),
            reward_points: points,
            repeat: repeat as i32,
            max_per_period: max,
            reported_by: by as i32,
            ..Default::default()
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
            "CODE          POINTS  REPEAT     REPORTED BY  NOW          LEFT  NEXT                      TITLE\n\
             daily-login   10      daily x2   player       no           0     2026-01-01T00:00:00.500Z  DAILY-LOGIN\n\
             boss          50      once       game server  no           1     never                     BOSS\n\
             match-played  1       unlimited  game server  by the game  -     -                         MATCH-PLAYED\n"
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
