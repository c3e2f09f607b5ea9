//! An admin's corrections of points accounts (issue 25), end to end on the real
//! executables: a redeemed gift refunded (cancelled in the gift service, its stock back,
//! its points back to the very rewards they came from), a used gift refused, balances
//! adjusted up and down but never below zero, players refused, and `gamectl refund` /
//! `gamectl adjust` through the gateway.
//!
//! The mission catalog is the default one with `daily-login` (10 points) reportable five
//! times a day, so that one customer holds several small rewards at once.

use e2e::api::{issued_reward, wallet_of};
use e2e::clients::*;
use e2e::{Authed, Options, System, with_token};
use grpc_adapter::pb::gift::v1 as gift;
use grpc_adapter::pb::wallet::v1 as wallet;
use grpc_adapter::status::error_info;
use tonic::Code;

/// The default catalog, `daily-login` five times a day.
fn missions(dir: &std::path::Path) -> Vec<(&'static str, String)> {
    let default = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/missions.toml")).unwrap();
    let five_a_day = default.replacen("repeat = \"daily\"\n", "repeat = \"daily\"\nmax_per_period = 5\n", 1);
    let path = dir.join("missions.toml");
    std::fs::write(&path, five_a_day).unwrap();
    vec![("MISSION_CATALOG", path.display().to_string())]
}

async fn start(postgres: bool) -> (System, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let options = Options { mission_env: missions(dir.path()), postgres, gateway: true, ..Options::default() };
    (System::start_with(options).await, dir)
}

fn admin(sys: &System) -> WalletServiceClient<Authed> {
    WalletServiceClient::new(sys.as_admin(&sys.wallet))
}

async fn refund(
    sys: &System,
    gift_id: &str,
    reason: &str,
    request_id: &str,
) -> Result<wallet::RefundGiftResponse, tonic::Status> {
    let req =
        wallet::RefundGiftRequest { gift_id: gift_id.into(), reason: reason.into(), request_id: request_id.into() };
    admin(sys).refund_gift(req).await.map(tonic::Response::into_inner)
}

async fn adjust(
    sys: &System,
    customer: &str,
    amount: i64,
    request_id: &str,
) -> Result<wallet::AdjustPointsResponse, tonic::Status> {
    let req = wallet::AdjustPointsRequest {
        customer_id: customer.into(),
        amount,
        reason: "support ticket 42".into(),
        request_id: request_id.into(),
    };
    admin(sys).adjust_points(req).await.map(tonic::Response::into_inner)
}

async fn redeem(sys: &System, customer: &str, code: &str, request_id: &str) -> wallet::RedeemGiftResponse {
    WalletServiceClient::new(sys.as_customer(&sys.wallet, customer))
        .redeem_gift(wallet::RedeemGiftRequest {
            customer_id: customer.into(),
            gift_code: code.into(),
            request_id: request_id.into(),
        })
        .await
        .expect("redeemed")
        .into_inner()
}

async fn ledger(sys: &System, customer: &str, kind: wallet::LedgerEntryKind) -> Vec<wallet::LedgerEntry> {
    WalletServiceClient::new(sys.as_customer(&sys.wallet, customer))
        .list_ledger_entries(wallet::ListLedgerEntriesRequest {
            customer_id: customer.into(),
            kind: kind as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries
}

/// The balance, checked against the sum of the ledger's entries.
async fn balance(sys: &System, customer: &str) -> i64 {
    let w = wallet_of(sys, customer).await;
    let entries = ledger(sys, customer, wallet::LedgerEntryKind::Unspecified).await;
    assert_eq!(w.balance, entries.iter().map(|e| e.amount).sum::<i64>(), "the balance is the sum of the entries");
    w.balance
}

async fn left_in_stock(sys: &System, code: &str) -> Option<u32> {
    let catalog = GiftServiceClient::new(sys.gift.channel()).list_catalog(gift::ListCatalogRequest {}).await.unwrap();
    catalog.into_inner().gifts.into_iter().find(|g| g.gift_code == code).unwrap().remaining
}

async fn gift_status(sys: &System, gift_id: &str) -> i32 {
    let g = GiftServiceClient::new(sys.as_admin(&sys.gift))
        .get_gift(gift::GetGiftRequest { gift_id: gift_id.into() })
        .await
        .unwrap()
        .into_inner();
    g.gift.unwrap().status
}

fn reason_of(s: &tonic::Status) -> String {
    error_info(s).map(|(reason, _)| reason).unwrap_or_default()
}

#[tokio::test]
async fn a_refunded_gift_is_cancelled_its_stock_is_back_and_its_points_return_to_the_rewards_they_came_from() {
    let (sys, _dir) = start(false).await;
    let mut items = Vec::new();
    for _ in 0..5 {
        items.push(issued_reward(&sys, "c-refund", "daily-login").await);
    }
    let stock = left_in_stock(&sys, "movie-ticket").await.expect("movie-ticket has a stock");
    let ticket = redeem(&sys, "c-refund", "movie-ticket", "m-1").await;
    assert_eq!((balance(&sys, "c-refund").await, left_in_stock(&sys, "movie-ticket").await), (0, Some(stock - 1)));

    let done = refund(&sys, &ticket.gift_id, "the cinema closed", "f-1").await.expect("refunded");
    assert_eq!((done.customer_id.as_str(), done.points, done.balance), ("c-refund", 50, 50));
    let mut lots: Vec<_> = done.lots.iter().map(|l| (l.reward_id.clone(), l.points)).collect();
    let mut drawn: Vec<_> = ticket.draws.iter().map(|d| (d.reward_id.clone(), d.points)).collect();
    lots.sort();
    drawn.sort();
    assert_eq!(lots, drawn, "back to the very rewards the spend drew from");
    assert_eq!(balance(&sys, "c-refund").await, 50);
    let w = wallet_of(&sys, "c-refund").await;
    for item in &items {
        let now = w.items.iter().find(|i| i.reward_id == item.reward_id).expect("the same reward, not a new one");
        // The same lot: its points, its mission, what it held (and so its expiry: the lot's).
        assert_eq!(
            (now.status, now.remaining_points, now.gift_id.as_str()),
            (wallet::WalletItemStatus::Issued as i32, 10, "")
        );
        assert_eq!((now.mission_id.as_str(), now.points), (item.mission_id.as_str(), 10));
    }
    assert_eq!(w.items.len(), 5, "no new lot");
    assert_eq!(left_in_stock(&sys, "movie-ticket").await, Some(stock), "its stock is back");
    assert_eq!(gift_status(&sys, &ticket.gift_id).await, gift::GiftStatus::Cancelled as i32);
    let refunded = ledger(&sys, "c-refund", wallet::LedgerEntryKind::Refunded).await;
    assert_eq!(refunded.len(), 1);
    let e = &refunded[0];
    assert_eq!(
        (e.amount, e.balance_after, e.actor.as_str(), e.reason.as_str()),
        (50, 50, "operator", "the cinema closed")
    );
    assert_eq!(e.reference, format!("gift:{}", ticket.gift_id));

    // Twice: the same request is the same answer; another is refused with why.
    let again = refund(&sys, &ticket.gift_id, "the cinema closed", "f-1").await.unwrap();
    assert_eq!((again.entry_id, again.balance), (done.entry_id.clone(), 50));
    let twice = refund(&sys, &ticket.gift_id, "the cinema closed", "f-2").await.unwrap_err();
    assert_eq!((twice.code(), reason_of(&twice).as_str()), (Code::FailedPrecondition, "WALLET_ALREADY_REFUNDED"));
    let no_reason = refund(&sys, &ticket.gift_id, " ", "f-3").await.unwrap_err();
    assert_eq!(no_reason.code(), Code::InvalidArgument);
    assert!(no_reason.message().starts_with("reason"), "{no_reason:?}");
    assert_eq!(balance(&sys, "c-refund").await, 50, "refunded once");

    // The points spend again, on a new gift.
    let coffee = redeem(&sys, "c-refund", "coffee", "c-1").await;
    assert_ne!(coffee.gift_id, ticket.gift_id);
    assert_eq!(balance(&sys, "c-refund").await, 40);
}

#[tokio::test]
async fn a_used_gift_is_not_refunded_and_only_the_wallet_may_cancel_a_gift() {
    let (sys, _dir) = start(false).await;
    issued_reward(&sys, "c-used", "daily-login").await;
    let coffee = redeem(&sys, "c-used", "coffee", "c-1").await;
    // Neither an admin nor a player reaches the gift's internal CancelGift.
    for token in [sys.as_admin(&sys.gift), sys.as_customer(&sys.gift, "c-used")] {
        let direct = GiftIssuingServiceClient::new(token)
            .cancel_gift(gift::CancelGiftRequest { gift_id: coffee.gift_id.clone() })
            .await
            .unwrap_err();
        assert_eq!(direct.code(), Code::PermissionDenied, "{direct:?}");
    }
    assert_eq!(gift_status(&sys, &coffee.gift_id).await, gift::GiftStatus::Issued as i32);
    GiftServiceClient::new(sys.as_customer(&sys.gift, "c-used"))
        .use_gift(gift::UseGiftRequest { gift_id: coffee.gift_id.clone(), customer_id: "c-used".into() })
        .await
        .expect("used");
    let refused = refund(&sys, &coffee.gift_id, "changed my mind", "f-1").await.unwrap_err();
    assert_eq!(
        (refused.code(), reason_of(&refused).as_str()),
        (Code::FailedPrecondition, "GIFT_ALREADY_USED"),
        "{refused:?}"
    );
    assert_eq!(balance(&sys, "c-used").await, 0, "nothing refunded");
    assert_eq!(gift_status(&sys, &coffee.gift_id).await, gift::GiftStatus::Used as i32);
    assert!(ledger(&sys, "c-used", wallet::LedgerEntryKind::Refunded).await.is_empty());
    let unknown = refund(&sys, &uuid::Uuid::now_v7().to_string(), "why", "f-2").await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}

#[tokio::test]
async fn a_refund_whose_gift_was_cancelled_but_not_credited_completes_when_asked_again() {
    let (sys, _dir) = start(false).await;
    issued_reward(&sys, "c-retry", "daily-login").await;
    let coffee = redeem(&sys, "c-retry", "coffee", "c-1").await;
    // The wallet cancelled the gift, then died before crediting (its own identity cancels).
    let as_wallet = with_token(sys.gift.channel(), &sys.tokens.service("wallet"));
    let cancelled = GiftIssuingServiceClient::new(as_wallet)
        .cancel_gift(gift::CancelGiftRequest { gift_id: coffee.gift_id.clone() })
        .await
        .expect("the wallet's identity cancels")
        .into_inner();
    assert_eq!(cancelled.gift.unwrap().status, gift::GiftStatus::Cancelled as i32);
    assert_eq!(balance(&sys, "c-retry").await, 0, "not credited yet");
    let done = refund(&sys, &coffee.gift_id, "wrong gift", "f-1").await.expect("completed");
    assert_eq!((done.points, done.balance), (10, 10));
    assert_eq!(balance(&sys, "c-retry").await, 10);
    assert_eq!(refund(&sys, &coffee.gift_id, "wrong gift", "f-1").await.unwrap().entry_id, done.entry_id);
}

async fn adjustments_credit_and_debit_but_never_below_zero_and_players_are_refused(postgres: bool) {
    let (sys, _dir) = start(postgres).await;
    issued_reward(&sys, "c-adj", "daily-login").await;
    let credit = adjust(&sys, "c-adj", 25, "a-1").await.expect("credited");
    assert_eq!((credit.amount, credit.balance, credit.lots.len()), (25, 35, 1));
    let debit = adjust(&sys, "c-adj", -10, "a-2").await.expect("debited");
    assert_eq!(debit.balance, 25);
    assert_eq!(debit.lots.iter().map(|l| l.points).sum::<i64>(), 10);
    let short = adjust(&sys, "c-adj", -1000, "a-3").await.unwrap_err();
    assert_eq!((short.code(), reason_of(&short).as_str()), (Code::FailedPrecondition, "WALLET_NOT_ENOUGH_POINTS"));
    assert_eq!(error_info(&short).unwrap().1["balance"], "25");
    assert_eq!(balance(&sys, "c-adj").await, 25, "nothing taken");
    let zero = adjust(&sys, "c-adj", 0, "a-4").await.unwrap_err();
    assert_eq!(zero.code(), Code::InvalidArgument);
    assert!(zero.message().starts_with("amount"), "{zero:?}");
    // The same request: the same answer; the same id with other parameters: refused.
    assert_eq!(adjust(&sys, "c-adj", 25, "a-1").await.unwrap().entry_id, credit.entry_id);
    let reused = adjust(&sys, "c-adj", 30, "a-1").await.unwrap_err();
    assert_eq!(reused.code(), Code::FailedPrecondition);
    assert_eq!(balance(&sys, "c-adj").await, 25);
    let adjusted = ledger(&sys, "c-adj", wallet::LedgerEntryKind::Adjusted).await;
    let view: Vec<_> = adjusted.iter().map(|e| (e.amount, e.actor.as_str(), e.reason.as_str())).collect();
    assert_eq!(view, vec![(-10, "operator", "support ticket 42"), (25, "operator", "support ticket 42")]);

    // A player, at the wallet and through the gateway, may do neither.
    let player = sys.tokens.customer("c-adj");
    for channel in [sys.wallet.channel(), sys.gateway().channel()] {
        let mut as_player = WalletServiceClient::new(with_token(channel, &player));
        let req = wallet::AdjustPointsRequest {
            customer_id: "c-adj".into(),
            amount: 1000,
            reason: "me".into(),
            request_id: String::new(),
        };
        assert_eq!(as_player.adjust_points(req).await.unwrap_err().code(), Code::PermissionDenied);
        let req = wallet::RefundGiftRequest {
            gift_id: uuid::Uuid::now_v7().to_string(),
            reason: "me".into(),
            request_id: String::new(),
        };
        assert_eq!(as_player.refund_gift(req).await.unwrap_err().code(), Code::PermissionDenied);
    }
    assert_eq!(balance(&sys, "c-adj").await, 25);
}

#[tokio::test]
async fn adjustments_credit_and_debit_but_never_below_zero_and_players_are_refused_on_sqlite() {
    adjustments_credit_and_debit_but_never_below_zero_and_players_are_refused(false).await;
}

#[tokio::test]
async fn adjustments_credit_and_debit_but_never_below_zero_and_players_are_refused_on_postgres() {
    adjustments_credit_and_debit_but_never_below_zero_and_players_are_refused(true).await;
}

#[tokio::test]
async fn gamectl_refunds_and_adjusts_through_the_gateway() {
    let (sys, dir) = start(false).await;
    issued_reward(&sys, "c-ctl", "daily-login").await;
    let coffee = redeem(&sys, "c-ctl", "coffee", "c-1").await;
    let endpoint = format!("http://{}", sys.gateway().addr);
    let ctl = |token: String, args: &[&str]| {
        let out = e2e::up::gamectl(dir.path())
            .args(["--endpoint", &endpoint, "--token", &token])
            .args(args)
            .output()
            .expect("gamectl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let admin = sys.admin_token().await;
    let (ok, out, err) = ctl(admin.clone(), &["refund", &coffee.gift_id, "--reason", "wrong gift"]);
    assert!(ok, "{out}{err}");
    assert_eq!(
        out.trim(),
        format!("gift {} refunded: 10 points back to 1 reward(s) of c-ctl; balance 10", coffee.gift_id)
    );
    let (ok, out, err) =
        ctl(admin.clone(), &["--json", "adjust", "c-ctl", "-4", "--reason", "typo", "--request-id", "g-1"]);
    assert!(ok, "{out}{err}");
    let j: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        (j["amount"].as_i64(), j["balance"].as_i64(), j["customerId"].as_str()),
        (Some(-4), Some(6), Some("c-ctl"))
    );
    let (ok, out, _) = ctl(admin.clone(), &["ledger", "c-ctl"]);
    assert!(ok);
    assert!(out.lines().next().unwrap_or_default().ends_with("REASON"), "{out}");
    assert!(out.lines().any(|l| l.contains("ADJUSTED") && l.contains("-4") && l.ends_with("typo")), "{out}");
    assert!(out.lines().any(|l| l.contains("REFUNDED") && l.ends_with("wrong gift")), "{out}");
    let (ok, _, err) = ctl(sys.tokens.customer("c-ctl"), &["adjust", "c-ctl", "100", "--reason", "me"]);
    assert!(!ok && (err.contains("PERMISSION_DENIED") || err.contains("admins only")), "{err}");
    assert_eq!(balance(&sys, "c-ctl").await, 6);
}
