//! Open streams obey what a new call obeys (issue 24, item 7): a `WatchMyPage` stream,
//! straight at the mypage service or through the gateway, ends with `UNAUTHENTICATED`
//! within a revocation refresh (`REVOCATION_REFRESH_SECONDS`, 2 s) of `RevokeTokens` or
//! `RevokeRole` (a demoted admin watching someone else's page), and at its token's expiry;
//! while pages keep coming for everyone else. Before, three open streams delivered 24
//! more pages after the revocations, and pages flowed 35 s past the token's expiry.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use e2e::clients::*;
use e2e::{Options, System, eventually, with_token};
use grpc_adapter::pb::auth::v1 as auth;
use grpc_adapter::pb::mypage::v1 as mypage;
use tonic::Code;
use tonic::transport::Channel;

const PASSWORD: &str = "correct horse battery";
/// The revocation refresh (2 s) and a margin for a loaded machine.
const ENDS_WITHIN: Duration = Duration::from_secs(5);

fn system(auth_env: Vec<(&'static str, String)>) -> impl Future<Output = System> {
    System::start_with(Options { gateway: true, auth_env, ..Options::default() })
}

/// Registers a customer through the gateway and logs in.
async fn login(sys: &System, customer: &str) -> String {
    AuthServiceClient::new(sys.gateway().channel())
        .register_customer(auth::RegisterCustomerRequest { customer_id: customer.into(), password: PASSWORD.into() })
        .await
        .expect("register");
    token_of(sys, customer).await
}

/// Logs in (the token carries the role the customer has now).
async fn token_of(sys: &System, customer: &str) -> String {
    AuthServiceClient::new(sys.gateway().channel())
        .issue_token(auth::IssueTokenRequest { customer_id: customer.into(), password: PASSWORD.into() })
        .await
        .expect("token")
        .into_inner()
        .access_token
}

/// An open `WatchMyPage`: when each page arrived, and how and when the stream ended.
struct Watch {
    what: String,
    pages: Arc<Mutex<Vec<Instant>>>,
    end: tokio::task::JoinHandle<(tonic::Status, Instant)>,
}

impl Watch {
    /// Opens a watch of `customer`'s page over `channel` with `token`, once its first page
    /// and one more (a change the driver made) arrived.
    async fn open(what: &str, channel: Channel, token: &str, customer: &str) -> Self {
        let mut stream = MyPageServiceClient::new(with_token(channel, token))
            .watch_my_page(mypage::WatchMyPageRequest { customer_id: customer.into() })
            .await
            .unwrap_or_else(|e| panic!("{what}: watch: {e:?}"))
            .into_inner();
        let pages = Arc::new(Mutex::new(Vec::new()));
        let seen = pages.clone();
        let end = tokio::spawn(async move {
            loop {
                match stream.message().await {
                    Ok(Some(_)) => seen.lock().unwrap().push(Instant::now()),
                    Ok(None) => return (tonic::Status::ok("ended without a status"), Instant::now()),
                    Err(status) => return (status, Instant::now()),
                }
            }
        });
        let watch = Self { what: what.to_owned(), pages, end };
        eventually(Duration::from_secs(30), &format!("{what}: pages flow"), || async {
            (watch.pages_since(None) >= 2).then_some(())
        })
        .await;
        watch
    }

    /// Pages that arrived after `at` (all of them for `None`).
    fn pages_since(&self, at: Option<Instant>) -> usize {
        self.pages.lock().unwrap().iter().filter(|t| at.is_none_or(|at| **t > at)).count()
    }

    /// Waits for the end: its status, when it came, and the pages that arrived after
    /// `since`.
    async fn ended(self, since: Instant) -> (tonic::Status, Instant, usize) {
        let (status, at) = tokio::time::timeout(Duration::from_secs(60), self.end)
            .await
            .unwrap_or_else(|_| panic!("{}: the stream still runs 60 s later", self.what))
            .expect("the reader");
        let after = self.pages.lock().unwrap().iter().filter(|t| **t > since).count();
        (status, at, after)
    }
}

/// Reports a mission for each of `customers` every 200 ms (each one changes their page a
/// few times) until aborted.
fn drive(sys: &Arc<System>, customers: &[&str]) -> tokio::task::JoinHandle<()> {
    let (sys, customers) = (sys.clone(), customers.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>());
    tokio::spawn(async move {
        for i in 0.. {
            for c in &customers {
                e2e::api::report(&sys, c, "match-played", &format!("drive-{c}-{i}")).await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

#[tokio::test]
async fn open_streams_end_unauthenticated_within_a_revocation_refresh_of_revoke_tokens_and_revoke_role() {
    let sys = Arc::new(system(Vec::new()).await);
    let pia = login(&sys, "pia").await;
    login(&sys, "ada").await;
    let admin = sys.admin_token().await;
    let mut auth = AuthServiceClient::new(with_token(sys.gateway().channel(), &admin));
    auth.grant_role(auth::GrantRoleRequest { customer_id: "ada".into(), role: "admin".into() }).await.expect("grant");
    let ada_admin = token_of(&sys, "ada").await;
    let driver = drive(&sys, &["pia", "bo"]);
    let (direct, gateway) = (|| sys.mypage.channel(), || sys.gateway().channel());
    let pia_direct = Watch::open("pia at mypage", direct(), &pia, "pia").await;
    let pia_gateway = Watch::open("pia through the gateway", gateway(), &pia, "pia").await;
    // ada, an admin, watches bo's page
    let ada_direct = Watch::open("admin ada on bo's page at mypage", direct(), &ada_admin, "bo").await;
    let ada_gateway = Watch::open("admin ada on bo's page through the gateway", gateway(), &ada_admin, "bo").await;
    // bo watches his own page and keeps it
    let bo = Watch::open("bo through the gateway", gateway(), &sys.tokens.customer("bo"), "bo").await;

    auth.revoke_tokens(auth::RevokeTokensRequest { customer_id: "pia".into(), external: false })
        .await
        .expect("revoke pia's tokens");
    let pia_revoked = Instant::now();
    auth.revoke_role(auth::RevokeRoleRequest { customer_id: "ada".into(), role: "admin".into() })
        .await
        .expect("demote ada");
    let ada_demoted = Instant::now();

    let mut report = Vec::new();
    for (watch, since) in
        [(pia_direct, pia_revoked), (pia_gateway, pia_revoked), (ada_direct, ada_demoted), (ada_gateway, ada_demoted)]
    {
        let what = watch.what.clone();
        let (status, at, pages) = watch.ended(since).await;
        let took = at.saturating_duration_since(since);
        eprintln!(
            "{what}: {:?} {:?} after {took:?}, {pages} pages after the revocation",
            status.code(),
            status.message()
        );
        assert_eq!(status.code(), Code::Unauthenticated, "{what}: {}", status.message());
        assert!(status.message().contains("revoked"), "{what}: {}", status.message());
        report.push((what, took, pages));
    }
    for (what, took, _) in &report {
        assert!(*took < ENDS_WITHIN, "{what}: ended {took:?} after the revocation");
    }
    // bo's own watch goes on: a page after all the others ended
    let all_ended = Instant::now();
    eventually(Duration::from_secs(10), "bo's page still comes", || async {
        (bo.pages_since(Some(all_ended)) > 0).then_some(())
    })
    .await;
    driver.abort();
    // the demoted admin logs in again: a player's token, and bo's page is not hers
    let ada_player = token_of(&sys, "ada").await;
    for channel in [sys.mypage.channel(), sys.gateway().channel()] {
        let e = MyPageServiceClient::new(with_token(channel, &ada_player))
            .watch_my_page(mypage::WatchMyPageRequest { customer_id: "bo".into() })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{}", e.message());
    }
}

/// The `exp` of a token of ours (seconds since the epoch), read from its claims.
fn expiry_of(token: &str) -> SystemTime {
    use base64::Engine as _;
    let claims = token.split('.').nth(1).expect("a JWT");
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).expect("base64url");
    let claims: serde_json::Value = serde_json::from_slice(&claims).expect("claims");
    UNIX_EPOCH + Duration::from_secs(claims["exp"].as_u64().expect("exp"))
}

#[tokio::test]
async fn open_streams_end_unauthenticated_when_their_token_expires() {
    // tokens of 8 s: long enough to open the watches first
    let sys = Arc::new(system(vec![("TOKEN_TTL_SECONDS", "8".into())]).await);
    let eve = login(&sys, "eve").await;
    let exp = expiry_of(&eve);
    let driver = drive(&sys, &["eve"]);
    let direct = Watch::open("eve at mypage", sys.mypage.channel(), &eve, "eve").await;
    let through = Watch::open("eve through the gateway", sys.gateway().channel(), &eve, "eve").await;
    // the Instant of `exp`
    let expiry = Instant::now() + exp.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
    for watch in [direct, through] {
        let what = watch.what.clone();
        let (status, at, pages) = watch.ended(expiry).await;
        let (late, early) = (at.saturating_duration_since(expiry), expiry.saturating_duration_since(at));
        eprintln!(
            "{what}: {:?} {:?} {late:?} after exp ({early:?} before), {pages} pages after exp",
            status.code(),
            status.message()
        );
        assert_eq!(status.code(), Code::Unauthenticated, "{what}: {}", status.message());
        assert!(status.message().contains("expired"), "{what}: {}", status.message());
        assert!(late < Duration::from_secs(2), "{what}: ended {late:?} after the token's exp");
        assert!(early < Duration::from_secs(1), "{what}: ended {early:?} before the token's exp");
    }
    driver.abort();
}
