//! The edge against a client that does not play by the rules: malformed and oversized
//! requests, anonymous floods from one address, forged forwarding headers, stalled
//! services, and request ids reused for another request.

use std::time::{Duration, Instant};

use e2e::clients::*;
use e2e::raw::{self, Answer};
use e2e::{Options, System, with_token};
use grpc_adapter::pb::auth::v1 as auth;
use grpc_adapter::pb::auth::v1::auth_service_client::AuthServiceClient;
use grpc_adapter::pb::gift::v1 as gift;
use grpc_adapter::pb::mission::v1 as mission;
use grpc_adapter::pb::mypage::v1 as mypage;
use grpc_adapter::pb::notification::v1 as notification;
use grpc_adapter::pb::notification::v1::notification_service_client::NotificationServiceClient;
use grpc_adapter::pb::notification::v1::notification_service_server::{NotificationService, NotificationServiceServer};
use grpc_adapter::pb::wallet::v1 as wallet;
use prost::Message;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

const ACHIEVE: &str = "/game.mission.v1.MissionService/AchieveMission";

/// Words of prost's and tonic's decoding errors that must never reach a client.
const DECODER_WORDS: &[&str] = &[
    "decode",
    "wire type",
    "UTF-8",
    "utf-8",
    "Protobuf",
    "buffer",
    "EOF",
    "varint",
    "customer_id",
    "mission_code",
    "AchieveMissionRequest.",
];

fn assert_no_decoder_text(what: &str, message: &str) {
    for word in DECODER_WORDS {
        assert!(!message.contains(word), "{what}: '{message}' shows the decoder's '{word}'");
    }
}

/// One malformed request: the HTTP body, the code and the message it must get.
struct Case {
    what: &'static str,
    body: Vec<u8>,
    code: Code,
    message: &'static str,
}

fn malformed_cases() -> Vec<Case> {
    let valid = mission::AchieveMissionRequest {
        customer_id: "mal".into(),
        mission_code: "daily-login".into(),
        request_id: "m-1".into(),
    }
    .encode_to_vec();
    let not_valid = "request: not a valid AchieveMissionRequest message";
    let mut invalid_utf8 = vec![0x0a, 3, b'm', b'a', b'l', 0x12, 2, 0xff, 0xfe];
    invalid_utf8.extend_from_slice(&[0x1a, 1, b'x']);
    let case = |what, body, code, message| Case { what, body, code, message };
    vec![
        case("invalid UTF-8 in a string field", raw::frame(&invalid_utf8), Code::InvalidArgument, not_valid),
        case("a truncated message", raw::frame(&valid[..valid.len() - 3]), Code::InvalidArgument, not_valid),
        case("a wrong wire type", raw::frame(&[0x08, 0x01]), Code::InvalidArgument, not_valid),
        case("a length past the end", raw::frame(&[0x0a, 0x7f, b'a']), Code::InvalidArgument, not_valid),
        case(
            "a huge inner length",
            raw::frame(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]),
            Code::InvalidArgument,
            not_valid,
        ),
        case(
            "a truncated frame",
            raw::frame(&valid)[..8].to_vec(),
            Code::InvalidArgument,
            "request: truncated message",
        ),
        case("no message", vec![], Code::InvalidArgument, "request: missing message"),
        case(
            "a bad compressed flag",
            vec![2, 0, 0, 0, 1, 0],
            Code::InvalidArgument,
            "request: malformed message prefix",
        ),
        case(
            "a huge length prefix",
            vec![0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3],
            Code::ResourceExhausted,
            "request: message larger than 4194304 bytes",
        ),
    ]
}

fn check(target: &str, case: &Case, answer: &Answer) {
    let what = format!("{} ({target})", case.what);
    assert_eq!(answer.code, case.code, "{what}: {answer:?}");
    assert_eq!(answer.message, case.message, "{what}");
    assert_no_decoder_text(&what, &answer.message);
}

#[tokio::test]
async fn malformed_requests_are_refused_by_name_without_decoder_text_everywhere_and_change_nothing() {
    let sys = System::start_with(Options { gateway: true, ..Options::default() }).await;
    let token = sys.tokens.customer("mal");
    let targets = [("gateway", sys.gateway()), ("mission", &sys.mission)];
    for (name, service) in targets {
        for case in malformed_cases() {
            let answer = raw::grpc(service.addr, ACHIEVE, Some(&token), case.body.clone()).await;
            check(&format!("gRPC to {name}"), &case, &answer);
            let (addr, token, body) = (service.addr, token.clone(), case.body.clone());
            let (_, answer) = tokio::task::spawn_blocking(move || {
                raw::grpc_web(addr, "POST", ACHIEVE, Some("application/grpc-web+proto"), Some(&token), &body)
            })
            .await
            .unwrap();
            check(&format!("grpc-web to {name}"), &case, &answer);
        }
        // A message over the limit, sent whole.
        let big = raw::frame(&vec![b'x'; 4 * 1024 * 1024 + 1]);
        let answer = raw::grpc(service.addr, ACHIEVE, Some(&token), big).await;
        assert_eq!(answer.code, Code::ResourceExhausted, "oversized to {name}: {answer:?}");
        // A browser's GET, and a plain HTTP/1.1 GET, carry no message.
        for content_type in [Some("application/grpc-web+proto"), None] {
            let (addr, token) = (service.addr, token.clone());
            let (head, answer) = tokio::task::spawn_blocking(move || {
                raw::grpc_web(addr, "GET", ACHIEVE, content_type, Some(&token), &[])
            })
            .await
            .unwrap();
            if content_type.is_some() {
                // grpc-web is POST only: tonic-web refuses the method itself.
                assert!(head.starts_with("HTTP/1.1 405"), "grpc-web GET to {name}: {head}");
            } else if name == "gateway" {
                // The gateway answers plain GETs with its web page: no page by that name.
                assert!(head.starts_with("HTTP/1.1 404"), "GET to {name}: {head}");
            } else {
                assert_eq!(answer.code, Code::InvalidArgument, "GET to {name}: {head} {answer:?}");
                assert_eq!(answer.message, "request: missing message");
            }
        }
        // The health service reads its requests the same way.
        let health = raw::grpc(service.addr, "/grpc.health.v1.Health/Check", None, raw::frame(&[0x0a, 1, 0xff])).await;
        assert_eq!(health.code, Code::InvalidArgument, "health at {name}: {health:?}");
        assert_eq!(health.message, "request: not a valid HealthCheckRequest message");
    }
    // Nothing was achieved, and a well-formed request still works.
    let list = mission::ListMissionsRequest { customer_id: "mal".into(), ..Default::default() }.encode_to_vec();
    let answer =
        raw::grpc(sys.gateway().addr, "/game.mission.v1.MissionService/ListMissions", Some(&token), raw::frame(&list))
            .await;
    assert_eq!(answer.code, Code::Ok, "{answer:?}");
    let missions = mission::ListMissionsResponse::decode(answer.data[0].as_slice()).unwrap().missions;
    assert!(missions.is_empty(), "a malformed request achieved {missions:?}");
}

/// A notification service that answers with what the gateway told it: the client's
/// address (`x-forwarded-for`) as the subject, the deadline (`grpc-timeout`) as the channel.
struct Echo;

#[tonic::async_trait]
impl NotificationService for Echo {
    async fn list_notifications(
        &self,
        req: tonic::Request<notification::ListNotificationsRequest>,
    ) -> Result<tonic::Response<notification::ListNotificationsResponse>, tonic::Status> {
        let header = |name: &str| {
            let values: Vec<_> = req.metadata().get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
            values.join(" | ")
        };
        let seen = notification::Notification {
            subject: header("x-forwarded-for"),
            channel: header("grpc-timeout"),
            ..Default::default()
        };
        Ok(tonic::Response::new(notification::ListNotificationsResponse {
            notifications: vec![seen],
            ..Default::default()
        }))
    }
}

/// Serves [`Echo`] (with health) on a free port; returns its URL.
async fn start_echo() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_service_status(e2e::NOTIFICATION, tonic_health::ServingStatus::Serving).await;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .add_service(NotificationServiceServer::new(Echo))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    format!("http://{addr}")
}

/// What the upstream saw of a call through the gateway: (x-forwarded-for, grpc-timeout).
async fn seen_upstream(channel: Channel, token: &str, forwarded: Option<&str>) -> (String, String) {
    let mut req =
        tonic::Request::new(notification::ListNotificationsRequest { customer_id: "eve".into(), ..Default::default() });
    req.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    if let Some(f) = forwarded {
        req.metadata_mut().insert("x-forwarded-for", f.parse().unwrap());
    }
    let answer = NotificationServiceClient::new(channel).list_notifications(req).await.expect("echo");
    let seen = answer.into_inner().notifications.remove(0);
    (seen.subject, seen.channel)
}

/// A channel to `service` whose connections leave from `local` (e.g. 127.0.0.2).
fn channel_from(service: &e2e::Service, local: &str) -> Channel {
    Endpoint::from_shared(service.url()).unwrap().local_address(Some(local.parse().unwrap())).connect_lazy()
}

async fn register(channel: Channel, customer: &str, forwarded: Option<&str>) -> Result<(), tonic::Status> {
    let mut req = tonic::Request::new(auth::RegisterCustomerRequest {
        customer_id: customer.into(),
        password: "correct horse battery".into(),
    });
    if let Some(f) = forwarded {
        req.metadata_mut().insert("x-forwarded-for", f.parse().unwrap());
    }
    AuthServiceClient::new(channel).register_customer(req).await.map(drop)
}

async fn issue_token(channel: Channel, customer: &str) -> Result<String, tonic::Status> {
    let req = auth::IssueTokenRequest { customer_id: customer.into(), password: "correct horse battery".into() };
    AuthServiceClient::new(channel).issue_token(req).await.map(|r| r.into_inner().access_token)
}

fn retry_after(e: &tonic::Status) -> u64 {
    e.metadata().get("retry-after").expect("retry-after").to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn anonymous_calls_are_limited_per_client_address_and_a_forged_forwarded_for_changes_nothing() {
    let echo = start_echo().await;
    let sys = System::start_with(Options {
        gateway: true,
        gateway_env: vec![("NOTIFICATION_URL", echo)],
        ..Options::default()
    })
    .await;
    let gateway = sys.gateway();
    // 30 registrations from 127.0.0.1, each claiming to come from somewhere else.
    for i in 0..30 {
        let forged = format!("203.0.113.{i}");
        register(gateway.channel(), &format!("anon-{i}"), Some(&forged)).await.expect("within the limit");
    }
    let refused = register(gateway.channel(), "anon-30", Some("198.51.100.99")).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{}", refused.message());
    assert!((1..=60).contains(&retry_after(&refused)), "retry-after: the oldest call leaves the window");
    // Every call without a token counts: logging in and reading the catalog too.
    assert_eq!(issue_token(gateway.channel(), "anon-0").await.unwrap_err().code(), Code::ResourceExhausted);
    let catalog = MissionServiceClient::new(gateway.channel()).list_catalog(mission::ListCatalogRequest {}).await;
    assert_eq!(catalog.unwrap_err().code(), Code::ResourceExhausted);

    // Another address is not affected; the refused registration did not happen.
    let other = channel_from(gateway, "127.0.0.2");
    register(other.clone(), "anon-other", None).await.expect("another address registers");
    issue_token(other.clone(), "anon-0").await.expect("registered within the limit");
    let never = issue_token(other, "anon-30").await.unwrap_err();
    assert_eq!(never.code(), Code::Unauthenticated, "the refused registration left nothing");

    // A customer with a token is counted as a customer, not by the address.
    let token = sys.tokens.customer("eve");
    let (forwarded, timeout) = seen_upstream(gateway.channel(), &token, Some("6.6.6.6")).await;
    assert_eq!(forwarded, "127.0.0.1", "the forged address is replaced by the peer's");
    assert_eq!(timeout, "10000m", "the upstream is told the default deadline");
}

#[tokio::test]
async fn a_public_call_carrying_a_players_token_is_still_counted_per_client_address() {
    let sys = System::start_with(Options {
        gateway: true,
        gateway_env: vec![("ANONYMOUS_RATE_PER_MINUTE", "5".into())],
        ..Options::default()
    })
    .await;
    let gateway = sys.gateway();
    // A valid player's token on every call: it must not buy the address a bigger window.
    let token = sys.tokens.customer("tess");
    let auth = || AuthServiceClient::new(with_token(gateway.channel(), &token));
    let register = |i: usize| auth::RegisterCustomerRequest {
        customer_id: format!("tok-{i}"),
        password: "correct horse battery".into(),
    };
    for i in 0..5 {
        auth().register_customer(register(i)).await.expect("within the limit");
    }
    let refused = auth().register_customer(register(5)).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "the 6th registration: {}", refused.message());
    assert!((1..=60).contains(&retry_after(&refused)));
    let login = auth::IssueTokenRequest { customer_id: "tok-0".into(), password: "correct horse battery".into() };
    assert_eq!(auth().issue_token(login).await.unwrap_err().code(), Code::ResourceExhausted, "logging in");
    let catalog = MissionServiceClient::new(with_token(gateway.channel(), &token))
        .list_catalog(mission::ListCatalogRequest {})
        .await;
    assert_eq!(catalog.unwrap_err().code(), Code::ResourceExhausted, "the catalog");

    // The player's own calls are counted per customer, and go on.
    let mine = MissionServiceClient::new(with_token(gateway.channel(), &token))
        .list_missions(mission::ListMissionsRequest { customer_id: "tess".into(), ..Default::default() })
        .await;
    assert!(mine.is_ok(), "{mine:?}");
    // The refused registration left nothing; another address is not affected.
    let other = channel_from(gateway, "127.0.0.2");
    assert_eq!(issue_token(other.clone(), "tok-5").await.unwrap_err().code(), Code::Unauthenticated);
    issue_token(other, "tok-4").await.expect("registered within the limit");
}

#[tokio::test]
async fn an_authenticated_grpc_web_answer_is_never_stored_by_a_cache() {
    let sys = System::start_with(Options { gateway: true, ..Options::default() }).await;
    let token = sys.tokens.customer("cara");
    let list = mission::ListMissionsRequest { customer_id: "cara".into(), ..Default::default() }.encode_to_vec();
    let addr = sys.gateway().addr;
    let (head, answer) = tokio::task::spawn_blocking(move || {
        let path = "/game.mission.v1.MissionService/ListMissions";
        raw::grpc_web(addr, "POST", path, Some("application/grpc-web+proto"), Some(&token), &raw::frame(&list))
    })
    .await
    .unwrap();
    assert_eq!(answer.code, Code::Ok, "{head} {answer:?}");
    let cache_control: Vec<_> = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case("cache-control"))
        .collect();
    assert_eq!(cache_control.len(), 1, "{head}");
    assert_eq!(cache_control[0].1.trim(), "no-store", "{head}");
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_limited_and_passed_on() {
    let echo = start_echo().await;
    let sys = System::start_with(Options {
        gateway: true,
        gateway_env: vec![
            ("NOTIFICATION_URL", echo),
            ("TRUSTED_PROXIES", "127.0.0.1".into()),
            ("ANONYMOUS_RATE_PER_MINUTE", "3".into()),
        ],
        ..Options::default()
    })
    .await;
    let gateway = sys.gateway();
    for i in 0..3 {
        register(gateway.channel(), &format!("via-{i}"), Some("198.51.100.7")).await.expect("within the limit");
    }
    let refused = register(gateway.channel(), "via-3", Some("198.51.100.7")).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    // The proxy's own address and another client behind it have their own counts; a
    // client prepending a forged hop is still counted as what the proxy saw.
    register(gateway.channel(), "via-4", Some("198.51.100.8")).await.expect("another client");
    let forged = register(gateway.channel(), "via-5", Some("6.6.6.6, 198.51.100.7")).await.unwrap_err();
    assert_eq!(forged.code(), Code::ResourceExhausted);
    register(gateway.channel(), "via-6", None).await.expect("the proxy itself");

    let token = sys.tokens.customer("eve");
    assert_eq!(seen_upstream(gateway.channel(), &token, Some("198.51.100.7")).await.0, "198.51.100.7");
    assert_eq!(seen_upstream(gateway.channel(), &token, Some("6.6.6.6, 198.51.100.9")).await.0, "198.51.100.9");
    assert_eq!(seen_upstream(gateway.channel(), &token, None).await.0, "127.0.0.1");
    // From an address that is not a trusted proxy, the header is not believed.
    let untrusted = channel_from(gateway, "127.0.0.2");
    assert_eq!(seen_upstream(untrusted, &token, Some("198.51.100.7")).await.0, "127.0.0.2");
}

#[tokio::test]
async fn a_call_to_a_stalled_service_ends_at_its_deadline_while_a_watch_outlives_the_default() {
    let sys = System::start_with(Options {
        gateway: true,
        gateway_env: vec![("UPSTREAM_TIMEOUT_SECONDS", "1".into())],
        ..Options::default()
    })
    .await;
    let token = sys.tokens.customer("wendy");
    let gateway = || with_token(sys.gateway().channel(), &token);
    let mut watch = MyPageServiceClient::new(gateway())
        .watch_my_page(mypage::WatchMyPageRequest { customer_id: "wendy".into() })
        .await
        .expect("watch")
        .into_inner();
    let watching = Instant::now();
    watch.message().await.expect("the first page").expect("a page");

    sys.mission.freeze();
    let list = || mission::ListMissionsRequest { customer_id: "wendy".into(), ..Default::default() };
    let started = Instant::now();
    // Bounded here too: without the gateway's deadline this call would wait forever.
    let mut client = MissionServiceClient::new(gateway());
    let call = client.list_missions(list());
    let err = tokio::time::timeout(Duration::from_secs(10), call).await.expect("an answer").unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{}", err.message());
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(5), "the default of 1 s: {took:?}");
    // The client's own deadline wins (sent raw: a tonic client would give up by itself).
    let started = Instant::now();
    let call = raw::grpc_with(
        sys.gateway().addr,
        "/game.mission.v1.MissionService/ListMissions",
        Some(&token),
        raw::frame(&list().encode_to_vec()),
        &[("grpc-timeout", "300m")],
    );
    let answer = tokio::time::timeout(Duration::from_secs(10), call).await.expect("an answer");
    let took = started.elapsed();
    assert_eq!(answer.code, Code::DeadlineExceeded, "{answer:?}");
    assert!(took >= Duration::from_millis(250) && took < Duration::from_millis(900), "the client's 300 ms: {took:?}");
    sys.mission.thaw();

    // The watch has outlived the default deadline and still follows the page.
    tokio::time::sleep(Duration::from_millis(2500).saturating_sub(watching.elapsed())).await;
    let achieved = MissionServiceClient::new(gateway())
        .achieve_mission(mission::AchieveMissionRequest {
            customer_id: "wendy".into(),
            mission_code: "daily-login".into(),
            request_id: "w-1".into(),
        })
        .await
        .expect("mission answers again")
        .into_inner()
        .mission
        .unwrap();
    let update = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let page = watch.message().await.expect("the watch is still open").expect("a page").page.unwrap();
            if page.entries.iter().any(|e| e.mission_id == achieved.mission_id) {
                return page;
            }
        }
    })
    .await
    .expect("the achieved mission reaches the watch");
    assert!(watching.elapsed() > Duration::from_secs(2), "watched for longer than the default deadline");
    assert_eq!(update.customer_id, "wendy");
}

#[tokio::test]
async fn a_request_id_reused_for_another_request_is_refused_and_changes_nothing() {
    let sys = System::start_with(Options { gateway: true, ..Options::default() }).await;
    let token = sys.tokens.customer("rita");
    let gateway = || with_token(sys.gateway().channel(), &token);
    let achieve = |code: &str, request_id: &str| {
        let request = mission::AchieveMissionRequest {
            customer_id: "rita".into(),
            mission_code: code.into(),
            request_id: request_id.into(),
        };
        async move {
            MissionServiceClient::new(gateway()).achieve_mission(request).await.map(|r| r.into_inner().mission.unwrap())
        }
    };
    let first = achieve("daily-login", "r-1").await.unwrap();
    let reused = achieve("tutorial-complete", "r-1").await.unwrap_err();
    assert_eq!(reused.code(), Code::FailedPrecondition);
    assert_eq!(reused.message(), "request id already used for another request");
    // A mission the player may not report at all is refused for that first.
    assert_eq!(achieve("first-win", "r-1").await.unwrap_err().code(), Code::PermissionDenied);
    assert_eq!(achieve("daily-login", "r-1").await.unwrap().mission_id, first.mission_id, "the same request again");
    let missions = e2e::api::missions(&sys, "rita").await;
    assert_eq!(missions.len(), 1, "{missions:?}");

    let a = e2e::api::issued_reward(&sys, "rita", "first-win").await;
    let b = e2e::api::issued_reward(&sys, "rita", "tutorial-complete").await;
    let exchange = |reward: &str, gift: &str| {
        let request = wallet::ExchangeRewardRequest {
            customer_id: "rita".into(),
            reward_id: reward.into(),
            gift_code: gift.into(),
            request_id: "x-1".into(),
        };
        async move { WalletServiceClient::new(gateway()).exchange_reward(request).await.map(|r| r.into_inner().gift_id) }
    };
    let gift = exchange(&a.reward_id, "coffee").await.unwrap();
    for (what, reward, gift) in
        [("another reward", &b.reward_id, "coffee"), ("another gift", &a.reward_id, "movie-ticket")]
    {
        let e = exchange(reward, gift).await.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{what}: {}", e.message());
        assert_eq!(e.message(), "request id already used for another request", "{what}");
    }
    assert_eq!(exchange(&a.reward_id, "coffee").await.unwrap(), gift, "the same request again");
    let wallet = e2e::api::wallet_of(&sys, "rita").await;
    let status = |id: &str| wallet.items.iter().find(|i| i.reward_id == id).unwrap().status;
    assert_eq!(status(&b.reward_id), wallet::WalletItemStatus::Issued as i32, "the other reward is untouched");
    let gifts = GiftServiceClient::new(gateway())
        .list_gifts(gift::ListGiftsRequest { customer_id: "rita".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .gifts;
    assert_eq!(gifts.len(), 1, "one gift: {gifts:?}");
}
