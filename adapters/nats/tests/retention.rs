//! Streams carry explicit limits (a real nats-server): a publisher's stream gets the
//! configured `max_age` and `max_bytes`, the dead-letter stream its own, and an event
//! older than `max_age` is gone from the stream.

use std::time::Duration;

use async_nats::jetstream;
use nats_adapter::consumer::{self, ConsumerSpec};
use nats_adapter::testing::NatsServer;
use nats_adapter::{NatsSettings, streams};

const TEST: streams::StreamSpec = streams::StreamSpec { name: "RETAINED", subjects: "game.retained.v1.>" };

#[tokio::test]
async fn a_stream_and_the_dead_letter_stream_are_created_with_their_configured_limits() {
    let nats = NatsServer::start();
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let settings = NatsSettings {
        stream_max_age_hours: 2,
        stream_max_bytes: 1 << 20,
        deadletter_max_age_hours: 5,
        deadletter_max_bytes: 1 << 19,
        ..NatsSettings::at(nats.url())
    };
    let mut stream = streams::ensure_limited(&js, TEST, 1, settings.stream_limits()).await.unwrap();
    let config = stream.info().await.unwrap().config.clone();
    assert_eq!((config.max_age, config.max_bytes), (Duration::from_secs(2 * 3600), 1 << 20));

    // a consumer binding makes sure the dead-letter stream exists, with its own limits
    let spec = ConsumerSpec { stream: TEST, durable: "test-retained", filter: "game.retained.v1.>" };
    consumer::bind(&js, &settings, spec).await.unwrap();
    let mut dlq = js.get_stream(streams::DEAD_LETTER.name).await.unwrap();
    let config = dlq.info().await.unwrap().config.clone();
    assert_eq!((config.max_age, config.max_bytes), (Duration::from_secs(5 * 3600), 1 << 19));
}

#[tokio::test]
async fn an_event_older_than_max_age_is_removed_from_the_stream() {
    let nats = NatsServer::start();
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let limits = streams::Limits { max_age: Duration::from_secs(1), max_bytes: 1 << 20 };
    let mut stream = streams::ensure_limited(&js, TEST, 1, limits).await.unwrap();
    js.publish("game.retained.v1.thing", "x".into()).await.unwrap().await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while stream.info().await.unwrap().state.messages > 0 {
        assert!(std::time::Instant::now() < deadline, "the event outlived max_age");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
