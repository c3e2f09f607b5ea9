//! The economy players cannot farm, end to end on real binaries: the farming attempt of
//! issue 11 replayed through the gateway, a daily mission again after its reset, racing
//! achievements of a `once` mission (SQLite, and PostgreSQL with two mission replicas),
//! who may report what, the refusal's ErrorInfo, the race for the last gifts of a stock,
//! and a catalog file with a mistake stopping the service at start.

use std::time::Duration;

use chrono::{DateTime, Utc};
use e2e::api::{issued_reward, report, rewards, wallet_of};
use e2e::clients::*;
use e2e::{Authed, GAME_SERVER, GAME_SERVER_SUBJECT, MISSION, Options, Service, System, eventually, with_token};
use grpc_adapter::pb::gift::v1 as gift;
use grpc_adapter::pb::mission::v1 as mission;
use grpc_adapter::pb::wallet::v1 as wallet;
use tonic::Code;
use tonic_types::StatusExt;

const FLOW: Duration = Duration::from_secs(30);

fn request(customer: &str, code: &str, request_id: &str) -> mission::AchieveMissionRequest {
    mission::AchieveMissionRequest {
        customer_id: customer.into(),
        mission_code: code.into(),
        request_id: request_id.into(),
    }
}

async fn achieve_with(
    ch: Authed,
    customer: &str,
    code: &str,
    request_id: &str,
) -> Result<mission::Mission, tonic::Status> {
    MissionServiceClient::new(ch)
        .achieve_mission(request(customer, code, request_id))
        .await
        .map(|r| r.into_inner().mission.expect("mission"))
}

/// The `google.rpc.ErrorInfo` of a refusal: (reason, domain, metadata).
fn error_info(s: &tonic::Status) -> (String, String, std::collections::HashMap<String, String>) {
    let info = s.get_details_error_info().unwrap_or_else(|| panic!("no ErrorInfo in {s:?}"));
    (info.reason, info.domain, info.metadata)
}

fn count(results: &[Result<mission::Mission, tonic::Status>], code: Code) -> usize {
    results.iter().filter(|r| r.as_ref().err().is_some_and(|s| s.code() == code)).count()
}

#[tokio::test]
async fn the_25_call_farming_attempt_of_issue_11_now_gets_a_player_one_daily_login_and_a_game_server_one_first_win() {
    let sys = System::start_with(Options { gateway: true, ..Options::default() }).await;
    let player = || with_token(sys.gateway().channel(), &sys.tokens.customer("farmer"));
    let server = || with_token(sys.gateway().channel(), &sys.tokens.game_server(GAME_SERVER));

    // The attempt as the issue tried it: one player's token, a new request id each time.
    let mut by_player = Vec::new();
    for i in 0..20 {
        by_player.push(achieve_with(player(), "farmer", "first-win", &format!("fw-{i}")).await);
    }
    let mut logins = Vec::new();
    for i in 0..5 {
        logins.push(achieve_with(player(), "farmer", "daily-login", &format!("dl-{i}")).await);
    }
    assert_eq!(count(&by_player, Code::PermissionDenied), 20, "a player cannot say they won: {by_player:?}");
    let denied = by_player[0].as_ref().unwrap_err();
    assert!(denied.message().contains("first-win"), "names the mission: {}", denied.message());
    assert_eq!(logins.iter().filter(|r| r.is_ok()).count(), 1, "one daily login: {logins:?}");
    assert_eq!(count(&logins, Code::FailedPrecondition), 4);
    let refusal = logins[1].as_ref().unwrap_err();
    assert!(
        refusal.message().starts_with("daily-login was already achieved today; next from "),
        "{}",
        refusal.message()
    );
    let (reason, domain, metadata) = error_info(refusal);
    assert_eq!((reason.as_str(), domain.as_str()), ("MISSION_PERIOD_LIMIT_REACHED", "game-rewards"));
    assert_eq!(metadata["mission_code"], "daily-login");
    let next = DateTime::parse_from_rfc3339(&metadata["next_available_at"]).expect("RFC 3339");
    let tomorrow = (Utc::now() + chrono::Duration::days(1)).date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
    assert_eq!(next, tomorrow, "the default catalog's day starts at 00:00 UTC");
    assert!(refusal.message().ends_with(&metadata["next_available_at"]), "the same time in the message");

    // The game server reports the same twenty wins for the player: one counts.
    let mut by_server = Vec::new();
    for i in 0..20 {
        by_server.push(achieve_with(server(), "farmer", "first-win", &format!("gs-{i}")).await);
    }
    assert_eq!(by_server.iter().filter(|r| r.is_ok()).count(), 1, "{by_server:?}");
    assert_eq!(count(&by_server, Code::FailedPrecondition), 19);
    let (reason, _, metadata) = error_info(by_server[1].as_ref().unwrap_err());
    assert_eq!(reason, "MISSION_ALREADY_ACHIEVED");
    assert!(!metadata.contains_key("next_available_at"), "a once mission has no next time");

    // A retry of the accepted request is answered with the first mission, never refused.
    let first = by_server[0].as_ref().unwrap();
    let again = achieve_with(server(), "farmer", "first-win", "gs-0").await.expect("a retry is answered");
    assert_eq!(
        (again.mission_id.as_str(), again.reported_by.as_str()),
        (first.mission_id.as_str(), GAME_SERVER_SUBJECT)
    );

    let w = eventually(FLOW, "two rewards in the wallet", || async {
        let w = wallet_of(&sys, "farmer").await;
        (w.items.len() == 2).then_some(w)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(wallet_of(&sys, "farmer").await.items.len(), 2, "and no more");
    assert_eq!(w.available_points, 60, "10 + 50 instead of 1,050");
    eprintln!(
        "FARMING: player first-win x20 -> {} PERMISSION_DENIED; daily-login x5 -> 1 accepted, {} FAILED_PRECONDITION; \
         game server first-win x20 -> 1 accepted, {} FAILED_PRECONDITION; wallet {} points in {} rewards",
        count(&by_player, Code::PermissionDenied),
        count(&logins, Code::FailedPrecondition),
        count(&by_server, Code::FailedPrecondition),
        w.available_points,
        w.items.len()
    );

    // What the player can do now, and the rules, through the gateway.
    let a = MissionServiceClient::new(player())
        .get_availability(mission::GetAvailabilityRequest { customer_id: "farmer".into() })
        .await
        .unwrap()
        .into_inner();
    let of = |c: &str| a.missions.iter().find(|m| m.mission_code == c).unwrap().clone();
    assert!(!of("daily-login").available);
    assert_eq!(of("daily-login").reason, "MISSION_PERIOD_LIMIT_REACHED");
    assert_eq!(of("daily-login").remaining_in_period, Some(0));
    assert!(!of("first-win").available && of("first-win").next_available_at.is_none(), "never again");
    assert!(of("tutorial-complete").available);
    assert_eq!(of("match-played").remaining_in_period, None, "no cap");
    let denied = MissionServiceClient::new(with_token(sys.gateway().channel(), &sys.tokens.customer("nosy")))
        .get_availability(mission::GetAvailabilityRequest { customer_id: "farmer".into() })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let catalog = MissionServiceClient::new(sys.gateway().channel())
        .list_catalog(mission::ListCatalogRequest {})
        .await
        .unwrap()
        .into_inner();
    let first_win = catalog.missions.iter().find(|m| m.mission_code == "first-win").unwrap();
    assert_eq!(
        (first_win.repeat, first_win.reported_by, first_win.max_per_period),
        (mission::Repeat::Once as i32, mission::Reporter::GameServer as i32, 1)
    );
    assert_eq!((catalog.reset_at.as_str(), catalog.time_zone.as_str()), ("00:00:00", "UTC"));
}

#[tokio::test]
async fn a_daily_mission_can_be_achieved_again_once_its_period_resets() {
    // A catalog whose day starts about two seconds from now: no test-only clock needed.
    let reset = Utc::now() + chrono::Duration::seconds(3);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missions.toml");
    std::fs::write(
        &path,
        format!(
            "reset_at = \"{}\"\ntime_zone = \"UTC\"\n[[missions]]\ncode = \"daily-login\"\ntitle = \"Log in today\"\n\
             points = 10\nrepeat = \"daily\"\nreported_by = \"player\"\n",
            reset.format("%H:%M:%S")
        ),
    )
    .unwrap();
    let mission_env = vec![("MISSION_CATALOG", path.display().to_string())];
    let sys = System::start_with(Options { mission_env, ..Options::default() }).await;
    let player = || sys.as_customer(&sys.mission, "daily");
    let today = achieve_with(player(), "daily", "daily-login", "d-1").await.expect("today's login");
    let refused = achieve_with(player(), "daily", "daily-login", "d-2").await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    let (_, _, metadata) = error_info(&refused);
    let next = DateTime::parse_from_rfc3339(&metadata["next_available_at"]).unwrap().with_timezone(&Utc);
    assert_eq!(next.timestamp(), reset.timestamp(), "next from the reset");

    tokio::time::sleep((next - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(200)).await;
    let tomorrow = achieve_with(player(), "daily", "daily-login", "d-3").await.expect("the next game day's login");
    assert_ne!(today.slot.split('#').next(), tomorrow.slot.split('#').next(), "{} then {}", today.slot, tomorrow.slot);
    assert!(achieve_with(player(), "daily", "daily-login", "d-4").await.is_err(), "and once again only");
    // A retry of yesterday's request is still answered with yesterday's mission.
    assert_eq!(achieve_with(player(), "daily", "daily-login", "d-1").await.unwrap().mission_id, today.mission_id);
}

/// 50 reports of `first-win` for one customer at once, each with its own request id,
/// spread over `targets`; then exactly one mission, one reward, one wallet item.
async fn fifty_racing_once_achievements(sys: &System, targets: &[&Service], customer: &str) {
    let calls = (0..50).map(|i| {
        let ch = with_token(targets[i % targets.len()].channel(), &sys.tokens.game_server(GAME_SERVER));
        async move { achieve_with(ch, customer, "first-win", &format!("race-{i}")).await }
    });
    let results = futures::future::join_all(calls).await;
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    let refused = count(&results, Code::FailedPrecondition);
    assert_eq!((accepted, refused), (1, 49), "{results:?}");
    eventually(FLOW, "the reward reaches the wallet", || async {
        (wallet_of(sys, customer).await.items.len() == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let missions = MissionServiceClient::new(sys.as_customer(&sys.mission, customer))
        .list_missions(mission::ListMissionsRequest { customer_id: customer.into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .missions;
    assert_eq!(missions.len(), 1);
    assert_eq!(rewards(sys, customer).await.len(), 1);
    assert_eq!(wallet_of(sys, customer).await.items.len(), 1);
    assert_eq!(sys.count_events("MISSION", "game.mission.v1.achieved").await, 1);
    eprintln!(
        "RACE ({} mission processes): 50 concurrent first-win -> {accepted} accepted, {refused} refused; 1 mission, 1 reward, 1 wallet item",
        targets.len()
    );
}

#[tokio::test]
async fn fifty_racing_achievements_of_a_once_mission_make_one_mission_one_reward_one_wallet_item() {
    let sys = System::start().await;
    fifty_racing_once_achievements(&sys, &[&sys.mission], "racer").await;
}

#[tokio::test]
async fn fifty_racing_achievements_on_postgresql_through_two_mission_replicas_make_one_of_each() {
    let sys = System::start_with(Options { postgres: true, ..Options::default() }).await;
    let second =
        Service::start("mission-2", "mission", &sys.env("mission", &sys.database_urls["mission"]), sys.dir.path());
    second.wait_serving(MISSION).await;
    fifty_racing_once_achievements(&sys, &[&sys.mission, &second], "pg-racer").await;
}

#[tokio::test]
async fn players_report_their_own_player_missions_and_a_game_server_or_an_admin_any_mission_for_anyone() {
    let sys = System::start().await;
    let player = || sys.as_customer(&sys.mission, "p-1");
    let denied = achieve_with(player(), "p-2", "daily-login", "").await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "not for someone else");
    assert!(denied.message().contains("customer_id"), "{}", denied.message());
    let denied = achieve_with(player(), "p-1", "weekly-streak", "").await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(denied.message(), "weekly-streak is reported by the game server, not by players");
    let mine = achieve_with(player(), "p-1", "tutorial-complete", "").await.unwrap();
    assert_eq!(mine.reported_by, "p-1");

    let by_server = report(&sys, "p-2", "weekly-streak", "").await;
    let by_admin = achieve_with(sys.as_admin(&sys.mission), "p-3", "first-win", "").await.unwrap();
    let service = sys.tokens.issuer().issue("wallet", auth_adapter::Role::Service).unwrap().0;
    let refused =
        achieve_with(with_token(sys.mission.channel(), &service), "p-1", "daily-login", "").await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "our own services report nothing");

    // GetMission shows who reported it, to the customer.
    let shown = |customer: &str, id: &str| {
        let ch = sys.as_customer(&sys.mission, customer);
        let id = id.to_owned();
        async move {
            MissionServiceClient::new(ch)
                .get_mission(mission::GetMissionRequest { mission_id: id })
                .await
                .unwrap()
                .into_inner()
                .mission
                .unwrap()
        }
    };
    let seen = shown("p-2", &by_server.mission_id).await;
    assert_eq!((seen.reported_by.as_str(), seen.slot.ends_with("#1")), (GAME_SERVER_SUBJECT, true));
    assert_eq!(shown("p-3", &by_admin.mission_id).await.reported_by, "operator");
    assert_eq!(shown("p-1", &mine.mission_id).await.slot, "once#1");
    let unlimited = report(&sys, "p-1", "match-played", "").await;
    assert_eq!(unlimited.slot, "", "an unlimited mission takes no slot");
}

async fn exchange(sys: &System, customer: &str, reward_id: &str, code: &str) -> Result<String, tonic::Status> {
    exchange_on(sys.as_customer(&sys.wallet, customer), customer, reward_id, code).await
}

/// An exchange as the player makes it: through the gateway, with their own token.
async fn exchange_via_gateway(
    sys: &System,
    customer: &str,
    reward_id: &str,
    code: &str,
) -> Result<String, tonic::Status> {
    exchange_on(with_token(sys.gateway().channel(), &sys.tokens.customer(customer)), customer, reward_id, code).await
}

async fn exchange_on(ch: Authed, customer: &str, reward_id: &str, code: &str) -> Result<String, tonic::Status> {
    WalletServiceClient::new(ch)
        .exchange_reward(wallet::ExchangeRewardRequest {
            customer_id: customer.into(),
            reward_id: reward_id.into(),
            gift_code: code.into(),
            request_id: String::new(),
        })
        .await
        .map(|r| r.into_inner().gift_id)
}

#[tokio::test]
async fn twenty_exchanges_racing_for_the_last_three_founders_badges_issue_exactly_three() {
    let sys = System::start_with(Options { gateway: true, ..Options::default() }).await;
    let customers: Vec<String> = (0..20).map(|i| format!("fan-{i}")).collect();
    let items = futures::future::join_all(customers.iter().map(|c| issued_reward(&sys, c, "tutorial-complete"))).await;
    let calls = customers.iter().zip(&items).map(|(c, item)| exchange(&sys, c, &item.reward_id, "founders-badge"));
    let results = futures::future::join_all(calls).await;
    let issued = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(issued, 3, "{results:?}");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(r.code(), Code::FailedPrecondition, "{r:?}");
        assert_eq!(r.message(), "founders-badge is out of stock", "the gift's message through the wallet");
    }
    let mut still_issued = 0;
    for ((c, item), r) in customers.iter().zip(&items).zip(&results) {
        let status = wallet_of(&sys, c).await.items.iter().find(|i| i.reward_id == item.reward_id).unwrap().status;
        if r.is_err() {
            assert_eq!(status, wallet::WalletItemStatus::Issued as i32, "{c}'s reward stays ISSUED");
            still_issued += 1;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sys.count_events("WALLET", "game.wallet.v1.exchanged").await, 3, "nothing published for the refused");
    assert_eq!(sys.count_events("GIFT", "game.gift.v1.issued").await, 3);
    let catalog = GiftServiceClient::new(sys.gift.channel())
        .list_catalog(gift::ListCatalogRequest {})
        .await
        .unwrap()
        .into_inner()
        .gifts;
    let badge = catalog.iter().find(|g| g.gift_code == "founders-badge").unwrap();
    assert_eq!((badge.stock, badge.remaining), (Some(3), Some(0)), "ListCatalog shows none left");
    let skin = catalog.iter().find(|g| g.gift_code == "game-skin").unwrap();
    assert_eq!(skin.per_customer_limit.as_ref().map(|l| (l.period.as_str(), l.count)), Some(("ever", 1)));
    eprintln!(
        "STOCK: 20 concurrent exchanges for the last 3 founders-badges -> {issued} gifts, {still_issued} refused with ISSUED rewards"
    );

    // Through the gateway the player hears the gift's words and reason: what, and that
    // there is no next time.
    let (late, item) = customers.iter().zip(&items).zip(&results).find(|(_, r)| r.is_err()).unwrap().0;
    let refused = exchange_via_gateway(&sys, late, &item.reward_id, "founders-badge").await.unwrap_err();
    assert_eq!((refused.code(), refused.message()), (Code::FailedPrecondition, "founders-badge is out of stock"));
    let (reason, domain, metadata) = error_info(&refused);
    assert_eq!((reason.as_str(), domain.as_str()), ("GIFT_OUT_OF_STOCK", "game-rewards"));
    assert_eq!(metadata["gift_code"], "founders-badge");
    assert!(!metadata.contains_key("next_available_at"), "out of stock for good: {metadata:?}");

    // The gift's refusal itself carries the ErrorInfo.
    let direct = GiftIssuingServiceClient::new(with_token(sys.gift.channel(), &sys.tokens.service("wallet")))
        .issue_gift(gift::IssueGiftRequest {
            customer_id: "fan-0".into(),
            reward_id: uuid::Uuid::now_v7().to_string(),
            gift_code: "founders-badge".into(),
            points: 20,
            mission_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    let (reason, _, metadata) = error_info(&direct);
    assert_eq!((reason.as_str(), metadata["gift_code"].as_str()), ("GIFT_OUT_OF_STOCK", "founders-badge"));
}

#[tokio::test]
async fn a_refused_exchange_tells_the_player_through_the_gateway_what_was_refused_and_until_when() {
    // Cheap limited gifts, so that a customer's few rewards can meet every limit.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gifts.toml");
    std::fs::write(
        &path,
        "[[gifts]]\ncode = \"coffee\"\nname = \"Coffee\"\ncost_points = 10\n\
         per_customer_limit = { period = \"daily\", count = 1 }\n\
         [[gifts]]\ncode = \"movie-ticket\"\nname = \"Movie ticket\"\ncost_points = 500\n\
         [[gifts]]\ncode = \"game-skin\"\nname = \"Game skin\"\ncost_points = 10\nstock = 100\n\
         per_customer_limit = { period = \"ever\", count = 1 }\n",
    )
    .unwrap();
    let gift_env = vec![("GIFT_CATALOG", path.display().to_string())];
    let sys = System::start_with(Options { gift_env, gateway: true, ..Options::default() }).await;
    let first = issued_reward(&sys, "collector", "daily-login").await;
    let second = issued_reward(&sys, "collector", "tutorial-complete").await;
    let third = issued_reward(&sys, "collector", "first-win").await;
    let refused = |e: &tonic::Status, message: &str, reason: &str| {
        assert_eq!((e.code(), e.message()), (Code::FailedPrecondition, message));
        let (got, domain, metadata) = error_info(e);
        assert_eq!((got.as_str(), domain.as_str()), (reason, "game-rewards"));
        metadata
    };

    // One per customer, ever: no next time.
    exchange_via_gateway(&sys, "collector", &first.reward_id, "game-skin").await.expect("the first skin");
    let e = exchange_via_gateway(&sys, "collector", &second.reward_id, "game-skin").await.unwrap_err();
    let metadata = refused(&e, "one per customer: you already have a game-skin", "GIFT_LIMIT_REACHED");
    assert_eq!(metadata["gift_code"], "game-skin");
    assert!(!metadata.contains_key("next_available_at"), "{metadata:?}");

    // Not enough points: what it costs and what the balance holds (20 + 50 left; points
    // are an account, the reward pays first and the others the rest).
    let e = exchange_via_gateway(&sys, "collector", &second.reward_id, "movie-ticket").await.unwrap_err();
    let metadata = refused(&e, "not enough points: the gift costs 500, the balance is 70", "WALLET_NOT_ENOUGH_POINTS");
    assert_eq!((metadata["cost_points"].as_str(), metadata["balance"].as_str()), ("500", "70"));

    // One per customer per day: next from the next game day (00:00 UTC by default).
    exchange_via_gateway(&sys, "collector", &second.reward_id, "coffee").await.expect("the reward buys a coffee");
    let e = exchange_via_gateway(&sys, "collector", &third.reward_id, "coffee").await.unwrap_err();
    let metadata = refused(&e, e.message(), "GIFT_LIMIT_REACHED");
    let next = DateTime::parse_from_rfc3339(&metadata["next_available_at"]).expect("RFC 3339").with_timezone(&Utc);
    let tomorrow = (Utc::now() + chrono::Duration::days(1)).date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
    assert_eq!(next, tomorrow, "{metadata:?}");
    assert_eq!(
        e.message(),
        format!(
            "one per customer per day: you already have a coffee today; next from {}",
            metadata["next_available_at"]
        )
    );

    // Nothing changed for the refused: still ISSUED, nothing published, no stock taken.
    let wallet = wallet_of(&sys, "collector").await;
    let status = |id: &str| wallet.items.iter().find(|i| i.reward_id == id).unwrap().status;
    assert_eq!(status(&third.reward_id), wallet::WalletItemStatus::Issued as i32);
    // The first reward paid the skin whole; the second (20) paid a coffee and keeps 10.
    assert_eq!(sys.count_events("WALLET", "game.wallet.v1.exchanged").await, 1);
    let skin = GiftServiceClient::new(sys.gift.channel())
        .list_catalog(gift::ListCatalogRequest {})
        .await
        .unwrap()
        .into_inner()
        .gifts
        .into_iter()
        .find(|g| g.gift_code == "game-skin")
        .unwrap();
    assert_eq!(skin.remaining, Some(99), "the refused one took none of the stock");
}

/// Starts `bin` with `env` and returns its exit code and standard error, once it exits.
fn run_to_exit(bin: &str, env: &[(&str, String)]) -> (Option<i32>, String) {
    let out = e2e::serve(bin)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("LISTEN_ADDR", "127.0.0.1:0")
        // never reached: the catalog is checked first
        .env("NATS_URL", "nats://127.0.0.1:1")
        .output()
        .expect("run the service");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn an_invalid_catalog_file_stops_the_service_at_start_with_one_line_naming_the_file_the_entry_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let missions = dir.path().join("missions.toml");
    std::fs::write(
        &missions,
        "[[missions]]\ncode = \"first-win\"\ntitle = \"Win\"\npoints = 50\nrepeat = \"once\"\nreported_by = \"referee\"\n",
    )
    .unwrap();
    let db = format!("sqlite://{}", dir.path().join("m.db").display());
    let (code, stderr) =
        run_to_exit("mission", &[("MISSION_CATALOG", missions.display().to_string()), ("DATABASE_URL", db.clone())]);
    assert_ne!(code, Some(0), "{stderr}");
    let expected = format!(
        "error: MISSION_CATALOG: {}: mission 'first-win': reported_by: 'referee' is not one of player, game_server",
        missions.display()
    );
    assert!(stderr.lines().any(|l| l == expected), "expected the line\n{expected}\nin\n{stderr}");
    assert!(!dir.path().join("m.db").exists(), "stopped before opening the database");

    let gifts = dir.path().join("gifts.toml");
    std::fs::write(&gifts, "[[gifts]]\ncode = \"coffee\"\nname = \"Coffee\"\ncost_points = 10\nstok = 5\n").unwrap();
    let (code, stderr) = run_to_exit("gift", &[("GIFT_CATALOG", gifts.display().to_string()), ("DATABASE_URL", db)]);
    assert_ne!(code, Some(0), "{stderr}");
    let line = stderr.lines().find(|l| l.starts_with("error: GIFT_CATALOG: ")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains(&format!("{}: gift 'coffee': stok: unknown field `stok`", gifts.display())), "{line}");

    let (code, stderr) =
        run_to_exit("mission", &[("MISSION_CATALOG", dir.path().join("nope.toml").display().to_string())]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("nope.toml: cannot read it"), "{stderr}");
}
