//! The framing check in front of every server: a call to a method that takes one request
//! message must carry exactly one complete gRPC message frame, uncompressed unless the
//! call says how it is compressed, of at most `MAX_REQUEST_BYTES`. Anything else is
//! refused here, before tonic sees it, with a status that says what is wrong in our
//! words:
//!
//! | the request | tonic alone answers | here |
//! |---|---|---|
//! | no message (an empty POST, a GET) | `INTERNAL: Missing request message.` | `INVALID_ARGUMENT` |
//! | a frame cut short | `INTERNAL: Unexpected EOF decoding stream.` | `INVALID_ARGUMENT` |
//! | a bad compressed flag | `INTERNAL: protocol error: ...` | `INVALID_ARGUMENT` |
//! | two messages to a unary method | the first one is taken | `INVALID_ARGUMENT` |
//! | a frame over the limit | `OUT_OF_RANGE` | `RESOURCE_EXHAUSTED` |
//!
//! A message that is framed well but does not decode is the codec's part
//! ([`crate::codec`]). Paths that are not gRPC methods of ours (the JWKS document) pass
//! untouched.
//!
//! Reading the one message before the handler runs costs nothing a unary handler would
//! not pay: tonic reads the whole request before calling it, too. What it may hold is
//! bounded: the message must arrive whole within `BODY_READ_TIMEOUT_SECONDS` (a body
//! that stalls is cut with `DEADLINE_EXCEEDED`), and its announced length is reserved
//! from the [`crate::budget`] of its connection and client address before it is read.
//! A client-streaming call (server reflection) counts every byte it sends against the
//! same budget while it lasts.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::BodyExt;
use tonic::Status;
use tonic::body::Body;

use crate::budget::{Budget, Reservation};
use crate::peer::{self, TrustedProxies};

/// gRPC's message prefix: a compressed flag and a 4-byte big-endian length.
const PREFIX: usize = 5;

/// The largest request gRPC implementations accept by default (and tonic's own limit).
pub const DEFAULT_MAX_REQUEST_BYTES: u32 = 4 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct GuardLayer {
    bounds: Arc<Bounds>,
}

/// What one request may hold, and for how long.
#[derive(Debug)]
struct Bounds {
    max: usize,
    body_timeout: Duration,
    budget: Arc<Budget>,
    /// Whose `x-forwarded-for` names the client whose budget a request is counted in.
    trusted: TrustedProxies,
}

impl GuardLayer {
    /// Refuses request messages over `max` bytes, or not whole within `body_timeout`, or
    /// beyond the `budget` of their connection or client address.
    pub fn new(max: u32, body_timeout: Duration, budget: Arc<Budget>, trusted: TrustedProxies) -> Self {
        Self { bounds: Arc::new(Bounds { max: max as usize, body_timeout, budget, trusted }) }
    }
}

impl<S> tower::Layer<S> for GuardLayer {
    type Service = Guard<S>;
    fn layer(&self, inner: S) -> Guard<S> {
        Guard { inner, bounds: Arc::clone(&self.bounds) }
    }
}

#[derive(Debug, Clone)]
pub struct Guard<S> {
    inner: S,
    bounds: Arc<Bounds>,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S> tower::Service<http::Request<Body>> for Guard<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<http::Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let Some(shape) = crate::methods::shape(req.uri().path()) else {
            return Box::pin(inner.call(req));
        };
        let connection = req
            .extensions()
            .get::<tonic::transport::server::TcpConnectInfo>()
            .and_then(tonic::transport::server::TcpConnectInfo::remote_addr);
        let address = peer::of_http(&req, &self.bounds.trusted).map(peer::address_key);
        let mut reservation = self.bounds.budget.open(connection, address);
        if shape.client_streaming {
            let req = req.map(|inner| Body::new(HeldBody { inner, seen: 0, reservation }));
            return Box::pin(inner.call(req));
        }
        let (max, timeout) = (self.bounds.max, self.bounds.body_timeout);
        Box::pin(async move {
            let compressed_ok = req.headers().contains_key("grpc-encoding");
            let (parts, body) = req.into_parts();
            let read = tokio::time::timeout(timeout, read_one_message(body, max, compressed_ok, &mut reservation));
            let read = read.await.unwrap_or_else(|_| {
                Err(Status::deadline_exceeded(format!(
                    "request: the message did not arrive within {} s",
                    timeout.as_secs_f64()
                )))
            });
            match read {
                Ok(message) => {
                    let message = Body::new(http_body_util::Full::new(message));
                    let answer = inner.call(http::Request::from_parts(parts, message)).await;
                    // Held until the handler (or the gateway's upstream) has the message.
                    drop(reservation);
                    answer
                }
                Err(refusal) => {
                    tracing::debug!(
                        path = parts.uri.path(),
                        reason = refusal.message(),
                        "request refused before decoding"
                    );
                    Ok(refusal.into_http())
                }
            }
        })
    }
}

/// Reads the body: one frame, whole, within `max`, its announced length reserved first;
/// returns it as it came (prefix included).
///
/// # Errors
/// The status to answer with.
pub async fn read_one_message<B>(
    body: B,
    max: usize,
    compressed_ok: bool,
    reservation: &mut Reservation,
) -> Result<Bytes, Status>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let mut body = body;
    let mut buf = BytesMut::new();
    let mut expected: Option<usize> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            tracing::debug!(error = %e, "request body unreadable");
            Status::cancelled("request: the request body could not be read")
        })?;
        let Ok(data) = frame.into_data() else { continue }; // request trailers: none in gRPC
        buf.extend_from_slice(&data);
        if expected.is_none() && buf.len() >= PREFIX {
            let len = check_prefix(&buf, max, compressed_ok)?;
            reservation.grow_to(len)?;
            buf.reserve((PREFIX + len).saturating_sub(buf.len()));
            expected = Some(len);
        }
        if let Some(len) = expected
            && buf.len() > PREFIX + len
        {
            return Err(Status::invalid_argument("request: a unary call takes exactly one message"));
        }
    }
    match expected {
        _ if buf.is_empty() => Err(Status::invalid_argument("request: missing message")),
        Some(len) if buf.len() == PREFIX + len => Ok(buf.freeze()),
        _ => Err(Status::invalid_argument("request: truncated message")),
    }
}

/// A client-streaming request's body, every byte it brings counted in its reservation:
/// past the budget it ends with the refusal.
struct HeldBody {
    inner: Body,
    seen: usize,
    reservation: Reservation,
}

impl http_body::Body for HeldBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if let Some(Ok(data)) = frame.as_ref().map(|f| f.as_ref().map(http_body::Frame::data_ref))
            && let Some(data) = data
        {
            this.seen += data.len();
            if let Err(e) = this.reservation.grow_to(this.seen) {
                this.inner = Body::empty();
                return Poll::Ready(Some(Err(e.into())));
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The message length the prefix announces, when acceptable.
fn check_prefix(buf: &[u8], max: usize, compressed_ok: bool) -> Result<usize, Status> {
    let mut prefix = &buf[..PREFIX];
    let flag = prefix.get_u8();
    let len = prefix.get_u32() as usize;
    match flag {
        0 => {}
        1 if compressed_ok => {}
        _ => return Err(Status::invalid_argument("request: malformed message prefix")),
    }
    if len > max {
        return Err(Status::resource_exhausted(format!("request: message larger than {max} bytes")));
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn framed(flag: u8, len: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![flag];
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    /// A body delivered in `chunks`.
    fn body(chunks: Vec<Vec<u8>>) -> impl http_body::Body<Data = Bytes, Error = std::convert::Infallible> + Unpin {
        let frames: Vec<Result<_, std::convert::Infallible>> =
            chunks.into_iter().map(|c| Ok(http_body::Frame::data(Bytes::from(c)))).collect();
        http_body_util::StreamBody::new(tokio_stream::iter(frames))
    }

    fn budget(bytes: usize) -> Arc<Budget> {
        Budget::new(crate::budget::BufferLimits { per_connection: bytes, per_address: bytes, total: bytes })
    }

    async fn read(chunks: Vec<Vec<u8>>, compressed_ok: bool) -> Result<Bytes, Status> {
        read_one_message(body(chunks), 100, compressed_ok, &mut budget(1000).open(None, None)).await
    }

    #[tokio::test]
    async fn a_message_is_refused_before_it_is_read_when_its_length_is_beyond_the_budget() {
        let budget = budget(10);
        let mut held = budget.open(None, None);
        held.grow_to(7).unwrap();
        let mut reservation = budget.open(None, None);
        let e = read_one_message(body(vec![framed(0, 4, b"ab")]), 100, false, &mut reservation).await.unwrap_err();
        assert_eq!(e.code(), Code::Unavailable, "{}", e.message());
        let got = read_one_message(body(vec![framed(0, 3, b"abc")]), 100, false, &mut reservation).await;
        assert!(got.is_ok(), "3 more fit");
    }

    #[tokio::test]
    async fn one_whole_frame_passes_as_it_came_even_in_pieces() {
        let frame = framed(0, 3, b"abc");
        let got = read(vec![frame[..2].to_vec(), frame[2..6].to_vec(), frame[6..].to_vec()], false).await.unwrap();
        assert_eq!(&got[..], &frame[..]);
        assert_eq!(
            &read(vec![framed(0, 0, b"")], false).await.unwrap()[..],
            &framed(0, 0, b"")[..],
            "an empty message"
        );
        assert!(read(vec![framed(1, 1, b"x")], true).await.is_ok(), "compressed, as the call says");
    }

    #[tokio::test]
    async fn each_malformed_body_gets_the_status_that_says_why() {
        let cases: Vec<(&str, Vec<Vec<u8>>, Code, &str)> = vec![
            ("no body", vec![], Code::InvalidArgument, "request: missing message"),
            ("an empty chunk", vec![vec![]], Code::InvalidArgument, "request: missing message"),
            ("half a prefix", vec![vec![0, 0]], Code::InvalidArgument, "request: truncated message"),
            ("cut short", vec![framed(0, 10, b"abc")], Code::InvalidArgument, "request: truncated message"),
            ("two messages", vec![framed(0, 1, b"a"), framed(0, 1, b"b")], Code::InvalidArgument, "exactly one"),
            ("junk after", vec![framed(0, 1, b"ab")], Code::InvalidArgument, "exactly one"),
            ("compressed, unsaid", vec![framed(1, 1, b"a")], Code::InvalidArgument, "malformed message prefix"),
            ("a bad flag", vec![framed(7, 1, b"a")], Code::InvalidArgument, "malformed message prefix"),
            ("huge", vec![framed(0, u32::MAX, b"a")], Code::ResourceExhausted, "larger than 100 bytes"),
            ("just over", vec![framed(0, 101, &[0; 101])], Code::ResourceExhausted, "larger than 100 bytes"),
        ];
        for (what, chunks, code, text) in cases {
            let e = read(chunks, false).await.expect_err(what);
            assert_eq!(e.code(), code, "{what}: {}", e.message());
            assert!(e.message().contains(text), "{what}: {}", e.message());
        }
    }
}
