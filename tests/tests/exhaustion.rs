//! An attacker's afternoon against the edge, replayed on the real executables: slow
//! request bodies, idle and half-open connections, half-sent headers on the metrics
//! listener. Each attack's cost to the server is measured from `/proc` (its resident
//! memory, its open file descriptors) or from the attacking sockets themselves (when the
//! server closed them), and held to a bound.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use e2e::{AUTH, GATEWAY, Secrets, Service};
use futures::StreamExt as _;
use grpc_adapter::pb::auth::v1 as auth;
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message as _;
use tonic::Code;

const REGISTER: &str = "/game.auth.v1.AuthService/RegisterCustomer";
const MIB: u64 = 1024 * 1024;

/// The auth service and a gateway in front of it (with `env`): the edge an anonymous
/// attacker reaches.
async fn edge(dir: &std::path::Path, env: &[(&'static str, String)]) -> (Service, Service) {
    let secrets = Secrets::write(dir);
    let db = format!("sqlite://{}", dir.join("auth.db").display());
    let auth = Service::start("auth", "auth", &e2e::auth_env(&db, dir, &secrets), dir);
    let mut all = e2e::verifier_env(&auth, &secrets);
    all.push(("AUTH_URL", auth.url()));
    all.extend(env.iter().cloned());
    let gateway = Service::start("gateway", "gateway", &all, dir);
    auth.wait_serving(AUTH).await;
    gateway.wait_serving(GATEWAY).await;
    (auth, gateway)
}

/// A process's resident memory, in KiB (`VmRSS` of `/proc/<pid>/status`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process runs");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("a number")
}

/// The highest `measure` of `pid` until `stop`, sampled every 20 ms.
fn watch_peak(pid: u32, measure: fn(u32) -> u64, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut peak = measure(pid);
        while !stop.load(Ordering::Relaxed) {
            peak = peak.max(measure(pid));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        peak
    })
}

type StalledBody = BoxBody<Bytes, std::convert::Infallible>;

/// An HTTP/2 connection to `addr` from `local` (a loopback address), as a plain client.
async fn h2(addr: SocketAddr, local: [u8; 4]) -> SendRequest<StalledBody> {
    h2_with_end(addr, local).await.0
}

/// [`h2`], and the connection's task, which ends when the connection does.
async fn h2_with_end(addr: SocketAddr, local: [u8; 4]) -> (SendRequest<StalledBody>, tokio::task::JoinHandle<()>) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::from((local, 0))).expect("bind");
    let tcp = socket.connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(tcp))
        .await
        .expect("HTTP/2");
    let end = tokio::spawn(async move {
        let _ = conn.await;
    });
    (sender, end)
}

/// Sends a call of `path` with `body` as gRPC; the status it ended with (`None`: it
/// ended without one) and how many bytes of data the answer had.
async fn send(
    sender: &mut SendRequest<StalledBody>,
    path: &str,
    body: StalledBody,
) -> Result<(Option<tonic::Status>, usize), hyper::Error> {
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("http://gateway{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(body)
        .expect("request");
    futures::future::poll_fn(|cx| sender.poll_ready(cx)).await?;
    let response = sender.send_request(req).await?;
    if let Some(status) = tonic::Status::from_header_map(response.headers()) {
        return Ok((Some(status), 0));
    }
    let collected = response.into_body().collect().await?;
    Ok((collected.trailers().and_then(tonic::Status::from_header_map), collected.to_bytes().len()))
}

/// A whole call of `path` with `message` (framed here); its answer's status and data.
async fn h2_call(sender: &mut SendRequest<StalledBody>, path: &str, message: &[u8]) -> (Option<Code>, usize) {
    let body = BodyExt::boxed(http_body_util::Full::new(Bytes::from(e2e::raw::frame(message))));
    let (status, data) = send(sender, path, body).await.expect("an answer");
    (status.map(|s| s.code()), data)
}

/// A call whose message announces `announced` bytes, of which `sent` are sent, and then
/// nothing more, ever (the body never ends). The status it gets, when it gets one.
async fn stalled_call(mut sender: SendRequest<StalledBody>, path: &str, announced: u32, sent: usize) -> Answer {
    static ZEROS: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    let zeros = ZEROS.get_or_init(|| Bytes::from(vec![0u8; 4 * MIB as usize])).clone();
    let mut prefix = vec![0u8];
    prefix.extend_from_slice(&announced.to_be_bytes());
    let mut frames = vec![Ok(hyper::body::Frame::data(Bytes::from(prefix)))];
    frames.extend(
        (0..sent).step_by(64 * 1024).map(|at| Ok(hyper::body::Frame::data(zeros.slice(at..sent.min(at + 64 * 1024))))),
    );
    let body = BodyExt::boxed(http_body_util::StreamBody::new(
        futures::stream::iter(frames).chain(futures::stream::pending()),
    ));
    match send(&mut sender, path, body).await {
        Ok((status, _)) => Answer {
            code: status.as_ref().map(tonic::Status::code),
            message: status.map(|s| s.message().to_owned()).unwrap_or_default(),
        },
        Err(e) => Answer { code: None, message: e.to_string() },
    }
}

/// Open file descriptors of a process (its sockets among them).
fn open_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).expect("the process runs").count() as u64
}

#[derive(Debug)]
struct Answer {
    code: Option<Code>,
    message: String,
}

/// A gateway alone, with `env`: its own health, its metrics, its connections and its
/// limits are all these tests need.
fn lone_gateway(dir: &std::path::Path, env: &[(&'static str, String)]) -> Service {
    let tokens = e2e::Tokens::new(dir);
    let mut all = vec![("JWKS_FILES", tokens.jwks_file.display().to_string())];
    all.extend(env.iter().cloned());
    Service::start("gateway", "gateway", &all, dir)
}

/// How long until the server ends `conn` (EOF or reset), up to `limit`; `None` if it
/// is still open then.
fn closed_within(conn: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        let left = limit.checked_sub(started.elapsed())?;
        conn.set_read_timeout(Some(left.max(Duration::from_millis(1)))).expect("timeout");
        match conn.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {} // an answer (e.g. 408): read on until the close
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return None;
            }
            Err(_) => return Some(started.elapsed()), // reset
        }
    }
}

#[tokio::test]
async fn the_metrics_listener_closes_a_connection_that_sent_half_a_header() {
    let dir = tempfile::tempdir().expect("temp dir");
    let gateway = lone_gateway(dir.path(), &[]);
    gateway.wait_serving(GATEWAY).await;
    let metrics: SocketAddr = gateway.metrics.expect("metrics on");
    let (half, whole) = tokio::task::spawn_blocking(move || {
        let mut half = TcpStream::connect(metrics).expect("connect");
        half.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n").expect("half a header");
        // A whole request on another connection is still answered meanwhile.
        let mut whole = TcpStream::connect(metrics).expect("connect");
        whole.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").expect("a request");
        let mut answer = String::new();
        whole.read_to_string(&mut answer).expect("an answer");
        (closed_within(&mut half, Duration::from_secs(15)), answer)
    })
    .await
    .unwrap();
    assert!(whole.starts_with("HTTP/1.1 200"), "{whole}");
    // HEADER_READ_TIMEOUT_SECONDS, default 10.
    let took = half.expect("the half-sent header was still held after 15 s");
    eprintln!("metrics listener: half a header closed after {took:.1?}");
    assert!(took >= Duration::from_secs(9) && took <= Duration::from_secs(12), "closed after {took:?}");
}

#[tokio::test]
async fn two_hundred_anonymous_calls_announcing_4_mib_and_never_finishing_neither_fill_the_gateway_nor_hang() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Every setting at its default: ANONYMOUS_RATE_PER_MINUTE 30, BODY_READ_TIMEOUT_SECONDS
    // 10, MAX_BUFFERED_BYTES_PER_ADDRESS 16 MiB.
    let (_auth, gateway) = edge(dir.path(), &[]).await;
    let pid = gateway.pid().expect("running");
    let register =
        |who: &str| auth::RegisterCustomerRequest { customer_id: who.into(), password: "correct horse battery".into() };
    let honest = || {
        let channel = tonic::transport::Endpoint::from_shared(gateway.url())
            .unwrap()
            .local_address(Some("127.0.0.2".parse().unwrap()))
            .connect_lazy();
        e2e::clients::AuthServiceClient::new(channel)
    };
    honest().register_customer(register("before")).await.expect("an honest registration");
    let before = rss_kib(pid);

    let stop = Arc::new(AtomicBool::new(false));
    let peak = watch_peak(pid, rss_kib, stop.clone());
    let started = Instant::now();
    // 200 calls on 10 connections from 127.0.0.1: each announces 4 MiB, sends all but a byte.
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let sender = h2(gateway.addr, [127, 0, 0, 1]).await;
        for _ in 0..20 {
            let sender = sender.clone();
            calls.spawn(async move {
                let answer = stalled_call(sender, REGISTER, 4 * MIB as u32, 4 * MIB as usize - 1).await;
                (answer, started.elapsed())
            });
        }
    }
    // Meanwhile another address registers.
    honest().register_customer(register("during")).await.expect("an honest registration during the attack");
    let mut answers = Vec::new();
    let all = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(done) = calls.join_next().await {
            answers.push(done.expect("a call"));
        }
    });
    let answered = all.await.is_ok();
    stop.store(true, Ordering::Relaxed);
    let peak = peak.await.unwrap();
    let after = rss_kib(pid);

    let slowest = answers.iter().map(|(_, took)| *took).max().unwrap_or_default();
    let count = |code: Code| answers.iter().filter(|(a, _)| a.code == Some(code)).count();
    let limited = answers.iter().filter(|(a, _)| a.message.starts_with("rate limit exceeded")).count();
    let (cut, refused) = (count(Code::DeadlineExceeded), count(Code::ResourceExhausted));
    eprintln!(
        "200 stalled 4 MiB calls: gateway RSS {} MiB before, {} MiB at the peak (+{} MiB), {} MiB after; \
         {} answered: {limited} refused by the rate limit, {} by the buffer budget, {cut} cut at the body \
         deadline; the last answered after {slowest:.1?}",
        before / 1024,
        peak / 1024,
        (peak - before) / 1024,
        after / 1024,
        answers.len(),
        refused - limited,
    );
    assert!(peak - before < 48 * 1024, "the gateway grew by {} MiB", (peak - before) / 1024);
    assert!(answered, "{} of 200 calls answered within 30 s", answers.len());
    assert_eq!(cut + refused, 200, "each call refused or cut: {answers:?}");
    assert_eq!(limited, 170, "the 31st call on is refused from its head");
    assert!((1..=4).contains(&cut), "16 MiB per address: at most four 4 MiB messages read at once ({cut})");
    let cut_message = "request: the message did not arrive within 10 s";
    assert!(answers.iter().all(|(a, _)| a.code != Some(Code::DeadlineExceeded) || a.message == cut_message));
    assert!(slowest <= Duration::from_secs(13), "BODY_READ_TIMEOUT_SECONDS is 10: {slowest:?}");
    honest().register_customer(register("after")).await.expect("an honest registration after the attack");
}

/// The client preface of HTTP/2: the magic and an empty SETTINGS frame.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

#[tokio::test]
async fn idle_connections_are_closed_capped_per_address_and_never_keep_another_client_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    // HEADER_READ_TIMEOUT_SECONDS (10) and MAX_CONNECTIONS_PER_ADDRESS (512) at their
    // defaults; a short idle timeout to see it within the test.
    let (_auth, gateway) = edge(dir.path(), &[("IDLE_TIMEOUT_SECONDS", "3".into())]).await;
    let pid = gateway.pid().expect("running");
    let (fds_before, rss_before) = (open_fds(pid), rss_kib(pid));
    let stop = Arc::new(AtomicBool::new(false));
    let (peak_fds, peak_rss) = (watch_peak(pid, open_fds, stop.clone()), watch_peak(pid, rss_kib, stop.clone()));

    // 3,000 connections from 127.0.0.1: half send nothing, half only the HTTP/2 preface.
    const N: usize = 3000;
    const PER_ADDRESS: u64 = 512;
    let mut ends = tokio::task::JoinSet::new();
    for i in 0..N {
        let mut conn = tokio::net::TcpStream::connect(gateway.addr).await.expect("connect");
        let opened = Instant::now();
        ends.spawn(async move {
            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
            if i % 2 == 1 {
                let _ = conn.write_all(H2_PREFACE).await;
            }
            let mut buf = [0u8; 4096];
            // Whatever the server says (its own SETTINGS), read on until it closes.
            let limit = Duration::from_secs(30);
            let _ = tokio::time::timeout(limit, async { while matches!(conn.read(&mut buf).await, Ok(n) if n > 0) {} })
                .await;
            opened.elapsed()
        });
    }
    let opened_all = Instant::now();

    // Meanwhile another client (127.0.0.2) is answered: the page, health, a registration.
    let local = "127.0.0.2".parse().unwrap();
    let channel =
        tonic::transport::Endpoint::from_shared(gateway.url()).unwrap().local_address(Some(local)).connect_lazy();
    let register =
        auth::RegisterCustomerRequest { customer_id: "meanwhile".into(), password: "correct horse battery".into() };
    e2e::clients::AuthServiceClient::new(channel.clone()).register_customer(register).await.expect("registered");
    let health = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest { service: GATEWAY.into() })
        .await
        .expect("health");
    assert_eq!(health.into_inner().status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    let page = {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(SocketAddr::new(local, 0)).expect("bind");
        let mut conn = socket.connect(gateway.addr).await.expect("connect");
        conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut page = Vec::new();
        conn.read_to_end(&mut page).await.unwrap();
        String::from_utf8_lossy(&page).into_owned()
    };
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");

    // An idle connection (one call, answered) is closed after IDLE_TIMEOUT_SECONDS; one
    // with a stream open (health's Watch) is not.
    let check = tonic_health::pb::HealthCheckRequest { service: GATEWAY.into() }.encode_to_vec();
    let (mut idle, idle_end) = h2_with_end(gateway.addr, [127, 0, 0, 3]).await;
    assert_eq!(h2_call(&mut idle, "/grpc.health.v1.Health/Check", &check).await.0, Some(Code::Ok));
    let answered = Instant::now();
    let idle_closed = tokio::spawn(async move {
        let _ = idle_end.await;
        answered.elapsed()
    });
    let (mut watching, watching_end) = h2_with_end(gateway.addr, [127, 0, 0, 3]).await;
    let watch = tokio::spawn(async move { h2_call(&mut watching, "/grpc.health.v1.Health/Watch", &check).await });

    let mut closed = Vec::new();
    while let Some(took) = ends.join_next().await {
        closed.push(took.expect("a connection"));
    }
    let fds_after = open_fds(pid);
    let idle_closed = tokio::time::timeout(Duration::from_secs(10), idle_closed).await.map(Result::unwrap);
    let watch_open = !watching_end.is_finished();
    watch.abort();

    stop.store(true, Ordering::Relaxed);
    let (peak_fds, peak_rss) = (peak_fds.await.unwrap(), peak_rss.await.unwrap());
    closed.sort();
    let refused = closed.iter().filter(|t| **t < Duration::from_secs(8)).count();
    let held = &closed[refused..];
    let (first, last) = (held.first().copied().unwrap_or_default(), held.last().copied().unwrap_or_default());
    eprintln!(
        "{N} idle connections from one address: {refused} closed as they came (per-address cap), {} held and \
         closed {first:.1?} to {last:.1?} after they opened (the last {:.1?} after the last one opened); gateway \
         fds: {fds_before} before, {peak_fds} at the peak, {fds_after} after; gateway RSS {} MiB before, {} MiB at \
         the peak; an idle HTTP/2 connection closed {idle_closed:.1?} after its answer; one with a stream open still \
         open after that: {watch_open}",
        held.len(),
        opened_all.elapsed(),
        rss_before / 1024,
        peak_rss / 1024,
    );
    assert!(peak_fds - fds_before <= PER_ADDRESS + 8, "the gateway held {} more fds", peak_fds - fds_before);
    assert!(refused >= N / 2, "the cap refuses beyond it: {refused} refused");
    assert!(first >= Duration::from_millis(9500) && last <= Duration::from_secs(13), "closed {first:?}..{last:?}");
    assert!(fds_after <= fds_before + 8, "fds {fds_before} -> {fds_after}");
    let idle_closed = idle_closed.expect("the idle connection was not closed within 10 s");
    assert!(idle_closed >= Duration::from_millis(2500) && idle_closed <= Duration::from_secs(6), "{idle_closed:?}");
    assert!(watch_open, "a connection with a stream open is not idle");
}
