//! The permission table against a real nats-server started with it (as `gamectl up`
//! starts it): each role can do all of its work with its own credentials, and nothing
//! of another role's; anonymous clients are refused.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, message::PublishMessage};
use chrono::Utc;
use futures::StreamExt;
use kernel::{CustomerId, EventMeta, new_id};
use nats_adapter::consumer::{self, ConsumerSpec, Delivery, HandleError, Handler};
use nats_adapter::roles::{self, Role};
use nats_adapter::testing::NatsServer;
use nats_adapter::{NatsSettings, envelope, kv, streams};
use store_adapter::outbox::OutboxMessage;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

/// How long a call the server drops is waited for: a refusal is a timeout.
const REFUSED_AFTER: Duration = Duration::from_secs(1);

/// A role's connection, its JetStream context and what the server reported to it.
struct As {
    client: async_nats::Client,
    js: jetstream::Context,
    errors: UnboundedReceiver<async_nats::ServerError>,
}

impl As {
    async fn connect(nats: &NatsServer, user: &str) -> Self {
        let (client, errors) = nats.connect_as(user).await.expect("connects");
        let js = jetstream::ContextBuilder::new().timeout(REFUSED_AFTER).build(client.clone());
        Self { client, js, errors }
    }

    /// The errors the server sent so far, after a round trip.
    async fn reported(&mut self) -> Vec<String> {
        let _ = self.client.flush().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut out = Vec::new();
        while let Ok(e) = self.errors.try_recv() {
            out.push(e.to_string());
        }
        out
    }
}

fn settings(nats: &NatsServer) -> NatsSettings {
    NatsSettings { max_deliver: 3, ack_wait_seconds: 5, ..NatsSettings::at(nats.url()) }
}

fn event(subject: &str, payload: u8) -> OutboxMessage {
    let meta = EventMeta::first(new_id(), "req", CustomerId::new("c-1").unwrap(), Utc::now());
    OutboxMessage::new(&meta, subject, "game.test.v1.Thing", vec![payload])
}

/// Publishes as the relay does, and waits for JetStream's ack.
async fn publish(js: &jetstream::Context, subject: &str, payload: u8) -> Result<(), String> {
    let m = event(subject, payload);
    let message = PublishMessage::build().payload(m.payload.clone().into()).headers(envelope::headers(&m));
    js.send_publish(subject.to_owned(), message)
        .await
        .map_err(|e| e.to_string())?
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// The event subjects a stream holds.
fn subjects_of(stream: streams::StreamSpec) -> Vec<&'static str> {
    use streams::subject::*;
    let prefix = stream.subjects.trim_end_matches('>');
    [
        MISSION_ACHIEVED,
        MISSION_REWARDED,
        REWARD_ALLOCATED,
        REWARD_ISSUED,
        REWARD_EXCHANGED,
        POINTS_EXPIRING,
        GIFT_ISSUED,
        GIFT_USED,
        NOTIFICATION_SENT,
    ]
    .into_iter()
    .filter(|s| s.starts_with(prefix))
    .collect()
}

/// Records what it handles; rejects payload 0xFF (poison).
struct Record(tokio::sync::mpsc::UnboundedSender<(&'static str, u8)>);

impl Handler for Record {
    async fn handle(&self, d: &Delivery) -> Result<(), HandleError> {
        if d.payload[0] == 0xFF {
            return Err(HandleError::Reject("poison".into()));
        }
        let _ = self.0.send((d.consumer, d.payload[0]));
        Ok(())
    }
}

async fn consumer_state(operator: &jetstream::Context, spec: ConsumerSpec) -> (u64, usize, usize) {
    let stream = operator.get_stream(spec.stream.name).await.expect("stream");
    let info = stream.consumer_info(spec.durable).await.expect("consumer info");
    (info.num_pending, info.num_ack_pending, info.num_redelivered)
}

#[tokio::test]
async fn every_role_does_all_its_work_with_its_own_credentials() {
    let nats = NatsServer::start_secured();
    let operator = jetstream::new(nats.operator().await);
    let mut clients: Vec<(Role, As)> = Vec::new();
    for role in roles::ALL {
        clients.push((role, As::connect(&nats, role.name).await));
    }

    // Every owner creates its stream and publishes its events (and reward a poison one).
    for (role, c) in &clients {
        if let Some(stream) = role.stream {
            streams::ensure(&c.js, stream, 1)
                .await
                .unwrap_or_else(|e| panic!("{} creates {}: {e}", role.name, stream.name));
            for subject in subjects_of(stream) {
                publish(&c.js, subject, 1).await.unwrap_or_else(|e| panic!("{} publishes {subject}: {e}", role.name));
            }
        }
    }
    let reward = &clients.iter().find(|(r, _)| r.name == "reward").unwrap().1;
    publish(&reward.js, streams::subject::REWARD_ALLOCATED, 0xFF).await.unwrap();

    // Every consumer binds its durable, receives, acknowledges, dead-letters.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    for (role, c) in &clients {
        for spec in role.consumers {
            let run = consumer::run(c.js.clone(), settings(&nats), *spec, Arc::new(Record(tx.clone())), stop.clone());
            tasks.push(tokio::spawn(run));
        }
    }
    let all: Vec<ConsumerSpec> = roles::ALL.iter().flat_map(|r| r.consumers.iter().copied()).collect();
    let mut unheard: std::collections::HashSet<&str> = all.iter().map(|c| c.durable).collect();
    while !unheard.is_empty() {
        let (durable, _) = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no event reached {unheard:?}"))
            .unwrap();
        unheard.remove(durable);
    }
    // Acknowledged for good: nothing pending, nothing waiting for an ack, no redelivery.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    for spec in &all {
        loop {
            let state = consumer_state(&operator, *spec).await;
            if state == (0, 0, 0) {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{} not settled: {state:?}", spec.durable);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Every reader of the poison event dead-letters it under its own durable.
    let mut dead = operator.get_stream(streams::DEAD_LETTER.name).await.expect("dead-letter stream");
    let count = dead.info().await.unwrap().state.messages;
    let mut subjects = Vec::new();
    for seq in 1..=count {
        subjects.push(dead.get_raw_message(seq).await.unwrap().subject.to_string());
    }
    subjects.sort();
    assert_eq!(
        subjects,
        ["game.deadletter.mission-record-reward", "game.deadletter.mypage-reward", "game.deadletter.wallet-issue"]
    );

    // My page keeps its pages in its bucket, reads them back and watches them.
    let mypage = &clients.iter().find(|(r, _)| r.name == "mypage").unwrap().1;
    let pages = kv::ensure_bucket(&mypage.js, roles::MYPAGE_BUCKET, 1).await.expect("mypage opens its bucket");
    let rev = pages.create("c-1", "a".into()).await.expect("create");
    let mut watch = pages.watch("c-1").await.expect("watch");
    pages.update("c-1", "b".into(), rev).await.expect("update");
    let seen = tokio::time::timeout(Duration::from_secs(5), watch.next()).await.expect("watched").unwrap().unwrap();
    assert_eq!(seen.value.as_ref(), b"b");
    assert_eq!(pages.get("c-1").await.expect("get").unwrap().as_ref(), b"b");

    stop.cancel();
    for t in tasks {
        t.await.unwrap();
    }
    for (role, c) in &mut clients {
        assert_eq!(c.reported().await, Vec::<String>::new(), "{} was refused something it needs", role.name);
    }
    assert!(!nats.log().contains("Violation"), "{}", nats.log());
}

#[tokio::test]
async fn a_forged_event_from_another_role_is_dropped_and_reported() {
    let nats = NatsServer::start_secured();
    let operator = jetstream::new(nats.operator().await);
    let reward = As::connect(&nats, "reward").await;
    streams::ensure(&reward.js, streams::REWARD, 1).await.unwrap();
    let mut mission = As::connect(&nats, "mission").await;

    // Core publish: accepted by the client, dropped by the server, reported back.
    let allocated = streams::subject::REWARD_ALLOCATED;
    let forged = event(allocated, 7);
    mission.client.publish_with_headers(allocated, envelope::headers(&forged), forged.payload.into()).await.unwrap();
    let reported = mission.reported().await;
    assert!(
        reported.iter().any(|e| e.contains("Permissions Violation for Publish") && e.contains(allocated)),
        "{reported:?}"
    );
    // Through JetStream: no ack ever comes.
    assert!(publish(&mission.js, allocated, 7).await.is_err(), "JetStream took mission's allocation");
    let count = |js: jetstream::Context| async move {
        js.get_stream("REWARD").await.unwrap().info().await.unwrap().state.messages
    };
    assert_eq!(count(operator.clone()).await, 0, "nothing forged reached the stream");
    let seed = std::fs::read_to_string(nats.credentials().unwrap().seed_file("mission")).unwrap();
    let mission_key = nats_adapter::access::user_key(seed.trim()).unwrap().public_key();
    // 2.9 logged `Publish Violation - Nkey "<key>", Subject "<subject>"`; 2.15 names the
    // user in the client's prefix (`"GAME/nkey:<key>" - Publish Violation - Subject ...`).
    let subject = format!("Subject \"{allocated}\"");
    let names_both = |l: &str| l.contains("Publish Violation") && l.contains(&mission_key) && l.contains(&subject);
    assert!(nats.log().lines().any(names_both), "the server log names mission and the subject:\n{}", nats.log());

    // The same event from its owner is stored: the refusal above is the permissions'.
    publish(&reward.js, allocated, 7).await.unwrap();
    assert_eq!(count(operator).await, 1);
}

#[tokio::test]
async fn a_client_without_known_credentials_is_refused() {
    let nats = NatsServer::start_secured();
    let err = async_nats::connect(nats.url()).await.expect_err("anonymous client accepted");
    assert_eq!(err.kind(), async_nats::ConnectErrorKind::AuthorizationViolation);

    // A well-formed seed the server does not know: refused, and a service stops at start.
    let dir = tempfile::tempdir().unwrap();
    let stranger = dir.path().join("stranger.nk");
    std::fs::write(&stranger, nkeys::KeyPair::new_user().seed().unwrap()).unwrap();
    let settings = NatsSettings { nkey_seed_file: Some(stranger), ..settings(&nats) };
    let err = nats_adapter::connect(&settings, "mission").await.expect_err("unknown key accepted");
    assert!(matches!(err, nats_adapter::ConnectError::Refused(_)), "{err}");
    assert!(err.to_string().contains("NATS_NKEY_SEED_FILE"), "{err}");

    // A file that holds no seed names the setting.
    let garbage = dir.path().join("garbage.nk");
    std::fs::write(&garbage, "SUNOTASEED").unwrap();
    let settings = NatsSettings { nkey_seed_file: Some(garbage), ..settings };
    let err = nats_adapter::connect(&settings, "mission").await.expect_err("garbage accepted");
    assert!(err.to_string().starts_with("NATS_NKEY_SEED_FILE"), "{err}");

    // Its own seed file gets the role in.
    let own = NatsSettings { nkey_seed_file: Some(nats.credentials().unwrap().seed_file("mission")), ..settings };
    let client = nats_adapter::connect(&own, "mission").await.expect("mission connects");
    assert!(nats_adapter::responsive(&client, Duration::from_secs(2)).await);
}

#[tokio::test]
async fn a_role_cannot_listen_in_on_another_role_nor_read_a_stream_it_does_not_consume() {
    let nats = NatsServer::start_secured();
    let operator = jetstream::new(nats.operator().await);
    for spec in [streams::REWARD, streams::WALLET] {
        streams::ensure(&operator, spec, 1).await.unwrap();
    }
    publish(&operator, streams::subject::REWARD_ALLOCATED, 1).await.unwrap();
    let mut mission = As::connect(&nats, "mission").await;
    let wallet = As::connect(&nats, "wallet").await;

    // Another role's replies, and events off the wire.
    let mut spy = mission.client.subscribe("_INBOX.wallet.>").await.unwrap();
    let mut wire = mission.client.subscribe(streams::subject::REWARD_ALLOCATED).await.unwrap();
    let reported = mission.reported().await;
    assert!(
        reported.iter().filter(|e| e.contains("Permissions Violation for Subscription")).count() == 2,
        "{reported:?}"
    );
    streams::existing(&wallet.js, streams::REWARD).await.expect("wallet reads REWARD's info");
    publish(&operator, streams::subject::REWARD_ALLOCATED, 2).await.unwrap();
    let overheard =
        tokio::time::timeout(Duration::from_millis(500), futures::future::select(spy.next(), wire.next())).await;
    assert!(overheard.is_err(), "mission heard something it may not");

    // A stream it does not consume, another role's durable, a wider filter on its own.
    assert!(mission.js.get_stream("WALLET").await.is_err(), "mission read WALLET's info");
    let reward_stream = streams::existing(&mission.js, streams::REWARD).await.expect("mission reads REWARD's info");
    assert!(reward_stream.direct_get(1).await.is_err(), "mission read REWARD's messages directly");
    assert!(reward_stream.get_raw_message(1).await.is_err(), "mission read REWARD's messages");
    let durable = |name: &str, filter: &str| pull::Config {
        durable_name: Some(name.to_owned()),
        filter_subject: filter.to_owned(),
        ..Default::default()
    };
    assert!(
        reward_stream.create_consumer(durable("wallet-issue", streams::subject::REWARD_ALLOCATED)).await.is_err(),
        "mission bound wallet's durable"
    );
    assert!(
        reward_stream.create_consumer(durable("mission-record-reward", "game.reward.v1.>")).await.is_err(),
        "mission widened its durable"
    );
    assert!(
        reward_stream.create_consumer(pull::Config::default()).await.is_err(),
        "mission made an ephemeral consumer"
    );
    assert!(mission.js.delete_stream("REWARD").await.is_err(), "mission deleted REWARD");
    assert!(operator.get_stream("REWARD").await.is_ok());
    assert!(!mission.reported().await.is_empty(), "each refusal is reported to the client");
}
