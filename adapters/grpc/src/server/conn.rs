//! Connections as a server takes them, bounded the way an edge proxy bounds them:
//!
//! - at most `MAX_CONNECTIONS` at once, kept below the process's file-descriptor limit
//!   (raised at start to its hard limit) with [`FD_RESERVE`] descriptors left for the
//!   server's own calls (keys, revocations, upstream health, the database, NATS): more are
//!   closed as they come; and at most `MAX_CONNECTIONS_PER_ADDRESS` from one client
//!   address (its /64 for IPv6; a trusted proxy, which carries many clients, is exempt);
//! - a connection on which no request has arrived within `HEADER_READ_TIMEOUT_SECONDS`
//!   (silence, half a header, or the HTTP/2 preface and nothing after it) is closed;
//! - a connection with no request in flight for `IDLE_TIMEOUT_SECONDS` is closed (HTTP/2
//!   pings answered or not: idleness is counted in requests, not bytes); HTTP/2 keepalive
//!   pings, set on the server, drop a peer that stopped answering.
//!
//! A request "arrives" when hyper has read its head and handed it to our first layer,
//! [`ConnLayer`], which counts it on its connection ([`Link`]) until its answer's body
//! ends. A timed-out connection ends with an I/O error from [`Conn`]'s reads, which ends
//! hyper's connection; tonic's client then dials again for its next call.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tonic::body::Body;
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::peer::{TrustedProxies, address_key};

/// File descriptors kept free of client connections for the server's own use.
pub const FD_RESERVE: u64 = 256;

/// How many connections a server holds, and for how long.
#[derive(Debug, Clone)]
pub struct Limits {
    pub total: usize,
    pub per_address: usize,
    /// Not counted per address (a load balancer in front).
    pub exempt: TrustedProxies,
    /// Until the first request of a connection is in.
    pub first_request: Duration,
    /// Without a request in flight.
    pub idle: Duration,
}

/// Raises the soft limit on open files to the hard limit; returns the soft limit now
/// (`None`: unlimited or unknown).
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        if let Some(hard) = limit.maximum
            && limit.current.is_some_and(|soft| soft < hard)
            && let Err(e) = setrlimit(Resource::Nofile, Rlimit { current: Some(hard), maximum: Some(hard) })
        {
            tracing::warn!(error = %e, hard, "cannot raise the open-files limit to its hard limit");
        }
        getrlimit(Resource::Nofile).current
    }
    #[cfg(not(unix))]
    None
}

/// `wanted` connections, or fewer when the file-descriptor limit would not hold them and
/// the server's own [`FD_RESERVE`].
pub fn connection_cap(wanted: usize, fd_limit: Option<u64>) -> usize {
    let room = fd_limit.map_or(u64::MAX, |l| l.saturating_sub(FD_RESERVE).max(1));
    wanted.min(usize::try_from(room).unwrap_or(usize::MAX))
}

/// Connections held now: in all and per counted address.
#[derive(Debug)]
struct Slots {
    limits: Arc<Limits>,
    held: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// Why a connection was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Full {
    Total,
    Address,
}

/// One connection's place in [`Slots`], given back on drop.
#[derive(Debug)]
struct Slot {
    slots: Arc<Slots>,
    address: Option<IpAddr>,
}

impl Slots {
    fn take(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, Full> {
        let address = (!self.limits.exempt.contains(peer)).then(|| address_key(peer));
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let (total, per_address) = &mut *held;
        if *total >= self.limits.total {
            return Err(Full::Total);
        }
        if let Some(a) = address {
            let n = per_address.entry(a).or_default();
            if *n >= self.limits.per_address {
                if *n == 0 {
                    per_address.remove(&a);
                }
                return Err(Full::Address);
            }
            *n += 1;
        }
        *total += 1;
        Ok(Slot { slots: Arc::clone(self), address })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(PoisonError::into_inner);
        let (total, per_address) = &mut *held;
        *total -= 1;
        if let Some(a) = self.address
            && let Some(n) = per_address.get_mut(&a)
        {
            *n -= 1;
            if *n == 0 {
                per_address.remove(&a);
            }
        }
    }
}

/// Accepted connections within [`Limits`], Nagle's algorithm off: gRPC writes small
/// frames, and Nagle holding them back against the client's delayed ACK costs ~40 ms per
/// call (measured by the benchmark: 28x on answers of a few KB).
pub struct Incoming {
    listener: TcpListener,
    slots: Arc<Slots>,
    /// After an accept failed for want of descriptors: accepting again at once would spin.
    backoff: Option<Pin<Box<Sleep>>>,
    /// Connections closed for a full table since the last warning, and when that was.
    refused: (u64, Option<Instant>),
}

impl Incoming {
    pub fn new(listener: TcpListener, limits: Limits) -> Self {
        let slots = Arc::new(Slots { limits: Arc::new(limits), held: Mutex::default() });
        Self { listener, slots, backoff: None, refused: (0, None) }
    }

    fn refuse(&mut self, peer: SocketAddr, full: Full) {
        self.refused.0 += 1;
        let now = Instant::now();
        if self.refused.1.is_none_or(|at| now.duration_since(at) >= Duration::from_secs(10)) {
            let limits = &self.slots.limits;
            tracing::warn!(
                refused = self.refused.0,
                last = %peer.ip(),
                ?full,
                max = limits.total,
                per_address = limits.per_address,
                "connections refused: too many held"
            );
            self.refused = (0, Some(now));
        }
    }
}

impl tokio_stream::Stream for Incoming {
    type Item = io::Result<Conn>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<io::Result<Conn>>> {
        loop {
            if let Some(sleep) = self.backoff.as_mut() {
                ready!(sleep.as_mut().poll(cx));
                self.backoff = None;
            }
            let (stream, peer) = match ready!(self.listener.poll_accept(cx)) {
                Ok(accepted) => accepted,
                Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset) => {
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; pausing accepts for 100 ms");
                    self.backoff = Some(Box::pin(tokio::time::sleep(Duration::from_millis(100))));
                    continue;
                }
            };
            let slot = match self.slots.take(peer.ip()) {
                Ok(slot) => slot,
                Err(full) => {
                    self.refuse(peer, full);
                    continue; // dropped: closed
                }
            };
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY");
            }
            return Poll::Ready(Some(Ok(Conn::new(stream, slot))));
        }
    }
}

/// What a connection has done: requests in flight, and since when none is.
#[derive(Debug)]
struct Activity {
    accepted: Instant,
    /// Requests in flight, and when the last one ended (`None` before the first came).
    state: Mutex<(usize, Option<Instant>)>,
}

/// A request in flight on its connection, until dropped.
struct Busy(Arc<Activity>);

impl Activity {
    fn busy(self: &Arc<Self>) -> Busy {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.0 += 1;
        state.1 = Some(Instant::now());
        Busy(Arc::clone(self))
    }

    /// When the connection is to be closed if nothing happens meanwhile (`None`: a
    /// request is in flight).
    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        let (in_flight, idle_since) = *self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match idle_since {
            None => Some(self.accepted + limits.first_request),
            Some(_) if in_flight > 0 => None,
            Some(since) => Some(since + limits.idle),
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.0 -= 1;
        state.1 = Some(Instant::now());
    }
}

/// The connection as tonic sees it: the TCP peer (as [`TcpConnectInfo`]) and its
/// [`Activity`]. [`ConnLayer`] turns it back into a plain `TcpConnectInfo` for the rest.
#[derive(Debug, Clone)]
pub struct Link {
    tcp: TcpConnectInfo,
    activity: Arc<Activity>,
}

/// An accepted TCP connection that ends itself (with an I/O error to hyper) once its
/// first request is late or it has been idle too long.
pub struct Conn {
    stream: TcpStream,
    link: Link,
    limits: Arc<Limits>,
    timer: Pin<Box<Sleep>>,
    _slot: Slot,
}

impl Conn {
    fn new(stream: TcpStream, slot: Slot) -> Self {
        let tcp = stream.connect_info();
        let limits = Arc::clone(&slot.slots.limits);
        let accepted = Instant::now();
        let activity = Arc::new(Activity { accepted, state: Mutex::new((0, None)) });
        let timer = Box::pin(tokio::time::sleep_until(accepted + limits.first_request));
        Self { stream, link: Link { tcp, activity }, limits, timer, _slot: slot }
    }

    /// Pending until the connection is due to close; then the error that closes it.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The timer fires no later than the deadline: one sooner than it was armed for
        // (an idle timeout shorter than the header timeout) moves it closer.
        if let Some(at) = self.link.activity.deadline(&self.limits)
            && at < self.timer.deadline()
        {
            self.timer.as_mut().reset(at);
        }
        loop {
            ready!(self.timer.as_mut().poll(cx));
            let now = Instant::now();
            match self.link.activity.deadline(&self.limits) {
                Some(at) if at <= now => {
                    let why = if self.link.activity.state.lock().unwrap_or_else(PoisonError::into_inner).1.is_none() {
                        "no request within the header timeout"
                    } else {
                        "idle"
                    };
                    tracing::debug!(peer = ?self.link.tcp.remote_addr, why, "closing the connection");
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, why)));
                }
                Some(at) => self.timer.as_mut().reset(at),
                None => self.timer.as_mut().reset(now + self.limits.idle),
            }
        }
    }
}

impl Connected for Conn {
    type ConnectInfo = Link;

    fn connect_info(&self) -> Link {
        self.link.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Pending => this.poll_expired(cx),
            ready => ready,
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The first of our layers: counts each request on its connection until its answer's
/// body ends, and puts the peer into the request as the plain [`TcpConnectInfo`] that
/// `remote_addr()` and [`crate::peer`] read.
#[derive(Debug, Clone, Copy)]
pub struct ConnLayer;

impl<S> tower::Layer<S> for ConnLayer {
    type Service = Counted<S>;
    fn layer(&self, inner: S) -> Counted<S> {
        Counted { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Counted<S> {
    inner: S,
}

impl<S> tower::Service<http::Request<Body>> for Counted<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
        let busy = req.extensions().get::<Link>().cloned().map(|link| {
            req.extensions_mut().insert(link.tcp.clone());
            link.activity.busy()
        });
        let answer = self.inner.call(req);
        Box::pin(async move {
            let res = answer.await?;
            Ok(match busy {
                Some(busy) => res.map(|inner| Body::new(CountedBody { inner, _busy: busy })),
                None => res,
            })
        })
    }
}

/// An answer's body, its request in flight until it ends (or is dropped).
struct CountedBody {
    inner: Body,
    _busy: Busy,
}

impl http_body::Body for CountedBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, tonic::Status>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_address: usize, exempt: &[&str]) -> Arc<Slots> {
        let limits = Limits {
            total,
            per_address,
            exempt: TrustedProxies::parse(exempt).unwrap(),
            first_request: Duration::from_secs(10),
            idle: Duration::from_secs(300),
        };
        Arc::new(Slots { limits: Arc::new(limits), held: Mutex::default() })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn connections_are_capped_per_address_and_in_all_and_a_closed_one_frees_its_place() {
        let slots = limits(4, 2, &["10.0.0.1"]);
        let a1 = slots.take(ip("192.0.2.1")).unwrap();
        let _a2 = slots.take(ip("192.0.2.1")).unwrap();
        assert_eq!(slots.take(ip("192.0.2.1")).unwrap_err(), Full::Address);
        assert_eq!(slots.take(ip("::ffff:192.0.2.1")).unwrap_err(), Full::Address, "the same client");
        let _p1 = slots.take(ip("10.0.0.1")).unwrap();
        let _p2 = slots.take(ip("10.0.0.1")).unwrap();
        assert_eq!(slots.take(ip("192.0.2.9")).unwrap_err(), Full::Total, "a trusted proxy counts in all");
        drop(a1);
        let _a3 = slots.take(ip("192.0.2.1")).expect("a place given back");
        assert_eq!(slots.held.lock().unwrap().1.get(&ip("192.0.2.9")), None, "refusals keep nothing");
    }

    #[test]
    fn the_cap_leaves_room_under_the_descriptor_limit() {
        assert_eq!(connection_cap(10_000, Some(20_000)), 10_000);
        assert_eq!(connection_cap(10_000, Some(1024)), 1024 - FD_RESERVE as usize);
        assert_eq!(connection_cap(10_000, Some(100)), 1, "never none");
        assert_eq!(connection_cap(10_000, None), 10_000);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_due_at_the_header_timeout_then_only_when_idle() {
        let slots = limits(4, 4, &[]);
        let activity = Arc::new(Activity { accepted: Instant::now(), state: Mutex::new((0, None)) });
        let l = &slots.limits;
        assert_eq!(activity.deadline(l), Some(activity.accepted + l.first_request), "no request yet");
        let busy = activity.busy();
        assert_eq!(activity.deadline(l), None, "a request in flight");
        tokio::time::advance(Duration::from_secs(600)).await;
        drop(busy);
        assert_eq!(activity.deadline(l), Some(Instant::now() + l.idle), "idle from the end of the last");
    }
}
