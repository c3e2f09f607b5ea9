//! The notification service end to end: gift events published on JetStream become one
//! e-mail each (a mailbox directory, or an SMTP relay), are listed over gRPC and
//! announced as `NotificationSent`; a repeated event sends nothing more; a relay's
//! temporary refusal is retried and a permanent one dead-lettered.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use e2e::{NatsServer, Service, eventually};
use grpc_adapter::pb::events::v1 as ev;
use grpc_adapter::pb::notification::v1 as pb;
use grpc_adapter::pb::notification::v1::notification_service_client::NotificationServiceClient;
use nats_adapter::streams;
use prost::Message;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tonic::Code;
use uuid::Uuid;

const NOTIFICATION: &str = "game.notification.v1.NotificationService";
const FLOW: Duration = Duration::from_secs(30);
const DOMAIN: &str = "players.game-rewards.local";

/// A notification service on its own NATS, SQLite file and mailbox directory.
struct Setup {
    dir: tempfile::TempDir,
    /// Kept for as long as the service runs.
    _nats: NatsServer,
    service: Service,
    js: jetstream::Context,
    tokens: e2e::Tokens,
}

impl Setup {
    /// `extra`: more environment, e.g. `SMTP_URL`.
    async fn start(extra: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let nats = NatsServer::start_secured();
        let tokens = e2e::Tokens::new(dir.path());
        let mut env: Vec<(&str, String)> = nats.service_env("notification");
        env.extend([
            ("JWKS_FILES", tokens.jwks_file.display().to_string()),
            ("DATABASE_URL", format!("sqlite://{}", dir.path().join("notification.db").display())),
            ("MAILBOX_DIR", dir.path().join("mailbox").display().to_string()),
        ]);
        env.extend(extra.iter().cloned());
        let service = Service::start("notification", "notification", &env, dir.path());
        service.wait_serving(NOTIFICATION).await;
        // The operator plays the gift service, which owns GIFT and is not running here.
        let js = jetstream::new(nats.operator().await);
        streams::ensure(&js, streams::GIFT, 1).await.expect("GIFT stream");
        Self { dir, _nats: nats, service, js, tokens }
    }

    fn mailbox(&self) -> PathBuf {
        self.dir.path().join("mailbox")
    }

    async fn list(&self, customer: &str) -> Result<Vec<pb::Notification>, tonic::Status> {
        let who = if customer.is_empty() || customer.contains(' ') { "someone" } else { customer };
        NotificationServiceClient::new(e2e::with_token(self.service.channel(), &self.tokens.customer(who)))
            .list_notifications(pb::ListNotificationsRequest { customer_id: customer.into(), ..Default::default() })
            .await
            .map(|r| r.into_inner().notifications)
    }

    /// Waits until the customer has `n` notifications.
    async fn notified(&self, customer: &str, n: usize) -> Vec<pb::Notification> {
        eventually(FLOW, &format!("{n} notifications for {customer}"), || async {
            let all = self.list(customer).await.expect("list");
            (all.len() == n).then_some(all)
        })
        .await
    }

    /// Publishes a gift event the way the gift service's relay does: payload plus
    /// envelope headers; `msg_id` is JetStream's de-duplication id.
    async fn publish(&self, gift: &Gift, used: bool, event_id: Uuid, msg_id: &str) {
        let (subject, event_type, body) = if used {
            ("game.gift.v1.used", "game.events.v1.GiftUsed", gift.used().encode_to_vec())
        } else {
            ("game.gift.v1.issued", "game.events.v1.GiftIssued", gift.issued().encode_to_vec())
        };
        let mut h = async_nats::HeaderMap::new();
        h.insert("Nats-Msg-Id", msg_id);
        h.insert("Game-Event-Id", event_id.to_string().as_str());
        h.insert("Game-Event-Type", event_type);
        h.insert("Game-Correlation-Id", gift.mission_id.as_str());
        h.insert("Game-Causation-Id", "test");
        h.insert("Game-Customer-Id", gift.customer_id.as_str());
        h.insert("Game-Occurred-At", "2026-11-25T12:00:00Z");
        self.js.publish_with_headers(subject, h, body.into()).await.expect("publish").await.expect("ack");
    }

    /// The `NotificationSent` events on the NOTIFICATION stream, once there are `n`.
    async fn announced(&self, n: u64) -> Vec<(ev::NotificationSent, async_nats::HeaderMap)> {
        let stream = eventually(FLOW, &format!("{n} NotificationSent events"), || async {
            let stream = self.js.get_stream(streams::NOTIFICATION.name).await.ok()?;
            (stream.cached_info().state.messages == n).then_some(stream)
        })
        .await;
        let mut out = Vec::new();
        for seq in 1..=n {
            let m = stream.get_raw_message(seq).await.expect("message");
            assert_eq!(m.subject.as_str(), "game.notification.v1.sent");
            out.push((ev::NotificationSent::decode(m.payload).expect("NotificationSent"), m.headers));
        }
        out
    }
}

struct Gift {
    gift_id: String,
    customer_id: String,
    reward_id: String,
    mission_id: String,
    name: String,
}

impl Gift {
    fn new(customer: &str, name: &str) -> Self {
        let id = || Uuid::now_v7().to_string();
        Self { gift_id: id(), customer_id: customer.into(), reward_id: id(), mission_id: id(), name: name.into() }
    }

    fn issued(&self) -> ev::GiftIssued {
        ev::GiftIssued {
            gift_id: self.gift_id.clone(),
            customer_id: self.customer_id.clone(),
            reward_id: self.reward_id.clone(),
            gift_code: "CAFE-42".into(),
            gift_name: self.name.clone(),
            mission_id: self.mission_id.clone(),
        }
    }

    fn used(&self) -> ev::GiftUsed {
        let i = self.issued();
        ev::GiftUsed {
            gift_id: i.gift_id,
            customer_id: i.customer_id,
            reward_id: i.reward_id,
            gift_code: i.gift_code,
            gift_name: i.gift_name,
            mission_id: i.mission_id,
        }
    }
}

/// The `.eml` files in `dir` (temporary files start with a dot and are not e-mails).
fn emails(dir: &Path) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|d| d.map(|e| e.expect("entry").path()).collect()).unwrap_or_default();
    all.retain(|p| p.extension().is_some_and(|x| x == "eml"));
    all.sort();
    all
}

fn header<'a>(mail: &'a str, name: &str) -> Option<&'a str> {
    mail.split("\r\n\r\n").next()?.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

fn inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).expect("metadata").ino()
}

#[tokio::test]
async fn an_issued_and_a_used_gift_become_one_email_each_listed_and_announced() {
    let mut s = Setup::start(&[]).await;
    let gift = Gift::new("c-gift", "Coffee");
    let (issued, used) = (Uuid::now_v7(), Uuid::now_v7());
    s.publish(&gift, false, issued, &issued.to_string()).await;
    s.publish(&gift, true, used, &used.to_string()).await;

    let listed = s.notified("c-gift", 2).await;
    let recipient = format!("c-gift@{DOMAIN}");
    let expected = [(issued, "Your gift: Coffee"), (used, "You used your gift: Coffee")];
    // Two consumers, one per event type: the two e-mails may go out in either order.
    for (event, subject) in expected {
        let n = listed.iter().find(|n| n.event_id == event.to_string()).expect("a notification about the event");
        assert_eq!(
            (n.channel.as_str(), n.subject.as_str(), n.event_id.as_str(), n.recipient.as_str()),
            ("email", subject, event.to_string().as_str(), recipient.as_str())
        );
        assert_eq!(n.customer_id, "c-gift");
        assert!(n.sent_at.as_ref().is_some_and(|t| t.seconds > 1_700_000_000), "sent_at set: {:?}", n.sent_at);
        Uuid::try_parse(&n.notification_id).expect("notification id is a UUID");

        // The e-mail is on disk, named by the event, and says the same.
        let path = s.mailbox().join(format!("{event}.eml"));
        let mail = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(header(&mail, "Subject"), Some(subject), "{mail}");
        assert_eq!(header(&mail, "To"), Some(recipient.as_str()), "{mail}");
        assert_eq!(header(&mail, "Message-ID"), Some(format!("<{event}@game-rewards.local>").as_str()), "{mail}");
        assert!(mail.contains("CAFE-42"), "the gift code is in the body: {mail}");
    }
    assert_eq!(emails(&s.mailbox()).len(), 2, "one file per e-mail");

    // Each notification is announced, caused by its gift event, in the same chain.
    let sent = s.announced(2).await;
    let about: BTreeSet<_> = sent.iter().map(|(e, _)| e.about_event_id.clone()).collect();
    assert_eq!(about, BTreeSet::from([issued.to_string(), used.to_string()]));
    for (e, h) in &sent {
        assert_eq!(h.get("Game-Causation-Id").map(|v| v.as_str()), Some(e.about_event_id.as_str()));
        assert_eq!(h.get("Game-Correlation-Id").map(|v| v.as_str()), Some(gift.mission_id.as_str()));
        assert_eq!((e.customer_id.as_str(), e.channel.as_str()), ("c-gift", "email"));
        assert!(listed.iter().any(|n| n.notification_id == e.notification_id && n.subject == e.subject));
    }
    assert_eq!(s.service.stop(), Some(0), "exits cleanly on SIGTERM");
}

/// The permission bits of a file or directory, as the filesystem has them.
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[tokio::test]
async fn e_mails_are_kept_where_only_the_service_user_can_read_them() {
    let s = Setup::start(&[]).await;
    // Made by the service at start, like `gamectl up`'s data/mailbox.
    assert_eq!(mode(&s.mailbox()), 0o700, "nobody else may list or open the mailbox");
    let gift = Gift::new("c-private", "Coffee");
    let issued = Uuid::now_v7();
    s.publish(&gift, false, issued, &issued.to_string()).await;
    s.notified("c-private", 1).await;
    let file = s.mailbox().join(format!("{issued}.eml"));
    assert_eq!(mode(&file), 0o600, "the customer's address and gift code are the service user's alone");
    assert_eq!(mode(&s.mailbox()), 0o700);
}

#[tokio::test]
async fn a_gift_event_delivered_again_sends_no_second_email() {
    let s = Setup::start(&[]).await;
    let gift = Gift::new("c-again", "Coffee");
    let used = Uuid::now_v7();
    s.publish(&gift, true, used, &used.to_string()).await;
    s.notified("c-again", 1).await;
    let file = s.mailbox().join(format!("{used}.eml"));
    let before = inode(&file);

    // The same event as a new message (a republish outside the de-duplication window),
    // then a marker event behind it on the same consumer: once the marker is handled,
    // so is the repeat.
    s.publish(&gift, true, used, "a-different-message-id").await;
    let marker = Uuid::now_v7();
    s.publish(&gift, true, marker, &marker.to_string()).await;
    let listed = s.notified("c-again", 2).await;

    assert_eq!(listed.iter().filter(|n| n.event_id == used.to_string()).count(), 1, "one notification for it");
    assert_eq!(inode(&file), before, "its e-mail was not written again");
    assert_eq!(emails(&s.mailbox()).len(), 2);
    assert_eq!(s.announced(2).await.len(), 2);
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field() {
    let s = Setup::start(&[]).await;
    // (An empty customer_id is the calling player's own: their token names them.)
    for customer in ["c 1", &"x".repeat(129)] {
        let err = s.list(customer).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{customer:?}");
        assert!(err.message().contains("customer_id"), "{}", err.message());
    }
    assert!(s.list("c-nobody").await.unwrap().is_empty());
}

/// What a fake relay does with a session.
#[derive(Clone, Copy)]
enum Relay {
    Accept,
    /// Answers `451` to the first `n` MAIL commands.
    RefuseFirst(usize),
    /// Answers `550` to every RCPT.
    RejectRecipients,
}

/// One e-mail as the relay received it.
#[derive(Debug, Clone)]
struct Received {
    rcpt_to: Vec<String>,
    data: String,
}

/// A tiny SMTP server on loopback that records what it is sent.
struct FakeSmtp {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

impl FakeSmtp {
    async fn start(relay: Relay) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let refusals = Arc::new(AtomicUsize::new(match relay {
            Relay::RefuseFirst(n) => n,
            _ => 0,
        }));
        let sink = received.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (sink, refusals) = (sink.clone(), refusals.clone());
                tokio::spawn(async move {
                    let _ = session(socket, relay, &refusals, &sink).await;
                });
            }
        });
        Self { port, received }
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }
}

async fn session(
    socket: tokio::net::TcpStream,
    relay: Relay,
    refusals: &AtomicUsize,
    sink: &Mutex<Vec<Received>>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 fake-relay ESMTP\r\n").await?;
    let mut rcpt_to = Vec::new();
    while let Some(line) = lines.next_line().await? {
        let line = line.trim_end_matches('\r');
        let verb = line.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "MAIL" if refusals.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() => {
                b"451 4.3.0 try again later\r\n"
            }
            "RCPT" if matches!(relay, Relay::RejectRecipients) => b"550 5.1.1 no such mailbox\r\n",
            "RCPT" => {
                rcpt_to.push(line.to_owned());
                b"250 2.1.5 ok\r\n"
            }
            "DATA" => {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut data = String::new();
                while let Some(l) = lines.next_line().await? {
                    let l = l.trim_end_matches('\r');
                    if l == "." {
                        break;
                    }
                    // undo dot-stuffing
                    data.push_str(l.strip_prefix('.').unwrap_or(l));
                    data.push_str("\r\n");
                }
                sink.lock().expect("lock").push(Received { rcpt_to: std::mem::take(&mut rcpt_to), data });
                b"250 2.0.0 queued\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            // EHLO, HELO, MAIL, RSET, NOOP
            _ => b"250 ok\r\n",
        };
        write.write_all(reply).await?;
    }
    Ok(())
}

#[tokio::test]
async fn with_an_smtp_relay_the_email_is_sent_there() {
    let relay = FakeSmtp::start(Relay::Accept).await;
    let s = Setup::start(&[("SMTP_URL", relay.url())]).await;
    let gift = Gift::new("c-smtp", "Coffee");
    let issued = Uuid::now_v7();
    s.publish(&gift, false, issued, &issued.to_string()).await;
    s.notified("c-smtp", 1).await;

    let got = relay.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].rcpt_to.len(), 1, "{got:?}");
    assert!(got[0].rcpt_to[0].contains(&format!("<c-smtp@{DOMAIN}>")), "{got:?}");
    let mail = &got[0].data;
    assert_eq!(header(mail, "Subject"), Some("Your gift: Coffee"), "{mail}");
    assert_eq!(header(mail, "To"), Some(format!("c-smtp@{DOMAIN}").as_str()), "{mail}");
    assert_eq!(header(mail, "Message-ID"), Some(format!("<{issued}@game-rewards.local>").as_str()), "{mail}");
    assert!(emails(&s.mailbox()).is_empty(), "nothing went to the mailbox directory");
}

#[tokio::test]
async fn a_relay_refusing_for_a_while_gets_the_email_once_when_it_accepts() {
    let relay = FakeSmtp::start(Relay::RefuseFirst(2)).await;
    let s = Setup::start(&[("SMTP_URL", relay.url())]).await;
    let gift = Gift::new("c-later", "Tea");
    let used = Uuid::now_v7();
    s.publish(&gift, true, used, &used.to_string()).await;
    let listed = s.notified("c-later", 1).await;
    assert_eq!(listed[0].subject, "You used your gift: Tea");
    let got = relay.received();
    assert_eq!(got.len(), 1, "sent once, after the refusals: {got:?}");
    assert!(s.service.log().contains("event will be redelivered"), "the refusals were retried");
}

#[tokio::test]
async fn an_email_the_relay_rejects_for_good_is_dead_lettered_and_not_recorded() {
    let relay = FakeSmtp::start(Relay::RejectRecipients).await;
    let s = Setup::start(&[("SMTP_URL", relay.url())]).await;
    let gift = Gift::new("c-bounce", "Coffee");
    let issued = Uuid::now_v7();
    s.publish(&gift, false, issued, &issued.to_string()).await;

    let dead = eventually(FLOW, "the event in the dead-letter stream", || async {
        let stream = s.js.get_stream(streams::DEAD_LETTER.name).await.ok()?;
        stream.get_last_raw_message_by_subject("game.deadletter.notification-gift-issued").await.ok()
    })
    .await;
    assert_eq!(dead.headers.get("Game-Event-Id").map(|v| v.as_str()), Some(issued.to_string().as_str()));
    let reason = dead.headers.get("Game-Dead-Letter-Reason").map(|v| v.as_str().to_owned()).unwrap_or_default();
    assert!(reason.contains("550"), "{reason}");
    assert!(s.list("c-bounce").await.unwrap().is_empty(), "nothing recorded");
    assert!(relay.received().is_empty());
}
