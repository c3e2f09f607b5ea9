//! The event bus under attack (issue 10, item 3): with the whole system running on a
//! nats-server secured as `gamectl up` secures it, someone holding one service's
//! credentials, or none, tries to mint points, listen in on another service, or read a
//! stream. The server refuses each (and says so); nothing changes. A service whose key is
//! refused stops at start, naming the setting. A service dead-letters only for its own
//! consumers (issue 24: a dead letter belongs to the consumer its subject names).

use std::time::Duration;

use e2e::api::{issued_reward, wallet_of};
use e2e::{ServerErrors, System, eventually};
use futures::StreamExt;

const FLOW: Duration = Duration::from_secs(30);
const ALLOCATED: &str = "game.reward.v1.allocated";

/// Waits for the server's refusal of something `client` did.
async fn refusal(errors: &mut ServerErrors, what: &str) -> String {
    tokio::time::timeout(Duration::from_secs(5), errors.recv())
        .await
        .unwrap_or_else(|_| panic!("the server did not refuse {what}"))
        .expect("error channel")
        .to_string()
}

#[tokio::test]
async fn a_forged_allocation_is_refused_with_another_services_key_and_without_one() {
    let sys = System::start().await;
    // The victim's wallet holds one real reward (10 points).
    let real = issued_reward(&sys, "c-mallory", "daily-login").await;
    assert_eq!(wallet_of(&sys, "c-mallory").await.available_points, 10);

    // Without credentials: not even a connection.
    let anonymous = async_nats::connect(sys.nats.url()).await;
    assert_eq!(
        anonymous.expect_err("an anonymous client was let in").kind(),
        async_nats::ConnectErrorKind::AuthorizationViolation
    );

    // With the mission service's key (its seed file, as an attacker who took over mission
    // would have it): the client library says Ok, the server drops the message and says so.
    let (mission, mut errors) = sys.nats.connect_as("mission").await.expect("mission's key is valid");
    let (headers, payload) = e2e::events::reward_allocated("c-mallory", 1_000_000);
    mission.publish_with_headers(ALLOCATED, headers.clone(), payload.clone()).await.expect("accepted by the client");
    mission.flush().await.unwrap();
    let refused = refusal(&mut errors, "mission's allocation").await;
    assert!(refused.contains("Permissions Violation for Publish") && refused.contains(ALLOCATED), "{refused}");
    assert!(
        sys.bus_violations().iter().any(|l| l.contains("Publish Violation") && l.contains(ALLOCATED)),
        "nats-server logs the attempt: {:?}",
        sys.bus_violations()
    );

    // Through JetStream the same: no stream takes it, no ack ever comes.
    let js = async_nats::jetstream::ContextBuilder::new().timeout(Duration::from_secs(1)).build(mission.clone());
    let ack = js.publish_with_headers(ALLOCATED, headers, payload).await.expect("accepted by the client");
    assert!(ack.await.is_err(), "JetStream acknowledged mission's allocation");

    // Such an event from the operator, who may publish anything, is taken and credited
    // (after the forged ones, so had they been taken they would have arrived first): the
    // refusals above were the permissions' doing, and nothing refused arrived.
    let operator = sys.operator_js().await;
    let (h, control) = e2e::events::reward_allocated("c-mallory", 500);
    operator.publish_with_headers(ALLOCATED, h, control).await.unwrap().await.expect("stored");
    let wallet = eventually(FLOW, "the operator's allocation reaches the wallet", || async {
        let w = wallet_of(&sys, "c-mallory").await;
        (w.items.len() == 2).then_some(w)
    })
    .await;
    assert_eq!(wallet.available_points, 510, "the real reward and the operator's, nothing forged");
    assert!(wallet.items.iter().any(|i| i.reward_id == real.reward_id));
    assert_eq!(sys.count_events("REWARD", ALLOCATED).await, 2, "the real one and the operator's");
}

#[tokio::test]
async fn a_service_cannot_listen_in_on_another_nor_read_a_stream_it_does_not_consume() {
    let sys = System::start().await;
    let (mission, mut errors) = sys.nats.connect_as("mission").await.expect("mission's key is valid");

    // The wallet's replies (its pulled events, its acks' answers) and the events off the wire.
    let mut wallet_inbox = mission.subscribe("_INBOX.wallet.>").await.unwrap();
    let mut wire = mission.subscribe("game.>").await.unwrap();
    mission.flush().await.unwrap();
    for what in ["the wallet's inbox", "the event subjects"] {
        let refused = refusal(&mut errors, what).await;
        assert!(refused.contains("Permissions Violation for Subscription"), "{refused}");
    }
    // The wallet works meanwhile (pulls the allocation, acks it, publishes RewardIssued).
    issued_reward(&sys, "c-eve", "daily-login").await;
    let overheard =
        tokio::time::timeout(Duration::from_millis(500), futures::future::select(wallet_inbox.next(), wire.next()))
            .await;
    assert!(overheard.is_err(), "mission heard the wallet's traffic");

    // Streams it does not consume, and messages of the one it does outside its consumer.
    let js = async_nats::jetstream::ContextBuilder::new().timeout(Duration::from_secs(1)).build(mission.clone());
    for stream in ["WALLET", "GIFT", "NOTIFICATION", "KV_mypage"] {
        assert!(js.get_stream(stream).await.is_err(), "mission read {stream}'s info");
    }
    let reward = js.get_stream("REWARD").await.expect("mission looks up the stream it consumes");
    assert!(reward.get_raw_message(1).await.is_err(), "mission read REWARD's messages directly");
    let wallet_durable = async_nats::jetstream::consumer::pull::Config {
        durable_name: Some("wallet-issue".into()),
        filter_subject: ALLOCATED.into(),
        ..Default::default()
    };
    assert!(reward.create_consumer(wallet_durable).await.is_err(), "mission bound the wallet's consumer");
    eventually(FLOW, "the wallet's own work went on", || async {
        (sys.count_events("WALLET", "game.wallet.v1.issued").await == 1).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_service_whose_key_the_bus_refuses_stops_at_start_naming_the_setting() {
    let nats = e2e::NatsServer::start_secured();
    let dir = tempfile::tempdir().unwrap();
    // Mission's key of another installation (well formed, unknown to this server), and a
    // file that holds no key.
    let elsewhere = nats_adapter::access::Credentials::ensure(&dir.path().join("elsewhere")).unwrap();
    let stranger = elsewhere.seed_file("mission");
    let garbage = dir.path().join("garbage.nk");
    std::fs::write(&garbage, "not a key").unwrap();
    for (seed, why) in [(&stranger, "refused"), (&garbage, "")] {
        let out = e2e::serve("mission")
            .env("NATS_URL", nats.url())
            .env("NATS_NKEY_SEED_FILE", seed)
            .env("DATABASE_URL", format!("sqlite://{}", dir.path().join("mission.db").display()))
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .output()
            .expect("mission runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("NATS_NKEY_SEED_FILE") && stderr.contains(why), "{stderr}");
    }
}

#[tokio::test]
async fn a_service_dead_letters_only_for_its_own_consumers_and_files_nothing_as_discarded() {
    let sys = System::start().await;
    issued_reward(&sys, "c-trudy", "daily-login").await; // every consumer bound, DEADLETTER made
    let (notification, mut errors) = sys.nats.connect_as("notification").await.expect("notification's key is valid");
    let js = async_nats::jetstream::ContextBuilder::new().timeout(Duration::from_secs(1)).build(notification.clone());
    // Its own consumer's dead-letter subject: stored (and only ever redriven as the event
    // its stream holds, tests/tests/redrive.rs).
    let (h, payload) = e2e::events::reward_allocated("c-trudy", 1_000_000);
    js.publish_with_headers("game.deadletter.notification-gift-issued", h.clone(), payload.clone())
        .await
        .expect("accepted by the client")
        .await
        .expect("its own dead-letter subject");
    // Another role's consumer's, a made-up one, and the discarded ones: refused.
    for subject in [
        "game.deadletter.wallet-issue",
        "game.deadletter.reward-allocate",
        "game.deadletter.anyone",
        "game.deadletter._discarded.wallet-issue",
    ] {
        let ack = js.publish_with_headers(subject, h.clone(), payload.clone()).await.expect("accepted by the client");
        assert!(ack.await.is_err(), "JetStream stored notification's dead letter on {subject}");
        let refused = refusal(&mut errors, subject).await;
        assert!(refused.contains("Permissions Violation for Publish") && refused.contains(subject), "{refused}");
    }
    let operator = sys.operator_js().await;
    let mut dead_letters = operator.get_stream("DEADLETTER").await.expect("DEADLETTER");
    assert_eq!(dead_letters.info().await.unwrap().state.messages, 1, "only the one on its own subject");
}
