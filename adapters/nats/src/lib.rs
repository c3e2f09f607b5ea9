//! NATS JetStream for every service.
//!
//! # Layout
//! - [`streams`] — the one table of streams (one per publishing context) and their
//!   creation, so any service can make sure a stream it touches exists.
//! - [`envelope`] — event metadata <-> NATS headers.
//! - [`relay`] — publishes the outbox in commit order, pipelined, with de-duplication ids.
//! - [`consumer`] — durable pull consumers with explicit ack after commit, bounded
//!   redelivery with backoff, and a dead-letter stream for poison messages.
//! - [`kv`] — key-value buckets, their backing streams created here.
//! - [`replay`] — streams read from their first event by a projection being rebuilt.
//! - [`roles`] — each service's stream, consumers and buckets: the one table.
//! - [`access`] — each role's permissions, the server configuration and the NKEY
//!   credentials that enforce them.
//! - [`server_version`] — the nats-server release pinned and the oldest accepted
//!   (`config/nats-version`), checked before a server is started.

pub mod access;
pub mod consumer;
pub mod dlq;
pub mod envelope;
pub mod kv;
pub mod relay;
pub mod replay;
pub mod roles;
pub mod server_version;
pub mod streams;
pub mod watch;

use std::path::PathBuf;
use std::time::Duration;

pub use async_nats;

/// Settings shared by every service that talks to NATS.
#[derive(Debug, Clone, clap::Args)]
pub struct NatsSettings {
    /// The server, or the servers of a cluster separated by commas
    /// (`nats://a:4222,nats://b:4222,nats://c:4222`): the client connects to one of them
    /// and moves to another when it is lost.
    #[arg(long = "nats-url", env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub url: String,
    /// Replicas of the streams this service creates (3 on a clustered JetStream).
    #[arg(long = "stream-replicas", env = "STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,
    /// Deliveries of an event before it goes to the dead-letter stream.
    #[arg(long = "max-deliver", env = "CONSUMER_MAX_DELIVER", default_value_t = 10)]
    pub max_deliver: i64,
    /// Seconds a delivered event may stay unacknowledged before it is redelivered.
    #[arg(long = "ack-wait-seconds", env = "CONSUMER_ACK_WAIT_SECONDS", default_value_t = 30)]
    pub ack_wait_seconds: u64,
    /// The file holding this service's NKEY seed (`SU...`), its credentials on the bus.
    /// Without it the service connects anonymously (a server without authentication).
    #[arg(long = "nats-nkey-seed-file", env = "NATS_NKEY_SEED_FILE")]
    pub nkey_seed_file: Option<PathBuf>,
    /// Hours an event stays in the stream this service publishes to. A consumer down for
    /// longer loses the events older than this (alert on a consumer's oldest pending
    /// event well before it).
    #[arg(long = "stream-max-age-hours", env = "STREAM_MAX_AGE_HOURS", default_value_t = 168,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub stream_max_age_hours: u64,
    /// Bytes the stream keeps at most; the oldest events go first beyond it.
    #[arg(long = "stream-max-bytes", env = "STREAM_MAX_BYTES", default_value_t = 1 << 30,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub stream_max_bytes: i64,
    /// Hours a dead-lettered event waits for a redrive before it is dropped.
    #[arg(long = "deadletter-max-age-hours", env = "DEADLETTER_MAX_AGE_HOURS", default_value_t = 168,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub deadletter_max_age_hours: u64,
    /// Bytes the dead-letter stream keeps at most.
    #[arg(long = "deadletter-max-bytes", env = "DEADLETTER_MAX_BYTES", default_value_t = 256 << 20,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub deadletter_max_bytes: i64,
}

impl NatsSettings {
    /// The limits of the stream a service publishes to.
    pub fn stream_limits(&self) -> streams::Limits {
        streams::Limits {
            max_age: Duration::from_secs(self.stream_max_age_hours.saturating_mul(3600)),
            max_bytes: self.stream_max_bytes,
        }
    }

    /// The limits of the dead-letter stream.
    pub fn deadletter_limits(&self) -> streams::Limits {
        streams::Limits {
            max_age: Duration::from_secs(self.deadletter_max_age_hours.saturating_mul(3600)),
            max_bytes: self.deadletter_max_bytes,
        }
    }

    /// How long a consumer must remember an event it handled (its inbox row) so that any
    /// later delivery of it is still a duplicate. A delivery only happens while the event
    /// is in its stream (at most `max_age` after it was published, and it was handled
    /// after that); a redrive happens while it is in the dead-letter stream (dead-lettered
    /// within `max_age`, kept `deadletter max_age`), and the redriven copy is delivered
    /// for another `max_age`; a margin covers the deliveries of the last attempt (ack
    /// wait plus the longest backoff, per delivery).
    pub fn inbox_horizon(&self) -> Duration {
        let stream = self.stream_limits().max_age;
        let attempts = u32::try_from(self.max_deliver.max(1)).unwrap_or(u32::MAX);
        let per_attempt = Duration::from_secs(self.ack_wait_seconds) + consumer::redelivery_delay(i64::MAX);
        stream * 2 + self.deadletter_limits().max_age + per_attempt.saturating_mul(attempts)
    }

    /// Settings for tests and tools: the defaults, at `url`.
    pub fn at(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            stream_replicas: 1,
            max_deliver: 10,
            ack_wait_seconds: 30,
            nkey_seed_file: None,
            stream_max_age_hours: 168,
            stream_max_bytes: 1 << 30,
            deadletter_max_age_hours: 168,
            deadletter_max_bytes: 256 << 20,
        }
    }
}

/// Why a connection to NATS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("NATS_NKEY_SEED_FILE {path}: {reason}")]
    Seed { path: PathBuf, reason: String },
    /// The server refused the credentials (or their absence).
    #[error("NATS_NKEY_SEED_FILE: the server refused this service's credentials ({0})")]
    Refused(async_nats::ConnectError),
    #[error("NATS_URL: {0}")]
    Url(#[from] async_nats::ConnectError),
}

/// How often a client PINGs its server; three unanswered and it reconnects elsewhere.
pub const PING_INTERVAL: Duration = Duration::from_secs(5);

/// Connects as `name`. When NATS answers at start, wrong credentials are an error (the
/// process stops, naming the setting); when it does not, the connection is made in the
/// background: a service starts (and reports NOT_SERVING) while NATS is down, and
/// reconnects for ever. It authenticates with its seed when it has one, and receives
/// replies under its role's own inbox prefix ([`roles::inbox_prefix`]), the only place
/// its permissions let it subscribe.
///
/// # Errors
/// When the seed file cannot be read or holds no user seed, the server refuses the
/// credentials, or the URL is malformed.
pub async fn connect(settings: &NatsSettings, name: &str) -> Result<async_nats::Client, ConnectError> {
    let seed = match &settings.nkey_seed_file {
        None => None,
        Some(path) => {
            let seed = std::fs::read_to_string(path)
                .map_err(|e| ConnectError::Seed { path: path.clone(), reason: e.to_string() })?;
            let seed = seed.trim().to_owned();
            access::user_key(&seed).map_err(|reason| ConnectError::Seed { path: path.clone(), reason })?;
            Some(seed)
        }
    };
    let options = || {
        let options = match &seed {
            Some(seed) => async_nats::ConnectOptions::with_nkey(seed.clone()),
            None => async_nats::ConnectOptions::new(),
        };
        options
            .name(name)
            .custom_inbox_prefix(roles::inbox_prefix(name))
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(2))
            // A server that stops answering with the socket still open (frozen, or cut off
            // by a partition) is left after three unanswered PINGs: ~15 s, not the
            // default's 3 min, so the client moves to another node of the cluster.
            .ping_interval(PING_INTERVAL)
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Connected => tracing::info!("NATS connected"),
                    async_nats::Event::Disconnected => tracing::warn!("NATS disconnected"),
                    // Every publish or subscription outside this role's permissions: the
                    // server drops those silently (a publish returns Ok, a JetStream call
                    // times out), and this error is the only trace.
                    async_nats::Event::ServerError(e) => tracing::error!(error = %e, "NATS refused"),
                    other => tracing::debug!(%other, "NATS event"),
                }
            })
    };
    let servers = server_list(&settings.url);
    match options().connect(servers.as_slice()).await {
        Ok(client) => Ok(client),
        Err(e) => match e.kind() {
            async_nats::ConnectErrorKind::AuthorizationViolation | async_nats::ConnectErrorKind::Authentication => {
                Err(ConnectError::Refused(e))
            }
            async_nats::ConnectErrorKind::ServerParse => Err(ConnectError::Url(e)),
            // Not reachable now: keep trying in the background.
            _ => Ok(options().retry_on_initial_connect().connect(servers.as_slice()).await?),
        },
    }
}

/// The servers of a `NATS_URL`: one, or a cluster's separated by commas (blanks around
/// them ignored).
pub fn server_list(url: &str) -> Vec<String> {
    url.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// Whether the connection to NATS is up.
pub fn connected(client: &async_nats::Client) -> bool {
    client.connection_state() == async_nats::connection::State::Connected
}

/// Whether NATS answers: connected, and a PING gets its PONG within `timeout` (a server
/// that is connected but wedged counts as down).
pub async fn responsive(client: &async_nats::Client, timeout: Duration) -> bool {
    connected(client) && matches!(tokio::time::timeout(timeout, client.flush()).await, Ok(Ok(())))
}

/// A private nats-server per test: own port, own store directory, killed on drop.
/// It can be stopped and started again on the same port and data. Started
/// [`secured`](testing::NatsServer::start_secured), it runs with the authorisation
/// `gamectl up` gives it: every role's credentials and permissions from [`access`].
/// For tests only: behind the feature `testing`.
#[cfg(feature = "testing")]
pub mod testing;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inbox_horizon_outlasts_every_delivery_and_redrive() {
        let s = NatsSettings::at("nats://x");
        let week = Duration::from_secs(7 * 24 * 3600);
        let h = s.inbox_horizon();
        // two stream ages (the event, then its redriven copy) and the dead-letter age ...
        assert!(h >= week * 3, "{h:?}");
        // ... plus every delivery of the last attempt: ack wait and the longest backoff
        assert_eq!(h - week * 3, Duration::from_secs(10 * (30 + 30)));
        let shorter = NatsSettings { stream_max_age_hours: 1, deadletter_max_age_hours: 1, ..s };
        assert_eq!(shorter.inbox_horizon(), Duration::from_secs(3 * 3600 + 600));
    }
}
