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
//! ([`crate::codec`]). Methods whose client streams (server reflection) and paths that
//! are not gRPC methods of ours (the JWKS document) pass untouched.
//!
//! Reading the one message before the handler runs costs nothing a unary handler would
//! not pay: tonic reads the whole request before calling it, too.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::BodyExt;
use tonic::Status;
use tonic::body::Body;

/// gRPC's message prefix: a compressed flag and a 4-byte big-endian length.
const PREFIX: usize = 5;

/// The largest request gRPC implementations accept by default (and tonic's own limit).
pub const DEFAULT_MAX_REQUEST_BYTES: u32 = 4 * 1024 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct GuardLayer {
    max: usize,
}

impl GuardLayer {
    /// Refuses request messages over `max` bytes.
    pub fn new(max: u32) -> Self {
        Self { max: max as usize }
    }
}

impl<S> tower::Layer<S> for GuardLayer {
    type Service = Guard<S>;
    fn layer(&self, inner: S) -> Guard<S> {
        Guard { inner, max: self.max }
    }
}

#[derive(Debug, Clone)]
pub struct Guard<S> {
    inner: S,
    max: usize,
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
        let one_message = crate::methods::shape(req.uri().path()).is_some_and(|s| !s.client_streaming);
        if !one_message {
            return Box::pin(inner.call(req));
        }
        let max = self.max;
        Box::pin(async move {
            let compressed_ok = req.headers().contains_key("grpc-encoding");
            let (parts, body) = req.into_parts();
            match read_one_message(body, max, compressed_ok).await {
                Ok(message) => {
                    inner.call(http::Request::from_parts(parts, Body::new(http_body_util::Full::new(message)))).await
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

/// Reads the body: one frame, whole, within `max`; returns it as it came (prefix included).
///
/// # Errors
/// The status to answer with.
pub async fn read_one_message<B>(body: B, max: usize, compressed_ok: bool) -> Result<Bytes, Status>
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
            expected = Some(check_prefix(&buf, max, compressed_ok)?);
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

    async fn read(chunks: Vec<Vec<u8>>, compressed_ok: bool) -> Result<Bytes, Status> {
        read_one_message(body(chunks), 100, compressed_ok).await
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
