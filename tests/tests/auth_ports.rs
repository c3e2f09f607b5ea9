//! The auth service's two ports, on the real binary (issue 24, item 9): with
//! `INTERNAL_ADDR`, the public port (`LISTEN_ADDR`: register, log in, roles..., which k8s
//! opens to the gateway alone) no longer serves what every pod of ours needs, and the
//! internal port serves only that: the JWKS, the revocations, the customer lookup and
//! the service-token RPC. So the NetworkPolicy can keep everyone but the gateway away
//! from the public one while every service still verifies tokens.

use std::net::SocketAddr;
use std::time::Duration;

use e2e::clients::*;
use e2e::{ADMIN, Secrets, Service, WALLET_CLIENT_ID, auth_env};
use grpc_adapter::pb::auth::v1 as auth;
use tonic::Code;

/// A plain HTTP/1.1 GET: the whole answer.
fn get(addr: SocketAddr, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut conn = std::net::TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(conn, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").expect("write");
    let mut answer = String::new();
    conn.read_to_string(&mut answer).expect("an HTTP answer");
    answer
}

/// The HTTP status of a GET.
fn status_of(addr: SocketAddr, path: &str) -> u16 {
    let answer = get(addr, path);
    answer.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("{answer}"))
}

/// Whether a GET is answered with JSON (a port that does not serve the path answers as
/// gRPC: UNIMPLEMENTED, no body).
fn serves_json(addr: SocketAddr, path: &str) -> bool {
    let answer = get(addr, path).to_ascii_lowercase();
    answer.starts_with("http/1.1 200") && answer.contains("content-type: application/json")
}

fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr")
}

fn channel(addr: SocketAddr) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}")).expect("url").connect_lazy()
}

#[tokio::test]
async fn the_public_port_serves_customers_and_the_internal_one_only_what_our_services_fetch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secrets = Secrets::write(dir.path());
    let internal = free_port();
    let mut env = auth_env(&format!("sqlite://{}", dir.path().join("auth.db").display()), dir.path(), &secrets);
    env.push(("INTERNAL_ADDR", internal.to_string()));
    let auth = Service::start("auth", "auth", &env, dir.path());
    auth.wait_serving(e2e::AUTH).await;
    assert!(auth.log().is_empty() || !auth.log().contains("cannot listen"), "{}", auth.log());

    // Plain HTTP: on the internal port only.
    for path in ["/.well-known/jwks.json", "/revocations", "/customers/admin"] {
        assert!(serves_json(internal, path), "internal {path}");
        assert!(!serves_json(auth.addr, path), "public {path}: {}", get(auth.addr, path));
    }
    assert_eq!(status_of(internal, "/customers/nobody"), 404);
    assert_eq!(status_of(internal, "/customers/ADMIN"), 200, "the id in its one form");
    assert_eq!(status_of(internal, "/customers/admin%E2%80%8B"), 400, "no id at all");

    // The customers' methods: on the public port only.
    let mut public = AuthServiceClient::new(channel(auth.addr));
    let mut inside = AuthServiceClient::new(channel(internal));
    let register =
        || auth::RegisterCustomerRequest { customer_id: "pat".into(), password: "correct horse battery".into() };
    let e = inside.register_customer(register()).await.unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented, "{e:?}");
    public.register_customer(register()).await.expect("registered on the public port");
    let login = auth::IssueTokenRequest { customer_id: ADMIN.into(), password: secrets.admin_password.clone() };
    assert_eq!(inside.issue_token(login.clone()).await.unwrap_err().code(), Code::Unimplemented);
    public.issue_token(login).await.expect("the admin logs in on the public port");

    // Our services' tokens and the keys: on the internal port (and the public one, where
    // the gateway passes game servers' logins on).
    let wallet = || auth::IssueServiceTokenRequest {
        client_id: WALLET_CLIENT_ID.into(),
        client_secret: std::fs::read_to_string(&secrets.wallet_secret_file).expect("secret"),
    };
    inside.issue_service_token(wallet()).await.expect("the wallet's token on the internal port");
    public.issue_service_token(wallet()).await.expect("and on the public one");
    assert!(!inside.get_jwks(auth::GetJwksRequest {}).await.expect("jwks").into_inner().key_ids.is_empty());
    // Health on both (the kubelet probes the public one).
    let health = |addr| tonic_health::pb::health_client::HealthClient::new(channel(addr));
    for addr in [auth.addr, internal] {
        let r = health(addr)
            .check(tonic_health::pb::HealthCheckRequest { service: e2e::AUTH.into() })
            .await
            .expect("health");
        assert_eq!(r.into_inner().status, 1, "SERVING at {addr}");
    }
}
