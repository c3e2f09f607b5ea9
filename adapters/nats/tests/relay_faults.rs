//! The outbox relay when JetStream stops answering with events in flight (a frozen
//! server: its socket stays open, no ack ever comes): a pass gives up within one ack
//! timeout, whatever the number of events in flight, and loses none of them.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use chrono::Utc;
use kernel::{CustomerId, EventMeta, new_id};
use nats_adapter::testing::NatsServer;
use nats_adapter::{relay, streams};
use store_adapter::outbox::{self, OutboxMessage};
use store_adapter::testing::TestDatabase;
use store_adapter::{Migrations, Store};

static NONE: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("tests/no_migrations");

const TEST: streams::StreamSpec = streams::StreamSpec { name: "TEST", subjects: "game.test.v1.>" };

fn event(n: u8) -> OutboxMessage {
    let meta = EventMeta::first(new_id(), "req", CustomerId::new("c-1").unwrap(), Utc::now());
    OutboxMessage::new(&meta, "game.test.v1.thing", "game.test.v1.Thing", vec![n])
}

#[tokio::test]
async fn a_pass_with_forty_events_in_flight_to_a_frozen_server_gives_up_within_one_ack_timeout() {
    let nats = NatsServer::start();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(client);
    streams::ensure(&js, TEST, 1).await.unwrap();
    let db = TestDatabase::sqlite();
    let store = Store::open(&db.url, Migrations { sqlite: &NONE, postgres: &NONE }).await.unwrap();
    let events: Vec<_> = (0..40).map(event).collect();
    store.write(move |c| outbox::append(c, &events)).await.unwrap();

    nats.signal("-STOP");
    let began = Instant::now();
    // Awaited one after another, the 40 acks would time out one after another: 200 s.
    let pass = tokio::time::timeout(Duration::from_secs(20), relay::pass(&store, &js)).await;
    let took = began.elapsed();
    nats.signal("-CONT");
    let failed = pass.expect("the pass gives up instead of stalling");
    assert!(failed.is_err(), "no ack came: {failed:?}");
    assert!(took < Duration::from_secs(10), "one ack timeout (5 s), not one per event: {took:?}");
    assert_eq!(store.outbox_len().await.unwrap(), 40, "every event is still in the outbox");

    // Once the server answers, the next pass publishes every event, each once (those the
    // frozen server had read are dropped as duplicates by their Nats-Msg-Id).
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.outbox_len().await.unwrap() > 0 {
        assert!(Instant::now() < deadline, "the outbox drains once the server answers");
        let _ = relay::pass(&store, &js).await;
    }
    let mut stream = js.get_stream("TEST").await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 40);
}
