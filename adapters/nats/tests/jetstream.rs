//! The NATS adapter against a real nats-server (the pinned release in CI: `config/nats-version`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use chrono::Utc;
use futures::StreamExt;
use kernel::{CustomerId, EventMeta, new_id};
use nats_adapter::consumer::{self, ConsumerSpec, Delivery, HandleError, Handler};
use nats_adapter::testing::NatsServer;
use nats_adapter::{NatsSettings, envelope, kv, relay, streams};
use store_adapter::outbox::{self, OutboxMessage};
use store_adapter::testing::TestDatabase;
use store_adapter::{Migrations, Store};
use tokio_util::sync::CancellationToken;

static NONE: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("tests/no_migrations");

const TEST: streams::StreamSpec = streams::StreamSpec { name: "TEST", subjects: "game.test.v1.>" };

fn settings(nats: &NatsServer) -> NatsSettings {
    NatsSettings { max_deliver: 3, ack_wait_seconds: 5, ..NatsSettings::at(nats.url()) }
}

async fn js(nats: &NatsServer) -> (async_nats::Client, jetstream::Context) {
    let client = async_nats::connect(nats.url()).await.unwrap();
    (client.clone(), jetstream::new(client))
}

fn event(n: u8) -> OutboxMessage {
    let meta = EventMeta::first(new_id(), "req", CustomerId::new("c-1").unwrap(), Utc::now());
    OutboxMessage::new(&meta, "game.test.v1.thing", "game.test.v1.Thing", vec![n])
}

/// Publishes `m` as the relay would and waits for JetStream's ack.
async fn publish(js: &jetstream::Context, m: &OutboxMessage) {
    let message =
        jetstream::message::PublishMessage::build().payload(m.payload.clone().into()).headers(envelope::headers(m));
    js.send_publish(m.subject.clone(), message).await.unwrap().await.unwrap();
}

async fn all_payloads(js: &jetstream::Context, name: &str) -> Vec<Vec<u8>> {
    let mut stream = js.get_stream(name).await.unwrap();
    let count = stream.info().await.unwrap().state.messages;
    let mut out = Vec::new();
    for seq in 1..=count {
        if let Ok(m) = stream.get_raw_message(seq).await {
            out.push(m.payload.to_vec());
        }
    }
    out
}

#[tokio::test]
async fn the_relay_publishes_in_commit_order_with_headers_and_empties_the_outbox() {
    let nats = NatsServer::start();
    let (_, js) = js(&nats).await;
    streams::ensure(&js, TEST, 1).await.unwrap();
    let db = TestDatabase::sqlite();
    let store = Store::open(&db.url, Migrations { sqlite: &NONE, postgres: &NONE }).await.unwrap();
    let events: Vec<_> = (0..20).map(event).collect();
    let first_id = events[0].event_id.clone();
    store.write(move |c| outbox::append(c, &events)).await.unwrap();

    assert_eq!(relay::pass(&store, &js).await.unwrap(), 20);
    assert_eq!(store.outbox_len().await.unwrap(), 0);
    assert_eq!(all_payloads(&js, "TEST").await, (0..20).map(|n| vec![n]).collect::<Vec<_>>());
    let stream = js.get_stream("TEST").await.unwrap();
    let first = stream.get_raw_message(1).await.unwrap();
    let (meta, event_type) = envelope::meta(Some(&first.headers)).unwrap();
    assert_eq!(meta.event_id.to_string(), first_id);
    assert_eq!(event_type, "game.test.v1.Thing");
}

#[tokio::test]
async fn a_republished_event_is_dropped_by_deduplication() {
    let nats = NatsServer::start();
    let (_, js) = js(&nats).await;
    streams::ensure(&js, TEST, 1).await.unwrap();
    let db = TestDatabase::sqlite();
    let store = Store::open(&db.url, Migrations { sqlite: &NONE, postgres: &NONE }).await.unwrap();
    let e = event(7);
    // the same event in the outbox twice, as after a crash between publish and delete
    let (a, b) = (e.clone(), e);
    store.write(move |c| outbox::append(c, std::slice::from_ref(&a))).await.unwrap();
    relay::pass(&store, &js).await.unwrap();
    let mut again = b;
    again.payload = vec![7];
    store.write(move |c| outbox::append(c, std::slice::from_ref(&again))).await.unwrap();
    relay::pass(&store, &js).await.unwrap();
    assert_eq!(all_payloads(&js, "TEST").await.len(), 1);
}

#[tokio::test]
async fn the_outbox_waits_while_nats_is_down_and_drains_when_it_returns() {
    let mut nats = NatsServer::start();
    let settings = settings(&nats);
    let client = nats_adapter::connect(&settings, "test").await.unwrap();
    let js = jetstream::new(client.clone());
    streams::ensure(&js, TEST, 1).await.unwrap();
    let db = TestDatabase::sqlite();
    let store = Store::open(&db.url, Migrations { sqlite: &NONE, postgres: &NONE }).await.unwrap();
    let stop = CancellationToken::new();
    let relay = tokio::spawn(relay::run(store.clone(), client.clone(), js.clone(), stop.clone()));

    nats.stop();
    let events: Vec<_> = (0..10).map(event).collect();
    store.write(move |c| outbox::append(c, &events)).await.unwrap();
    store.notify_appended();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(store.outbox_len().await.unwrap(), 10, "nothing lost while NATS is down");

    nats.resume();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while store.outbox_len().await.unwrap() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "outbox did not drain");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, js2) = self::js(&nats).await;
    assert_eq!(all_payloads(&js2, "TEST").await.len(), 10);
    stop.cancel();
    relay.await.unwrap();
}

/// Fails the first delivery of every event, rejects payload 0xFF.
struct Flaky {
    seen: AtomicUsize,
    handled: tokio::sync::mpsc::UnboundedSender<(u8, i64)>,
}

impl Handler for Flaky {
    async fn handle(&self, d: &Delivery) -> Result<(), HandleError> {
        self.seen.fetch_add(1, Ordering::SeqCst);
        if d.payload[0] == 0xFF {
            return Err(HandleError::Reject("poison".into()));
        }
        if d.delivered == 1 {
            return Err(HandleError::Retry("not yet".into()));
        }
        self.handled.send((d.payload[0], d.delivered)).unwrap();
        Ok(())
    }
}

#[tokio::test]
async fn a_consumer_retries_with_backoff_and_dead_letters_poison() {
    let nats = NatsServer::start();
    let (_, js) = js(&nats).await;
    streams::ensure(&js, TEST, 1).await.unwrap();
    for payload in [1u8, 0xFF] {
        let m = event(payload);
        publish(&js, &m).await;
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let handler = Arc::new(Flaky { seen: AtomicUsize::new(0), handled: tx });
    let stop = CancellationToken::new();
    let spec = ConsumerSpec { stream: TEST, durable: "test-flaky", filter: "game.test.v1.thing" };
    let task = tokio::spawn(consumer::run(js.clone(), settings(&nats), spec, handler.clone(), stop.clone()));

    let (payload, delivered) = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
    assert_eq!((payload, delivered), (1, 2), "handled on the second delivery");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut dlq) = js.get_stream("DEADLETTER").await
            && dlq.info().await.unwrap().state.messages == 1
        {
            let m = dlq.get_raw_message(1).await.unwrap();
            assert_eq!(m.payload.to_vec(), vec![0xFF]);
            assert_eq!(m.headers.get(consumer::DEAD_LETTER_REASON).unwrap().as_str(), "poison");
            assert_eq!(m.headers.get(consumer::DEAD_LETTER_CONSUMER).unwrap().as_str(), "test-flaky");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "poison was not dead-lettered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    task.await.unwrap();
    assert_eq!(handler.seen.load(Ordering::SeqCst), 3, "1 twice, poison once");
}

#[tokio::test]
async fn a_bucket_works_on_this_server_with_optimistic_concurrency() {
    let nats = NatsServer::start();
    let (_, js) = js(&nats).await;
    let bucket = kv::ensure_bucket(&js, "test", 1).await.unwrap();
    let rev = bucket.create("k", "a".into()).await.unwrap();
    assert!(bucket.create("k", "b".into()).await.is_err(), "create refuses an existing key");
    let rev2 = bucket.update("k", "c".into(), rev).await.unwrap();
    assert!(bucket.update("k", "d".into(), rev).await.is_err(), "stale revision refused");
    let mut watch = bucket.watch("k").await.unwrap();
    bucket.update("k", "e".into(), rev2).await.unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(5), watch.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(seen.value.as_ref(), b"e");
    // opening it again finds the same bucket
    let again = kv::ensure_bucket(&js, "test", 1).await.unwrap();
    assert_eq!(again.get("k").await.unwrap().unwrap().as_ref(), b"e");
}

/// Records, per customer, the order events were handled in, and how many ran at once.
struct Slow {
    order: std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>,
    running: AtomicUsize,
    most_at_once: AtomicUsize,
}

impl Handler for Slow {
    async fn handle(&self, d: &Delivery) -> Result<(), HandleError> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_at_once.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.order.lock().unwrap().entry(d.meta.customer_id.to_string()).or_default().push(d.payload[0]);
        self.running.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn a_backlog_is_handled_many_at_once_but_each_customers_events_in_order() {
    let nats = NatsServer::start();
    let (_, js) = js(&nats).await;
    streams::ensure(&js, TEST, 1).await.unwrap();
    // 4 customers, 25 events each, interleaved, published before the consumer starts
    for n in 0..100u8 {
        let customer = CustomerId::new(format!("c-{}", n % 4)).unwrap();
        let meta = EventMeta::first(new_id(), "req", customer, Utc::now());
        let m = OutboxMessage::new(&meta, "game.test.v1.thing", "game.test.v1.Thing", vec![n]);
        publish(&js, &m).await;
    }
    let handler = Arc::new(Slow {
        order: std::sync::Mutex::default(),
        running: AtomicUsize::new(0),
        most_at_once: AtomicUsize::new(0),
    });
    let stop = CancellationToken::new();
    let spec = ConsumerSpec { stream: TEST, durable: "test-slow", filter: "game.test.v1.thing" };
    let task = tokio::spawn(consumer::run(js.clone(), settings(&nats), spec, handler.clone(), stop.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while handler.order.lock().unwrap().values().map(Vec::len).sum::<usize>() < 100 {
        assert!(tokio::time::Instant::now() < deadline, "the backlog was not handled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    task.await.unwrap();
    let order = handler.order.lock().unwrap().clone();
    for c in 0..4u8 {
        let expected: Vec<u8> = (0..100u8).filter(|n| n % 4 == c).collect();
        assert_eq!(order[&format!("c-{c}")], expected, "customer c-{c}'s events in publish order");
    }
    let most = handler.most_at_once.load(Ordering::SeqCst);
    assert!(most > 1, "events of different customers were handled at the same time (at most {most} were)");
    assert!(most <= 4, "never two of one customer's events at once (saw {most} running)");
}
