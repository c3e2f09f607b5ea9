//! The outbox and inbox on both backends.

use std::time::Duration;

use chrono::Utc;
use kernel::{CustomerId, EventMeta, Inbound, StoreError, new_id};
use store_adapter::testing::TestDatabase;
use store_adapter::{Migrations, Store, inbox, outbox};

static NONE: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("tests/no_migrations");

async fn open(db: &TestDatabase) -> Store {
    Store::open(&db.url, Migrations { sqlite: &NONE, postgres: &NONE }).await.unwrap()
}

fn message(n: usize) -> outbox::OutboxMessage {
    let meta = EventMeta::first(new_id(), "req", CustomerId::new("c-1").unwrap(), Utc::now());
    outbox::OutboxMessage::new(&meta, "game.test.v1.thing", "game.test.v1.Thing", vec![n as u8])
}

async fn claims_in_commit_order_and_leases_rows(db: TestDatabase) {
    let store = open(&db).await;
    let messages: Vec<_> = (0..5).map(message).collect();
    let m = messages.clone();
    store.write(move |c| outbox::append(c, &m)).await.unwrap();

    let first = store.claim_outbox(3, Duration::from_secs(30)).await.unwrap();
    assert_eq!(first.iter().map(|p| p.message.payload[0]).collect::<Vec<_>>(), vec![0, 1, 2]);
    // claimed rows are not handed out twice while the lease holds
    let second = store.claim_outbox(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(second.iter().map(|p| p.message.payload[0]).collect::<Vec<_>>(), vec![3, 4]);
    assert_eq!(second[0].message, messages[3]);

    store.delete_outbox(first.iter().map(|p| p.seq).collect()).await.unwrap();
    store.release_outbox(second.iter().map(|p| p.seq).collect()).await.unwrap();
    let again = store.claim_outbox(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(again.len(), 2, "released rows are claimable at once");
    assert_eq!(store.outbox_len().await.unwrap(), 2);
}

async fn a_rolled_back_transaction_leaves_no_event(db: TestDatabase) {
    let store = open(&db).await;
    let m = message(1);
    let err = store
        .write(move |c| {
            outbox::append(c, std::slice::from_ref(&m))?;
            Err::<(), _>(StoreError::Conflict)
        })
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::Conflict);
    assert_eq!(store.outbox_len().await.unwrap(), 0);
}

async fn the_inbox_refuses_an_event_twice(db: TestDatabase) {
    let store = open(&db).await;
    let inbound = Inbound { consumer: "test-consumer", event_id: new_id() };
    store.write(move |c| inbox::record(c, inbound)).await.unwrap();
    let again = store.write(move |c| inbox::record(c, inbound)).await;
    assert_eq!(again, Err(StoreError::Duplicate));
    // another consumer may handle the same event
    store.write(move |c| inbox::record(c, Inbound { consumer: "other", ..inbound })).await.unwrap();
    assert!(store.ping(Duration::from_secs(1)).await);
}

/// Concurrent units of work (on SQLite, committed together in one group transaction):
/// each caller hears its own outcome, and a failing unit takes back only its own writes.
async fn concurrent_writes_succeed_or_fail_one_by_one(db: TestDatabase) {
    let store = open(&db).await;
    let repeated = Inbound { consumer: "test-consumer", event_id: new_id() };
    let units: Vec<_> = (0..120)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let m = message(n);
                store
                    .write(move |c| {
                        outbox::append(c, std::slice::from_ref(&m))?;
                        match n % 4 {
                            0 => Err(StoreError::Conflict),
                            1 => inbox::record(c, repeated),
                            _ => Ok(()),
                        }
                    })
                    .await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for unit in units {
        outcomes.push(unit.await.unwrap());
    }
    let count = |wanted: &Result<(), StoreError>| outcomes.iter().filter(|o| *o == wanted).count();
    assert_eq!(count(&Err(StoreError::Conflict)), 30);
    assert_eq!(count(&Err(StoreError::Duplicate)), 29, "one unit recorded the event, the other 29 were refused");
    assert_eq!(count(&Ok(())), 61);
    assert_eq!(store.outbox_len().await.unwrap(), 61, "only the units that succeeded left an event");
}

/// A unit of work that panics fails with its writes rolled back, and the store goes on.
async fn a_panicking_unit_of_work_is_rolled_back_and_the_store_goes_on(db: TestDatabase) {
    let store = open(&db).await;
    let m = message(1);
    let panicked = store
        .write(move |c| -> Result<(), StoreError> {
            outbox::append(c, std::slice::from_ref(&m))?;
            panic!("a bug in a repository");
        })
        .await;
    assert!(matches!(panicked, Err(StoreError::Unavailable(_))), "{panicked:?}");
    assert_eq!(store.outbox_len().await.unwrap(), 0, "its writes were rolled back");
    store.write(|c| outbox::append(c, &[message(2)])).await.unwrap();
    assert_eq!(store.outbox_len().await.unwrap(), 1);
    assert!(store.ping(Duration::from_secs(1)).await);
}

store_adapter::on_both_backends!(
    a_panicking_unit_of_work_is_rolled_back_and_the_store_goes_on,
    claims_in_commit_order_and_leases_rows,
    a_rolled_back_transaction_leaves_no_event,
    the_inbox_refuses_an_event_twice,
    concurrent_writes_succeed_or_fail_one_by_one
);

#[cfg(unix)]
#[tokio::test]
async fn a_sqlite_database_and_its_wal_and_shm_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let db = TestDatabase::sqlite();
    let path = std::path::PathBuf::from(db.url.strip_prefix("sqlite://").unwrap());
    let store = open(&db).await;
    store.write(move |c| outbox::append(c, &[message(1)])).await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    // One an earlier version left readable by everyone is made private when opened.
    let old = TestDatabase::sqlite();
    let path = std::path::PathBuf::from(old.url.strip_prefix("sqlite://").unwrap());
    std::fs::write(&path, b"").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _store = open(&old).await;
    assert_eq!(mode(&path), 0o600);
}

/// On PostgreSQL concurrent units of work are group-committed: many of them run in one
/// server transaction (the same transaction id), so one WAL flush answers many callers,
/// and every one of them is durable (visible to a fresh session) once answered.
#[tokio::test]
async fn concurrent_units_on_postgresql_share_transactions_and_are_durable_when_answered() {
    use diesel::RunQueryDsl;
    use diesel::sql_types::BigInt;
    #[derive(diesel::QueryableByName)]
    struct Txid {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let db = TestDatabase::postgres();
    let store = open(&db).await;
    let units: Vec<_> = (0..64)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let m = message(n);
                store
                    .write(move |c| {
                        outbox::append(c, std::slice::from_ref(&m))?;
                        let tx: Txid = diesel::sql_query("SELECT txid_current() AS id")
                            .get_result(c)
                            .map_err(store_adapter::db)?;
                        Ok(tx.id)
                    })
                    .await
            })
        })
        .collect();
    let mut transactions = std::collections::BTreeSet::new();
    for unit in units {
        transactions.insert(unit.await.unwrap().unwrap());
    }
    assert!(transactions.len() <= 32, "64 concurrent units took {} transactions", transactions.len());
    // What was answered is committed: another session sees all 64 events.
    let mut other = <diesel::PgConnection as diesel::Connection>::establish(&db.url).unwrap();
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let seen: Count = diesel::sql_query("SELECT count(*) AS n FROM outbox").get_result(&mut other).unwrap();
    assert_eq!(seen.n, 64);
}

/// Two replicas' relays claiming from one PostgreSQL outbox at once never get the same
/// event (rows another holds are skipped), and between them claim every event.
#[tokio::test]
async fn on_postgresql_concurrent_claims_of_two_replicas_are_disjoint() {
    let db = TestDatabase::postgres();
    let (a, b) = (open(&db).await, open(&db).await);
    let messages: Vec<_> = (0..200).map(message).collect();
    a.write(move |c| outbox::append(c, &messages)).await.unwrap();
    let drain = |store: Store| {
        tokio::spawn(async move {
            let mut seqs = Vec::new();
            loop {
                let claimed = store.claim_outbox(7, Duration::from_secs(30)).await.unwrap();
                if claimed.is_empty() {
                    return seqs;
                }
                assert!(claimed.windows(2).all(|w| w[0].seq < w[1].seq), "in commit order");
                seqs.extend(claimed.into_iter().map(|p| p.seq));
            }
        })
    };
    let (by_a, by_b) = (drain(a.clone()), drain(b));
    let (by_a, by_b) = (by_a.await.unwrap(), by_b.await.unwrap());
    let mut all: Vec<i64> = by_a.iter().chain(&by_b).copied().collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), by_a.len() + by_b.len(), "no event claimed twice");
    assert_eq!(all.len(), 200, "every event claimed");
}

/// The relay's claim and its delete of what it published are planned for the outbox as it
/// is at each call. Kept prepared, PostgreSQL would plan them once, after five calls, for
/// any value: planned while the outbox was empty and just vacuumed, such a plan scans
/// (and sorts) the whole table, and the connection keeps it through a backlog of any size.
#[tokio::test]
async fn on_postgresql_the_relays_claim_and_delete_are_planned_for_the_outbox_as_it_is_at_each_call() {
    let db = TestDatabase::postgres();
    let store = open(&db).await;
    let mut other = <diesel::PgConnection as diesel::Connection>::establish(&db.url).unwrap();
    diesel::RunQueryDsl::execute(diesel::sql_query("VACUUM ANALYZE outbox"), &mut other).unwrap();
    for n in 0..8 {
        store.write(move |c| outbox::append(c, &[message(n)])).await.unwrap();
        let claimed = store.claim_outbox(10, Duration::from_secs(30)).await.unwrap();
        assert_eq!(claimed.len(), 1);
        store.delete_outbox(claimed.iter().map(|p| p.seq).collect()).await.unwrap();
        store.outbox_backlog().await.unwrap();
    }
    let held = |start| store_adapter::testing::prepared_in_writer_session(&store, start);
    assert_eq!(held(r#"SELECT "outbox"."seq""#).await, 0, "the claim's read");
    assert_eq!(held(r#"DELETE FROM "outbox""#).await, 0, "the delete of what was published");
    assert_eq!(store.outbox_len().await.unwrap(), 0);
}
