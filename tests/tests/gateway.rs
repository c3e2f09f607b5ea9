//! One front door: the whole scenario as a registered customer through the gateway, every
//! way a token can be wrong, customers kept apart on every service, reflection, grpc-web,
//! rate limits, brute force and key rotation, and the web page served at the root.

use std::io::{Read, Write};
use std::time::Duration;

use e2e::clients::*;
use e2e::{ADMIN, Options, System, eventually, with_token};
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

    let m = MissionServiceClient::new(ch())
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
            .get_wallet(wallet::GetWalletRequest { customer_id: "alice".into() })
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
            .list_notifications(notification::ListNotificationsRequest { customer_id: "alice".into() })
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
            .get_my_page(mypage::GetMyPageRequest { customer_id: "alice".into() })
            .await
            .ok()?;
        let p = p.into_inner().page?;
        (p.entries.first()?.gift_status == mypage::GiftStatus::Used as i32 && p.points_exchanged == 50).then_some(())
    })
    .await;
    let r = RewardServiceClient::new(ch())
        .get_reward(reward::GetRewardRequest { reward_id: item.reward_id.clone() })
        .await
        .unwrap();
    assert_eq!(r.into_inner().reward.unwrap().status, reward::RewardStatus::Exchanged as i32);
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
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
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
        .list_missions(mission::ListMissionsRequest { customer_id: "bob".into() })
        .await
        .unwrap()
        .into_inner()
        .missions;
    assert!(missions.is_empty(), "no refused request achieved anything");
    // public methods need no token
    MissionServiceClient::new(sys.gateway().channel()).list_catalog(mission::ListCatalogRequest {}).await.unwrap();
}

#[tokio::test]
async fn one_customer_can_neither_read_nor_act_on_anothers_things_but_an_admin_can_read() {
    let sys = system().await;
    let (a, b) = (login(&sys, "carol").await, login(&sys, "dave").await);
    let as_b = || with_token(sys.gateway().channel(), &b);
    let as_a = || with_token(sys.gateway().channel(), &a);
    // dave gets a mission, reward, gift
    let m = MissionServiceClient::new(as_b())
        .achieve_mission(mission::AchieveMissionRequest {
            customer_id: "dave".into(),
            mission_code: "daily-login".into(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .mission
        .unwrap();
    let item = eventually(FLOW, "dave's reward", || async {
        let w = WalletServiceClient::new(as_b())
            .get_wallet(wallet::GetWalletRequest { customer_id: "dave".into() })
            .await
            .ok()?;
        w.into_inner().wallet?.items.into_iter().next()
    })
    .await;
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

    let denied = |r: Result<(), tonic::Status>, what: &str| {
        let e = r.expect_err(what);
        assert_eq!(e.code(), Code::PermissionDenied, "{what}: {}", e.message());
    };
    let d = || "dave".to_owned();
    denied(
        MissionServiceClient::new(as_a())
            .list_missions(mission::ListMissionsRequest { customer_id: d() })
            .await
            .map(drop),
        "ListMissions",
    );
    denied(
        MissionServiceClient::new(as_a())
            .get_mission(mission::GetMissionRequest { mission_id: m.mission_id.clone() })
            .await
            .map(drop),
        "GetMission",
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
        RewardServiceClient::new(as_a()).list_rewards(reward::ListRewardsRequest { customer_id: d() }).await.map(drop),
        "ListRewards",
    );
    denied(
        RewardServiceClient::new(as_a())
            .get_reward(reward::GetRewardRequest { reward_id: item.reward_id.clone() })
            .await
            .map(drop),
        "GetReward",
    );
    denied(
        WalletServiceClient::new(as_a()).get_wallet(wallet::GetWalletRequest { customer_id: d() }).await.map(drop),
        "GetWallet",
    );
    denied(
        WalletServiceClient::new(as_a())
            .exchange_reward(wallet::ExchangeRewardRequest {
                customer_id: d(),
                reward_id: item.reward_id.clone(),
                gift_code: "coffee".into(),
                request_id: String::new(),
            })
            .await
            .map(drop),
        "ExchangeReward",
    );
    denied(
        GiftServiceClient::new(as_a()).list_gifts(gift::ListGiftsRequest { customer_id: d() }).await.map(drop),
        "ListGifts",
    );
    denied(
        GiftServiceClient::new(as_a()).get_gift(gift::GetGiftRequest { gift_id: g.clone() }).await.map(drop),
        "GetGift",
    );
    denied(
        GiftServiceClient::new(as_a())
            .use_gift(gift::UseGiftRequest { gift_id: g.clone(), customer_id: String::new() })
            .await
            .map(drop),
        "UseGift",
    );
    denied(
        MyPageServiceClient::new(as_a()).get_my_page(mypage::GetMyPageRequest { customer_id: d() }).await.map(drop),
        "GetMyPage",
    );
    denied(
        MyPageServiceClient::new(as_a()).watch_my_page(mypage::WatchMyPageRequest { customer_id: d() }).await.map(drop),
        "WatchMyPage",
    );
    denied(
        NotificationServiceClient::new(as_a())
            .list_notifications(notification::ListNotificationsRequest { customer_id: d() })
            .await
            .map(drop),
        "ListNotifications",
    );
    denied(
        WalletServiceClient::new(as_a()).get_exchange_status(wallet::GetExchangeStatusRequest {}).await.map(drop),
        "GetExchangeStatus",
    );
    // the same calls straight at the services, bypassing the gateway
    denied(
        WalletServiceClient::new(with_token(sys.wallet.channel(), &a))
            .get_wallet(wallet::GetWalletRequest { customer_id: d() })
            .await
            .map(drop),
        "GetWallet direct",
    );
    denied(
        GiftServiceClient::new(with_token(sys.gift.channel(), &a))
            .get_gift(gift::GetGiftRequest { gift_id: g.clone() })
            .await
            .map(drop),
        "GetGift direct",
    );
    // nothing of dave's changed
    let gifts = GiftServiceClient::new(as_b())
        .list_gifts(gift::ListGiftsRequest { customer_id: d() })
        .await
        .unwrap()
        .into_inner()
        .gifts;
    assert_eq!(gifts[0].status, gift::GiftStatus::Issued as i32);

    // an admin may read anyone's
    let admin = login(&sys, ADMIN).await;
    let as_admin = || with_token(sys.gateway().channel(), &admin);
    let w =
        WalletServiceClient::new(as_admin()).get_wallet(wallet::GetWalletRequest { customer_id: d() }).await.unwrap();
    assert_eq!(w.into_inner().wallet.unwrap().items.len(), 1);
    GiftServiceClient::new(as_admin()).get_gift(gift::GetGiftRequest { gift_id: g }).await.unwrap();
    WalletServiceClient::new(as_admin()).get_exchange_status(wallet::GetExchangeStatusRequest {}).await.unwrap();
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
}

/// A grpc-web call over plain HTTP/1.1, as a browser makes it.
fn grpc_web(addr: std::net::SocketAddr, path: &str, token: &str, message: &impl Message) -> (String, Vec<u8>) {
    let body = message.encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&body);
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/grpc-web+proto\r\nX-Grpc-Web: 1\r\nAuthorization: Bearer {token}\r\nOrigin: http://localhost:3000\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        frame.len()
    );
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(&frame).unwrap();
    let mut raw = Vec::new();
    let _ = conn.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("http response") + 4;
    (String::from_utf8_lossy(&raw[..split]).into_owned(), raw[split..].to_vec())
}

/// The data frames and trailer text of a grpc-web body (chunked encoding undone crudely).
fn frames(body: &[u8]) -> (Vec<Vec<u8>>, String) {
    let (mut data, mut trailers, mut i) = (Vec::new(), String::new(), 0);
    while i + 5 <= body.len() {
        if body[i] != 0 && body[i] != 0x80 {
            i += 1; // chunk-size lines of a chunked body
            continue;
        }
        let len = u32::from_be_bytes([body[i + 1], body[i + 2], body[i + 3], body[i + 4]]) as usize;
        if i + 5 + len > body.len() {
            i += 1;
            continue;
        }
        let payload = body[i + 5..i + 5 + len].to_vec();
        if body[i] == 0x80 {
            trailers.push_str(&String::from_utf8_lossy(&payload))
        } else {
            data.push(payload)
        }
        i += 5 + len;
    }
    (data, trailers)
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
    let (head, body) = tokio::task::spawn_blocking(move || {
        grpc_web(
            addr,
            "/game.mypage.v1.MyPageService/GetMyPage",
            &token,
            &mypage::GetMyPageRequest { customer_id: "erin".into() },
        )
    })
    .await
    .unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("application/grpc-web"), "{head}");
    assert!(head.to_ascii_lowercase().contains("access-control-allow-origin"), "CORS: {head}");
    let (data, trailers) = frames(&body);
    assert!(trailers.contains("grpc-status:0") || trailers.contains("grpc-status: 0"), "trailers: {trailers:?}");
    let page = mypage::GetMyPageResponse::decode(data[0].as_slice()).unwrap().page.unwrap();
    assert_eq!(page.customer_id, "erin");
}

/// A plain HTTP/1.1 request, as a browser loading a page makes it.
fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
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
            grpc_web(
                addr,
                "/game.mypage.v1.MyPageService/GetMyPage",
                "",
                &mypage::GetMyPageRequest { customer_id: "erin".into() },
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
    let script = html.split('"').find(|s| s.starts_with("/assets/main-")).expect("the script").to_owned();
    let (head, js) = tokio::task::spawn_blocking(move || http_get(addr, &script)).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 200") && head.contains("immutable"), "{head}");
    assert!(js.contains("sessionStorage"), "the page's own script");
    assert!(nothing.0.starts_with("HTTP/1.1 404"), "{}", nothing.0);
    // The page is public; the data is not: grpc-web without a token is refused as before.
    let (head, _) = api;
    assert!(head.starts_with("HTTP/1.1 200") && head.contains("grpc-status: 16"), "{head}");
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
        if let Err(e) = client.list_missions(mission::ListMissionsRequest { customer_id: "frank".into() }).await {
            limited = Some(e);
            break;
        }
    }
    let e = limited.expect("the sixth call in a burst is refused");
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!(e.metadata().get("retry-after").is_some());
    // another customer is not affected
    MissionServiceClient::new(with_token(sys.gateway().channel(), &other))
        .list_missions(mission::ListMissionsRequest { customer_id: "grace".into() })
        .await
        .unwrap();
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_the_customer_for_a_while() {
    let sys = system().await;
    login(&sys, "heidi").await;
    let mut auth = AuthServiceClient::new(sys.gateway().channel());
    for _ in 0..5 {
        let e = auth
            .issue_token(auth::IssueTokenRequest { customer_id: "heidi".into(), password: "guess guess".into() })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
    }
    let e = auth
        .issue_token(auth::IssueTokenRequest { customer_id: "heidi".into(), password: "correct horse battery".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "locked even with the right password");
    assert!(e.metadata().get("retry-after").is_some());
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
    let admin = login(&sys, ADMIN).await;
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
            .get_my_page(mypage::GetMyPageRequest { customer_id: "judy".into() })
            .await
            .expect("a token of either key works through the gateway and at the service");
    }
}
