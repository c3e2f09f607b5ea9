//! Dead letters sent back: an e-mail that cannot be sent (the relay in the config is
//! down for good) is dead-lettered; `gamectl dlq list` and `show` name it; the service is
//! restarted with the config fixed; `gamectl dlq redrive` sends it back and the e-mail
//! goes out once; a second redrive (and `--all`) changes nothing; `discard` keeps the
//! event and the reason out of the waiting list. The same scenario runs twice: as the
//! operator on the bus (`gamectl dlq --bus`), and as an admin through the gateway
//! (`game.admin.v1.DeadLetterService`, served by `gamectl serve ops`), where a player is
//! refused and a call without a token is unauthenticated.
//!
//! And the attack of issue 24 (item 8), both ways: dead letters forged with a service's
//! own NATS key (notification's, claiming a mission subject; mypage's, whose filter is a
//! wildcard; mission's, whose subject wallet reads too) are refused by an admin's routine
//! "redrive all", reported with why, kept waiting, and mint no points.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use async_nats::jetstream;
use e2e::api::{issued_reward, rewards, wallet_of};
use e2e::{GATEWAY, NOTIFICATION, NatsServer, Service, System, eventually};
use grpc_adapter::pb::admin::v1 as admin;
use grpc_adapter::pb::admin::v1::dead_letter_service_client::DeadLetterServiceClient;
use grpc_adapter::pb::events::v1 as ev;
use grpc_adapter::pb::notification::v1 as pb;
use grpc_adapter::pb::notification::v1::notification_service_client::NotificationServiceClient;
use nats_adapter::{access, streams};
use prost::Message;
use serde_json::Value;
use uuid::Uuid;

const FLOW: Duration = Duration::from_secs(30);

fn env(nats: &NatsServer, dir: &Path, tokens: &e2e::Tokens, smtp: Option<String>) -> Vec<(&'static str, String)> {
    let mut env: Vec<(&'static str, String)> = nats.service_env("notification");
    env.extend([
        ("JWKS_FILES", tokens.jwks_file.display().to_string()),
        ("DATABASE_URL", format!("sqlite://{}", dir.join("notification.db").display())),
        ("MAILBOX_DIR", dir.join("mailbox").display().to_string()),
        // give up quickly: two deliveries, then the dead-letter stream
        ("CONSUMER_MAX_DELIVER", "2".into()),
    ]);
    env.extend(smtp.map(|url| ("SMTP_URL", url)));
    env
}

fn emails(dir: &Path) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|d| d.map(|e| e.expect("entry").path()).collect()).unwrap_or_default();
    all.retain(|p| p.extension().is_some_and(|x| x == "eml"));
    all
}

/// How `gamectl dlq` reaches the dead letters.
enum Via {
    /// `--bus`, as the operator (NATS key).
    Bus,
    /// Through the gateway at this URL, with this token.
    Gateway(String, String),
}

/// `gamectl --json dlq <args>`: its JSON answer.
fn gamectl(nats: &NatsServer, via: &Via, args: &[&str]) -> Value {
    let mut cmd = Command::new(e2e::bin("gamectl"));
    match via {
        Via::Bus => {
            let key = nats.credentials().expect("a secured server").seed_file(access::OPERATOR);
            cmd.args(["--json", "dlq", "--bus", "--nats-url", &nats.url(), "--nats-key", &key.display().to_string()]);
        }
        Via::Gateway(url, token) => {
            cmd.args(["--json", "--endpoint", url, "--token", token, "dlq"]);
        }
    }
    let out = cmd.args(args).output().expect("gamectl runs");
    assert!(out.status.success(), "gamectl dlq {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

async fn publish_gift_issued(js: &jetstream::Context, customer: &str, event_id: Uuid) {
    let id = || Uuid::now_v7().to_string();
    let gift = ev::GiftIssued {
        gift_id: id(),
        customer_id: customer.into(),
        reward_id: id(),
        gift_code: "CAFE-42".into(),
        gift_name: "Coffee".into(),
        mission_id: id(),
    };
    let mut h = async_nats::HeaderMap::new();
    h.insert("Nats-Msg-Id", event_id.to_string().as_str());
    h.insert("Game-Event-Id", event_id.to_string().as_str());
    h.insert("Game-Event-Type", "game.events.v1.GiftIssued");
    h.insert("Game-Correlation-Id", gift.mission_id.as_str());
    h.insert("Game-Causation-Id", "test");
    h.insert("Game-Customer-Id", customer);
    h.insert("Game-Occurred-At", "2026-11-25T12:00:00Z");
    js.publish_with_headers("game.gift.v1.issued", h, gift.encode_to_vec().into())
        .await
        .expect("publish")
        .await
        .expect("ack");
}

async fn notifications(service: &Service, tokens: &e2e::Tokens, customer: &str) -> Vec<pb::Notification> {
    NotificationServiceClient::new(e2e::with_token(service.channel(), &tokens.customer(customer)))
        .list_notifications(pb::ListNotificationsRequest { customer_id: customer.into(), ..Default::default() })
        .await
        .expect("list")
        .into_inner()
        .notifications
}

#[tokio::test]
async fn a_dead_lettered_event_redriven_after_the_fix_has_its_effect_exactly_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let nats = NatsServer::start_secured();
    let tokens = e2e::Tokens::new(dir.path());
    scenario(&dir, &nats, &tokens, &Via::Bus).await;
}

#[tokio::test]
async fn dead_letters_are_redriven_exactly_once_by_an_admin_through_the_gateway_and_refused_to_others() {
    let dir = tempfile::tempdir().expect("temp dir");
    let nats = NatsServer::start_secured();
    let tokens = e2e::Tokens::new(dir.path());
    let jwks = ("JWKS_FILES", tokens.jwks_file.display().to_string());
    let mut ops_env = nats.service_env("ops");
    ops_env.push(jwks.clone());
    let ops = Service::start("ops", "ops", &ops_env, dir.path());
    ops.wait_serving("game.admin.v1.DeadLetterService").await;
    let gateway = Service::start("gateway", "gateway", &[jwks, ("OPS_URL", ops.url())], dir.path());
    gateway.wait_serving(GATEWAY).await;

    // a player is refused, a call without a token is not even looked at
    let list = admin::ListDeadLettersRequest::default();
    let player = DeadLetterServiceClient::new(e2e::with_token(gateway.channel(), &tokens.customer("dora")))
        .list_dead_letters(list.clone())
        .await
        .expect_err("a player may not list dead letters");
    assert_eq!(player.code(), tonic::Code::PermissionDenied, "{player:?}");
    let redrive = admin::RedriveDeadLettersRequest { all: true, ..Default::default() };
    let anonymous = DeadLetterServiceClient::new(gateway.channel())
        .redrive_dead_letters(redrive)
        .await
        .expect_err("no token, no redrive");
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated, "{anonymous:?}");
    let out = Command::new(e2e::bin("gamectl"))
        .args(["--endpoint", &gateway.url(), "--token", &tokens.customer("dora"), "dlq", "redrive", "--all"])
        .output()
        .expect("gamectl runs");
    assert!(!out.status.success(), "a player's gamectl dlq redrive fails");
    assert!(String::from_utf8_lossy(&out.stderr).contains("PERMISSION_DENIED"), "{out:?}");
    // bad input names its field
    let bad = DeadLetterServiceClient::new(e2e::with_token(gateway.channel(), &tokens.admin()))
        .list_dead_letters(admin::ListDeadLettersRequest { page_size: -1, ..list })
        .await
        .expect_err("a negative page size");
    assert!(bad.message().starts_with("page_size"), "{bad:?}");

    scenario(&dir, &nats, &tokens, &Via::Gateway(gateway.url(), tokens.admin())).await;
}

async fn scenario(dir: &tempfile::TempDir, nats: &NatsServer, tokens: &e2e::Tokens, via: &Via) {
    let (nats, tokens) = (nats, tokens);
    // the relay in the config does not exist: every send fails
    let down = format!("smtp://127.0.0.1:{}", e2e::free_port());
    let mut service =
        Service::start("notification", "notification", &env(nats, dir.path(), tokens, Some(down)), dir.path());
    service.wait_serving(NOTIFICATION).await;
    let js = jetstream::new(nats.operator().await);
    streams::ensure(&js, streams::GIFT, 1).await.expect("GIFT stream");

    let (bounced, kept) = (Uuid::now_v7(), Uuid::now_v7());
    publish_gift_issued(&js, "dora", bounced).await;
    publish_gift_issued(&js, "dora", kept).await;
    let listed = eventually(FLOW, "both events in the dead-letter queue", || async {
        let v = gamectl(nats, via, &["list", "--consumer", "notification-gift-issued"]);
        let all = v["deadLetters"].as_array().cloned().unwrap_or_default();
        (all.len() == 2).then_some(all)
    })
    .await;
    let of =
        |event: Uuid| listed.iter().find(|d| d["eventId"] == event.to_string()).cloned().expect("listed by event id");
    let (first, second) = (of(bounced), of(kept));
    if matches!(via, Via::Gateway(..)) {
        // paged, oldest first: one per page, then the rest; --all reads every page
        let one = gamectl(nats, via, &["list", "--page-size", "1"]);
        let token = one["nextPageToken"].as_str().expect("a next page").to_owned();
        let rest = gamectl(nats, via, &["list", "--page-size", "1", "--page-token", &token]);
        let ids = |v: &Value| v["deadLetters"].as_array().unwrap().iter().map(|d| d["id"].clone()).collect::<Vec<_>>();
        let mut both = [ids(&one), ids(&rest)].concat();
        assert_eq!((both.len(), rest["nextPageToken"].as_str()), (2, Some("")), "{one} {rest}");
        assert!(both[0].as_u64() < both[1].as_u64(), "oldest first: {both:?}");
        both.sort_by_key(Value::as_u64);
        let mut expected = vec![first["id"].clone(), second["id"].clone()];
        expected.sort_by_key(Value::as_u64);
        assert_eq!(both, expected);
        assert_eq!(ids(&gamectl(nats, via, &["list", "--page-size", "1", "--all"])), expected);
    }
    assert_eq!(first["customerId"], "dora");
    assert_eq!(first["subject"], "game.gift.v1.issued");
    assert_eq!(first["attempts"], 2);
    assert!(!first["reason"].as_str().unwrap_or_default().is_empty(), "{first}");
    let id = first["id"].as_u64().expect("an id").to_string();
    let shown = gamectl(nats, via, &["show", &id]);
    assert!(shown["event"].as_str().unwrap_or_default().contains("CAFE-42"), "decoded: {shown}");
    assert!(notifications(&service, tokens, "dora").await.is_empty(), "nothing sent yet");

    // fix the cause: the service restarted without the broken relay (mail to its mailbox)
    service.stop();
    service = Service::start("notification", "notification", &env(nats, dir.path(), tokens, None), dir.path());
    service.wait_serving(NOTIFICATION).await;

    let r = gamectl(nats, via, &["redrive", &id]);
    assert_eq!(r["redriven"], serde_json::json!([first["id"]]));
    let sent = eventually(FLOW, "the redriven e-mail is sent", || async {
        let all = notifications(&service, tokens, "dora").await;
        (!all.is_empty()).then_some(all)
    })
    .await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].event_id, bounced.to_string());

    // again: nothing to send back; and even the same event published again has no effect
    assert_eq!(gamectl(nats, via, &["redrive", &id])["redriven"], serde_json::json!([]));
    publish_gift_issued(&js, "dora", bounced).await;
    // the other one is discarded with a reason that is kept
    let other = second["id"].as_u64().unwrap().to_string();
    assert_eq!(gamectl(nats, via, &["discard", &other, "--reason", "customer left"])["discarded"], true);
    assert_eq!(gamectl(nats, via, &["redrive", "--all"])["redriven"], serde_json::json!([]));
    assert_eq!(gamectl(nats, via, &["list"])["deadLetters"], serde_json::json!([]));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(notifications(&service, tokens, "dora").await.len(), 1, "exactly once");
    assert_eq!(emails(&dir.path().join("mailbox")).len(), 1);
    let stream = js.get_stream(streams::DEAD_LETTER.name).await.unwrap();
    let discarded = stream
        .get_last_raw_message_by_subject("game.deadletter._discarded.notification-gift-issued")
        .await
        .expect("the discarded event is kept");
    assert_eq!(discarded.headers.get("Game-Discard-Reason").map(|v| v.as_str()), Some("customer left"));
    assert_eq!(discarded.headers.get("Game-Event-Id").map(|v| v.as_str()), Some(kept.to_string().as_str()));
}

/// The system, and the ops role and a gateway in front of it for an admin's calls.
async fn system_with_ops() -> (System, Service, Service) {
    let sys = System::start().await;
    let jwks = ("JWKS_FILES", sys.tokens.jwks_file.display().to_string());
    let mut ops_env = sys.nats.service_env("ops");
    ops_env.push(jwks.clone());
    let ops = Service::start("ops", "ops", &ops_env, sys.dir.path());
    ops.wait_serving("game.admin.v1.DeadLetterService").await;
    let gateway = Service::start("gateway", "gateway", &[jwks, ("OPS_URL", ops.url())], sys.dir.path());
    gateway.wait_serving(GATEWAY).await;
    (sys, ops, gateway)
}

/// Publishes a dead letter on `game.deadletter.<consumer>` with `user`'s NATS key, as an
/// attacker holding that service's key would, claiming `subject` (and `sequence` in its
/// stream, when given); its id in the dead-letter stream.
async fn forge(
    sys: &System,
    user: &str,
    consumer: &str,
    subject: &str,
    sequence: Option<u64>,
    (mut h, payload): (async_nats::HeaderMap, bytes::Bytes),
) -> u64 {
    let (client, _errors) = sys.nats.connect_as(user).await.expect("the service's key is valid");
    h.insert("Game-Dead-Letter-Subject", subject);
    h.insert("Game-Dead-Letter-Consumer", "reward-allocate");
    h.insert("Game-Dead-Letter-Reason", "smtp relay down");
    if let Some(seq) = sequence {
        h.insert("Game-Dead-Letter-Stream-Sequence", seq.to_string().as_str());
    }
    jetstream::new(client)
        .publish_with_headers(streams::dead_letter_subject(consumer), h, payload)
        .await
        .expect("published")
        .await
        .unwrap_or_else(|e| panic!("{user} may dead-letter for {consumer}: {e}"))
        .sequence
}

async fn forged_dead_letters_are_refused_and_mint_nothing(sys: &System, via: &Via) {
    let victim = "c-mallory";
    let real = issued_reward(sys, victim, "daily-login").await;
    let events = || async {
        (
            sys.count_events("MISSION", "game.mission.v1.achieved").await,
            sys.count_events("REWARD", "game.reward.v1.allocated").await,
            sys.count_events("WALLET", "game.wallet.v1.issued").await,
        )
    };
    let before = events().await;
    let operator = sys.operator_js().await;
    let mission_stream = operator.get_stream("MISSION").await.expect("MISSION");
    let achieved = mission_stream.get_last_raw_message_by_subject("game.mission.v1.achieved").await.expect("real");

    // The reproduction of issue 24: notification's key, its own consumer's dead-letter
    // subject, a mission subject claimed, 1,000,000 points.
    let million = || e2e::events::mission_achieved(victim, 1_000_000);
    let claimed =
        forge(sys, "notification", "notification-gift-issued", "game.mission.v1.achieved", None, million()).await;
    // mypage's filter takes every mission subject: it names the real MissionAchieved by
    // its sequence and event id, and carries 1,000,000 points instead.
    let (mut h, payload) = million();
    let real_id = achieved.headers.get("Game-Event-Id").expect("an event id").as_str().to_owned();
    h.insert("Game-Event-Id", real_id.as_str());
    let swapped =
        forge(sys, "mypage", "mypage-mission", "game.mission.v1.achieved", Some(achieved.sequence), (h, payload)).await;
    // mission reads allocations, as the wallet does: an allocation that names no event.
    let allocated = e2e::events::reward_allocated(victim, 1_000_000);
    let invented = forge(sys, "mission", "mission-record-reward", "game.reward.v1.allocated", None, allocated).await;

    // The admin's routine "redrive all".
    let answer = gamectl(&sys.nats, via, &["redrive", "--all"]);
    assert_eq!(answer["redriven"], serde_json::json!([]), "{answer}");
    let refused = answer["refused"].as_array().cloned().unwrap_or_default();
    let why = |id: u64| {
        refused.iter().find(|r| r["id"] == id).and_then(|r| r["reason"].as_str()).unwrap_or_default().to_owned()
    };
    assert_eq!(refused.len(), 3, "{answer}");
    assert!(why(claimed).contains("notification-gift-issued reads only game.gift.v1.issued"), "{answer}");
    assert!(why(swapped).contains("does not carry the event it names"), "{answer}");
    assert!(why(invented).contains("names no event of REWARD"), "{answer}");

    // Nothing was published (each redrive's publish is acknowledged before the answer),
    // so nothing can arrive later: no mission, allocation or issue more, and the wallet
    // holds the one real reward.
    assert_eq!(events().await, before, "(achieved, allocated, issued) events");
    let wallet = wallet_of(sys, victim).await;
    assert_eq!((wallet.available_points, wallet.items.len()), (10, 1), "{wallet:?}");
    assert_eq!(wallet.items[0].reward_id, real.reward_id);
    assert_eq!(rewards(sys, victim).await.len(), 1);
    // They stay waiting, listed under the consumer their subject names (whatever their
    // header says), until an admin discards them with a reason.
    let waiting = gamectl(&sys.nats, via, &["list"]);
    let listed: Vec<(u64, String)> = waiting["deadLetters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["id"].as_u64().unwrap(), d["consumer"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        listed,
        [
            (claimed, "notification-gift-issued".to_owned()),
            (swapped, "mypage-mission".to_owned()),
            (invented, "mission-record-reward".to_owned())
        ]
    );
    assert!(sys.bus_violations().is_empty(), "ops had every right it needed: {:?}", sys.bus_violations());
}

#[tokio::test]
async fn forged_dead_letters_mint_no_points_when_an_admin_redrives_all_through_the_gateway() {
    let (sys, _ops, gateway) = system_with_ops().await;
    forged_dead_letters_are_refused_and_mint_nothing(&sys, &Via::Gateway(gateway.url(), sys.tokens.admin())).await;
}

#[tokio::test]
async fn forged_dead_letters_mint_no_points_when_the_operator_redrives_all_on_the_bus() {
    let sys = System::start().await;
    forged_dead_letters_are_refused_and_mint_nothing(&sys, &Via::Bus).await;
}
