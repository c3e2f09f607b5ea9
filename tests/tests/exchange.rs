//! Exchanging rewards for gifts end to end: the synchronous call wallet -> gift behind the
//! circuit breaker, what holds when gift is down or slow, and concurrent exchanges.

use std::time::{Duration, Instant};

use e2e::api::{issued_reward, page, rewards, wallet_of};
use e2e::clients::*;
use e2e::{GIFT, Options, System, eventually};
use grpc_adapter::pb::gift::v1 as gift;
use grpc_adapter::pb::mypage::v1 as mypage;
use grpc_adapter::pb::reward::v1 as reward;
use grpc_adapter::pb::wallet::v1 as wallet;
use tonic::Code;

const FLOW: Duration = Duration::from_secs(30);
const EXCHANGED: &str = "game.wallet.v1.exchanged";

async fn exchange(
    sys: &System,
    customer: &str,
    reward_id: &str,
    code: &str,
    request_id: &str,
) -> Result<wallet::ExchangeRewardResponse, tonic::Status> {
    WalletServiceClient::new(sys.as_customer(&sys.wallet, customer))
        .exchange_reward(wallet::ExchangeRewardRequest {
            customer_id: customer.into(),
            reward_id: reward_id.into(),
            gift_code: code.into(),
            request_id: request_id.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn gifts_of(sys: &System, customer: &str) -> Vec<gift::Gift> {
    GiftServiceClient::new(sys.as_customer(&sys.gift, customer))
        .list_gifts(gift::ListGiftsRequest { customer_id: customer.into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .gifts
}

async fn breaker(sys: &System) -> wallet::GetExchangeStatusResponse {
    WalletServiceClient::new(sys.as_admin(&sys.wallet))
        .get_exchange_status(wallet::GetExchangeStatusRequest {})
        .await
        .unwrap()
        .into_inner()
}

fn retry_after(status: &tonic::Status) -> u64 {
    status.metadata().get("retry-after").expect("retry-after").to_str().unwrap().parse().unwrap()
}

async fn item_status(sys: &System, customer: &str, reward_id: &str) -> i32 {
    wallet_of(sys, customer).await.items.iter().find(|i| i.reward_id == reward_id).unwrap().status
}

#[tokio::test]
async fn a_reward_is_exchanged_for_a_gift_which_is_used_once_and_my_page_follows() {
    let sys = System::start().await;
    let catalog = GiftServiceClient::new(sys.gift.channel()) // public: no token needed
        .list_catalog(gift::ListCatalogRequest {})
        .await
        .unwrap()
        .into_inner()
        .gifts;
    for (code, cost) in [("coffee", 10), ("movie-ticket", 50), ("game-skin", 100)] {
        assert!(catalog.iter().any(|g| g.gift_code == code && g.cost_points == cost), "{code} costs {cost}");
    }
    let item = issued_reward(&sys, "c-11", "daily-login").await;
    let answer = exchange(&sys, "c-11", &item.reward_id, "coffee", "x-1").await.unwrap();
    let exchanged = answer.item.unwrap();
    assert_eq!(exchanged.status, wallet::WalletItemStatus::Exchanged as i32);
    assert_eq!(exchanged.gift_id, answer.gift_id);
    let w = wallet_of(&sys, "c-11").await;
    assert_eq!(w.available_points, 0);

    eventually(FLOW, "the reward is EXCHANGED", || async {
        rewards(&sys, "c-11").await.iter().any(|r| r.status == reward::RewardStatus::Exchanged as i32).then_some(())
    })
    .await;
    eventually(FLOW, "my page shows the gift", || async {
        let p = page(&sys, "c-11").await;
        let e = p.entries.first()?;
        (e.gift_id == answer.gift_id
            && e.gift_status == mypage::GiftStatus::Issued as i32
            && e.gift_code == "coffee"
            && p.points_exchanged == 10)
            .then_some(())
    })
    .await;

    let mut gifts = GiftServiceClient::new(sys.as_customer(&sys.gift, "c-11"));
    let g = gifts
        .get_gift(gift::GetGiftRequest { gift_id: answer.gift_id.clone() })
        .await
        .unwrap()
        .into_inner()
        .gift
        .unwrap();
    assert_eq!(
        (g.gift_code.as_str(), g.reward_id.as_str(), g.status),
        ("coffee", item.reward_id.as_str(), gift::GiftStatus::Issued as i32)
    );
    let used = gifts
        .use_gift(gift::UseGiftRequest { gift_id: g.gift_id.clone(), customer_id: "c-11".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(used.gift.unwrap().status, gift::GiftStatus::Used as i32);
    let again = gifts
        .use_gift(gift::UseGiftRequest { gift_id: g.gift_id.clone(), customer_id: "c-11".into() })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "a gift is used once");
    eventually(FLOW, "my page shows the gift used", || async {
        (page(&sys, "c-11").await.entries[0].gift_status == mypage::GiftStatus::Used as i32).then_some(())
    })
    .await;

    // the same request again answers the same; a new request is refused
    let same = exchange(&sys, "c-11", &item.reward_id, "coffee", "x-1").await.unwrap();
    assert_eq!(same.gift_id, answer.gift_id);
    let other = exchange(&sys, "c-11", &item.reward_id, "coffee", "x-2").await.unwrap_err();
    assert_eq!(other.code(), Code::FailedPrecondition);
    assert_eq!(gifts_of(&sys, "c-11").await.len(), 1);
    assert_eq!(sys.count_events("WALLET", EXCHANGED).await, 1);
}

#[tokio::test]
async fn bad_exchanges_are_refused_with_a_clear_status_and_change_nothing() {
    let sys = System::start().await;
    let item = issued_reward(&sys, "c-11", "daily-login").await; // 10 points
    let cases = [
        ("c-11", item.reward_id.clone(), "yacht", Code::InvalidArgument, "gift_code"),
        ("c-11", item.reward_id.clone(), "movie-ticket", Code::FailedPrecondition, "points"),
        ("c-12", item.reward_id.clone(), "coffee", Code::NotFound, "reward"),
        ("c-11", uuid::Uuid::now_v7().to_string(), "coffee", Code::NotFound, "reward"),
        ("c-11", "not-a-uuid".into(), "coffee", Code::InvalidArgument, "reward_id"),
        ("c-11", item.reward_id.clone(), "", Code::InvalidArgument, "gift_code"),
    ];
    for (customer, reward_id, code, expected, mentions) in cases {
        let err = exchange(&sys, customer, &reward_id, code, "").await.unwrap_err();
        assert_eq!(err.code(), expected, "{customer}/{reward_id}/{code}: {}", err.message());
        assert!(err.message().contains(mentions), "'{}' mentions {mentions}", err.message());
    }
    assert_eq!(item_status(&sys, "c-11", &item.reward_id).await, wallet::WalletItemStatus::Issued as i32);
    assert!(gifts_of(&sys, "c-11").await.is_empty());
    assert_eq!(sys.count_events("WALLET", EXCHANGED).await, 0);
}

#[tokio::test]
async fn with_gift_down_exchange_fails_fast_and_nothing_changes_while_missions_flow_then_recovers() {
    let wallet_env = vec![
        ("BREAKER_MIN_CALLS", "3".to_owned()),
        ("BREAKER_OPEN_SECONDS", "2".to_owned()),
        ("BREAKER_HALF_OPEN_CALLS", "1".to_owned()),
    ];
    let mut sys = System::start_with(Options { wallet_env, ..Options::default() }).await;
    // first-win (50) for a movie-ticket (50): the reward pays it whole.
    let item = issued_reward(&sys, "c-11", "first-win").await;
    sys.gift.stop();

    for _ in 0..3 {
        let err = exchange(&sys, "c-11", &item.reward_id, "movie-ticket", "").await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);
        assert!(retry_after(&err) >= 1);
    }
    let status = breaker(&sys).await;
    assert_eq!(status.breaker_state, wallet::BreakerState::Open as i32, "three failures of three open it");
    let started = Instant::now();
    let err = exchange(&sys, "c-11", &item.reward_id, "movie-ticket", "").await.unwrap_err();
    let fast = started.elapsed();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("try again"), "{}", err.message());
    assert!((1..=2).contains(&retry_after(&err)), "retry-after is the time left open");
    assert!(fast < Duration::from_millis(200), "fast fail took {fast:?}");
    assert!(breaker(&sys).await.rejected_calls >= 1);

    // nothing changed, nothing was published, and the rest of the system works
    assert_eq!(item_status(&sys, "c-11", &item.reward_id).await, wallet::WalletItemStatus::Issued as i32);
    assert_eq!(sys.count_events("WALLET", EXCHANGED).await, 0);
    issued_reward(&sys, "c-11", "daily-login").await;
    // The reward context follows the wallet's RewardIssued a moment later.
    eventually(FLOW, "both rewards ISSUED in the reward context", || async {
        let r = rewards(&sys, "c-11").await;
        (r.len() == 2 && r.iter().all(|r| r.status == reward::RewardStatus::Issued as i32)).then_some(())
    })
    .await;

    // gift returns: after the open period a probe goes through and the exchange succeeds
    sys.gift.restart();
    sys.gift.wait_serving(GIFT).await;
    let answer = eventually(FLOW, "the exchange succeeds after the open period", || async {
        exchange(&sys, "c-11", &item.reward_id, "movie-ticket", "after").await.ok()
    })
    .await;
    assert_eq!(answer.item.unwrap().status, wallet::WalletItemStatus::Exchanged as i32);
    assert_eq!(breaker(&sys).await.breaker_state, wallet::BreakerState::Closed as i32);
    assert_eq!(gifts_of(&sys, "c-11").await.len(), 1);
}

#[tokio::test]
async fn a_slow_gift_service_opens_the_breaker_on_slow_calls() {
    let wallet_env = vec![
        ("BREAKER_MIN_CALLS", "3".to_owned()),
        ("BREAKER_SLOW_CALL_MS", "300".to_owned()),
        ("BREAKER_OPEN_SECONDS", "30".to_owned()),
    ];
    let sys = System::start_with(Options { wallet_env, gift_proxy: true, ..Options::default() }).await;
    let mut items = Vec::new();
    // four rewards worth a coffee: four different missions (each may be had once today)
    for code in ["daily-login", "tutorial-complete", "first-win", "weekly-streak"] {
        items.push(issued_reward(&sys, "c-slow", code).await);
    }
    sys.gift_proxy.as_ref().unwrap().set_delay(Duration::from_millis(500));
    for item in &items[..3] {
        // slow, but it works
        exchange(&sys, "c-slow", &item.reward_id, "coffee", "").await.unwrap();
    }
    let status = breaker(&sys).await;
    assert_eq!(status.breaker_state, wallet::BreakerState::Open as i32, "three successful but slow calls open it");
    let started = Instant::now();
    let err = exchange(&sys, "c-slow", &items[3].reward_id, "coffee", "").await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(started.elapsed() < Duration::from_millis(300), "no slow call while open");
    assert_eq!(item_status(&sys, "c-slow", &items[3].reward_id).await, wallet::WalletItemStatus::Issued as i32);
}

#[tokio::test]
async fn a_hung_gift_service_opens_the_breaker_within_its_minimum_number_of_calls() {
    let wallet_env = vec![
        ("BREAKER_MIN_CALLS", "3".to_owned()),
        ("GIFT_DEADLINE_MS", "500".to_owned()),
        // Slowness alone cannot open it here: the timeouts must count as failures.
        ("BREAKER_SLOW_CALL_MS", "60000".to_owned()),
        ("BREAKER_OPEN_SECONDS", "30".to_owned()),
    ];
    let sys = System::start_with(Options { wallet_env, ..Options::default() }).await;
    let mut items = Vec::new();
    // Four missions a customer may each have once now, each worth a coffee.
    for code in ["daily-login", "tutorial-complete", "first-win", "weekly-streak"] {
        items.push(issued_reward(&sys, "c-hung", code).await);
    }
    sys.gift.freeze();
    for (n, item) in items[..3].iter().enumerate() {
        let started = Instant::now();
        let err = exchange(&sys, "c-hung", &item.reward_id, "coffee", "").await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "call {n}: {}", err.message());
        assert!(retry_after(&err) >= 1);
        assert!(started.elapsed() < Duration::from_secs(3), "bounded by the gift deadline: {:?}", started.elapsed());
    }
    let status = breaker(&sys).await;
    assert_eq!(status.breaker_state, wallet::BreakerState::Open as i32, "three timeouts of three open it: {status:?}");
    let started = Instant::now();
    let err = exchange(&sys, "c-hung", &items[3].reward_id, "coffee", "").await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(started.elapsed() < Duration::from_millis(300), "open: no call to the hung gift");
    assert!((1..=30).contains(&retry_after(&err)), "retry-after is the time left open");
    for item in &items {
        assert_eq!(item_status(&sys, "c-hung", &item.reward_id).await, wallet::WalletItemStatus::Issued as i32);
    }
    assert_eq!(sys.count_events("WALLET", EXCHANGED).await, 0);
    sys.gift.thaw();
}

#[tokio::test]
async fn fifty_concurrent_exchanges_of_one_reward_make_one_gift() {
    let sys = System::start().await;
    let item = issued_reward(&sys, "c-race", "first-win").await;
    let calls = (0..50).map(|i| {
        let sys = &sys;
        let reward_id = item.reward_id.clone();
        // first-win (50) pays one movie-ticket (50): its points are spent once.
        async move { exchange(sys, "c-race", &reward_id, "movie-ticket", &format!("r-{i}")).await }
    });
    let results = futures::future::join_all(calls).await;
    let ok: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(ok.len(), 1, "exactly one exchange wins");
    for r in &results {
        if let Err(e) = r {
            assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
        }
    }
    assert_eq!(gifts_of(&sys, "c-race").await.len(), 1);
    assert_eq!(item_status(&sys, "c-race", &item.reward_id).await, wallet::WalletItemStatus::Exchanged as i32);
    eventually(FLOW, "one RewardExchanged event", || async {
        (sys.count_events("WALLET", EXCHANGED).await == 1).then_some(())
    })
    .await;

    // the same request id fifty times: fifty times the same answer
    let second = issued_reward(&sys, "c-race", "daily-login").await;
    let same =
        futures::future::join_all((0..50).map(|_| exchange(&sys, "c-race", &second.reward_id, "coffee", "once"))).await;
    let gift_ids: std::collections::HashSet<_> =
        same.into_iter().map(|r| r.expect("same request, same answer").gift_id).collect();
    assert_eq!(gift_ids.len(), 1);
    assert_eq!(gifts_of(&sys, "c-race").await.len(), 2);
}

#[tokio::test]
async fn without_the_notification_service_everything_else_works() {
    let mut sys = System::start().await;
    assert_eq!(sys.notification.stop(), Some(0));
    let item = issued_reward(&sys, "c-quiet", "daily-login").await;
    let answer = exchange(&sys, "c-quiet", &item.reward_id, "coffee", "").await.unwrap();
    GiftServiceClient::new(sys.as_customer(&sys.gift, "c-quiet"))
        .use_gift(gift::UseGiftRequest { gift_id: answer.gift_id.clone(), customer_id: "c-quiet".into() })
        .await
        .unwrap();
    eventually(FLOW, "my page shows the used gift", || async {
        let p = page(&sys, "c-quiet").await;
        (p.entries.first()?.gift_status == mypage::GiftStatus::Used as i32).then_some(())
    })
    .await;
    assert!(!sys.mailbox().exists() || std::fs::read_dir(sys.mailbox()).unwrap().count() == 0, "no e-mail without it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_given_several_gift_and_auth_addresses_moves_on_from_those_nobody_answers_on() {
    let mut sys = System::start().await;
    // The wallet again, its first gift and auth addresses with nothing behind them (a
    // replica that is down): its service token and its exchange come from the next ones.
    let dead = || format!("http://127.0.0.1:{}", e2e::free_port());
    let mut env = sys.env("wallet", &sys.database_urls.get("wallet").cloned().expect("wallet database"));
    env.push(("GIFT_URL", format!("{},{}", dead(), sys.gift.url())));
    env.push(("AUTH_URL", format!("{},{},{}", dead(), dead(), sys.auth.url())));
    tokio::task::block_in_place(|| sys.wallet.stop());
    sys.wallet = e2e::Service::start("wallet-failover", "wallet", &env, sys.dir.path());
    sys.wallet.wait_serving(e2e::WALLET).await;
    let item = issued_reward(&sys, "c-fo", "daily-login").await;
    // Until the wallet has its service token, an exchange is refused (try again): the same
    // request again.
    let answer = eventually(FLOW, "the exchange goes through the live gift service", || async {
        exchange(&sys, "c-fo", &item.reward_id, "coffee", "fo-1").await.ok()
    })
    .await;
    assert_eq!(answer.item.expect("item").status, wallet::WalletItemStatus::Exchanged as i32);
    assert_eq!(gifts_of(&sys, "c-fo").await.len(), 1, "one gift");
}
