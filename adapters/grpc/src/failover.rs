//! A service called at several addresses (`AUTH_URL=http://auth-1:8080,http://auth-2:8080`,
//! the replicas `gamectl up --replicas` runs): one lazy channel per address, the calls
//! going to the one that last answered, moving on to the next when it cannot be reached.
//! Only a call that never reached a server (connection refused, connect timed out) is
//! sent again, so a call that may have had an effect is never repeated.
//!
//! The gateway balances over many replicas with health checks (`services/gateway`);
//! this is the small client-side part for a service calling another.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

/// The channels to one service, in the order its addresses were given.
#[derive(Debug)]
pub struct Failover {
    channels: Vec<(String, Channel)>,
    /// The one to try first: the last that was reached.
    preferred: AtomicUsize,
}

impl Failover {
    /// Lazy channels (connected at the first call) to every URL of `list`, a
    /// comma-separated list, each with `configure` applied.
    ///
    /// # Errors
    /// When the list holds no URL or a malformed one; the message names `var`.
    pub fn from_list(var: &str, list: &str, configure: impl Fn(Endpoint) -> Endpoint) -> Result<Self, String> {
        let channels = list
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|url| {
                Endpoint::from_shared(url.to_owned())
                    .map(|e| (url.to_owned(), configure(e).connect_lazy()))
                    .map_err(|e| format!("{var}: {url}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if channels.is_empty() {
            return Err(format!("{var}: required (one URL, or several comma-separated)"));
        }
        Ok(Self { channels, preferred: AtomicUsize::new(0) })
    }

    /// How many addresses there are.
    pub fn len(&self) -> usize {
        self.channels.len()
    }

    /// Never true: [`Self::from_list`] refuses an empty list.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    /// Every channel once, the preferred first: `(index, url, channel)`.
    pub fn in_order(&self) -> impl Iterator<Item = (usize, &str, Channel)> {
        let n = self.channels.len();
        let first = self.preferred.load(Ordering::Relaxed) % n;
        (0..n).map(move |k| {
            let i = (first + k) % n;
            (i, self.channels[i].0.as_str(), self.channels[i].1.clone())
        })
    }

    /// The channel at `index` answered: try it first from now on.
    pub fn reached(&self, index: usize) {
        self.preferred.store(index, Ordering::Relaxed);
    }

    /// Calls `call` on the preferred channel, then on the next while the previous could
    /// not be reached ([`never_reached`]); the last answer is returned.
    ///
    /// # Errors
    /// The last channel's status.
    pub async fn call<T, F, Fut>(&self, mut call: F) -> Result<T, tonic::Status>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        let mut last = None;
        for (i, url, channel) in self.in_order() {
            match call(channel).await {
                Err(s) if never_reached(&s) => {
                    tracing::debug!(url, error = %s, "not reachable; trying the next address");
                    last = Some(s);
                }
                answer => {
                    self.reached(i);
                    return answer;
                }
            }
        }
        Err(last.unwrap_or_else(|| tonic::Status::unavailable("no address to call")))
    }
}

/// Whether a call failed before reaching any server: nothing was sent, so it may be
/// sent elsewhere.
pub fn never_reached(status: &tonic::Status) -> bool {
    use std::io::ErrorKind;
    if status.code() != tonic::Code::Unavailable {
        return false;
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(io.kind(), ErrorKind::ConnectionRefused | ErrorKind::TimedOut | ErrorKind::AddrNotAvailable)
        {
            return true;
        }
        cause = e.source();
    }
    false
}

/// A connect timeout for calls between services on one network.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_list_gives_one_channel_per_url_and_names_the_variable_when_wrong() {
        let f = Failover::from_list("AUTH_URL", " http://127.0.0.1:1 , http://127.0.0.1:2,", |e| e).unwrap();
        let urls: Vec<&str> = f.in_order().map(|(_, u, _)| u).collect();
        assert_eq!(urls, ["http://127.0.0.1:1", "http://127.0.0.1:2"]);
        f.reached(1);
        let urls: Vec<&str> = f.in_order().map(|(_, u, _)| u).collect();
        assert_eq!(urls, ["http://127.0.0.1:2", "http://127.0.0.1:1"]);
        assert!(Failover::from_list("AUTH_URL", " , ", |e| e).unwrap_err().starts_with("AUTH_URL: required"));
        assert!(Failover::from_list("GIFT_URL", "http://a b", |e| e).unwrap_err().starts_with("GIFT_URL: http://a b"));
    }

    #[tokio::test]
    async fn a_call_moves_on_from_an_address_nobody_listens_on_and_remembers_the_one_that_answered() {
        use tonic_health::pb::HealthCheckRequest;
        use tonic_health::pb::health_client::HealthClient;
        // A real server on the second address; nothing on the first.
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let live = listener.local_addr().unwrap();
        let (_reporter, health) = tonic_health::server::health_reporter();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(health)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        let list = format!("http://{dead},http://{live}");
        let f = Failover::from_list("X_URL", &list, |e| e.connect_timeout(CONNECT_TIMEOUT)).unwrap();
        let check = |c: Channel| async move {
            HealthClient::new(c).check(HealthCheckRequest { service: String::new() }).await.map(|r| r.into_inner())
        };
        assert!(f.call(check).await.is_ok(), "the live address answers");
        assert_eq!(f.in_order().next().map(|(_, u, _)| u.to_owned()), Some(format!("http://{live}")));
        // The dead one alone: the error says it was never reached.
        let only_dead = Failover::from_list("X_URL", &format!("http://{dead}"), |e| e).unwrap();
        let e = only_dead.call(check).await.unwrap_err();
        assert!(never_reached(&e), "{e:?}");
        // An answer of the server, even an error, is not moved on from.
        assert!(!never_reached(&tonic::Status::unavailable("draining")));
    }
}
