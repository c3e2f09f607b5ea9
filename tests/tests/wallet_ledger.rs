//! Points as an account (issue 25), end to end on the real executables: a balance kept as
//! a ledger, spending a gift's cost across any number of rewards, the change kept, the
//! race of many redeems over one balance, and nothing spent without a gift.
//!
//! The mission catalog is the default one with `daily-login` (10 points) reportable five
//! times a day, so that one customer holds several small rewards at once.

use std::time::Duration;

use e2e::api::{issued_reward, wallet_of};
use e2e::clients::*;
use e2e::{Options, Service, System, WALLET, eventually};
use grpc_adapter::pb::gift::v1 as gift;
use grpc_adapter::pb::wallet::v1 as wallet;
use tonic::Code;

const FLOW: Duration = Duration::from_secs(30);

/// The default catalog, `daily-login` five times a day.
fn missions(dir: &std::path::Path) -> Vec<(&'static str, String)> {
    let default = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/missions.toml")).unwrap();
    let five_a_day = default.replacen("repeat = \"daily\"\n", "repeat = \"daily\"\nmax_per_period = 5\n", 1);
    assert_ne!(default, five_a_day, "daily-login is the first daily mission");
    let path = dir.join("missions.toml");
    std::fs::write(&path, five_a_day).unwrap();
    vec![("MISSION_CATALOG", path.display().to_string())]
}

async fn start(postgres: bool) -> (System, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let sys = System::start_with(Options { mission_env: missions(dir.path()), postgres, ..Options::default() }).await;
    (sys, dir)
}

/// `n` rewards of `code` issued to `customer`, each in the wallet.
async fn rewards(sys: &System, customer: &str, code: &str, n: usize) -> Vec<wallet::WalletItem> {
    let mut items = Vec::new();
    for _ in 0..n {
        items.push(issued_reward(sys, customer, code).await);
    }
    items
}

async fn redeem(
    sys: &System,
    customer: &str,
    code: &str,
    request_id: &str,
) -> Result<wallet::RedeemGiftResponse, tonic::Status> {
    redeem_at(sys, &sys.wallet, customer, code, request_id).await
}

/// [`redeem`] at one wallet replica.
async fn redeem_at(
    sys: &System,
    at: &Service,
    customer: &str,
    code: &str,
    request_id: &str,
) -> Result<wallet::RedeemGiftResponse, tonic::Status> {
    WalletServiceClient::new(sys.as_customer(at, customer))
        .redeem_gift(wallet::RedeemGiftRequest {
            customer_id: customer.into(),
            gift_code: code.into(),
            request_id: request_id.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn ledger(
    sys: &System,
    customer: &str,
    kind: wallet::LedgerEntryKind,
) -> Result<Vec<wallet::LedgerEntry>, tonic::Status> {
    WalletServiceClient::new(sys.as_customer(&sys.wallet, customer))
        .list_ledger_entries(wallet::ListLedgerEntriesRequest {
            customer_id: customer.into(),
            kind: kind as i32,
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().entries)
}

async fn gifts_of(sys: &System, customer: &str) -> Vec<gift::Gift> {
    GiftServiceClient::new(sys.as_customer(&sys.gift, customer))
        .list_gifts(gift::ListGiftsRequest { customer_id: customer.into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .gifts
}

/// The balance, checked against the sum of the ledger's entries.
async fn balance(sys: &System, customer: &str) -> i64 {
    let w = wallet_of(sys, customer).await;
    let entries = ledger(sys, customer, wallet::LedgerEntryKind::Unspecified).await.unwrap();
    assert_eq!(w.balance, entries.iter().map(|e| e.amount).sum::<i64>(), "the balance is the sum of the entries");
    assert_eq!(w.available_points, w.balance);
    w.balance
}

#[tokio::test]
async fn five_rewards_of_ten_points_buy_a_movie_ticket_of_fifty() {
    let (sys, _dir) = start(false).await;
    let items = rewards(&sys, "c-five", "daily-login", 5).await;
    assert_eq!(balance(&sys, "c-five").await, 50);
    // Before: one reward of 10 could not pay for it.
    let one = WalletServiceClient::new(sys.as_customer(&sys.wallet, "c-five"))
        .exchange_reward(wallet::ExchangeRewardRequest {
            customer_id: "c-five".into(),
            reward_id: items[0].reward_id.clone(),
            gift_code: "movie-ticket".into(),
            request_id: "one".into(),
        })
        .await;
    assert!(one.is_ok(), "the reward pays first, the four others the rest: {one:?}");
    let ticket = one.unwrap().into_inner();
    assert_eq!(ticket.item.as_ref().unwrap().status, wallet::WalletItemStatus::Exchanged as i32);
    assert_eq!(balance(&sys, "c-five").await, 0);

    // And through RedeemGift, from five more rewards, none named.
    let more = rewards(&sys, "c-redeem", "daily-login", 5).await;
    let r = redeem(&sys, "c-redeem", "movie-ticket", "m-1").await.expect("redeemed");
    assert_eq!((r.cost_points, r.balance, r.draws.len()), (50, 0, 5));
    assert!(r.draws.iter().all(|d| d.points == 10));
    let w = wallet_of(&sys, "c-redeem").await;
    for item in &more {
        let now = w.items.iter().find(|i| i.reward_id == item.reward_id).unwrap();
        assert_eq!((now.status, now.remaining_points), (wallet::WalletItemStatus::Exchanged as i32, 0));
        assert_eq!(now.gift_id, r.gift_id);
    }
    let spent = ledger(&sys, "c-redeem", wallet::LedgerEntryKind::Spent).await.unwrap();
    assert_eq!(spent.iter().map(|e| (e.amount, e.balance_after)).collect::<Vec<_>>(), vec![(-50, 0)]);
    assert_eq!(spent[0].reference, format!("gift:{}", r.gift_id));
    assert_eq!(spent[0].actor, "c-redeem");
    let earned = ledger(&sys, "c-redeem", wallet::LedgerEntryKind::Earned).await.unwrap();
    assert_eq!(earned.len(), 5);
    assert_eq!(gifts_of(&sys, "c-redeem").await.len(), 1);
    // the same request: the same answer, nothing more spent
    let again = redeem(&sys, "c-redeem", "movie-ticket", "m-1").await.unwrap();
    assert_eq!((again.gift_id, again.balance), (r.gift_id.clone(), 0));
    assert_eq!(gifts_of(&sys, "c-redeem").await.len(), 1);
    let reused = redeem(&sys, "c-redeem", "coffee", "m-1").await.unwrap_err();
    assert_eq!(reused.code(), Code::FailedPrecondition, "{reused:?}");
}

#[tokio::test]
async fn a_hundred_point_reward_exchanged_for_a_coffee_leaves_ninety_in_the_balance() {
    let (sys, _dir) = start(false).await;
    let streak = issued_reward(&sys, "c-streak", "weekly-streak").await;
    assert_eq!(streak.points, 100);
    let r = WalletServiceClient::new(sys.as_customer(&sys.wallet, "c-streak"))
        .exchange_reward(wallet::ExchangeRewardRequest {
            customer_id: "c-streak".into(),
            reward_id: streak.reward_id.clone(),
            gift_code: "coffee".into(),
            request_id: "x-1".into(),
        })
        .await
        .expect("exchanged")
        .into_inner();
    let item = r.item.unwrap();
    assert_eq!((item.status, item.remaining_points), (wallet::WalletItemStatus::Issued as i32, 90), "{item:?}");
    assert_eq!(balance(&sys, "c-streak").await, 90);
    let spent = ledger(&sys, "c-streak", wallet::LedgerEntryKind::Spent).await.unwrap();
    assert_eq!(spent.iter().map(|e| (e.amount, e.balance_after)).collect::<Vec<_>>(), vec![(-10, 90)]);
    // the 90 left buy more: a second coffee from the same reward is another gift
    let second = redeem(&sys, "c-streak", "coffee", "r-2").await.unwrap();
    assert_ne!(second.gift_id, r.gift_id);
    assert_eq!((second.balance, balance(&sys, "c-streak").await), (80, 80));
    assert_eq!(gifts_of(&sys, "c-streak").await.len(), 2);
    // a balance short of the cost: refused with both figures, nothing spent
    let short = redeem(&sys, "c-streak", "game-skin", "r-3").await.unwrap_err();
    assert_eq!(short.code(), Code::FailedPrecondition);
    let (reason, metadata) = grpc_adapter::status::error_info(&short).expect("ErrorInfo");
    assert_eq!(reason, "WALLET_NOT_ENOUGH_POINTS");
    assert_eq!((metadata["cost_points"].as_str(), metadata["balance"].as_str()), ("100", "80"));
    assert_eq!(balance(&sys, "c-streak").await, 80);
}

/// 50 redeems of a coffee (10) at once by a customer holding 30 points, each with its own
/// request id, spread over the `wallets` replicas in turn: exactly 3 gifts, a balance of 0,
/// 47 refusals.
async fn fifty_redeems_over_thirty_points(sys: &System, wallets: &[&Service]) {
    rewards(sys, "c-race", "daily-login", 3).await;
    assert_eq!(balance(sys, "c-race").await, 30);
    let started = std::time::Instant::now();
    // A call answered UNAVAILABLE (two SQLite processes on one file: the database was
    // locked) is asked again with the same request id, as a client does: nothing was spent.
    let calls = (0..50).map(|i| async move {
        let at = wallets[i % wallets.len()];
        let mut tries = 0;
        loop {
            let answer = redeem_at(sys, at, "c-race", "coffee", &format!("race-{i}")).await;
            match answer {
                Err(e) if e.code() == Code::Unavailable && tries < 20 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                answer => break answer,
            }
        }
    });
    let results = futures::future::join_all(calls).await;
    let took = started.elapsed();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let short = results
        .iter()
        .filter(|r| {
            r.as_ref()
                .err()
                .and_then(grpc_adapter::status::error_info)
                .is_some_and(|(reason, _)| reason == "WALLET_NOT_ENOUGH_POINTS")
        })
        .count();
    let n = wallets.len();
    eprintln!(
        "50 concurrent redeems over 30 points, {n} replicas: {ok} gifts, {short} refused (not enough) in {took:?}"
    );
    assert_eq!((ok, short), (3, 47), "{results:?}");
    assert_eq!(balance(sys, "c-race").await, 0);
    assert_eq!(gifts_of(sys, "c-race").await.len(), 3);
    let w = wallet_of(sys, "c-race").await;
    assert!(w.items.iter().all(|i| i.status == wallet::WalletItemStatus::Exchanged as i32), "{w:?}");
}

/// A second wallet replica on the system's wallet database.
async fn second_wallet(sys: &System) -> Service {
    let mut env = sys.env("wallet", &sys.database_urls["wallet"]);
    env.push(("GIFT_URL", sys.gift.url()));
    let second = Service::start("wallet-2", "wallet", &env, sys.dir.path());
    second.wait_serving(WALLET).await;
    second
}

#[tokio::test]
async fn fifty_concurrent_redeems_over_thirty_points_make_three_coffees_on_sqlite() {
    let (sys, _dir) = start(false).await;
    fifty_redeems_over_thirty_points(&sys, &[&sys.wallet]).await;
}

#[tokio::test]
async fn fifty_concurrent_redeems_over_thirty_points_make_three_coffees_on_postgres() {
    let (sys, _dir) = start(true).await;
    fifty_redeems_over_thirty_points(&sys, &[&sys.wallet]).await;
}

#[tokio::test]
async fn fifty_redeems_spread_over_two_wallet_replicas_make_three_coffees_on_sqlite() {
    let (sys, _dir) = start(false).await;
    let second = second_wallet(&sys).await;
    fifty_redeems_over_thirty_points(&sys, &[&sys.wallet, &second]).await;
}

#[tokio::test]
async fn fifty_redeems_spread_over_two_wallet_replicas_make_three_coffees_on_postgres() {
    let (sys, _dir) = start(true).await;
    let second = second_wallet(&sys).await;
    fifty_redeems_over_thirty_points(&sys, &[&sys.wallet, &second]).await;
}

#[tokio::test]
async fn with_the_gift_service_down_nothing_is_spent() {
    let (mut sys, _dir) = start(false).await;
    let items = rewards(&sys, "c-down", "daily-login", 2).await;
    redeem(&sys, "c-down", "coffee", "before").await.expect("the gift service answers");
    assert_eq!(sys.gift.stop(), Some(0));
    let redeemed = redeem(&sys, "c-down", "coffee", "down-1").await.unwrap_err();
    assert_eq!(redeemed.code(), Code::Unavailable, "{redeemed:?}");
    let exchanged = WalletServiceClient::new(sys.as_customer(&sys.wallet, "c-down"))
        .exchange_reward(wallet::ExchangeRewardRequest {
            customer_id: "c-down".into(),
            reward_id: items[1].reward_id.clone(),
            gift_code: "coffee".into(),
            request_id: "down-2".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(exchanged.code(), Code::Unavailable, "{exchanged:?}");
    assert_eq!(balance(&sys, "c-down").await, 10, "nothing spent");
    let spent = ledger(&sys, "c-down", wallet::LedgerEntryKind::Spent).await.unwrap();
    assert_eq!(spent.len(), 1, "only the spend made before");
    let item = wallet_of(&sys, "c-down").await.items.into_iter().find(|i| i.reward_id == items[1].reward_id).unwrap();
    assert_eq!((item.status, item.remaining_points), (wallet::WalletItemStatus::Issued as i32, 10));
    // back up: the same request goes through
    sys.gift.restart();
    sys.gift.wait_serving(e2e::GIFT).await;
    let r = eventually(FLOW, "the redeem goes through once gift is back", || async {
        redeem(&sys, "c-down", "coffee", "down-1").await.ok()
    })
    .await;
    assert_eq!(r.balance, 0);
}

#[tokio::test]
async fn a_player_reads_only_their_own_ledger_and_an_admin_reads_anyones() {
    let (sys, _dir) = start(false).await;
    rewards(&sys, "c-own", "daily-login", 3).await;
    let someone_else = WalletServiceClient::new(sys.as_customer(&sys.wallet, "c-other"))
        .list_ledger_entries(wallet::ListLedgerEntriesRequest { customer_id: "c-own".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(someone_else.code(), Code::PermissionDenied);
    let admin = WalletServiceClient::new(sys.as_admin(&sys.wallet))
        .list_ledger_entries(wallet::ListLedgerEntriesRequest {
            customer_id: "c-own".into(),
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(admin.entries.len(), 2);
    assert!(!admin.next_page_token.is_empty());
    assert_eq!(admin.entries.iter().map(|e| e.sequence).collect::<Vec<_>>(), vec![3, 2], "newest first");
    let rest = WalletServiceClient::new(sys.as_admin(&sys.wallet))
        .list_ledger_entries(wallet::ListLedgerEntriesRequest {
            customer_id: "c-own".into(),
            page_size: 2,
            page_token: admin.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((rest.entries.len(), rest.entries[0].sequence, rest.next_page_token.as_str()), (1, 1, ""));
    // an admin reads, but does not spend a player's points
    let admin_redeem = WalletServiceClient::new(sys.as_admin(&sys.wallet))
        .redeem_gift(wallet::RedeemGiftRequest {
            customer_id: "c-own".into(),
            gift_code: "coffee".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(admin_redeem.code(), Code::PermissionDenied);
    let for_someone = redeem(&sys, "c-other", "coffee", "").await;
    assert!(for_someone.is_err(), "no points, no coffee");
    let theirs = WalletServiceClient::new(sys.as_customer(&sys.wallet, "c-other"))
        .redeem_gift(wallet::RedeemGiftRequest {
            customer_id: "c-own".into(),
            gift_code: "coffee".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(theirs.code(), Code::PermissionDenied);
    eventually(FLOW, "nothing was spent", || async { (balance(&sys, "c-own").await == 30).then_some(()) }).await;
}

/// A player who gives up on a redeem while the gift service is issuing it (a short
/// deadline, a closed app) still pays for the gift that comes of it: the spend runs to
/// its end without its caller. Before, the handler was dropped between the gift and the
/// spend, and the gift was free.
#[tokio::test]
async fn a_redeem_whose_caller_goes_away_while_the_gift_is_issued_is_still_paid_for() {
    let dir = tempfile::tempdir().unwrap();
    let wallet_env = vec![("GIFT_DEADLINE_MS", "10000".to_owned()), ("BREAKER_SLOW_CALL_MS", "60000".to_owned())];
    let sys = System::start_with(Options { mission_env: missions(dir.path()), wallet_env, ..Options::default() }).await;
    rewards(&sys, "c-gone", "daily-login", 4).await;
    // Paid in full, and the gift catalog's price is now cached in the wallet.
    redeem(&sys, "c-gone", "coffee", "first").await.expect("the gift service answers");
    assert_eq!(balance(&sys, "c-gone").await, 30);

    sys.gift.freeze();
    let mut request = tonic::Request::new(wallet::RedeemGiftRequest {
        customer_id: "c-gone".into(),
        gift_code: "coffee".into(),
        request_id: "gone".into(),
    });
    request.set_timeout(Duration::from_secs(1));
    let mut client = WalletServiceClient::new(sys.as_customer(&sys.wallet, "c-gone"));
    let gave_up = tokio::time::timeout(Duration::from_secs(2), client.redeem_gift(request)).await;
    assert!(!matches!(gave_up, Ok(Ok(_))), "the caller left before the gift service answered: {gave_up:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    sys.gift.thaw();

    // The gift the wallet asked for is issued once the gift service runs again; its points
    // are spent: every gift has its SPENT entry.
    eventually(FLOW, "the gift issued after the caller left is paid for", || async {
        let gifts = gifts_of(&sys, "c-gone").await.len();
        let spent = ledger(&sys, "c-gone", wallet::LedgerEntryKind::Spent).await.unwrap().len();
        (gifts == 2 && spent == 2).then_some(())
    })
    .await;
    assert_eq!(balance(&sys, "c-gone").await, 20);
    // The same request again is the same gift, nothing more.
    let again = redeem(&sys, "c-gone", "coffee", "gone").await.expect("answered as committed");
    assert_eq!(again.balance, 20);
    assert_eq!(gifts_of(&sys, "c-gone").await.len(), 2);
}
