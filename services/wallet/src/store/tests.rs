use chrono::Utc;
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::MigrationHarness;
use kernel::{EventMeta, new_id};
use store_adapter::testing::TestDatabase;
use wallet_domain::ledger::Movement;
use wallet_domain::{Draw, Spend};

use super::*;
use wallet_domain::service::LEASE_TTL;

mod corrections;
mod expiry;

/// Lets the `static` migrations be run one at a time.
struct Source(&'static diesel_migrations::EmbeddedMigrations);

impl<DB: diesel::backend::Backend> diesel::migration::MigrationSource<DB> for Source {
    fn migrations(&self) -> diesel::migration::Result<Vec<Box<dyn diesel::migration::Migration<DB>>>> {
        <diesel_migrations::EmbeddedMigrations as diesel::migration::MigrationSource<DB>>::migrations(self.0)
    }
}

fn customer() -> CustomerId {
    CustomerId::new("c-11").unwrap()
}

async fn open(db: &TestDatabase) -> (Store, SqlWallet) {
    let store = Store::open(&db.url, MIGRATIONS).await.unwrap();
    (store.clone(), SqlWallet::new(store))
}

fn movement(kind: EntryKind, amount: i64) -> Movement {
    Movement { kind, amount, reference: "test".into(), actor: "c-11".into(), reason: String::new() }
}

/// Issues a reward of `points` to c-11 as the policy does: the item and its EARNED entry.
async fn earn(repo: &SqlWallet, points: i64) -> WalletItem {
    let (item, event) = WalletItem::issue(new_id(), new_id(), customer(), points);
    let mut account = repo.account(&customer()).await.unwrap();
    let entry = account.record(movement(EntryKind::Earned, points), new_id(), Utc::now()).unwrap();
    let meta = EventMeta::first(item.mission_id, "req", customer(), Utc::now());
    let inbound = Inbound { consumer: "wallet-issue", event_id: new_id() };
    repo.insert(&item, &entry, vec![Envelope { meta, event }], inbound).await.unwrap();
    item
}

/// A spend of `cost` from the lots in their order, under `holder`'s lease.
async fn spend(repo: &SqlWallet, cost: i64, request_id: &str, holder: Uuid) -> Result<SpendCommit, StoreError> {
    let mut account = repo.account(&customer()).await?;
    let mut items = repo.lots(&customer()).await?;
    let lots: Vec<_> = items.iter().map(WalletItem::lot).collect();
    let draws =
        wallet_domain::ledger::plan_spend(&lots, None, cost).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let gift_id = new_id();
    let entry = account
        .record(movement(EntryKind::Spent, -cost), new_id(), Utc::now())
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let mut changed = Vec::new();
    for d in &draws {
        let item = items.iter_mut().find(|i| i.reward_id == d.reward_id).unwrap();
        item.draw(d.points, gift_id, "coffee").unwrap();
        changed.push(item.clone());
    }
    let spend = Spend {
        spend_id: new_id(),
        customer_id: customer(),
        request_id: request_id.into(),
        gift_code: "coffee".into(),
        reward_id: None,
        cost,
        gift_id,
        entry_id: entry.entry_id,
        balance_after: entry.balance_after,
        draws,
        at: Utc::now(),
    };
    Ok(SpendCommit { spend, entry, items: changed, events: vec![], holder })
}

async fn sum_of_entries(store: &Store, customer: &str) -> i64 {
    use diesel::sql_types::{BigInt, Nullable};
    let customer = customer.to_owned();
    let sum: Option<i64> = store
        .read(move |c| {
            ledger::wallet_ledger::table
                .filter(ledger::wallet_ledger::customer_id.eq(customer))
                .select(diesel::dsl::sql::<Nullable<BigInt>>("CAST(SUM(amount) AS BIGINT)"))
                .first(c)
                .map_err(db)
        })
        .await
        .unwrap();
    sum.unwrap_or(0)
}

async fn a_reward_is_issued_into_one_wallet_once_and_earns_its_points_once(db: TestDatabase) {
    let (store, repo) = open(&db).await;
    let item = earn(&repo, 10).await;
    assert_eq!(repo.get(item.reward_id).await.unwrap().unwrap(), item);
    let account = repo.account(&customer()).await.unwrap();
    let entry = Account { entries: 0, balance: 0, ..account.clone() }
        .record(movement(EntryKind::Earned, 10), new_id(), Utc::now())
        .unwrap();
    let inbound = Inbound { consumer: "wallet-issue", event_id: new_id() };
    assert_eq!(repo.insert(&item, &entry, vec![], inbound).await, Err(StoreError::Duplicate), "the same reward");
    let other = WalletItem::issue(new_id(), new_id(), customer(), 5).0;
    assert_eq!(repo.insert(&other, &entry, vec![], inbound).await, Err(StoreError::Conflict), "a stale account");
    assert!(repo.get(other.reward_id).await.unwrap().is_none(), "nothing written");
    assert_eq!((account.balance, account.entries), (10, 1));
    assert_eq!(store.outbox_len().await.unwrap(), 1);
    let entries = repo.ledger(&customer(), None, PageRequest::default()).await.unwrap().items;
    assert_eq!(
        entries.iter().map(|e| (e.kind, e.amount, e.seq, e.balance_after)).collect::<Vec<_>>(),
        vec![(EntryKind::Earned, 10, 1, 10)]
    );
    assert_eq!(repo.account(&CustomerId::new("other").unwrap()).await.unwrap().balance, 0);
}

async fn a_spend_commits_its_entry_lots_and_draws_at_once_and_the_balance_is_the_sum_of_entries(db: TestDatabase) {
    let (store, repo) = open(&db).await;
    let big = earn(&repo, 100).await;
    let small = earn(&repo, 10).await;
    let holder = new_id();
    assert!(repo.take_lease(&customer(), holder, LEASE_TTL).await.unwrap());
    let commit = spend(&repo, 105, "r-1", holder).await.unwrap();
    let expected = commit.spend.clone();
    repo.commit_spend(commit).await.unwrap();
    let left = |i: &WalletItem| {
        let repo = repo.clone();
        let id = i.reward_id;
        async move { repo.get(id).await.unwrap().unwrap() }
    };
    let (big, small) = (left(&big).await, left(&small).await);
    assert_eq!((big.status, big.remaining, big.gift_id), (ItemStatus::Exchanged, 0, Some(expected.gift_id)));
    assert_eq!((small.status, small.remaining), (ItemStatus::Issued, 5), "partly spent: what is left");
    assert_eq!(repo.lots(&customer()).await.unwrap(), vec![small.clone()]);
    assert_eq!(repo.account(&customer()).await.unwrap().balance, 5);
    assert_eq!(sum_of_entries(&store, "c-11").await, 5);
    let found = repo.find_spend(&customer(), "r-1").await.unwrap().expect("the spend");
    assert!((found.at - expected.at).abs() < chrono::Duration::milliseconds(1), "PostgreSQL keeps microseconds");
    assert_eq!(found, Spend { at: found.at, ..expected.clone() });
    assert_eq!(
        expected.draws,
        vec![Draw { reward_id: big.reward_id, points: 100 }, Draw { reward_id: small.reward_id, points: 5 }]
    );
    assert!(repo.find_spend(&customer(), "r-2").await.unwrap().is_none());
    let spent = repo.ledger(&customer(), Some(EntryKind::Spent), PageRequest::default()).await.unwrap().items;
    assert_eq!(spent.iter().map(|e| (e.amount, e.balance_after)).collect::<Vec<_>>(), vec![(-105, 5)]);
    // the lease was given back with the commit; a commit without it is refused
    let stale = spend(&repo, 5, "r-2", holder).await.unwrap();
    assert_eq!(repo.commit_spend(stale).await, Err(StoreError::Conflict));
    assert_eq!(repo.account(&customer()).await.unwrap().balance, 5, "nothing written");
}

async fn two_spends_from_one_balance_cannot_both_commit_and_a_request_id_makes_one_spend(db: TestDatabase) {
    let (store, repo) = open(&db).await;
    earn(&repo, 10).await;
    earn(&repo, 10).await;
    let holder = new_id();
    assert!(repo.take_lease(&customer(), holder, LEASE_TTL).await.unwrap());
    let first = spend(&repo, 10, "r-1", holder).await.unwrap();
    let second = spend(&repo, 10, "r-2", holder).await.unwrap();
    let (a, b) = tokio::join!(repo.commit_spend(first), repo.commit_spend(second));
    assert_eq!([a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(), 1, "{a:?} {b:?}");
    assert_eq!(repo.account(&customer()).await.unwrap().balance, 10);
    assert!(repo.take_lease(&customer(), holder, LEASE_TTL).await.unwrap());
    let used = if a.is_ok() { "r-1" } else { "r-2" };
    let again = spend(&repo, 10, used, holder).await.unwrap();
    assert_eq!(repo.commit_spend(again).await, Err(StoreError::Duplicate), "one spend per request id");
    assert_eq!((repo.account(&customer()).await.unwrap().balance, sum_of_entries(&store, "c-11").await), (10, 10));
}

async fn the_balance_never_goes_below_zero_and_entries_are_never_changed(db: TestDatabase) {
    let (store, repo) = open(&db).await;
    let item = earn(&repo, 10).await;
    let holder = new_id();
    assert!(repo.take_lease(&customer(), holder, LEASE_TTL).await.unwrap());
    let mut overdraft = spend(&repo, 10, "", holder).await.unwrap();
    overdraft.entry.amount = -20;
    overdraft.entry.balance_after = -10;
    assert!(matches!(repo.commit_spend(overdraft).await, Err(StoreError::Unavailable(_))), "a CHECK refuses it");
    assert_eq!(repo.account(&customer()).await.unwrap().balance, 10);
    assert_eq!(repo.get(item.reward_id).await.unwrap().unwrap().remaining, 10, "nothing written");
    for sql in ["UPDATE wallet_ledger SET amount = 1000", "DELETE FROM wallet_ledger"] {
        let changed = store.write(move |c| diesel::sql_query(sql).execute(c).map_err(store_adapter::db)).await;
        assert!(changed.is_err(), "{sql}: {changed:?}");
    }
    assert_eq!(sum_of_entries(&store, "c-11").await, 10);
}

async fn one_spending_lease_per_customer_taken_over_once_stale(db: TestDatabase) {
    let (_store, repo) = open(&db).await;
    let holders: Vec<Uuid> = (0..20).map(|_| new_id()).collect();
    let me = customer();
    let taken = futures::future::join_all(holders.iter().map(|h| repo.take_lease(&me, *h, LEASE_TTL))).await;
    let winners: Vec<_> = holders.iter().zip(&taken).filter(|(_, t)| *t.as_ref().unwrap()).map(|(h, _)| *h).collect();
    assert_eq!(winners.len(), 1, "{taken:?}");
    let other = CustomerId::new("c-12").unwrap();
    assert!(repo.take_lease(&other, holders[0], LEASE_TTL).await.unwrap(), "another customer's is theirs");
    let late = new_id();
    assert!(!repo.take_lease(&customer(), late, LEASE_TTL).await.unwrap());
    repo.release_lease(&customer(), late).await.unwrap();
    assert!(!repo.take_lease(&customer(), late, LEASE_TTL).await.unwrap(), "only its holder gives it back");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(repo.take_lease(&customer(), late, std::time::Duration::from_millis(10)).await.unwrap(), "stale");
    repo.release_lease(&customer(), late).await.unwrap();
    assert!(repo.take_lease(&customer(), winners[0], LEASE_TTL).await.unwrap());
}

/// The wallet's migrations before the ledger, then three wallets as the seed left them,
/// then the ledger's migration: nobody's points change, exchanged rewards stay exchanged.
async fn existing_wallets_become_ledger_entries_with_the_same_points(db: TestDatabase) {
    let rewards: Vec<Uuid> = (0..4).map(|_| new_id()).collect();
    let gift = new_id();
    let legacy = format!(
        "INSERT INTO wallet_items (reward_id, mission_id, customer_id, points, status, gift_id, version, gift_code, \
         exchange_request_id) VALUES \
         ('{r0}', '{m}', 'c-old', 10, 'ISSUED', NULL, 0, NULL, NULL), \
         ('{r1}', '{m}', 'c-old', 100, 'EXCHANGED', '{gift}', 1, 'game-skin', 'x-1'), \
         ('{r2}', '{m}', 'c-old', 50, 'ISSUED', NULL, 0, NULL, NULL), \
         ('{r3}', '{m}', 'c-spent', 10, 'EXCHANGED', '{gift2}', 1, 'coffee', NULL);",
        r0 = rewards[0],
        r1 = rewards[1],
        r2 = rewards[2],
        r3 = rewards[3],
        m = new_id(),
        gift2 = new_id(),
    );
    let before_ledger = 3;
    if let Some(path) = db.url.strip_prefix("sqlite://") {
        let mut c = SqliteConnection::establish(path).unwrap();
        for _ in 0..before_ledger {
            c.run_next_migration(Source(&SQLITE)).unwrap();
        }
        c.batch_execute(&legacy).unwrap();
    } else {
        let mut c = PgConnection::establish(&db.url).unwrap();
        for _ in 0..before_ledger {
            c.run_next_migration(Source(&POSTGRES)).unwrap();
        }
        c.batch_execute(&legacy).unwrap();
    }
    let (store, repo) = open(&db).await;
    let old = CustomerId::new("c-old").unwrap();
    let spent = CustomerId::new("c-spent").unwrap();
    assert_eq!(repo.account(&old).await.unwrap(), Account { customer_id: old.clone(), balance: 60, entries: 4 });
    assert_eq!(repo.account(&spent).await.unwrap().balance, 0);
    assert_eq!((sum_of_entries(&store, "c-old").await, sum_of_entries(&store, "c-spent").await), (60, 0));
    let entries = repo.ledger(&old, None, PageRequest::default()).await.unwrap().items;
    let mut by_seq: Vec<_> = entries.iter().map(|e| (e.seq, e.kind, e.amount, e.balance_after)).collect();
    by_seq.sort_unstable_by_key(|e| e.0);
    assert_eq!(
        by_seq,
        vec![
            (1, EntryKind::Earned, 10, 10),
            (2, EntryKind::Earned, 100, 110),
            (3, EntryKind::Earned, 50, 160),
            (4, EntryKind::Spent, -100, 60)
        ]
    );
    let exchanged = repo.get(rewards[1]).await.unwrap().unwrap();
    assert_eq!((exchanged.status, exchanged.remaining, exchanged.gift_id), (ItemStatus::Exchanged, 0, Some(gift)));
    assert_eq!(repo.get(rewards[2]).await.unwrap().unwrap().remaining, 50);
    assert_eq!(repo.lots(&old).await.unwrap().len(), 2);
    // the exchange's request id still answers it
    let past = repo.find_spend(&old, "x-1").await.unwrap().expect("the past exchange is a spend");
    assert_eq!(
        (past.gift_id, past.reward_id, past.cost, past.gift_code.as_str()),
        (gift, Some(rewards[1]), 100, "game-skin")
    );
    assert_eq!(past.draws, vec![Draw { reward_id: rewards[1], points: 100 }]);
    // and the account goes on from there
    earn(&repo, 5).await;
    assert_eq!(repo.account(&customer()).await.unwrap().balance, 5);
}

store_adapter::on_both_backends!(
    a_reward_is_issued_into_one_wallet_once_and_earns_its_points_once,
    a_spend_commits_its_entry_lots_and_draws_at_once_and_the_balance_is_the_sum_of_entries,
    two_spends_from_one_balance_cannot_both_commit_and_a_request_id_makes_one_spend,
    the_balance_never_goes_below_zero_and_entries_are_never_changed,
    one_spending_lease_per_customer_taken_over_once_stale,
    existing_wallets_become_ledger_entries_with_the_same_points,
);
