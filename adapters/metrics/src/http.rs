//! `GET /metrics` on the admin address: a bare HTTP/1.1 server (hyper), apart from the
//! gRPC port so that scrapes never meet authentication, rate limits or the gateway's page.
//!
//! A connection must send a whole request head within the header timeout — its first, and
//! each next one on a kept-alive connection — or it is closed; and only
//! [`MAX_CONNECTIONS`] are served at once (a scraper needs one): whoever reaches the
//! admin address cannot hold it with half-sent headers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, body::Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// OpenMetrics text, which Prometheus negotiates and reads.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Connections served at once; more are closed as they come.
pub const MAX_CONNECTIONS: usize = 64;

/// Binds `addr`, turns recording on, records `build_info{version}`, and answers scrapes
/// until `stopping`; a connection that has not sent a whole request head within
/// `header_timeout` is closed. Returns the bound address (port 0 picks one).
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    version: &'static str,
    header_timeout: Duration,
    stopping: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    crate::enable();
    crate::process().build_info.get_or_create(&crate::Version { version }).set(1);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let conn = tokio::select! {
                conn = listener.accept() => conn,
                () = stopping.cancelled() => return,
            };
            let stream = match conn {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors: accepting again at once would only spin.
                    tracing::debug!(error = %e, "metrics: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else { continue }; // dropped: closed
            tokio::spawn(async move {
                let service = hyper::service::service_fn(answer);
                // hyper enforces the header timeout only with a timer; it runs again while
                // a kept-alive connection waits for its next request.
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                drop(slot);
            });
        }
    });
    Ok(bound)
}

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&Method::GET | &Method::HEAD, "/metrics") => (StatusCode::OK, CONTENT_TYPE, crate::encode()),
        (_, "/metrics") => (StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET /metrics\n".to_owned()),
        _ => (StatusCode::NOT_FOUND, "text/plain", "metrics are at /metrics\n".to_owned()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(content_type));
    Ok(response)
}
