//! Who may do what, as an attacker would probe it, on the real binaries: the internal
//! IssueGift (not routable, refused to players and admins, only our services' tokens),
//! the first admin and roles (granted, revoked, audited; never by registering a name),
//! service accounts, login throttling that never locks the owner out, and revocation of
//! tokens everywhere within seconds.

use std::time::{Duration, Instant};

use e2e::clients::*;
use e2e::{ADMIN, Options, System, eventually, with_token};
use grpc_adapter::pb::auth::v1 as auth;
use grpc_adapter::pb::gift::v1 as gift;
use grpc_adapter::pb::mypage::v1 as mypage;
use grpc_adapter::pb::wallet::v1 as wallet;
use tonic::Code;

const PASSWORD: &str = "correct horse battery";

async fn system() -> System {
    System::start_with(Options { gateway: true, ..Options::default() }).await
}

/// Registers a customer through the gateway and logs in.
async fn login(sys: &System, customer: &str) -> String {
    let mut auth = AuthServiceClient::new(sys.gateway().channel());
    auth.register_customer(auth::RegisterCustomerRequest { customer_id: customer.into(), password: PASSWORD.into() })
        .await
        .expect("register");
    token_of(sys, customer).await
}

async fn token_of(sys: &System, customer: &str) -> String {
    AuthServiceClient::new(sys.gateway().channel())
        .issue_token(auth::IssueTokenRequest { customer_id: customer.into(), password: PASSWORD.into() })
        .await
        .expect("token")
        .into_inner()
        .access_token
}

/// What a token really says: verified against the keys the auth service publishes.
async fn verified(sys: &System, token: &str) -> auth_adapter::Identity {
    let settings = auth_adapter::AuthSettings {
        issuers: vec!["game-rewards".into()],
        audience: "game-rewards".into(),
        jwks_urls: vec![format!("http://{}/.well-known/jwks.json", sys.auth.addr)],
        jwks_files: vec![],
        refresh_seconds: 60,
        revocation_urls: vec![],
        revocation_key_file: None,
        revocation_refresh_seconds: 2.0,
    };
    let verifier = auth_adapter::Verifier::new(&settings).expect("a verifier");
    verifier.refresh().await.expect("jwks");
    verifier.verify(token).expect("a token of ours")
}

fn issue_request(customer: &str, reward_id: &str, points: i64) -> gift::IssueGiftRequest {
    gift::IssueGiftRequest {
        customer_id: customer.into(),
        reward_id: reward_id.into(),
        gift_code: "game-skin".into(),
        points,
        mission_id: uuid::Uuid::now_v7().to_string(),
    }
}

/// A unary call by path, for methods no generated client has any more.
async fn raw_issue_gift(
    channel: e2e::Authed,
    path: &'static str,
    req: gift::IssueGiftRequest,
) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let codec = tonic_prost::ProstCodec::<gift::IssueGiftRequest, gift::IssueGiftResponse>::default();
    grpc.unary(tonic::Request::new(req), http::uri::PathAndQuery::from_static(path), codec).await.map(drop)
}

#[tokio::test]
async fn issue_gift_is_internal_players_and_admins_are_refused_and_the_wallet_still_exchanges() {
    let sys = system().await;
    let player = login(&sys, "mallory").await;
    let admin = sys.admin_token().await;
    let forged_points = issue_request("mallory", &uuid::Uuid::now_v7().to_string(), 1_000_000);

    // Through the gateway: there is no route to it, under either name.
    for path in ["/game.gift.v1.GiftIssuingService/IssueGift", "/game.gift.v1.GiftService/IssueGift"] {
        let e = raw_issue_gift(with_token(sys.gateway().channel(), &player), path, forged_points.clone())
            .await
            .expect_err(path);
        assert_eq!(e.code(), Code::Unimplemented, "{path}: {}", e.message());
    }
    // Straight at the gift service, with a player's token, our admin's, an admin token of
    // another trusted issuer, a game server's: PERMISSION_DENIED.
    for (who, token) in [
        ("player", player.clone()),
        ("admin", admin.clone()),
        ("admin of another issuer", sys.tokens.admin()),
        ("game server", sys.tokens.game_server("gs")),
    ] {
        let e = GiftIssuingServiceClient::new(with_token(sys.gift.channel(), &token))
            .issue_gift(forged_points.clone())
            .await
            .expect_err(who);
        assert_eq!(e.code(), Code::PermissionDenied, "{who}: {}", e.message());
    }
    let e = GiftIssuingServiceClient::new(sys.gift.channel()).issue_gift(forged_points.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "no token at all");
    // The old public name is gone from the gift service itself too.
    let e =
        raw_issue_gift(with_token(sys.gift.channel(), &player), "/game.gift.v1.GiftService/IssueGift", forged_points)
            .await
            .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);

    // Nothing was issued, nothing published.
    let gifts = GiftServiceClient::new(with_token(sys.gateway().channel(), &player))
        .list_gifts(gift::ListGiftsRequest { customer_id: "mallory".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .gifts;
    assert!(gifts.is_empty(), "{gifts:?}");
    assert_eq!(sys.count_events("GIFT", "game.gift.v1.issued").await, 0);

    // The wallet, with its own service token, still exchanges a real reward.
    let item = e2e::api::issued_reward(&sys, "mallory", "daily-login").await;
    let r = WalletServiceClient::new(with_token(sys.gateway().channel(), &player))
        .exchange_reward(wallet::ExchangeRewardRequest {
            customer_id: "mallory".into(),
            reward_id: item.reward_id,
            gift_code: "coffee".into(),
            request_id: "x-1".into(),
        })
        .await
        .expect("exchange through the wallet")
        .into_inner();
    assert!(!r.gift_id.is_empty());
    assert_eq!(sys.count_events("GIFT", "game.gift.v1.issued").await, 1, "exactly the real one");
    // A service token is what the gift service takes (the harness signs one like auth does).
    let svc = sys.tokens.service("wallet");
    let direct = GiftIssuingServiceClient::new(with_token(sys.gift.channel(), &svc))
        .issue_gift(issue_request("mallory", &uuid::Uuid::now_v7().to_string(), 100))
        .await
        .expect("our service's token");
    assert_eq!(direct.into_inner().gift.unwrap().gift_code, "game-skin");
}

#[tokio::test]
async fn internal_services_are_not_listed_by_the_gateways_reflection() {
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
    let Some(MessageResponse::ListServicesResponse(list)) = stream.message().await.unwrap().unwrap().message_response
    else {
        panic!("not a list")
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.iter().any(|n| n == "game.gift.v1.GiftService"), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("GiftIssuing")), "{names:?}");
}

#[tokio::test]
async fn the_first_admin_exists_from_the_start_nobody_becomes_admin_by_name_and_roles_change_only_by_admins_audited() {
    let sys = system().await;
    let mut anon = AuthServiceClient::new(sys.gateway().channel());
    // `admin` exists before anyone could register it.
    let taken = anon
        .register_customer(auth::RegisterCustomerRequest { customer_id: ADMIN.into(), password: PASSWORD.into() })
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists);
    let admin = sys.admin_token().await;
    let who = verified(&sys, &admin).await;
    assert_eq!((who.customer_id.as_str(), who.role), (ADMIN, auth_adapter::Role::Admin));

    // A self-registered customer is a player, whatever their name; a player grants nothing.
    let root = login(&sys, "root").await;
    assert_eq!(verified(&sys, &root).await.role, auth_adapter::Role::Player);
    let refused = AuthServiceClient::new(with_token(sys.gateway().channel(), &root))
        .grant_role(auth::GrantRoleRequest { customer_id: "root".into(), role: "admin".into() })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(verified(&sys, &token_of(&sys, "root").await).await.role, auth_adapter::Role::Player);
    let reserved = anon
        .register_customer(auth::RegisterCustomerRequest {
            customer_id: "svc-wallet".into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(reserved.code(), Code::InvalidArgument, "service account ids are reserved");

    // An admin grants admin: erin's next token carries it.
    let mut as_admin = AuthServiceClient::new(with_token(sys.gateway().channel(), &admin));
    login(&sys, "erin").await;
    let granted = as_admin
        .grant_role(auth::GrantRoleRequest { customer_id: "erin".into(), role: "admin".into() })
        .await
        .unwrap()
        .into_inner();
    assert!(granted.changed);
    let erin_admin = token_of(&sys, "erin").await;
    assert_eq!(verified(&sys, &erin_admin).await.role, auth_adapter::Role::Admin);
    for role in ["service", "game_server", "player", "root"] {
        let e = as_admin
            .grant_role(auth::GrantRoleRequest { customer_id: "erin".into(), role: role.into() })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{role}");
        assert!(e.message().starts_with("role:"), "{role}: {}", e.message());
    }
    let unknown = as_admin
        .grant_role(auth::GrantRoleRequest { customer_id: "nobody".into(), role: "admin".into() })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    // Revoked: back to player, and the token carrying admin stops working at once.
    let revoked = as_admin
        .revoke_role(auth::RevokeRoleRequest { customer_id: "erin".into(), role: "admin".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((revoked.role.as_str(), revoked.changed), ("player", true));
    eventually(Duration::from_secs(5), "erin's admin token is refused by the gateway", || async {
        let r = WalletServiceClient::new(with_token(sys.gateway().channel(), &erin_admin))
            .get_exchange_status(wallet::GetExchangeStatusRequest {})
            .await;
        matches!(r, Err(e) if e.code() == Code::Unauthenticated).then_some(())
    })
    .await;
    assert_eq!(verified(&sys, &token_of(&sys, "erin").await).await.role, auth_adapter::Role::Player);
    let own = as_admin
        .revoke_role(auth::RevokeRoleRequest { customer_id: ADMIN.into(), role: "admin".into() })
        .await
        .unwrap_err();
    assert_eq!(own.code(), Code::FailedPrecondition, "an admin cannot drop their own role");

    // Every change is in the audit trail: who, what, to whom, when.
    let trail = as_admin
        .list_audit_entries(auth::ListAuditEntriesRequest { subject: "erin".into(), limit: 0 })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let seen: Vec<_> =
        trail.iter().map(|e| (e.actor.as_str(), e.action.as_str(), e.subject.as_str(), e.detail.as_str())).collect();
    assert_eq!(seen, [("admin", "role_revoked", "erin", "admin"), ("admin", "role_granted", "erin", "admin")]);
    assert!(trail.iter().all(|e| e.at.is_some()));
    let first = as_admin
        .list_audit_entries(auth::ListAuditEntriesRequest { subject: ADMIN.into(), limit: 0 })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert!(first.iter().any(|e| e.actor == "bootstrap" && e.action == "admin_created"), "{first:?}");
    assert!(sys.auth.log().contains("role revoked"), "and in the auth service's log");
}

#[tokio::test]
async fn a_service_account_is_created_by_an_admin_logs_in_with_its_secret_and_gets_its_role() {
    let sys = system().await;
    let admin = sys.admin_token().await;
    let player = login(&sys, "peggy").await;
    let create = auth::CreateServiceAccountRequest { name: "match-server".into(), role: "game_server".into() };
    let refused = AuthServiceClient::new(with_token(sys.gateway().channel(), &player))
        .create_service_account(create.clone())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let mut as_admin = AuthServiceClient::new(with_token(sys.gateway().channel(), &admin));
    let created = as_admin.create_service_account(create.clone()).await.unwrap().into_inner();
    assert_eq!((created.client_id.as_str(), created.role.as_str()), ("svc-match-server", "game_server"));
    assert_eq!(as_admin.create_service_account(create).await.unwrap_err().code(), Code::AlreadyExists);

    // Public through the gateway, like a login.
    let mut anon = AuthServiceClient::new(sys.gateway().channel());
    let token = anon
        .issue_service_token(auth::IssueServiceTokenRequest {
            client_id: created.client_id.clone(),
            client_secret: created.client_secret.clone(),
        })
        .await
        .expect("the service account logs in")
        .into_inner();
    assert!(token.expires_in > 0 && token.expires_in <= 600, "short-lived: {}", token.expires_in);
    let who = verified(&sys, &token.access_token).await;
    assert_eq!((who.customer_id.as_str(), who.role), ("svc-match-server", auth_adapter::Role::GameServer));
    let wrong = anon
        .issue_service_token(auth::IssueServiceTokenRequest {
            client_id: created.client_id.clone(),
            client_secret: "not the secret at all".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    // A game server is no player and no service: it cannot call the internal method.
    let e = GiftIssuingServiceClient::new(with_token(sys.gift.channel(), &token.access_token))
        .issue_gift(issue_request("peggy", &uuid::Uuid::now_v7().to_string(), 100))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let trail = as_admin
        .list_audit_entries(auth::ListAuditEntriesRequest { subject: "svc-match-server".into(), limit: 0 })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!((trail[0].actor.as_str(), trail[0].action.as_str()), ("admin", "service_account_created"));
}

/// A login as it reaches the auth service from the gateway (`forwarder`: its token, or
/// none through the gateway itself) that saw the client at `address`.
fn from(forwarder: &str, address: &str, customer: &str, password: &str) -> tonic::Request<auth::IssueTokenRequest> {
    let mut req =
        tonic::Request::new(auth::IssueTokenRequest { customer_id: customer.into(), password: password.into() });
    req.metadata_mut().insert("x-forwarded-for", address.parse().expect("header"));
    if !forwarder.is_empty() {
        req.metadata_mut().insert("x-forwarder-token", forwarder.parse().expect("header"));
    }
    req
}

fn retry_after(e: &tonic::Status) -> u64 {
    e.metadata().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).expect("retry-after")
}

#[tokio::test]
async fn five_and_fifty_wrong_passwords_from_one_address_slow_that_address_but_never_lock_the_owner_out() {
    let sys = system().await;
    login(&sys, "victim").await;
    let gw = sys.forwarder_token().await;
    // Five through the gateway, from wherever the attacker is.
    let mut via_gateway = AuthServiceClient::new(sys.gateway().channel());
    let mut codes = Vec::new();
    for _ in 0..5 {
        let e = via_gateway.issue_token(from("", "203.0.113.66", "victim", "guess guess")).await.unwrap_err();
        codes.push(e.code());
    }
    assert_eq!(codes[..4], [Code::Unauthenticated; 4], "three free failures and a fourth");
    assert_eq!(codes[4], Code::ResourceExhausted, "then the attacker waits");
    // Fifty more from one address, straight at the auth service as the gateway passes them.
    let mut auth = AuthServiceClient::new(sys.auth.channel());
    let started = Instant::now();
    let mut slowed = 0;
    for _ in 0..50 {
        let e = auth.issue_token(from(&gw, "198.51.100.66", "victim", "guess guess")).await.unwrap_err();
        if e.code() == Code::ResourceExhausted {
            assert!(retry_after(&e) >= 1);
            slowed += 1;
        } else {
            assert_eq!(e.code(), Code::Unauthenticated);
        }
    }
    assert_eq!(slowed, 46, "four guesses checked, the other 46 told to wait");
    let e = auth.issue_token(from(&gw, "198.51.100.66", "victim", PASSWORD)).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "the attacking address waits even with the right password");
    // The owner, from home, logs in at once.
    let t0 = Instant::now();
    auth.issue_token(from(&gw, "192.0.2.10", "victim", PASSWORD)).await.expect("the owner is not locked out");
    assert!(t0.elapsed() < Duration::from_secs(2), "at once: {:?}", t0.elapsed());
    assert!(started.elapsed() < Duration::from_secs(30), "the refusals cost nothing: {:?}", started.elapsed());

    // Spraying one password over many accounts from one address: slowed after 20 failures
    // (a slow-down, not a block: tests/tests/auth_abuse.rs has the NAT's other users).
    for i in 0..20 {
        let e = auth.issue_token(from(&gw, "203.0.113.99", &format!("user-{i}"), "Winter2026!")).await.unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "attempt {i}");
    }
    let e = auth.issue_token(from(&gw, "203.0.113.99", "victim", PASSWORD)).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!((1..=60).contains(&retry_after(&e)), "slowed: {}", retry_after(&e));
    auth.issue_token(from(&gw, "192.0.2.10", "victim", PASSWORD)).await.expect("still fine from home");
    // The same holds for service accounts' logins.
    for _ in 0..4 {
        let mut req = tonic::Request::new(auth::IssueServiceTokenRequest {
            client_id: e2e::WALLET_CLIENT_ID.into(),
            client_secret: "guess guess".into(),
        });
        req.metadata_mut().insert("x-forwarded-for", "203.0.113.7".parse().unwrap());
        req.metadata_mut().insert("x-forwarder-token", gw.parse().unwrap());
        let _ = auth.issue_service_token(req).await;
    }
    let mut req = tonic::Request::new(auth::IssueServiceTokenRequest {
        client_id: e2e::WALLET_CLIENT_ID.into(),
        client_secret: "guess guess".into(),
    });
    req.metadata_mut().insert("x-forwarded-for", "203.0.113.7".parse().unwrap());
    req.metadata_mut().insert("x-forwarder-token", gw.parse().unwrap());
    assert_eq!(auth.issue_service_token(req).await.unwrap_err().code(), Code::ResourceExhausted);
    // ... and the wallet, logging in from its own address, still exchanges.
    let item = e2e::api::issued_reward(&sys, "victim", "daily-login").await;
    WalletServiceClient::new(sys.as_customer(&sys.wallet, "victim"))
        .exchange_reward(wallet::ExchangeRewardRequest {
            customer_id: "victim".into(),
            reward_id: item.reward_id,
            gift_code: "coffee".into(),
            request_id: String::new(),
        })
        .await
        .expect("exchange");
}

#[tokio::test]
async fn revoked_tokens_are_refused_by_the_gateway_and_every_service_within_five_seconds_and_a_new_one_works() {
    let sys = system().await;
    let old = login(&sys, "trent").await;
    let page = || mypage::GetMyPageRequest { customer_id: "trent".into(), ..Default::default() };
    let wallet_req = || wallet::GetWalletRequest { customer_id: "trent".into(), ..Default::default() };
    let gifts_req = || gift::ListGiftsRequest { customer_id: "trent".into(), ..Default::default() };
    // Used everywhere first, so each verifier remembers it.
    MyPageServiceClient::new(with_token(sys.gateway().channel(), &old)).get_my_page(page()).await.unwrap();
    WalletServiceClient::new(with_token(sys.wallet.channel(), &old)).get_wallet(wallet_req()).await.unwrap();
    GiftServiceClient::new(with_token(sys.gift.channel(), &old)).list_gifts(gifts_req()).await.unwrap();
    let other = login(&sys, "victor").await;

    let admin = sys.admin_token().await;
    let revoked = AuthServiceClient::new(with_token(sys.gateway().channel(), &admin))
        .revoke_tokens(auth::RevokeTokensRequest { customer_id: "trent".into(), external: false })
        .await
        .unwrap()
        .into_inner();
    let at = Instant::now();
    assert_eq!(revoked.customer_id, "trent");
    let refused_everywhere = eventually(Duration::from_secs(5), "the old token refused everywhere", || async {
        let gw = MyPageServiceClient::new(with_token(sys.gateway().channel(), &old)).get_my_page(page()).await;
        let w = WalletServiceClient::new(with_token(sys.wallet.channel(), &old)).get_wallet(wallet_req()).await;
        let g = GiftServiceClient::new(with_token(sys.gift.channel(), &old)).list_gifts(gifts_req()).await;
        let refused = |r: Result<(), tonic::Status>| matches!(r, Err(e) if e.code() == Code::Unauthenticated && e.message().contains("revoked"));
        (refused(gw.map(drop)) && refused(w.map(drop)) && refused(g.map(drop))).then(|| at.elapsed())
    })
    .await;
    assert!(refused_everywhere < Duration::from_secs(5), "{refused_everywhere:?}");
    eprintln!("revocation refused everywhere after {refused_everywhere:?}");

    // Anyone may reach GET /revocations: it names nobody (issue 24, item 11). Its subjects
    // are sealed with the key every verifier holds, which finds trent's among them.
    let listed = http_get(sys.auth.addr, "/revocations");
    assert!(listed.starts_with("HTTP/1.1 200"), "{listed}");
    assert!(!listed.contains("trent"), "the list names trent: {listed}");
    let body = &listed[listed.find("\r\n\r\n").expect("a body") + 4..];
    let list: auth_adapter::revocation::RevocationList = serde_json::from_str(body).expect("the list");
    let key = auth_adapter::revocation::RevocationKey::from_file(&sys.secrets.revocation_key_file).expect("the key");
    let sealed = key.open(list).expect("sealed with the key the verifiers hold");
    assert_eq!(sealed.iter().filter(|(s, _)| *s == key.seal("trent")).count(), 1, "{body}");

    // A new token, even from the same second, works; someone else's was never touched.
    let new = token_of(&sys, "trent").await;
    MyPageServiceClient::new(with_token(sys.gateway().channel(), &new)).get_my_page(page()).await.expect("new token");
    WalletServiceClient::new(with_token(sys.wallet.channel(), &new)).get_wallet(wallet_req()).await.expect("new token");
    MyPageServiceClient::new(with_token(sys.gateway().channel(), &other))
        .get_my_page(mypage::GetMyPageRequest { customer_id: "victor".into(), ..Default::default() })
        .await
        .expect("another customer's token");
    // A player cannot revoke anyone.
    let e = AuthServiceClient::new(with_token(sys.gateway().channel(), &other))
        .revoke_tokens(auth::RevokeTokensRequest { customer_id: "trent".into(), external: false })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn while_the_wallet_has_no_service_token_an_exchange_is_unavailable_with_retry_after_and_changes_nothing() {
    let mut sys = System::start().await;
    let item = e2e::api::issued_reward(&sys, "quinn", "daily-login").await;
    // A wallet replica starting while the auth service is down has no token.
    assert_eq!(sys.auth.stop(), Some(0));
    let mut env = sys.env("wallet", &sys.database_urls["wallet"]);
    env.push(("GIFT_URL", sys.gift.url()));
    let wallet2 = e2e::Service::start("wallet-2", "wallet", &env, sys.dir.path());
    wallet2.wait_serving(e2e::WALLET).await;
    let token = sys.tokens.customer("quinn");
    let exchange = || async {
        WalletServiceClient::new(with_token(wallet2.channel(), &token))
            .exchange_reward(wallet::ExchangeRewardRequest {
                customer_id: "quinn".into(),
                reward_id: item.reward_id.clone(),
                gift_code: "coffee".into(),
                request_id: "q-1".into(),
            })
            .await
    };
    let e = exchange().await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{}", e.message());
    assert_eq!(retry_after_header(&e), Some(1));
    let wallet_now = e2e::api::wallet_of(&sys, "quinn").await;
    assert_eq!(wallet_now.items[0].status, wallet::WalletItemStatus::Issued as i32, "nothing changed");
    assert_eq!(sys.count_events("GIFT", "game.gift.v1.issued").await, 0);
    assert_eq!(sys.count_events("WALLET", "game.wallet.v1.exchanged").await, 0);
    // The auth service back: the replica gets its token and the same request goes through.
    sys.auth.restart();
    sys.auth.wait_serving(e2e::AUTH).await;
    let done =
        eventually(Duration::from_secs(30), "the exchange goes through", || async { exchange().await.ok() }).await;
    assert_eq!(done.into_inner().item.unwrap().status, wallet::WalletItemStatus::Exchanged as i32);
}

fn retry_after_header(e: &tonic::Status) -> Option<u64> {
    e.metadata().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
}

/// Runs a binary that must refuse to start; returns what it said.
/// A plain HTTP/1.1 GET, as anyone who reaches the address may send it: the whole answer.
fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut conn = std::net::TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(conn, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").expect("write");
    let mut answer = String::new();
    conn.read_to_string(&mut answer).expect("an HTTP answer");
    answer
}

fn refuses_to_start(bin: &str, env: &[(&str, String)]) -> String {
    let out = e2e::serve(bin)
        .env_clear()
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{bin} must stop: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_bad_identity_setting_stops_the_process_at_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let keys = ("AUTH_KEYS_DIR", dir.path().join("keys").display().to_string());
    let db = ("DATABASE_URL", format!("sqlite://{}", dir.path().join("auth.db").display()));
    let said = refuses_to_start("auth", &[keys.clone(), db.clone()]);
    assert!(said.contains("REVOCATION_KEY_FILE") && said.contains("required"), "{said}");
    let short = dir.path().join("short.password");
    std::fs::write(&short, "short\n").unwrap();
    let said =
        refuses_to_start("auth", &[keys.clone(), db.clone(), ("REVOCATION_KEY_FILE", short.display().to_string())]);
    assert!(said.contains("REVOCATION_KEY_FILE") && said.contains("at least 32"), "{said}");
    // a service fetching revocations without the key would never match one: it refuses too
    let said = refuses_to_start("gateway", &[("REVOCATION_URLS", "http://127.0.0.1:9/revocations".into())]);
    assert!(said.contains("REVOCATION_KEY_FILE") && said.contains("REVOCATION_URLS"), "{said}");
    let key = dir.path().join("revocation.key");
    std::fs::write(&key, format!("{}\n", "k".repeat(64))).unwrap();
    let with = |setting: (&'static str, String)| {
        vec![keys.clone(), db.clone(), ("REVOCATION_KEY_FILE", key.display().to_string()), setting]
    };
    let said = refuses_to_start("auth", &with(("ADMIN_PASSWORD_FILE", short.display().to_string())));
    assert!(said.contains("ADMIN_PASSWORD_FILE") && said.contains("password"), "{said}");
    let plain = dir.path().join("accounts.json");
    std::fs::write(
        &plain,
        r#"{"service_accounts": [{"client_id": "svc-wallet", "role": "service", "secret_hash": "the secret"}]}"#,
    )
    .unwrap();
    let said = refuses_to_start("auth", &with(("SERVICE_ACCOUNTS_FILE", plain.display().to_string())));
    assert!(said.contains("SERVICE_ACCOUNTS_FILE") && said.contains("secret_hash"), "{said}");
    let said = refuses_to_start("auth", &with(("TRUSTED_FORWARDERS", "the gateway".into())));
    assert!(said.contains("TRUSTED_FORWARDERS"), "{said}");
    let said = refuses_to_start("wallet", &[]);
    assert!(said.contains("SERVICE_CLIENT_ID"), "{said}");
    let said = refuses_to_start(
        "wallet",
        &[("SERVICE_CLIENT_ID", "svc-wallet".into()), ("SERVICE_CLIENT_SECRET_FILE", "/nonexistent/secret".into())],
    );
    assert!(said.contains("SERVICE_CLIENT_SECRET_FILE"), "{said}");
    assert!(!dir.path().join("auth.db").exists(), "nothing was created");
}
