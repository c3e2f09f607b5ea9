//! The reward flow end to end: mission -> reward -> wallet -> mission, my page; and
//! what must hold when services or NATS stop, replicas share work, events repeat.

use std::time::Duration;

use e2e::api::{achieve, missions, page, report, rewards, wallet_of};
use e2e::clients::*;
use e2e::{REWARD, Service, System, eventually};
use futures::StreamExt;
use grpc_adapter::pb::events::v1 as ev;
use grpc_adapter::pb::mission::v1 as mission;
use grpc_adapter::pb::mypage::v1 as mypage;
use grpc_adapter::pb::reward::v1 as reward;
use grpc_adapter::pb::wallet::v1 as wallet;
use prost::Message;
use tonic::Code;

const FLOW: Duration = Duration::from_secs(30);

/// Waits until `n` rewards of the customer are ISSUED in the wallet, the reward
/// context and on the missions.
async fn all_issued(sys: &System, customer: &str, n: usize) {
    eventually(FLOW, &format!("{n} rewards issued everywhere for {customer}"), || async {
        let w = wallet_of(sys, customer).await;
        let r = rewards(sys, customer).await;
        let m = missions(sys, customer).await;
        let issued = |s: i32| s == reward::RewardStatus::Issued as i32;
        let done = w.items.len() == n
            && r.len() == n
            && r.iter().all(|r| issued(r.status))
            && m.iter().filter(|m| m.status == mission::MissionStatus::Rewarded as i32).count() == n;
        done.then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_achieved_mission_flows_into_reward_wallet_mission_and_my_page() {
    let sys = System::start().await;
    let customer = "c-11";
    let mut watch = MyPageServiceClient::new(sys.as_customer(&sys.mypage, customer))
        .watch_my_page(mypage::WatchMyPageRequest { customer_id: customer.into() })
        .await
        .unwrap()
        .into_inner();
    let first = watch.next().await.unwrap().unwrap().page.unwrap();
    assert!(first.entries.is_empty(), "an unknown customer has an empty page");
    assert_eq!(first.version, 0);

    let m = achieve(&sys, customer, "daily-login", "").await;
    assert_eq!(m.status, mission::MissionStatus::Achieved as i32, "ACHIEVED at once");
    assert!(m.reward_id.is_empty());
    assert_eq!(m.reward_points, 10);

    all_issued(&sys, customer, 1).await;
    let w = wallet_of(&sys, customer).await;
    let item = &w.items[0];
    assert_eq!(
        (item.mission_id.as_str(), item.points, item.status),
        (m.mission_id.as_str(), 10, wallet::WalletItemStatus::Issued as i32)
    );
    assert_eq!(w.available_points, 10);
    let got = MissionServiceClient::new(sys.as_customer(&sys.mission, customer))
        .get_mission(mission::GetMissionRequest { mission_id: m.mission_id.clone() })
        .await
        .unwrap()
        .into_inner()
        .mission
        .unwrap();
    assert_eq!(got.reward_id, item.reward_id, "the mission records the reward it earned");
    assert_eq!(got.status, mission::MissionStatus::Rewarded as i32);

    // my page, from events only
    let p = eventually(FLOW, "my page shows the issued reward", || async {
        let p = page(&sys, customer).await;
        let ok = p.entries.len() == 1
            && p.entries[0].reward_status == mypage::RewardStatus::Issued as i32
            && p.entries[0].mission_status == mypage::MissionStatus::Rewarded as i32;
        ok.then_some(p)
    })
    .await;
    let e = &p.entries[0];
    assert_eq!(
        (e.mission_id.as_str(), e.reward_id.as_str(), e.points),
        (m.mission_id.as_str(), item.reward_id.as_str(), 10)
    );
    assert_eq!(e.mission_code, "daily-login");
    assert_eq!(p.points_issued, 10);

    // the watch saw the page change, ending in the same state
    let mut last = first;
    while last.version < p.version {
        last = tokio::time::timeout(FLOW, watch.next()).await.expect("watch update").unwrap().unwrap().page.unwrap();
    }
    assert_eq!(last.entries, p.entries);
    // all of it within each service's permissions on the bus
    assert_eq!(sys.bus_violations(), Vec::<String>::new());
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_and_changes_nothing() {
    let sys = System::start().await;
    let mut client = MissionServiceClient::new(sys.as_customer(&sys.mission, "c-1"));
    // An empty customer_id is the calling player's own (their token names them): no case
    // here; a game server must name the player (below, and tests/tests/customer_ids.rs).
    let cases = [("c-1", "no-such-mission", "mission_code"), ("c 1", "daily-login", "customer_id")];
    for (customer, code, field) in cases {
        let err = client
            .achieve_mission(mission::AchieveMissionRequest {
                customer_id: customer.into(),
                mission_code: code.into(),
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{customer:?}/{code:?}");
        assert!(err.message().contains(field), "{} names {field}", err.message());
    }
    let err = MissionServiceClient::new(sys.as_game_server(&sys.mission))
        .achieve_mission(mission::AchieveMissionRequest {
            customer_id: String::new(),
            mission_code: "daily-login".into(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!((err.code(), err.message().contains("customer_id")), (Code::InvalidArgument, true), "{err:?}");
    let err = client.get_mission(mission::GetMissionRequest { mission_id: "not-a-uuid".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("mission_id"));
    let err = client
        .get_mission(mission::GetMissionRequest { mission_id: uuid::Uuid::now_v7().to_string() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = RewardServiceClient::new(sys.as_customer(&sys.reward, "c-1"))
        .get_reward(reward::GetRewardRequest { reward_id: "x".into() })
        .await
        .unwrap_err();
    assert_eq!((err.code(), err.message().contains("reward_id")), (Code::InvalidArgument, true));
    let err = WalletServiceClient::new(sys.as_customer(&sys.wallet, "c-1"))
        .get_wallet(wallet::GetWalletRequest { customer_id: "c 1".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(missions(&sys, "c-1").await.is_empty(), "nothing was written");
    let catalog = client.list_catalog(mission::ListCatalogRequest {}).await.unwrap().into_inner().missions;
    for code in ["daily-login", "first-win", "tutorial-complete"] {
        assert!(catalog.iter().any(|m| m.mission_code == code && m.reward_points >= 10), "{code} in the catalog");
    }
}

#[tokio::test]
async fn the_same_request_twice_achieves_once() {
    let sys = System::start().await;
    let a = report(&sys, "c-7", "first-win", "req-42").await;
    let b = report(&sys, "c-7", "first-win", "req-42").await;
    assert_eq!(a.mission_id, b.mission_id);
    all_issued(&sys, "c-7", 1).await;
    assert_eq!(rewards(&sys, "c-7").await.len(), 1);
}

#[tokio::test]
async fn missions_achieved_while_reward_is_down_are_all_rewarded_once_it_returns() {
    let mut sys = System::start().await;
    assert_eq!(sys.reward.stop(), Some(0), "reward exits cleanly on SIGTERM");
    for i in 0..20 {
        report(&sys, "c-replay", "match-played", &format!("r{i}")).await;
    }
    sys.reward.restart();
    sys.reward.wait_serving(REWARD).await;
    all_issued(&sys, "c-replay", 20).await;
    let r = rewards(&sys, "c-replay").await;
    let mut missions: Vec<_> = r.iter().map(|r| r.mission_id.clone()).collect();
    missions.sort();
    missions.dedup();
    assert_eq!(missions.len(), 20, "one reward per mission, none twice");
}

#[tokio::test]
async fn two_reward_replicas_share_the_work_without_duplicates() {
    // Replicas of a service share one database: PostgreSQL, as in production.
    let db = e2e::TestDatabase::postgres();
    let mut sys = System::start().await;
    sys.reward.stop();
    let mut env = sys.env("reward", &db.url);
    env.push(("RUST_LOG", "info,nats_adapter::consumer=debug".into()));
    let a = Service::start("reward-a", "reward", &env, sys.dir.path());
    let b = Service::start("reward-b", "reward", &env, sys.dir.path());
    a.wait_serving(REWARD).await;
    b.wait_serving(REWARD).await;
    sys.reward = a;

    let mut calls = Vec::new();
    for i in 0..200 {
        let ch = sys.as_game_server(&sys.mission);
        calls.push(async move {
            MissionServiceClient::new(ch)
                .achieve_mission(mission::AchieveMissionRequest {
                    customer_id: format!("c-scale-{}", i % 10),
                    mission_code: "match-played".into(),
                    request_id: format!("r{i}"),
                })
                .await
                .map(drop)
        });
    }
    for r in futures::future::join_all(calls).await {
        r.expect("achieve");
    }
    for c in 0..10 {
        all_issued(&sys, &format!("c-scale-{c}"), 20).await;
    }
    let total: usize = futures::future::join_all((0..10).map(|c| {
        let sys = &sys;
        async move { rewards(sys, &format!("c-scale-{c}")).await.len() }
    }))
    .await
    .into_iter()
    .sum();
    assert_eq!(total, 200, "exactly one reward per mission");
    let handled =
        |s: &Service| s.log().lines().filter(|l| l.contains("event handled") && l.contains("reward-allocate")).count();
    let (by_a, by_b) = (handled(&sys.reward), handled(&b));
    assert_eq!(by_a + by_b, 200, "each MissionAchieved handled once across replicas (a={by_a}, b={by_b})");
    assert!(by_a > 0 && by_b > 0, "both replicas did work (a={by_a}, b={by_b})");
}

#[tokio::test]
async fn missions_achieved_while_nats_is_down_flow_through_when_it_returns() {
    let mut sys = System::start().await;
    sys.nats.stop();
    for i in 0..10 {
        report(&sys, "c-outage", "match-played", &format!("r{i}")).await;
    }
    sys.nats.resume();
    all_issued(&sys, "c-outage", 10).await;
    eventually(FLOW, "my page catches up", || async {
        let p = page(&sys, "c-outage").await;
        (p.entries.len() == 10 && p.points_issued == 10).then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_event_delivered_twice_has_one_effect() {
    let sys = System::start().await;
    let js = sys.operator_js().await;
    let mission_id = uuid::Uuid::now_v7().to_string();
    let event_id = uuid::Uuid::now_v7().to_string();
    let body = ev::MissionAchieved {
        mission_id: mission_id.clone(),
        customer_id: "c-dup".into(),
        mission_code: "daily-login".into(),
        reward_points: 10,
        achieved_at: None,
        points_expire_after_seconds: 0,
    }
    .encode_to_vec();
    // The same event twice, as after a republish outside JetStream's de-duplication window.
    for msg_id in ["first", "second"] {
        let h = e2e::events::headers("game.events.v1.MissionAchieved", &event_id, msg_id, "c-dup", &mission_id);
        js.publish_with_headers("game.mission.v1.achieved", h, body.clone().into()).await.unwrap().await.unwrap();
    }
    eventually(FLOW, "the reward is issued", || async {
        (wallet_of(&sys, "c-dup").await.items.len() == 1).then_some(())
    })
    .await;
    // give a second effect every chance to show up
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rewards(&sys, "c-dup").await.len(), 1);
    assert_eq!(wallet_of(&sys, "c-dup").await.items.len(), 1);
    // The reward role's metrics tell the two deliveries apart.
    let text = metrics_adapter::scrape::fetch(&sys.reward.metrics_url(), Duration::from_secs(5)).await.unwrap();
    let scrape = metrics_adapter::scrape::Scrape::parse(&text);
    let handled =
        |outcome| scrape.value("consumer_handled_total", &[("consumer", "reward-allocate"), ("outcome", outcome)]);
    assert_eq!((handled("ok"), handled("duplicate")), (Some(1.0), Some(1.0)), "{text}");
}
