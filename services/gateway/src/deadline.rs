//! Every upstream call ends by a deadline: the client's own (`grpc-timeout`), else the
//! gateway's default (`UPSTREAM_TIMEOUT_SECONDS`) — except a server-streaming call
//! without a client deadline (`WatchMyPage`), which lives as long as the client watches.
//! The contracts say which methods stream ([`grpc_adapter::methods`]), so a new
//! streaming method needs no list here.
//!
//! The deadline counts from the request's arrival ([`grpc_adapter::server::Arrival`]),
//! and a client's deadline is taken a few milliseconds short: our `DEADLINE_EXCEEDED`
//! then reaches the client before its own timer or tonic's server timeout (which would
//! answer `CANCELLED`) gives up.
//!
//! The deadline covers the whole call: waiting for the answer's headers, then its body.
//! When it passes, the client gets `DEADLINE_EXCEEDED` (as the status of an answer not
//! yet started, or as the trailers of a started one) and the upstream stream is dropped,
//! which cancels it. The upstream is told the same deadline in `grpc-timeout`, so it
//! stops working on a call nobody waits for.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tonic::Status;
use tonic::body::Body;

pub const GRPC_TIMEOUT: &str = "grpc-timeout";

/// A `grpc-timeout` value (`TimeoutValue TimeoutUnit`: at most 8 digits, then one of
/// `H M S m u n`), as the gRPC over HTTP/2 spec writes it.
pub fn parse(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// `d` as a `grpc-timeout` value (milliseconds, rounded up; seconds when that is too long).
pub fn encode(d: Duration) -> String {
    let ms = d.as_nanos().div_ceil(1_000_000);
    if ms <= 99_999_999 { format!("{ms}m") } else { format!("{}S", d.as_secs().min(99_999_999)) }
}

/// The refusal when the deadline passes.
pub fn exceeded() -> Status {
    Status::deadline_exceeded("the call did not complete within its deadline; try again later")
}

/// An answer's body that ends with `DEADLINE_EXCEEDED` trailers if it is not over by `until`.
pub struct DeadlineBody {
    inner: Body,
    sleep: Pin<Box<Sleep>>,
    done: bool,
}

impl DeadlineBody {
    pub fn new(inner: Body, until: Instant) -> Self {
        Self { inner, sleep: Box::pin(tokio::time::sleep_until(until)), done: false }
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        ready!(self.sleep.as_mut().poll(cx));
        self.done = true;
        // Dropping the upstream body now resets its stream: the upstream call is cancelled.
        self.inner = Body::empty();
        let mut trailers = http::HeaderMap::new();
        // Our own message is plain ASCII: adding it cannot fail.
        let _ = exceeded().add_header(&mut trailers);
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        // The trailers we may add are not data: the data is at most the upstream's.
        let mut hint = SizeHint::new();
        if let Some(upper) = self.inner.size_hint().upper() {
            hint.set_upper(upper);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn grpc_timeouts_parse_as_the_spec_writes_them_and_round_trip() {
        assert_eq!(parse("10S"), Some(Duration::from_secs(10)));
        assert_eq!(parse("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse("99999999n"), Some(Duration::from_nanos(99_999_999)));
        for bad in ["", "S", "10", "10s", "123456789m", "-1S", "1.5S", "１S"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(encode(Duration::from_secs(10)), "10000m");
        assert_eq!(encode(Duration::from_micros(1500)), "2m", "rounded up, never to 0");
        assert_eq!(parse(&encode(Duration::from_secs(200_000))), Some(Duration::from_secs(200_000)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_still_open_at_the_deadline_ends_with_deadline_exceeded() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Status>>(1);
        let upstream = Body::new(http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx)));
        let mut body = DeadlineBody::new(upstream, Instant::now() + Duration::from_secs(1));
        tx.send(Ok(Frame::data(Bytes::from_static(b"first")))).await.unwrap();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "first");
        let last = body.frame().await.unwrap().unwrap();
        let trailers = last.into_trailers().unwrap();
        assert_eq!(trailers["grpc-status"], "4");
        assert!(body.frame().await.is_none());
        assert!(tx.is_closed(), "the upstream body was dropped: its call is cancelled");
    }
}
