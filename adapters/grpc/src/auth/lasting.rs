//! Calls that last (server streams, e.g. `WatchMyPage`) keep their caller's authority
//! only as long as a new call with the same token would get it: the answer's body
//! verifies the token again whenever the revocations or the keys change (the verifier
//! fetches the revocations every `REVOCATION_REFRESH_SECONDS`), and at the token's `exp`.
//! When the token no longer passes, the call ends with `UNAUTHENTICATED` (in the
//! trailers; the stream dropped, so the handler's work stops too).
//!
//! The gateway has this layer too: a stream through it ends there as well as at the
//! service, whichever learns first.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_adapter::{AuthError, Identity, Verifier};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio_stream::Stream as _;
use tokio_stream::wrappers::WatchStream;
use tonic::Status;
use tonic::body::Body;

/// An answer's body that ends with `UNAUTHENTICATED` once its caller's token is revoked,
/// signed by a key no longer published, or expired.
pub struct Lasting {
    inner: Body,
    verifier: Arc<Verifier>,
    identity: Identity,
    /// Ready when what refuses tokens changed.
    changes: WatchStream<u64>,
    /// Wakes the body at the token's expiry; made when the body first waits (a unary
    /// answer never does).
    expiry: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The inner body ended, or the trailers with the refusal were sent.
    done: bool,
}

/// The answer `response` to a call made by `identity`, its body bound to the token's
/// validity; an answer that is only trailers (a refusal) as it is.
pub fn bind(response: http::Response<Body>, verifier: Arc<Verifier>, identity: Identity) -> http::Response<Body> {
    if response.headers().contains_key("grpc-status") {
        return response;
    }
    let changes = WatchStream::from_changes(verifier.changes());
    response.map(|inner| Body::new(Lasting { inner, verifier, identity, changes, expiry: None, done: false }))
}

impl Lasting {
    /// How long until the token's `exp`; zero once it is reached. Unlike a new call's
    /// check, without leeway: a stream ended a little early costs a reconnection, ended
    /// late it serves a token past its life.
    fn left(&self) -> Duration {
        let exp = UNIX_EPOCH + Duration::from_secs(u64::try_from(self.identity.expires_at).unwrap_or(0));
        exp.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO)
    }

    /// Why the token no longer passes, if it does not.
    fn refusal(&self) -> Option<AuthError> {
        if self.left().is_zero() {
            return Some(AuthError::Expired);
        }
        self.verifier.verify(&self.identity.token).err()
    }

    /// Whether what refuses tokens changed since the last look (and registers to be
    /// woken at the next change).
    fn changed(&mut self, cx: &mut Context<'_>) -> bool {
        let mut changed = false;
        while let Poll::Ready(Some(_)) = Pin::new(&mut self.changes).poll_next(cx) {
            changed = true;
        }
        changed
    }

    /// Registers to be woken at the token's expiry.
    fn wake_at_expiry(&mut self, cx: &mut Context<'_>) {
        let left = self.left();
        let expiry = self.expiry.get_or_insert_with(|| Box::pin(tokio::time::sleep(left)));
        if expiry.as_mut().poll(cx).is_ready() {
            // Fired before `exp` by the wall clock (the two clocks drift): wait the rest.
            expiry.as_mut().reset(tokio::time::Instant::now() + left.max(Duration::from_millis(10)));
            let _ = expiry.as_mut().poll(cx);
        }
    }

    /// Ends the call with `why`: the trailers with the status, the inner body dropped
    /// (and with it the handler's stream: its work stops).
    fn end(&mut self, why: &AuthError) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        tracing::info!(
            sub = self.identity.customer_id,
            role = %self.identity.role,
            reason = %why,
            "call ended: its token no longer passes"
        );
        self.done = true;
        self.inner = Body::empty();
        let mut trailers = http::HeaderMap::new();
        match Status::unauthenticated(why.to_string()).add_header(&mut trailers) {
            Ok(()) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }
}

impl http_body::Body for Lasting {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if self.done {
            return Poll::Ready(None);
        }
        // Checked before every frame, so a stream that always has one ready is bound too.
        if (self.changed(cx) || self.left().is_zero())
            && let Some(why) = self.refusal()
        {
            return self.end(&why);
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                if frame.as_ref().is_none_or(|f| f.as_ref().is_ok_and(Frame::is_trailers)) {
                    self.done = true;
                }
                Poll::Ready(frame)
            }
            Poll::Pending => {
                self.wake_at_expiry(cx);
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use auth_adapter::verify::Revocation;
    use auth_adapter::{KeyRing, Role, TokenIssuer};
    use http_body_util::BodyExt as _;
    use tokio::sync::mpsc;
    use tokio_stream::wrappers::ReceiverStream;

    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        issuer: TokenIssuer,
        verifier: Arc<Verifier>,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::open(dir.path().join("keys"), Duration::from_secs(3600)).unwrap();
        let verifier = Verifier::with_keys(&ring.jwks().unwrap(), vec!["game-rewards".into()], "game-rewards");
        let issuer = TokenIssuer {
            ring,
            issuer: "game-rewards".into(),
            audience: "game-rewards".into(),
            ttl: Duration::from_secs(3600),
        };
        Fixture { _dir: dir, issuer, verifier }
    }

    /// A stream answered to `who` (verified by `f`'s verifier): its messages are sent
    /// into the returned sender, one data frame each.
    fn streaming(f: &Fixture, token: &str) -> (mpsc::Sender<Bytes>, Body) {
        let who = f.verifier.verify(token).expect("a valid token");
        let (tx, rx) = mpsc::channel::<Bytes>(4);
        let frames = ReceiverStream::new(rx).map(|b| Ok::<_, Status>(Frame::data(b)));
        let response = http::Response::new(Body::new(http_body_util::StreamBody::new(frames)));
        (tx, bind(response, f.verifier.clone(), who).into_body())
    }

    async fn next(body: &mut Body) -> Frame<Bytes> {
        tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("a frame within 5 s")
            .expect("the body goes on")
            .expect("no error")
    }

    fn status_of(frame: &Frame<Bytes>) -> (tonic::Code, String) {
        let s = Status::from_header_map(frame.trailers_ref().expect("trailers")).expect("a status");
        (s.code(), s.message().to_owned())
    }

    use tokio_stream::StreamExt as _;

    #[tokio::test]
    async fn given_an_open_stream_when_its_subject_s_tokens_are_revoked_then_it_ends_unauthenticated() {
        let f = fixture();
        let (token, _) = f.issuer.issue("c-11", Role::Player).unwrap();
        let (tx, mut body) = streaming(&f, &token);
        tx.send(Bytes::from_static(b"page 1")).await.unwrap();
        assert_eq!(next(&mut body).await.into_data().unwrap(), "page 1");
        // someone else's revocation changes nothing for this stream
        f.verifier.set_revocations(&[Revocation { subject: "c-12".into(), before: i64::MAX }]);
        tx.send(Bytes::from_static(b"page 2")).await.unwrap();
        assert_eq!(next(&mut body).await.into_data().unwrap(), "page 2");

        f.verifier.set_revocations(&[Revocation { subject: "c-11".into(), before: i64::MAX }]);
        let end = next(&mut body).await;
        assert_eq!(status_of(&end), (tonic::Code::Unauthenticated, "token revoked".into()));
        assert!(body.frame().await.is_none(), "nothing after the refusal");
        assert!(tx.is_closed(), "the handler's stream is dropped");
    }

    #[tokio::test]
    async fn given_a_stream_whose_messages_are_always_ready_then_the_revocation_still_ends_it() {
        let f = fixture();
        let (token, _) = f.issuer.issue("c-11", Role::Admin).unwrap();
        let (tx, mut body) = streaming(&f, &token);
        for _ in 0..4 {
            tx.send(Bytes::from_static(b"page")).await.unwrap();
        }
        f.verifier.set_revocations(&[Revocation { subject: "c-11".into(), before: i64::MAX }]);
        assert_eq!(status_of(&next(&mut body).await).0, tonic::Code::Unauthenticated);
    }

    #[tokio::test]
    async fn given_an_open_stream_when_its_token_expires_then_it_ends_unauthenticated_at_exp() {
        let f = fixture();
        let (token, _) = f.issuer.issue_with("c-11", Role::Player, Duration::from_secs(1), None).unwrap();
        let exp = f.verifier.verify(&token).unwrap().expires_at;
        let (_tx, mut body) = streaming(&f, &token);
        let end = next(&mut body).await;
        let ended = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        assert_eq!(status_of(&end), (tonic::Code::Unauthenticated, "token expired".into()));
        let exp = Duration::from_secs(u64::try_from(exp).unwrap());
        assert!(ended >= exp, "not before exp");
        assert!(ended < exp + Duration::from_millis(500), "at exp: {:?} after", ended - exp);
    }

    #[tokio::test]
    async fn a_refusal_and_a_finished_answer_pass_as_they_are() {
        let f = fixture();
        let (token, _) = f.issuer.issue("c-11", Role::Player).unwrap();
        let who = f.verifier.verify(&token).unwrap();
        let refused = bind(Status::permission_denied("no").into_http(), f.verifier.clone(), who.clone());
        assert_eq!(refused.headers()["grpc-status"], "7");
        let (tx, mut body) = streaming(&f, &token);
        tx.send(Bytes::from_static(b"answer")).await.unwrap();
        drop(tx);
        assert_eq!(next(&mut body).await.into_data().unwrap(), "answer");
        assert!(body.frame().await.is_none(), "the answer ends");
        f.verifier.set_revocations(&[Revocation { subject: "c-11".into(), before: i64::MAX }]);
        assert!(body.frame().await.is_none(), "an answer that ended is not refused afterwards");
    }
}
