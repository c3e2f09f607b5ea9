use kernel::{EventMeta, new_id};
use mission_domain::rules::Decision;
use mission_domain::{AchieveMission, Caller, Catalog, Reporter};
use store_adapter::testing::TestDatabase;

use super::*;

async fn repo(db: &TestDatabase) -> (SqlMissions, Store) {
    let store = Store::open(&db.url, MIGRATIONS).await.unwrap();
    (SqlMissions::new(store.clone()), store)
}

fn code(c: &str) -> MissionCode {
    MissionCode::new(c).unwrap()
}

/// A mission of `code` for customer c-11 by `request`, in `slot`.
fn achieved(code: &str, request: &str, slot: Option<&str>) -> (Mission, Vec<Envelope<MissionEvent>>) {
    let by = Caller { kind: Reporter::GameServer, subject: "studio-1".into() };
    let cmd = AchieveMission::new("c-11", code, request, by).unwrap();
    let catalog = Catalog::default();
    let rule = catalog.find(&cmd.code).unwrap();
    let decision = Decision { slot: slot.map(str::to_owned) };
    let (m, e) = Mission::achieve(&cmd, rule, decision, new_id(), Utc::now());
    let meta = kernel::EventMeta::first(m.id, request, m.customer_id.clone(), Utc::now());
    (m, vec![Envelope { meta, event: e }])
}

fn mission(request: &str) -> (Mission, Vec<Envelope<MissionEvent>>) {
    achieved("match-played", request, None)
}

async fn stores_and_finds_missions_with_their_events(db: TestDatabase) {
    let (repo, store) = repo(&db).await;
    let (m, events) = achieved("daily-login", "r1", Some("2026-11-26#1"));
    repo.insert(&m, events).await.unwrap();
    let mut back = repo.get(m.id).await.unwrap().unwrap();
    back.achieved_at = m.achieved_at; // storage keeps microseconds
    assert_eq!(back, m);
    assert_eq!((back.slot.as_deref(), back.reported_by.as_str()), (Some("2026-11-26#1"), "studio-1"));
    assert_eq!(repo.find_by_request(&m.customer_id, "r1").await.unwrap().unwrap().id, m.id);
    assert_eq!(repo.list_by_customer(&m.customer_id, PageRequest::default()).await.unwrap().items.len(), 1);
    assert!(repo.get(new_id()).await.unwrap().is_none());
    assert_eq!(store.outbox_len().await.unwrap(), 1);
}

async fn the_same_request_twice_is_a_duplicate_and_writes_nothing(db: TestDatabase) {
    let (repo, store) = repo(&db).await;
    repo.insert(&mission("r1").0, mission("r1").1).await.unwrap();
    let (again, events) = mission("r1");
    assert_eq!(repo.insert(&again, events).await, Err(StoreError::Duplicate));
    assert_eq!(store.outbox_len().await.unwrap(), 1);
}

async fn a_slot_is_taken_once_per_customer_and_mission_and_unlimited_missions_take_none(db: TestDatabase) {
    let (repo, store) = repo(&db).await;
    let (first, events) = achieved("daily-login", "r1", Some("2026-11-26#1"));
    repo.insert(&first, events).await.unwrap();
    // another request for the same slot: refused by the unique key, nothing written
    let (second, events) = achieved("daily-login", "r2", Some("2026-11-26#1"));
    assert_eq!(repo.insert(&second, events).await, Err(StoreError::Duplicate));
    // the same slot name for another mission or another customer is another slot
    let (other_mission, events) = achieved("tutorial-complete", "r3", Some("2026-11-26#1"));
    repo.insert(&other_mission, events).await.unwrap();
    let (mut other_customer, events) = achieved("daily-login", "r4", Some("2026-11-26#1"));
    other_customer.customer_id = CustomerId::new("c-12").unwrap();
    repo.insert(&other_customer, events).await.unwrap();
    // unlimited: no slot, any number of rows
    for i in 0..3 {
        let (m, events) = mission(&format!("u{i}"));
        repo.insert(&m, events).await.unwrap();
    }
    assert_eq!(store.outbox_len().await.unwrap(), 6);
}

async fn fifty_concurrent_inserts_of_one_slot_store_exactly_one(db: TestDatabase) {
    let (repo, store) = repo(&db).await;
    let inserts = (0..50).map(|i| {
        let repo = repo.clone();
        async move {
            let (m, events) = achieved("first-win", &format!("w{i}"), Some("once#1"));
            repo.insert(&m, events).await
        }
    });
    let results = futures::future::join_all(inserts).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    assert!(results.iter().all(|r| matches!(r, Ok(()) | Err(StoreError::Duplicate))), "{results:?}");
    assert_eq!(store.outbox_len().await.unwrap(), 1);
}

async fn history_counts_the_periods_slots_and_the_prerequisites_achieved(db: TestDatabase) {
    let (repo, _) = repo(&db).await;
    for (code, request, slot) in [
        ("daily-login", "a", Some("2026-11-25#1")),
        ("daily-login", "b", Some("2026-11-26#1")),
        ("daily-login", "c", Some("2026-11-26#2")),
        ("weekly-streak", "d", Some("2026-W48#1")),
        ("tutorial-complete", "e", Some("once#1")),
        ("match-played", "f", None),
    ] {
        let (m, events) = achieved(code, request, slot);
        repo.insert(&m, events).await.unwrap();
    }
    let c = CustomerId::new("c-11").unwrap();
    let h = repo.history(&c, &code("daily-login"), Some("2026-11-26"), &[]).await.unwrap();
    assert_eq!(h.in_period, 2);
    assert!(h.achieved.is_empty());
    let h = repo.history(&c, &code("daily-login"), Some("2026-11-27"), &[]).await.unwrap();
    assert_eq!(h.in_period, 0);
    let h = repo.history(&c, &code("tutorial-complete"), Some("once"), &[]).await.unwrap();
    assert_eq!(h.in_period, 1);
    let requires = [code("tutorial-complete"), code("first-win"), code("match-played")];
    let h = repo.history(&c, &code("weekly-streak"), None, &requires).await.unwrap();
    assert_eq!(h.in_period, 0);
    assert_eq!(h.achieved, [code("match-played"), code("tutorial-complete")].into_iter().collect());
    let stranger = CustomerId::new("c-99").unwrap();
    assert_eq!(
        repo.history(&stranger, &code("daily-login"), Some("2026-11-26"), &requires).await.unwrap(),
        History::default()
    );
}

async fn updates_check_the_version_and_the_inbox(db: TestDatabase) {
    let (repo, store) = repo(&db).await;
    let (mut m, events) = mission("r1");
    repo.insert(&m, events).await.unwrap();
    let event = m.record_reward(new_id()).unwrap().unwrap();
    let meta = kernel::EventMeta::first(m.id, "x", m.customer_id.clone(), Utc::now());
    let inbound = Inbound { consumer: "mission-record-reward", event_id: new_id() };
    repo.update(&m, vec![Envelope { meta: meta.clone(), event: event.clone() }], Some(inbound)).await.unwrap();
    assert_eq!(repo.get(m.id).await.unwrap().unwrap().version, 1);
    // same inbound again: duplicate, nothing written
    let stale = Mission { version: 1, ..m.clone() };
    assert_eq!(repo.update(&stale, vec![], Some(inbound)).await, Err(StoreError::Duplicate));
    // stale version: conflict
    let other = Inbound { consumer: "mission-record-reward", event_id: new_id() };
    assert_eq!(repo.update(&m, vec![], Some(other)).await, Err(StoreError::Conflict));
    assert_eq!(store.outbox_len().await.unwrap(), 2);
}

async fn a_first_reward_is_recorded_without_a_read_and_nothing_is_written_when_it_cannot_be(db: TestDatabase) {
    let (repo, store) = repo(&db).await;
    let (m, events) = mission("r1");
    repo.insert(&m, events).await.unwrap();
    let rewarded = |reward| {
        let meta = EventMeta::first(m.id, "r1", m.customer_id.clone(), Utc::now());
        vec![Envelope { meta, event: Mission::rewarded(m.id, &m.customer_id, reward) }]
    };
    let inbound = || Inbound { consumer: "mission-record-reward", event_id: new_id() };
    let (reward, first) = (new_id(), inbound());
    assert_eq!(repo.record_reward(m.id, &m.customer_id, reward, rewarded(reward), first).await, Ok(true));
    let stored = repo.get(m.id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.reward_id, stored.version), (MissionStatus::Rewarded, Some(reward), 1));
    assert_eq!(store.outbox_len().await.unwrap(), 2, "achieved + rewarded");
    // the same event again: a duplicate
    assert_eq!(
        repo.record_reward(m.id, &m.customer_id, reward, rewarded(reward), first).await,
        Err(StoreError::Duplicate)
    );
    // a second reward, another customer's claim, a missing mission: nothing written,
    // not the event, not the inbox row (the event can still be handled after a read)
    let (other, late) = (new_id(), inbound());
    assert_eq!(repo.record_reward(m.id, &m.customer_id, other, rewarded(other), late).await, Ok(false));
    let stranger = CustomerId::new("c-99").unwrap();
    assert_eq!(repo.record_reward(m.id, &stranger, other, rewarded(other), late).await, Ok(false));
    assert_eq!(repo.record_reward(new_id(), &m.customer_id, other, rewarded(other), late).await, Ok(false));
    assert_eq!(repo.get(m.id).await.unwrap().unwrap().reward_id, Some(reward));
    assert_eq!(store.outbox_len().await.unwrap(), 2);
    repo.update(&stored, vec![], Some(late)).await.unwrap();
}

async fn a_long_history_is_read_newest_first_page_by_page_without_gaps_or_repeats(db: TestDatabase) {
    let (repo, _) = repo(&db).await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let (m, events) = mission(&format!("p{i}"));
        repo.insert(&m, events).await.unwrap();
        ids.push(m.id);
    }
    let (mut stranger, events) = mission("s1");
    stranger.customer_id = CustomerId::new("c-99").unwrap();
    repo.insert(&stranger, events).await.unwrap();
    ids.reverse();
    let c = CustomerId::new("c-11").unwrap();
    let first = repo.list_by_customer(&c, PageRequest { size: 3, before: None }).await.unwrap();
    assert_eq!(first.items.iter().map(|m| m.id).collect::<Vec<_>>(), ids[..3]);
    assert_eq!(first.next, Some(ids[2]));
    let second = repo.list_by_customer(&c, PageRequest { size: 3, before: first.next }).await.unwrap();
    assert_eq!(second.items.iter().map(|m| m.id).collect::<Vec<_>>(), ids[3..6]);
    let last = repo.list_by_customer(&c, PageRequest { size: 3, before: second.next }).await.unwrap();
    assert_eq!((last.items.iter().map(|m| m.id).collect::<Vec<_>>(), last.next), (ids[6..].to_vec(), None));
    // a cursor of another customer's mission reads only this customer's rows
    let other = repo.list_by_customer(&c, PageRequest { size: 50, before: Some(stranger.id) }).await.unwrap();
    assert!(other.items.iter().all(|m| m.customer_id == c));
}

/// A year of history: 100,000 missions of one customer (and some of another), written
/// in bulk; the newest page and a page deep in the history each read in well under
/// 50 ms, because the keyset cursor starts from the index, not from an offset.
async fn a_page_costs_the_same_at_the_end_of_100000_missions_as_at_the_start(database: TestDatabase) {
    let (repo, store) = repo(&database).await;
    let rows: Vec<Row> = (0..100_000)
        .map(|i| {
            let (m, _) = mission(&format!("w{i}"));
            let mut row = Row::from(&m);
            if i % 10 == 0 {
                row.customer_id = "c-other".into();
            }
            row
        })
        .collect();
    let ids: Vec<String> = rows.iter().filter(|r| r.customer_id == "c-11").map(|r| r.id.clone()).collect();
    for chunk in rows.chunks(4_000) {
        let chunk = chunk.to_vec();
        store
            .write(move |c| {
                let insert = diesel::insert_into(missions::table).values(&chunk);
                match c {
                    store_adapter::AnyConnection::Sqlite(c) => insert.execute(c),
                    store_adapter::AnyConnection::Postgresql(c) => insert.execute(c),
                }
                .map(drop)
                .map_err(db)
            })
            .await
            .unwrap();
    }
    let c = CustomerId::new("c-11").unwrap();
    repo.list_by_customer(&c, PageRequest::default()).await.unwrap(); // a warm pool
    let deep = Uuid::try_parse(&ids[500]).unwrap();
    for (before, expected_first) in [(None, ids.len() - 1), (Some(deep), 499)] {
        // the best of three: a scan of the history would be slow every time, while a
        // busy machine (CI shares two cores) only slows some reads
        let mut took = std::time::Duration::MAX;
        let mut page = None;
        for _ in 0..3 {
            let at = std::time::Instant::now();
            page = Some(repo.list_by_customer(&c, PageRequest { size: 50, before }).await.unwrap());
            took = took.min(at.elapsed());
        }
        let page = page.unwrap();
        assert_eq!(page.items.len(), 50);
        assert_eq!(page.items[0].id.to_string(), ids[expected_first]);
        assert!(took < std::time::Duration::from_millis(50), "{before:?}: {took:?}");
    }
}

store_adapter::on_both_backends!(
    a_first_reward_is_recorded_without_a_read_and_nothing_is_written_when_it_cannot_be,
    a_page_costs_the_same_at_the_end_of_100000_missions_as_at_the_start,
    a_long_history_is_read_newest_first_page_by_page_without_gaps_or_repeats,
    stores_and_finds_missions_with_their_events,
    the_same_request_twice_is_a_duplicate_and_writes_nothing,
    a_slot_is_taken_once_per_customer_and_mission_and_unlimited_missions_take_none,
    fifty_concurrent_inserts_of_one_slot_store_exactly_one,
    history_counts_the_periods_slots_and_the_prerequisites_achieved,
    updates_check_the_version_and_the_inbox
);
