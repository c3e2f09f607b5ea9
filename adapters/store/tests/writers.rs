//! Writer sessions on PostgreSQL: customers' units commit beside each other, one
//! customer's in order, and a session that hangs shows in the readiness probe.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::RunQueryDsl;
use kernel::StoreError;
use store_adapter::testing::TestDatabase;
use store_adapter::{AnyConnection, Migrations, PostgresSizes, Store};

static NONE: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("tests/no_migrations");

async fn open(db: &TestDatabase, writers: usize) -> Store {
    let sizes = PostgresSizes { pool: None, writers: Some(writers) };
    Store::open_sized(&db.url, Migrations { sqlite: &NONE, postgres: &NONE }, sizes).await.unwrap()
}

fn sleep(seconds: f64) -> impl Fn(&mut AnyConnection) -> Result<(), StoreError> + Send + 'static {
    move |c| {
        diesel::sql_query(format!("SELECT pg_sleep({seconds})"))
            .execute(c)
            .map(drop)
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }
}

fn nothing(c: &mut AnyConnection) -> Result<(), StoreError> {
    diesel::sql_query("SELECT 1").execute(c).map(drop).map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// While customer `slow`'s unit holds its session for 0.6 s, 16 other customers write and
/// a second unit of `slow` waits. Returns which of the others answered before the slow
/// unit did, and when the second `slow` unit answered relative to the first.
async fn one_slow_customer(store: &Store) -> (usize, bool) {
    let order = Arc::new(Mutex::new(Vec::<String>::new()));
    let slow = {
        let (store, order) = (store.clone(), order.clone());
        tokio::spawn(async move {
            store.write_for("c-slow", sleep(0.6)).await.unwrap();
            order.lock().unwrap().push("slow".into());
        })
    };
    // The slow unit is in its session before the others are sent.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let mut others = Vec::new();
    for i in 0..16 {
        let (store, order) = (store.clone(), order.clone());
        others.push(tokio::spawn(async move {
            store.write_for(&format!("c-{i}"), nothing).await.unwrap();
            order.lock().unwrap().push(format!("c-{i}"));
        }));
    }
    let again = {
        let (store, order) = (store.clone(), order.clone());
        tokio::spawn(async move {
            store.write_for("c-slow", nothing).await.unwrap();
            order.lock().unwrap().push("slow again".into());
        })
    };
    slow.await.unwrap();
    again.await.unwrap();
    for o in others {
        o.await.unwrap();
    }
    let order = order.lock().unwrap().clone();
    let at = |name: &str| order.iter().position(|o| o == name).unwrap();
    (at("slow"), at("slow again") > at("slow"))
}

#[tokio::test]
async fn other_customers_commit_while_one_customers_unit_is_slow_and_its_next_unit_waits_its_turn() {
    let db = TestDatabase::postgres();
    let store = open(&db, 4).await;
    let (before_slow, in_order) = one_slow_customer(&store).await;
    // 16 customers over 4 sessions: those not sharing the slow one's session (about
    // three quarters) answer while it sleeps.
    assert!(before_slow >= 4, "only {before_slow} of 16 other customers committed beside the slow one");
    assert!(in_order, "a customer's second unit answered before its first");
}

#[tokio::test]
async fn with_one_writer_session_every_unit_waits_for_the_slow_one() {
    // What the sessions change: one session commits one batch at a time.
    let db = TestDatabase::postgres();
    let store = open(&db, 1).await;
    let (before_slow, in_order) = one_slow_customer(&store).await;
    assert_eq!(before_slow, 0);
    assert!(in_order);
}

#[tokio::test]
async fn a_hung_writer_session_makes_the_store_not_ready() {
    let db = TestDatabase::postgres();
    let store = open(&db, 4).await;
    assert!(store.ping(Duration::from_secs(2)).await);
    // Hold one session that is not the first (the one unkeyed work takes).
    let key = (0..).map(|i| format!("h-{i}")).find(|k| store.writer_session(k).0 != 0).unwrap();
    assert_eq!(store.writer_session(&key).1, 4);
    let held = Instant::now();
    let hang = {
        let store = store.clone();
        tokio::spawn(async move { store.write_for(&key, sleep(1.5)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!store.ping(Duration::from_millis(500)).await, "ping passed while a writer session hung");
    hang.await.unwrap().unwrap();
    assert!(held.elapsed() >= Duration::from_millis(1500));
    assert!(store.ping(Duration::from_secs(2)).await, "ready again once the session is free");
}

#[tokio::test]
async fn sqlite_keeps_one_writer_whatever_is_asked() {
    let db = TestDatabase::sqlite();
    let store = open(&db, 4).await;
    assert_eq!(store.writer_session("c-1"), (0, 1));
}

fn message(n: u8) -> store_adapter::outbox::OutboxMessage {
    let meta =
        kernel::EventMeta::first(kernel::new_id(), "req", kernel::CustomerId::new("c-1").unwrap(), chrono::Utc::now());
    store_adapter::outbox::OutboxMessage::new(&meta, "game.test.v1.thing", "game.test.v1.Thing", vec![n])
}

/// A unit that holds the writer for 0.3 s, started 0.1 s ago: units queued now share the
/// next batch.
async fn hold_the_writer(store: &Store) -> tokio::task::JoinHandle<Result<(), StoreError>> {
    let store = store.clone();
    let hold = move |c: &mut AnyConnection| match c {
        AnyConnection::Postgresql(_) => sleep(0.3)(c),
        AnyConnection::Sqlite(_) => {
            std::thread::sleep(Duration::from_millis(300));
            Ok(())
        }
    };
    let slow = tokio::spawn(async move { store.write(hold).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    slow
}

async fn answers(units: Vec<tokio::task::JoinHandle<Result<(), StoreError>>>) -> Vec<Result<(), StoreError>> {
    let mut answers = Vec::new();
    for u in units {
        answers.push(u.await.unwrap());
    }
    answers
}

/// Ten units queued behind a slow one (so they share the next batch), the sixth failing
/// after it wrote. Returns how many times each unit's work ran, and what each answered.
async fn a_batch_with_one_failing_unit(store: &Store) -> (Vec<usize>, Vec<Result<(), StoreError>>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let runs: Arc<Vec<AtomicUsize>> = Arc::new((0..10).map(|_| AtomicUsize::new(0)).collect());
    let slow = hold_the_writer(store).await;
    let mut units = Vec::new();
    for n in 0..10u8 {
        let (store, runs, m) = (store.clone(), runs.clone(), message(n));
        units.push(tokio::spawn(async move {
            store
                .write(move |c| {
                    runs[usize::from(n)].fetch_add(1, Ordering::SeqCst);
                    store_adapter::outbox::append(c, std::slice::from_ref(&m))?;
                    if n == 5 { Err(StoreError::Conflict) } else { Ok(()) }
                })
                .await
        }));
    }
    slow.await.unwrap().unwrap();
    let answers = answers(units).await;
    (runs.iter().map(|r| r.load(Ordering::SeqCst)).collect(), answers)
}

#[tokio::test]
async fn on_postgresql_a_batch_runs_without_savepoints_and_again_with_them_when_a_unit_fails() {
    let db = TestDatabase::postgres();
    let store = open(&db, 1).await;
    let (runs, answers) = a_batch_with_one_failing_unit(&store).await;
    // The failing unit alone failed, and only the others' events were committed, once.
    for (n, a) in answers.iter().enumerate() {
        assert_eq!(a.clone(), if n == 5 { Err(StoreError::Conflict) } else { Ok(()) }, "unit {n}");
    }
    assert_eq!(store.outbox_len().await.unwrap(), 9);
    // First run without savepoints stopped at the failing unit; the batch ran again with
    // them: the units up to it ran twice, those after it once.
    assert_eq!(runs, vec![2, 2, 2, 2, 2, 2, 1, 1, 1, 1]);
    // The next batches use savepoints from the start (a failing unit is likely again).
    let (runs, _) = a_batch_with_one_failing_unit(&store).await;
    assert_eq!(runs, vec![1; 10]);
}

#[tokio::test]
async fn on_sqlite_every_unit_has_its_savepoint_and_runs_once() {
    let db = TestDatabase::sqlite();
    let store = open(&db, 1).await;
    let (runs, answers) = a_batch_with_one_failing_unit(&store).await;
    assert_eq!(answers.iter().filter(|a| a.is_err()).count(), 1);
    assert_eq!(store.outbox_len().await.unwrap(), 9);
    assert_eq!(runs, vec![1; 10]);
}

/// Ten handlers' units queued behind a slow one (so they share the next batch), each
/// recording the event it handled and appending one event; the sixth's event was already
/// handled (a redelivery). Returns how many times each unit's work ran, and their answers.
async fn a_batch_with_one_redelivered_event(store: &Store) -> (Vec<usize>, Vec<Result<(), StoreError>>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let handled = kernel::Inbound { consumer: "test-consumer", event_id: kernel::new_id() };
    store.write_handled_for("c-1", Some(handled), Vec::new(), |_| Ok(())).await.unwrap();
    let runs: Arc<Vec<AtomicUsize>> = Arc::new((0..10).map(|_| AtomicUsize::new(0)).collect());
    let slow = hold_the_writer(store).await;
    let mut units = Vec::new();
    for n in 0..10u8 {
        let inbound =
            if n == 5 { handled } else { kernel::Inbound { consumer: "test-consumer", event_id: kernel::new_id() } };
        let (store, runs, m) = (store.clone(), runs.clone(), message(n));
        units.push(tokio::spawn(async move {
            store
                .write_handled_for("c-1", Some(inbound), vec![m], move |_| {
                    runs[usize::from(n)].fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
                .await
        }));
        // queued in this order
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    slow.await.unwrap().unwrap();
    let answers = answers(units).await;
    (runs.iter().map(|r| r.load(Ordering::SeqCst)).collect(), answers)
}

/// What a redelivered event leaves, on either backend: its unit hears `Duplicate`, the
/// others' events are committed once each, in the order their units were queued, and the
/// inbox holds every event once.
async fn only_the_redelivered_event_is_refused(store: &Store, answers: &[Result<(), StoreError>]) {
    for (n, a) in answers.iter().enumerate() {
        assert_eq!(a.clone(), if n == 5 { Err(StoreError::Duplicate) } else { Ok(()) }, "unit {n}");
    }
    let published: Vec<u8> =
        store.claim_outbox(100, Duration::from_secs(30)).await.unwrap().iter().map(|p| p.message.payload[0]).collect();
    assert_eq!(published, vec![0, 1, 2, 3, 4, 6, 7, 8, 9]);
    assert_eq!(store_adapter::inbox::rows(store).await.unwrap(), 10);
}

#[tokio::test]
async fn on_postgresql_a_batch_writes_every_units_inbox_row_and_events_at_its_end_and_a_redelivery_reruns_it() {
    let db = TestDatabase::postgres();
    let store = open(&db, 1).await;
    let (runs, answers) = a_batch_with_one_redelivered_event(&store).await;
    only_the_redelivered_event_is_refused(&store, &answers).await;
    // Without savepoints every unit's work ran before the inbox rows were written at the
    // end (one statement), where the redelivery showed; with them, the redelivered unit
    // heard `Duplicate` before its work, and the others ran again.
    assert_eq!(runs, vec![2, 2, 2, 2, 2, 1, 2, 2, 2, 2]);
}

#[tokio::test]
async fn on_sqlite_a_redelivered_event_is_refused_before_its_work() {
    let db = TestDatabase::sqlite();
    let store = open(&db, 1).await;
    let (runs, answers) = a_batch_with_one_redelivered_event(&store).await;
    only_the_redelivered_event_is_refused(&store, &answers).await;
    assert_eq!(runs, vec![1, 1, 1, 1, 1, 0, 1, 1, 1, 1]);
}

#[tokio::test]
async fn on_postgresql_a_prepared_update_is_kept_prepared_where_diesel_keeps_none() {
    use diesel::prelude::*;
    use store_adapter::schema::outbox::dsl as o;
    let db = TestDatabase::postgres();
    let store = open(&db, 1).await;
    for _ in 0..3 {
        store
            .write(|c| {
                let plain = diesel::update(o::outbox.filter(o::seq.eq(1))).set(o::subject.eq("plain"));
                plain.execute(c).map_err(store_adapter::db)?;
                let prepared = diesel::update(o::outbox.filter(o::seq.eq(2))).set(o::event_type.eq("prepared"));
                store_adapter::Prepared(prepared).execute(c).map_err(store_adapter::db)
            })
            .await
            .unwrap();
    }
    let held = |start| store_adapter::testing::prepared_in_writer_session(&store, start);
    assert_eq!(held(r#"UPDATE "outbox" SET "subject""#).await, 0, "diesel keeps no UPDATE prepared");
    assert_eq!(held(r#"UPDATE "outbox" SET "event_type""#).await, 1, "parsed and planned once for three calls");
}

#[tokio::test]
async fn on_postgresql_a_batchs_inbox_rows_and_events_are_one_statement_kept_prepared_and_every_field_survives() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let db = TestDatabase::postgres();
    let store = open(&db, 1).await;
    let runs = Arc::new(AtomicUsize::new(0));
    let mut sent = Vec::new();
    for batch in 0..2u8 {
        let slow = hold_the_writer(&store).await;
        let mut units = Vec::new();
        for n in 0..5u8 {
            let mut m = message(batch * 5 + n);
            if n % 2 == 1 {
                m.traceparent = Some(format!("00-{:032x}-{:016x}-01", n + 1, n + 1));
            }
            sent.push(m.clone());
            let inbound = kernel::Inbound { consumer: "test-consumer", event_id: kernel::new_id() };
            let (store, runs) = (store.clone(), runs.clone());
            units.push(tokio::spawn(async move {
                store
                    .write_handled_for("c-1", Some(inbound), vec![m], move |_| {
                        runs.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    })
                    .await
            }));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        slow.await.unwrap().unwrap();
        assert!(answers(units).await.iter().all(Result::is_ok));
    }
    // Each unit ran once: the batch's rows were written without a second, careful run.
    assert_eq!(runs.load(Ordering::SeqCst), 10);
    let claimed: Vec<_> =
        store.claim_outbox(100, Duration::from_secs(30)).await.unwrap().into_iter().map(|p| p.message).collect();
    assert_eq!(claimed, sent, "every event, every field, in the order of the units");
    assert_eq!(store_adapter::inbox::rows(&store).await.unwrap(), 10);
    let held = |start| store_adapter::testing::prepared_in_writer_session(&store, start);
    assert_eq!(held("WITH handled AS").await, 1, "one statement for both tables, planned once for two batches");
}
