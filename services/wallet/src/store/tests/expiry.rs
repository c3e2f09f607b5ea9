//! Expiry on both backends: lots keep their expiry, the scan finds the due ones, a lot
//! expires once however many replicas race for it.

use chrono::{Duration, Utc};
use kernel::{RequestContext, StoreError, new_id};
use store_adapter::testing::TestDatabase;
use uuid::Uuid;
use wallet_domain::ledger::Movement;
use wallet_domain::service::LEASE_TTL;
use wallet_domain::{
    EntryKind, ExpiryCommit, GiftCallError, GiftIssuer, GiftRequest, WalletItem, WalletRepository, WalletService,
};

use super::{customer, earn, open, sum_of_entries};
use crate::store::SqlWallet;

/// A lot of `points` for c-11 whose expiry is `in_secs` from now.
async fn earn_expiring(repo: &SqlWallet, points: i64, in_secs: i64) -> WalletItem {
    let item = earn(repo, points).await;
    let mut row = repo.get(item.reward_id).await.unwrap().unwrap();
    row.expires_at = Some(Utc::now() + Duration::seconds(in_secs));
    let rows = vec![super::super::Row::from(&row)];
    repo.store.write(move |c| super::super::update_items(c, &rows)).await.unwrap();
    repo.get(item.reward_id).await.unwrap().unwrap()
}

/// The commit of c-11's expiries as read now, under `holder`.
async fn expiry(repo: &SqlWallet, holder: Uuid) -> ExpiryCommit {
    let mut account = repo.account(&customer()).await.unwrap();
    let mut entries = Vec::new();
    let mut items = Vec::new();
    for mut item in repo.lots(&customer()).await.unwrap() {
        let points = item.expire(Utc::now());
        if points > 0 {
            let m = Movement {
                kind: EntryKind::Expired,
                amount: -points,
                reference: format!("reward:{}", item.reward_id),
                actor: "wallet".into(),
                reason: "expired".into(),
            };
            entries.push(account.record(m, new_id(), Utc::now()).unwrap());
            items.push(item);
        }
    }
    ExpiryCommit { entries, items, holder }
}

async fn expired_entries(repo: &SqlWallet) -> usize {
    repo.ledger(&customer(), Some(EntryKind::Expired), Default::default()).await.unwrap().items.len()
}

async fn a_lot_keeps_its_expiry_and_is_found_due_with_points_left(db: TestDatabase) {
    let (_store, repo) = open(&db).await;
    let due = earn_expiring(&repo, 10, -1).await;
    let later = earn_expiring(&repo, 20, 3600).await;
    earn(&repo, 5).await;
    let at = later.expires_at.unwrap();
    assert!((at - Utc::now() - Duration::seconds(3600)).abs() < Duration::seconds(5), "{at}");
    assert!(due.expires_at.unwrap() < Utc::now());
    assert_eq!(repo.due_for_expiry(Utc::now(), 10).await.unwrap(), vec![customer()]);
    assert!(repo.due_for_expiry(Utc::now() - Duration::seconds(60), 10).await.unwrap().is_empty(), "not yet");
    assert_eq!(repo.outstanding().await.unwrap(), 35);
}

async fn an_expiry_commits_its_entries_and_empties_its_lots_once(db: TestDatabase) {
    let (store, repo) = open(&db).await;
    let a = earn_expiring(&repo, 10, -1).await;
    let b = earn_expiring(&repo, 30, -1).await;
    earn(&repo, 5).await;
    let holder = new_id();
    assert!(repo.take_lease(&customer(), holder, LEASE_TTL).await.unwrap());
    let first = expiry(&repo, holder).await;
    let second = expiry(&repo, holder).await;
    assert_eq!(first.entries.len(), 2);
    // Two scans that read the same lots: one commits, the other finds them moved.
    let (x, y) = tokio::join!(repo.commit_expiry(first), repo.commit_expiry(second));
    assert_eq!([x.is_ok(), y.is_ok()].iter().filter(|ok| **ok).count(), 1, "{x:?} {y:?}");
    assert!(matches!(x.clone().err().or(y.clone().err()), Some(StoreError::Conflict)), "{x:?} {y:?}");
    assert_eq!(expired_entries(&repo).await, 2);
    for lot in [a, b] {
        assert_eq!(repo.get(lot.reward_id).await.unwrap().unwrap().remaining, 0);
    }
    assert_eq!((repo.account(&customer()).await.unwrap().balance, sum_of_entries(&store, "c-11").await), (5, 5));
    assert!(repo.due_for_expiry(Utc::now(), 10).await.unwrap().is_empty());
    assert_eq!(repo.outstanding().await.unwrap(), 5);
    // the lease went with the commit: a commit without it is refused
    earn_expiring(&repo, 1, -1).await;
    let stale = expiry(&repo, holder).await;
    assert_eq!(stale.entries.len(), 1);
    assert_eq!(repo.commit_expiry(stale).await, Err(StoreError::Conflict));
    assert_eq!(expired_entries(&repo).await, 2, "nothing written");
}

/// A gift service nobody calls (expiry never issues gifts).
struct NoGifts;

impl GiftIssuer for NoGifts {
    async fn cost(&self, _: &str, _: &RequestContext) -> Result<i64, GiftCallError> {
        unreachable!("expiry asks no price")
    }
    async fn issue_gift(&self, _: GiftRequest, _: &RequestContext) -> Result<Uuid, GiftCallError> {
        unreachable!("expiry issues no gift")
    }
    async fn cancel_gift(&self, _: Uuid, _: &RequestContext) -> Result<(), GiftCallError> {
        unreachable!("expiry cancels no gift")
    }
}

async fn two_replicas_scanning_at_once_write_one_expired_entry_per_lot(db: TestDatabase) {
    let (store, repo) = open(&db).await;
    for _ in 0..5 {
        earn_expiring(&repo, 10, -1).await;
    }
    earn(&repo, 7).await;
    // Two replicas: two pools on one database, each with its own service.
    let (_, other) = open(&db).await;
    let pause = |d| -> futures::future::BoxFuture<'static, ()> { Box::pin(tokio::time::sleep(d)) };
    let one = WalletService::new(repo.clone(), NoGifts, pause);
    let two = WalletService::new(other, NoGifts, pause);
    // Rounds as the scan runs them: a round that fails (SQLite: "database is locked"
    // while the other pool writes) is tried again at the next one.
    for _ in 0..20 {
        let (a, b) = tokio::join!(one.expire_due(Utc::now(), 100), two.expire_due(Utc::now(), 100));
        for r in [a, b] {
            if let Err(e) = r {
                assert!(matches!(e, wallet_domain::WalletError::Unavailable(_)), "{e}");
            }
        }
        if repo.due_for_expiry(Utc::now(), 10).await.unwrap().is_empty() {
            break;
        }
    }
    assert!(repo.due_for_expiry(Utc::now(), 10).await.unwrap().is_empty(), "all expired");
    assert_eq!(expired_entries(&repo).await, 5, "one EXPIRED entry per lot");
    assert_eq!((repo.account(&customer()).await.unwrap().balance, sum_of_entries(&store, "c-11").await), (7, 7));
}

async fn a_customer_is_told_once_per_expiry_date(db: TestDatabase) {
    let (_store, repo) = open(&db).await;
    let soon = earn_expiring(&repo, 10, 3600).await;
    earn_expiring(&repo, 20, 86_400 * 30).await;
    earn_expiring(&repo, 5, -1).await;
    let now = Utc::now();
    let found = repo.lots_expiring(now, now + Duration::days(7), 10).await.unwrap();
    assert_eq!(found.iter().map(|i| i.reward_id).collect::<Vec<_>>(), vec![soon.reward_id], "within the week only");
    let notice = wallet_domain::ExpiryNotice {
        customer_id: customer(),
        date: soon.expires_at.unwrap().date_naive(),
        points: 10,
        expires_at: soon.expires_at.unwrap(),
    };
    let event = |n: &wallet_domain::ExpiryNotice| kernel::Envelope {
        meta: kernel::EventMeta::first(new_id(), "", customer(), Utc::now()),
        event: wallet_domain::WalletEvent::PointsExpiring(n.clone()),
    };
    repo.record_notice(event(&notice)).await.unwrap();
    assert_eq!(repo.record_notice(event(&notice)).await, Err(StoreError::Duplicate), "once per customer and date");
    let next_day = wallet_domain::ExpiryNotice { date: notice.date.succ_opt().unwrap(), ..notice };
    repo.record_notice(event(&next_day)).await.unwrap();
}

store_adapter::on_both_backends!(
    a_customer_is_told_once_per_expiry_date,
    a_lot_keeps_its_expiry_and_is_found_due_with_points_left,
    an_expiry_commits_its_entries_and_empties_its_lots_once,
    two_replicas_scanning_at_once_write_one_expired_entry_per_lot,
);
