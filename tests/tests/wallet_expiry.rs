//! Points that expire (issue 25), end to end on the real executables: a mission whose
//! catalog entry says `points_expire_after = "3s"` issues lots that leave the balance
//! as one `EXPIRED` entry each within the wallet's scan (`EXPIRY_SCAN_SECONDS=1`),
//! `GetWallet` showing what expires next until then; two wallet replicas scanning the
//! same database still write one `EXPIRED` entry per lot and one notice e-mail per
//! customer and date ("10 points expire on 2026-12-08", through the notification
//! service); the points metrics on the wallet's `/metrics`.

use std::time::Duration;

use e2e::api::{issued_reward, wallet_of};
use e2e::clients::*;
use e2e::{Options, Service, System, WALLET, eventually};
use grpc_adapter::pb::wallet::v1 as wallet;
use metrics_adapter::scrape::{Scrape, fetch};

/// The default catalog with `daily-login`'s points expiring 3 seconds after they are
/// issued (the others never expire).
fn missions(dir: &std::path::Path) -> Vec<(&'static str, String)> {
    let default = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/missions.toml")).unwrap();
    let expiring = default.replacen("repeat = \"daily\"\n", "repeat = \"daily\"\npoints_expire_after = \"3s\"\n", 1);
    assert_ne!(expiring, default);
    let path = dir.join("missions.toml");
    std::fs::write(&path, expiring).unwrap();
    vec![("MISSION_CATALOG", path.display().to_string())]
}

async fn start(postgres: bool) -> (System, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        mission_env: missions(dir.path()),
        wallet_env: vec![("EXPIRY_SCAN_SECONDS", "1".into())],
        postgres,
        ..Options::default()
    };
    (System::start_with(options).await, dir)
}

async fn expired(sys: &System, customer: &str) -> Vec<wallet::LedgerEntry> {
    WalletServiceClient::new(sys.as_customer(&sys.wallet, customer))
        .list_ledger_entries(wallet::ListLedgerEntriesRequest {
            customer_id: customer.into(),
            kind: wallet::LedgerEntryKind::Expired as i32,
            ..Default::default()
        })
        .await
        .expect("ledger")
        .into_inner()
        .entries
}

async fn scrape(service: &Service) -> Scrape {
    Scrape::parse(&fetch(&service.metrics_url(), Duration::from_secs(5)).await.expect("scrape"))
}

/// The expiry notices e-mailed to `customer`: their subjects.
fn notices(sys: &System, customer: &str) -> Vec<String> {
    let to = format!("To: {customer}@");
    let Ok(dir) = std::fs::read_dir(sys.mailbox()) else { return Vec::new() };
    dir.map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter(|m| m.contains(&to) && m.contains("points expire on"))
        .filter_map(|m| m.lines().find_map(|l| l.strip_prefix("Subject: ").map(str::to_owned)))
        .collect()
}

fn seconds(t: Option<&prost_types::Timestamp>) -> i64 {
    t.expect("a timestamp").seconds
}

#[tokio::test]
async fn points_of_a_mission_that_expire_leave_the_balance_once_and_get_wallet_shows_them_coming() {
    let (sys, _dir) = start(false).await;
    let lasting = issued_reward(&sys, "c-exp", "tutorial-complete").await;
    assert_eq!(lasting.expires_at, None, "a mission without points_expire_after: never");
    let item = issued_reward(&sys, "c-exp", "daily-login").await;
    let w = wallet_of(&sys, "c-exp").await;
    let at = seconds(item.expires_at.as_ref());
    // Before: the 10 points and when they go (the lot's expiry, about 3 s away).
    assert_eq!((w.balance, w.next_expiry_points, seconds(w.next_expiry_at.as_ref())), (30, 10, at));
    let now = chrono::Utc::now().timestamp();
    assert!((now..=now + 4).contains(&at), "expires 3 s after it was issued: {at} (now {now})");

    let after = eventually(Duration::from_secs(15), "the points expire", || async {
        let w = wallet_of(&sys, "c-exp").await;
        (w.balance == 20).then_some(w)
    })
    .await;
    assert!(chrono::Utc::now().timestamp() >= at, "not before their time");
    assert_eq!((after.next_expiry_points, after.next_expiry_at), (0, None), "nothing else expires");
    let entries = expired(&sys, "c-exp").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!((entries[0].amount, entries[0].balance_after), (-10, 20));
    assert_eq!(entries[0].reference, format!("reward:{}", item.reward_id));
    assert_eq!(entries[0].actor, "wallet");
    let lot = wallet_of(&sys, "c-exp").await.items.into_iter().find(|i| i.reward_id == item.reward_id).unwrap();
    assert_eq!(lot.remaining_points, 0);
    // Later scans find nothing more to expire.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(expired(&sys, "c-exp").await.len(), 1);
    // Told beforehand (EXPIRY_NOTICE_DAYS, default 7), once, through the notification service.
    let date = chrono::DateTime::from_timestamp(at, 0).unwrap().date_naive();
    let told = eventually(Duration::from_secs(10), "the notice e-mail", || async {
        let told = notices(&sys, "c-exp");
        (!told.is_empty()).then_some(told)
    })
    .await;
    assert_eq!(told, vec![format!("10 points expire on {date}")]);

    // The points metrics, on the wallet's /metrics.
    let s = eventually(Duration::from_secs(10), "points_outstanding refreshed", || async {
        let s = scrape(&sys.wallet).await;
        (s.value("points_outstanding", &[]) == Some(20.0)).then_some(s)
    })
    .await;
    assert_eq!(s.value("points_earned_total", &[("mission", "daily-login")]), Some(10.0));
    assert_eq!(s.value("points_earned_total", &[("mission", "tutorial-complete")]), Some(20.0));
    assert_eq!(s.value("points_expired_total", &[]), Some(10.0));
    assert_eq!(s.value("points_refunded_total", &[]), Some(0.0));
    assert_eq!(s.value("points_adjusted_total", &[("direction", "credit")]), Some(0.0));
}

#[tokio::test]
async fn two_wallet_replicas_scanning_one_postgresql_database_expire_each_lot_once() {
    let (sys, _dir) = start(true).await;
    let mut env = sys.env("wallet", &sys.database_urls["wallet"]);
    env.extend([("GIFT_URL", sys.gift.url()), ("EXPIRY_SCAN_SECONDS", "1".into())]);
    let second = Service::start("wallet-2", "wallet", &env, sys.dir.path());
    second.wait_serving(WALLET).await;
    let customers: Vec<String> = (0..6).map(|n| format!("c-twin-{n}")).collect();
    for c in &customers {
        issued_reward(&sys, c, "daily-login").await;
    }
    for c in &customers {
        eventually(Duration::from_secs(20), "the points expire", || async {
            (wallet_of(&sys, c).await.balance == 0).then_some(())
        })
        .await;
    }
    // A few more scans of both replicas.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for c in &customers {
        let entries = expired(&sys, c).await;
        assert_eq!(entries.iter().map(|e| e.amount).collect::<Vec<_>>(), vec![-10], "{c}: {entries:?}");
        assert_eq!(notices(&sys, c).len(), 1, "{c}: one notice e-mail per customer and date, whatever the replicas");
    }
    let total: f64 = [scrape(&sys.wallet).await, scrape(&second).await]
        .iter()
        .map(|s| s.value("points_expired_total", &[]).unwrap_or(0.0))
        .sum();
    assert_eq!(total, 60.0, "counted once, by whichever replica expired each lot");
}
