//! One front door: the whole scenario as a registered customer through the gateway, every
//! way a token can be wrong, customers kept apart on every service (someone else's thing
//! is not found, like an unknown one; admins read but never act), reflection, grpc-web,
//! rate limits, login throttling, key rotation, and the web page served at the root.

use std::time::Duration;

use e2e::clients::*;
use e2e::{GAME_SERVER, Options, System, eventually, with_token};
use grpc_adapter::pb::auth::v1 as auth;
use grpc_adapter::pb::gift::v1 as gift;
use grpc_adapter::pb::mission::v1 as mission;
use grpc_adapter::pb::mypage::v1 as mypage;
use grpc_adapter::pb::notification::v1 as notification;
use grpc_adapter::pb::reward::v1 as reward;
use grpc_adapter::pb::wallet::v1 as wallet;
use prost::Message;
use tonic::Code;

use grpc_adapter::pb::auth::v1::auth_service_client::AuthServiceClient;
use grpc_adapter::pb::notification::v1::notification_service_client::NotificationServiceClient;

const FLOW: Duration = Duration::from_secs(30);

async fn system() -> System {
    System::start_with(Options { gateway: true, ..Options::default() }).await
}

/// Registers a customer through the gateway and logs in.
async fn login(sys: &System, customer: &str) -> String {
    let mut auth = AuthServiceClient::new(sys.gateway().channel());
    auth.register_customer(auth::RegisterCustomerRequest {
        customer_id: customer.into(),
        password: "correct horse battery".into(),
    })
    .await
    .expect("register");
    let t = auth
        .issue_token(auth::IssueTokenRequest { customer_id: customer.into(), password: "correct horse battery".into() })
        .await
        .expect("token")
        .into_inner();
    assert_eq!(t.token_type, "Bearer");
    assert!(t.expires_in > 0);
    t.access_token
}

#[tokio::test]
async fn a_registered_customer_goes_through_the_whole_scenario_via_the_gateway() {
    let sys = system().await;
    let token = login(&sys, "alice").await;
    let ch = || with_token(sys.gateway().channel(), &token);

    // alice wins her first match: the game server reports it, through the gateway too
    let m = MissionServiceClient::new(with_token(sys.gateway().channel(), &sys.tokens.game_server(GAME_SERVER)))
        .achieve_mission(mission::AchieveMissionRequest {
            customer_id: "alice".into(),
            mission_code: "first-win".into(),
            request_id: "a-1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .mission
        .unwrap();
    let item = eventually(FLOW, "the reward is in the wallet", || async {
        let w = WalletServiceClient::new(ch())
            .get_wallet(wallet::GetWalletRequest { customer_id: "alice".into(), ..Default::default() })
            .await
            .ok()?;
        w.into_inner().wallet?.items.into_iter().find(|i| i.mission_id == m.mission_id)
    })
    .await;
    let exchanged = WalletServiceClient::new(ch())
        .exchange_reward(wallet::ExchangeRewardRequest {
            customer_id: "alice".into(),
            reward_id: item.reward_id.clone(),
            gift_code: "movie-ticket".into(),
            request_id: "x-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    GiftServiceClient::new(ch())
        .use_gift(gift::UseGiftRequest { gift_id: exchanged.gift_id.clone(), customer_id: String::new() })
        .await
        .unwrap();

    let notes = eventually(FLOW, "two e-mails", || async {
        let n = NotificationServiceClient::new(ch())
            .list_notifications(notification::ListNotificationsRequest {
                customer_id: "alice".into(),
                ..Default::default()
            })
            .await
            .ok()?
            .into_inner()
            .notifications;
        (n.len() == 2).then_some(n)
    })
    .await;
    assert!(notes.iter().all(|n| n.channel == "email"));
    let mails = std::fs::read_dir(sys.mailbox()).unwrap().count();
    assert_eq!(mails, 2, "an .eml file per e-mail");
    eventually(FLOW, "my page shows the used gift", || async {
        let p = MyPageServiceClient::new(ch())
            .get_my_page(mypage::GetMyPageRequest { customer_id: "alice".into(), ..Default::default() })
            .await
            .ok()?;
        let p = p.into_inner().page?;
        (p.entries.first()?.gift_status == mypage::GiftStatus::Used as i32 && p.points_exchanged == 50).then_some(())
    })
    .await;
    // The reward service learns of the exchange from the wallet's event: eventually.
    eventually(FLOW, "the reward is recorded EXCHANGED", || async {
        let r = RewardServiceClient::new(ch())
            .get_reward(reward::GetRewardRequest { reward_id: item.reward_id.clone() })
            .await
            .ok()?;
        (r.into_inner().reward?.status == reward::RewardStatus::Exchanged as i32).then_some(())
    })
    .await;
}

/// Builds an unsigned token (`alg: none`).
fn alg_none_token(sub: &str) -> String {
    let b64 = |v: &serde_json::Value| base64url(&serde_json::to_vec(v).unwrap());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let header = serde_json::json!({"alg": "none", "typ": "JWT"});
    let claims = serde_json::json!({"sub": sub, "iss": "game-rewards", "aud": "game-rewards", "exp": now + 600});
    format!("{}.{}.", b64(&header), b64(&claims))
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn claims(sub: &str) -> auth_adapter::Claims {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    auth_adapter::Claims {
        sub: sub.into(),
        iss: "game-rewards".into(),
        aud: serde_json::json!("game-rewards"),
        exp: now + 600,
        iat: now,
        nbf: now,
        jti: "t".into(),
        role: Some("customer".into()),
        realm_access: None,
    }
}

#[tokio::test]
async fn every_bad_token_is_unauthenticated_at_the_gateway_and_changes_nothing() {
    let sys = system().await;
    let good = login(&sys, "bob").await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let signer = sys.tokens.issuer();
    let sign = |c: auth_adapter::Claims| signer.sign(&c).unwrap();
    let tampered = {
        let (head, _) = good.rsplit_once('.').unwrap();
        format!("{head}.{}", base64url(&[1u8; 64]))
    };
    let foreign = {
        let dir = tempfile::tempdir().unwrap();
        let ring = auth_adapter::KeyRing::open(dir.path(), Duration::from_secs(60)).unwrap();
        auth_adapter::TokenIssuer {
            ring,
            issuer: "game-rewards".into(),
            audience: "game-rewards".into(),
            ttl: Duration::from_secs(60),
        }
        .issue("bob", auth_adapter::Role::Player)
        .unwrap()
        .0
    };
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("malformed", Some("not-a-jwt".into())),
        ("wrong signature", Some(tampered)),
        ("unknown signing key", Some(foreign)),
        ("alg none", Some(alg_none_token("bob"))),
        ("expired", Some(sign(auth_adapter::Claims { exp: now - 300, ..claims("bob") }))),
        ("not yet valid", Some(sign(auth_adapter::Claims { nbf: now + 300, ..claims("bob") }))),
        ("wrong issuer", Some(sign(auth_adapter::Claims { iss: "evil".into(), ..claims("bob") }))),
        ("wrong audience", Some(sign(auth_adapter::Claims { aud: serde_json::json!("other-app"), ..claims("bob") }))),
    ];
    for (what, token) in cases {
        let request = mission::AchieveMissionRequest {
            customer_id: "bob".into(),
            mission_code: "daily-login".into(),
            request_id: what.into(),
        };
        let result = match &token {
            Some(t) => MissionServiceClient::new(with_token(sys.gateway().channel(), t)).achieve_mission(request).await,
            None => MissionServiceClient::new(sys.gateway().channel()).achieve_mission(request).await,
        };
        let err = result.expect_err(what);
        assert_eq!(err.code(), Code::Unauthenticated, "{what}: {}", err.message());
        // Without the gateway, the service refuses the same token by itself.
        let direct = mission::AchieveMissionRequest {
            customer_id: "bob".into(),
            mission_code: "daily-login".into(),
            request_id: what.into(),
        };
        let direct = match &token {
            Some(t) => MissionServiceClient::new(with_token(sys.mission.channel(), t)).achieve_mission(direct).await,
            None => MissionServiceClient::new(sys.mission.channel()).achieve_mission(direct).await,
        };
        assert_eq!(direct.expect_err(what).code(), Code::Unauthenticated, "{what} directly");
    }
    let missions = MissionServiceClient::new(with_token(sys.gateway().channel(), &good))
        .list_missions(mission::ListMissionsRequest { customer_id: "bob".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .missions;
    assert!(missions.is_empty(), "no refused request achieved anything");
    // public methods need no token
    MissionServiceClient::new(sys.gateway().channel()).list_catalog(mission::ListCatalogRequest {}).await.unwrap();
}

#[tokio::test]
async fn another_customers_things_are_not_found_like_unknown_ones_and_an_admin_reads_but_never_acts() {
    let sys = system().await;
    let (a, b) = (login(&sys, "carol").await, login(&sys, "dave").await);
    let as_b = || with_token(sys.gateway().channel(), &b);
    let as_a = || with_token(sys.gateway().channel(), &a);
    // dave gets a mission, two rewards, a gift
    let mut missions = Vec::new();
    for code in ["daily-login", "tutorial-complete"] {
        let m = MissionServiceClient::new(as_b())
            .achieve_mission(mission::AchieveMissionRequest {
                customer_id: "dave".into(),
                mission_code: code.into(),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .mission
            .unwrap();
        missions.push(m);
    }
    let m = missions[0].clone();
    let items = eventually(FLOW, "dave's rewards", || async {
        let w = WalletServiceClient::new(as_b())
            .get_wallet(wallet::GetWalletRequest { customer_id: "dave".into(), ..Default::default() })
            .await
            .ok()?;
        let items = w.into_inner().wallet?.items;
        (items.len() == 2).then_some(items)
    })
    .await;
    let (item, spare) = (items[0].clone(), items[1].clone());
    let g = WalletServiceClient::new(as_b())
        .exchange_reward(wallet::ExchangeRewardRequest {
            customer_id: "dave".into(),
            reward_id: item.reward_id.clone(),
            gift_code: "coffee".into(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .gift_id;

    // By id: someone else's thing gets exactly the answer of an id that does not exist.
    let unknown = uuid::Uuid::now_v7().to_string();
    let same_as_unknown = |theirs: Result<(), tonic::Status>, unknown: Result<(), tonic::Status>, what: &str| {
        let (theirs, unknown) = (theirs.expect_err(what), unknown.expect_err(what));
        assert_eq!(theirs.code(), Code::NotFound, "{what}: {}", theirs.message());
        assert_eq!((theirs.code(), theirs.message()), (unknown.code(), unknown.message()), "{what}");
    };
    macro_rules! both {
        ($call:expr, $mine:expr, $what:expr) => {{
            let theirs = $call($mine.clone()).await.map(drop);
            let nobodys = $call(unknown.clone()).await.map(drop);
            same_as_unknown(theirs, nobodys, $what);
        }};
    }
    both!(
        |id| async move {
            MissionServiceClient::new(as_a()).get_mission(mission::GetMissionRequest { mission_id: id }).await
        },
        m.mission_id,
        "GetMission"
    );
    both!(
        |id| async move { RewardServiceClient::new(as_a()).get_reward(reward::GetRewardRequest { reward_id: id }).await },
        item.reward_id,
        "GetReward"
    );
    both!(
        |id| async move { GiftServiceClient::new(as_a()).get_gift(gift::GetGiftRequest { gift_id: id }).await },
        g,
        "GetGift"
    );
    both!(
        |id| async move {
            GiftServiceClient::new(as_a())
                .use_gift(gift::UseGiftRequest { gift_id: id, customer_id: String::new() })
                .await
        },
        g,
        "UseGift"
    );
    both!(
        |id| async move {
            WalletServiceClient::new(as_a())
                .exchange_reward(wallet::ExchangeRewardRequest {
                    customer_id: String::new(),
                    reward_id: id,
                    gift_code: "coffee".into(),
                    request_id: String::new(),
                })
                .await
        },
        spare.reward_id,
        "ExchangeReward"
    );
    // The same straight at the services, bypassing the gateway.
    let direct = |svc: &e2e::Service| with_token(svc.channel(), &a);
    same_as_unknown(
        GiftServiceClient::new(direct(&sys.gift)).get_gift(gift::GetGiftRequest { gift_id: g.clone() }).await.map(drop),
        GiftServiceClient::new(direct(&sys.gift))
            .get_gift(gift::GetGiftRequest { gift_id: unknown.clone() })
            .await
            .map(drop),
        "GetGift direct",
    );
    same_as_unknown(
        MissionServiceClient::new(direct(&sys.mission))
            .get_mission(mission::GetMissionRequest { mission_id: m.mission_id.clone() })
            .await
            .map(drop),
        MissionServiceClient::new(direct(&sys.mission))
            .get_mission(mission::GetMissionRequest { mission_id: unknown.clone() })
            .await
            .map(drop),
        "GetMission direct",
    );

    // Naming someone else as the customer is refused as such: the id is the caller's input.
    let denied = |r: Result<(), tonic::Status>, what: &str| {
        let e = r.expect_err(what);
        assert_eq!(e.code(), Code::PermissionDenied, "{what}: {}", e.message());
    };
    let d = || "dave".to_owned();
    denied(
        MissionServiceClient::new(as_a())
            .list_missions(mission::ListMissionsRequest { customer_id: d(), ..Default::default() })
            .await
            .map(drop),
        "ListMissions",
    );
    denied(
        MissionServiceClient::new(as_a())
            .achieve_mission(mission::AchieveMissionRequest {
                customer_id: d(),
                mission_code: "daily-login".into(),
                request_id: String::new(),
            })
            .await
            .map(drop),
        "AchieveMission",
    );
    denied(
        RewardServiceClient::new(as_a())
            .list_rewards(reward::ListRewardsRequest { customer_id: d(), ..Default::default() })
            .await
            .map(drop),
        "ListRewards",
    );
    denied(
        WalletServiceClient::new(as_a())
            .get_wallet(wallet::GetWalletRequest { customer_id: d(), ..Default::default() })
            .await
            .map(drop),
        "GetWallet",
    );
    denied(
        WalletServiceClient::new(as_a())
            .exchange_reward(wallet::ExchangeRewardRequest {
                customer_id: d(),
                reward_id: spare.reward_id.clone(),
                gift_code: "coffee".into(),
                request_id: String::new(),
            })
            .await
            .map(drop),
        "ExchangeReward for dave",
    );
    denied(
        GiftServiceClient::new(as_a())
            .list_gifts(gift::ListGiftsRequest { customer_id: d(), ..Default::default() })
            .await
            .map(drop),
        "ListGifts",
    );
    denied(
        MyPageServiceClient::new(as_a())
            .get_my_page(mypage::GetMyPageRequest { customer_id: d(), ..Default::default() })
            .await
            .map(drop),
        "GetMyPage",
    );
    denied(
        MyPageServiceClient::new(as_a()).watch_my_page(mypage::WatchMyPageRequest { customer_id: d() }).await.map(drop),
        "WatchMyPage",
    );
    denied(
        NotificationServiceClient::new(as_a())
            .list_notifications(notification::ListNotificationsRequest { customer_id: d(), ..Default::default() })
            .await
            .map(drop),
        "ListNotifications",
    );
    denied(
        WalletServiceClient::new(as_a()).get_exchange_status(wallet::GetExchangeStatusRequest {}).await.map(drop),
        "GetExchangeStatus",
    );
    denied(
        WalletServiceClient::new(direct(&sys.wallet))
            .get_wallet(wallet::GetWalletRequest { customer_id: d(), ..Default::default() })
            .await
            .map(drop),
        "GetWallet direct",
    );

    // An admin reads anyone's things, but exchanges and uses nothing of theirs.
    let admin = sys.admin_token().await;
    let as_admin = || with_token(sys.gateway().channel(), &admin);
    let w = WalletServiceClient::new(as_admin())
        .get_wallet(wallet::GetWalletRequest { customer_id: d(), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(w.into_inner().wallet.unwrap().items.len(), 2);
    GiftServiceClient::new(as_admin()).get_gift(gift::GetGiftRequest { gift_id: g.clone() }).await.unwrap();
    MissionServiceClient::new(as_admin())
        .get_mission(mission::GetMissionRequest { mission_id: m.mission_id.clone() })
        .await
        .unwrap();
    RewardServiceClient::new(as_admin())
        .get_reward(reward::GetRewardRequest { reward_id: item.reward_id.clone() })
        .await
        .unwrap();
    WalletServiceClient::new(as_admin()).get_exchange_status(wallet::GetExchangeStatusRequest {}).await.unwrap();
    for customer_id in [d(), String::new()] {
        denied(
            WalletServiceClient::new(as_admin())
                .exchange_reward(wallet::ExchangeRewardRequest {
                    customer_id: customer_id.clone(),
                    reward_id: spare.reward_id.clone(),
                    gift_code: "coffee".into(),
                    request_id: String::new(),
                })
                .await
                .map(drop),
            "an admin exchanging",
        );
        denied(
            GiftServiceClient::new(as_admin())
                .use_gift(gift::UseGiftRequest { gift_id: g.clone(), customer_id })
                .await
                .map(drop),
            "an admin using a gift",
        );
    }

    // Nothing of dave's changed.
    let gifts = GiftServiceClient::new(as_b())
        .list_gifts(gift::ListGiftsRequest { customer_id: d(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .gifts;
    assert_eq!(gifts.len(), 1);
    assert_eq!(gifts[0].status, gift::GiftStatus::Issued as i32);
    let w = WalletServiceClient::new(as_b())
        .get_wallet(wallet::GetWalletRequest { customer_id: d(), ..Default::default() })
        .await
        .unwrap();
    let spare_now = w.into_inner().wallet.unwrap().items.into_iter().find(|i| i.reward_id == spare.reward_id).unwrap();
    assert_eq!(spare_now.status, wallet::WalletItemStatus::Issued as i32);
}

#[tokio::test]
async fn reflection_at_the_gateway_lists_every_public_service_like_grpcurl_list() {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    let sys = system().await;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(sys.gateway().channel())
        .server_reflection_info(futures::stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else { panic!("not a list") };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "game.mission.v1.MissionService",
        "game.reward.v1.RewardService",
        "game.wallet.v1.WalletService",
        "game.mypage.v1.MyPageService",
        "game.gift.v1.GiftService",
        "game.notification.v1.NotificationService",
        "game.auth.v1.AuthService",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} in {names:?}");
    }

    // The refusals' details decode in grpcurl: it asks for google.rpc.ErrorInfo's file.
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol("google.rpc.ErrorInfo".into())),
    };
    let mut stream = ServerReflectionClient::new(sys.gateway().channel())
        .server_reflection_info(futures::stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::FileDescriptorResponse(files)) = response.message_response else {
        panic!("google.rpc.ErrorInfo is not recognized: {:?}", response.message_response)
    };
    assert!(!files.file_descriptor_proto.is_empty());
}

#[tokio::test]
async fn a_browser_reaches_a_service_through_grpc_web_on_the_same_port() {
    let sys = System::start_with(Options {
        gateway: true,
        gateway_env: vec![("CORS_ALLOWED_ORIGINS", "*".into())],
        ..Options::default()
    })
    .await;
    let token = login(&sys, "erin").await;
    let addr = sys.gateway().addr;
    let (head, answer) = tokio::task::spawn_blocking(move || {
        let message = mypage::GetMyPageRequest { customer_id: "erin".into(), ..Default::default() }.encode_to_vec();
        e2e::raw::grpc_web(
            addr,
            "POST",
            "/game.mypage.v1.MyPageService/GetMyPage",
            Some("application/grpc-web+proto"),
            Some(&token),
            &e2e::raw::frame(&message),
        )
    })
    .await
    .unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("application/grpc-web"), "{head}");
    assert!(head.to_ascii_lowercase().contains("access-control-allow-origin"), "CORS: {head}");
    assert_eq!(answer.code, Code::Ok, "{answer:?}");
    let data = answer.data;
    let page = mypage::GetMyPageResponse::decode(data[0].as_slice()).unwrap().page.unwrap();
    assert_eq!(page.customer_id, "erin");
}

/// A plain HTTP/1.1 GET, as a browser loading a page makes it: the head and the body.
fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    use std::io::{Read as _, Write as _};
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/html\r\nConnection: close\r\n\r\n");
    conn.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = conn.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("http response") + 4;
    (String::from_utf8_lossy(&raw[..split]).into_owned(), String::from_utf8_lossy(&raw[split..]).into_owned())
}

#[tokio::test]
async fn the_web_page_is_served_to_anyone_at_the_root_while_every_api_still_needs_a_token() {
    let sys = system().await;
    let addr = sys.gateway().addr;
    let (page, nothing, api) = tokio::task::spawn_blocking(move || {
        (
            http_get(addr, "/"),
            http_get(addr, "/no-such-page"),
            e2e::raw::grpc_web(
                addr,
                "POST",
                "/game.mypage.v1.MyPageService/GetMyPage",
                Some("application/grpc-web+proto"),
                None,
                &e2e::raw::frame(
                    &mypage::GetMyPageRequest { customer_id: "erin".into(), ..Default::default() }.encode_to_vec(),
                ),
            ),
        )
    })
    .await
    .unwrap();
    let (head, html) = page;
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(head.contains("content-security-policy: default-src 'none'"), "{head}");
    assert!(html.contains(r#"<script type="module" src="/assets/"#), "{html}");
    // Every asset the page names is there, without a token.
    // The page's script and the chunks it preloads (the console's code is a chunk of its
    // own, loaded only at /admin): together, my page's code.
    let scripts: Vec<String> =
        html.split('"').filter(|s| s.starts_with("/assets/") && s.ends_with(".js")).map(str::to_owned).collect();
    assert!(scripts.iter().any(|s| s.starts_with("/assets/main-")), "the script: {html}");
    let mut code = String::new();
    for script in scripts {
        let (head, js) = tokio::task::spawn_blocking(move || http_get(addr, &script)).await.unwrap();
        assert!(head.starts_with("HTTP/1.1 200") && head.contains("immutable"), "{head}");
        code.push_str(&js);
    }
    assert!(code.contains("sessionStorage"), "the page's own script");
    assert!(nothing.0.starts_with("HTTP/1.1 404"), "{}", nothing.0);
    // The page is public; the data is not: grpc-web without a token is refused as before.
    let (head, answer) = api;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(answer.code, Code::Unauthenticated, "{answer:?}");
}

#[tokio::test]
async fn the_gateway_limits_each_customers_rate_with_retry_after() {
    let env = vec![("RATE_LIMIT_PER_SECOND", "1".to_owned()), ("RATE_LIMIT_BURST", "5".to_owned())];
    let sys = System::start_with(Options { gateway: true, gateway_env: env, ..Options::default() }).await;
    let fast = sys.tokens.customer("frank");
    let other = sys.tokens.customer("grace");
    let mut client = MissionServiceClient::new(with_token(sys.gateway().channel(), &fast));
    let mut limited = None;
    for _ in 0..10 {
        if let Err(e) = client
            .list_missions(mission::ListMissionsRequest { customer_id: "frank".into(), ..Default::default() })
            .await
        {
            limited = Some(e);
            break;
        }
    }
    let e = limited.expect("the sixth call in a burst is refused");
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!(e.metadata().get("retry-after").is_some());
    // another customer is not affected
    MissionServiceClient::new(with_token(sys.gateway().channel(), &other))
        .list_missions(mission::ListMissionsRequest { customer_id: "grace".into(), ..Default::default() })
        .await
        .unwrap();
}

#[tokio::test]
async fn repeated_wrong_passwords_slow_that_address_down_with_retry_after() {
    let sys = system().await;
    login(&sys, "heidi").await;
    let mut auth = AuthServiceClient::new(sys.gateway().channel());
    for _ in 0..3 {
        let e = auth
            .issue_token(auth::IssueTokenRequest { customer_id: "heidi".into(), password: "guess guess".into() })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "the first failures are free");
    }
    let fourth = auth
        .issue_token(auth::IssueTokenRequest { customer_id: "heidi".into(), password: "guess guess".into() })
        .await
        .unwrap_err();
    assert_eq!(fourth.code(), Code::Unauthenticated);
    let e = auth
        .issue_token(auth::IssueTokenRequest { customer_id: "heidi".into(), password: "correct horse battery".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "this address waits, even with the right password");
    assert_eq!(e.metadata().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    auth.issue_token(auth::IssueTokenRequest { customer_id: "heidi".into(), password: "correct horse battery".into() })
        .await
        .expect("after the wait, the right password logs in");
    let unknown = auth
        .issue_token(auth::IssueTokenRequest { customer_id: "nobody".into(), password: "whatever it".into() })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::Unauthenticated);
    let dup = auth
        .register_customer(auth::RegisterCustomerRequest {
            customer_id: "heidi".into(),
            password: "another password".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);
    let short = auth
        .register_customer(auth::RegisterCustomerRequest { customer_id: "ivan".into(), password: "short".into() })
        .await
        .unwrap_err();
    assert_eq!(short.code(), Code::InvalidArgument);
    assert!(short.message().contains("password"));
}

#[tokio::test]
async fn after_a_key_rotation_old_and_new_tokens_both_work_everywhere() {
    let sys = system().await;
    let old = login(&sys, "judy").await;
    let admin = sys.admin_token().await;
    let mut auth = AuthServiceClient::new(with_token(sys.gateway().channel(), &admin));
    let denied = AuthServiceClient::new(with_token(sys.gateway().channel(), &old))
        .rotate_signing_key(auth::RotateSigningKeyRequest {})
        .await;
    assert_eq!(denied.unwrap_err().code(), Code::PermissionDenied, "customers may not rotate keys");
    let new_kid = auth.rotate_signing_key(auth::RotateSigningKeyRequest {}).await.unwrap().into_inner().key_id;
    let jwks = auth.get_jwks(auth::GetJwksRequest {}).await.unwrap().into_inner();
    assert_eq!(jwks.key_ids.len(), 2, "old and new keys are both published");
    assert!(jwks.key_ids.contains(&new_kid));
    let new = AuthServiceClient::new(sys.gateway().channel())
        .issue_token(auth::IssueTokenRequest { customer_id: "judy".into(), password: "correct horse battery".into() })
        .await
        .unwrap()
        .into_inner()
        .access_token;
    for token in [&old, &new] {
        MyPageServiceClient::new(with_token(sys.gateway().channel(), token))
            .get_my_page(mypage::GetMyPageRequest { customer_id: "judy".into(), ..Default::default() })
            .await
            .expect("a token of either key works through the gateway and at the service");
    }
}
