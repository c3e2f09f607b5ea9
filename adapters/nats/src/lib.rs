//! NATS JetStream for every service.
//!
//! # Layout
//! - [`streams`] — the one table of streams (one per publishing context) and their
//!   creation, so any service can make sure a stream it touches exists.
//! - [`envelope`] — event metadata <-> NATS headers.
//! - [`relay`] — publishes the outbox in commit order, pipelined, with de-duplication ids.
//! - [`consumer`] — durable pull consumers with explicit ack after commit, bounded
//!   redelivery with backoff, and a dead-letter stream for poison messages.
//! - [`kv`] — key-value buckets that work on nats-server 2.9.

pub mod consumer;
pub mod envelope;
pub mod kv;
pub mod relay;
pub mod streams;

use std::time::Duration;

pub use async_nats;

/// Settings shared by every service that talks to NATS.
#[derive(Debug, Clone, clap::Args)]
pub struct NatsSettings {
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
}

/// Connects in the background: a service starts (and reports NOT_SERVING) even while
/// NATS is down, and reconnects for ever.
///
/// # Errors
/// When the URL is malformed.
pub async fn connect(settings: &NatsSettings, name: &str) -> Result<async_nats::Client, async_nats::ConnectError> {
    async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2))
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => tracing::info!("NATS connected"),
                async_nats::Event::Disconnected => tracing::warn!("NATS disconnected"),
                other => tracing::debug!(%other, "NATS event"),
            }
        })
        .connect(&settings.url)
        .await
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
/// It can be stopped and started again on the same port and data.
pub mod testing {
    use std::net::TcpListener;
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    pub struct NatsServer {
        pub port: u16,
        dir: tempfile::TempDir,
        child: Option<Child>,
    }

    /// A port free right now on loopback.
    pub fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
    }

    fn binary() -> PathBuf {
        std::env::var_os("NATS_SERVER_BIN").map_or_else(|| PathBuf::from("nats-server"), PathBuf::from)
    }

    impl NatsServer {
        /// # Panics
        /// When nats-server is not installed or does not come up.
        pub fn start() -> Self {
            let mut s = Self { port: free_port(), dir: tempfile::tempdir().expect("temp dir"), child: None };
            s.resume();
            s
        }

        pub fn url(&self) -> String {
            format!("nats://127.0.0.1:{}", self.port)
        }

        pub fn store_dir(&self) -> PathBuf {
            self.dir.path().to_path_buf()
        }

        /// Starts the server again (same port, same JetStream data).
        ///
        /// # Panics
        /// When it does not come up within 10 s.
        pub fn resume(&mut self) {
            assert!(self.child.is_none(), "already running");
            let child = Command::new(binary())
                .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js", "-sd"])
                .arg(self.dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("nats-server must be installed (apt-get install nats-server)");
            self.child = Some(child);
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
                assert!(Instant::now() < deadline, "nats-server did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
        }

        /// Stops the server (SIGKILL: the harshest outage).
        pub fn stop(&mut self) {
            if let Some(mut c) = self.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    impl Drop for NatsServer {
        fn drop(&mut self) {
            self.stop();
        }
    }
}
