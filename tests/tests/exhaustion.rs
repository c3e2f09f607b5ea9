//! An attacker's afternoon against the edge, replayed on the real executables: slow
//! request bodies, idle and half-open connections, half-sent headers on the metrics
//! listener. Each attack's cost to the server is measured from `/proc` (its resident
//! memory, its open file descriptors) or from the attacking sockets themselves (when the
//! server closed them), and held to a bound.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use e2e::{GATEWAY, Service};

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
