//! The settings every server takes (each a flag with an environment variable).

use std::net::SocketAddr;
use std::time::Duration;

use crate::budget::BufferLimits;

const MIB: usize = 1024 * 1024;

/// Flags shared by every service binary (each also reads its environment variable).
#[derive(Debug, Clone, clap::Args)]
pub struct ServerSettings {
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Seconds between reporting NOT_SERVING and refusing new work, so that load
    /// balancers stop sending requests first.
    #[arg(long, env = "DRAIN_SECONDS", default_value_t = 0.0)]
    pub drain_seconds: f64,
    /// Upper bound, in seconds, on finishing in-flight requests and event handlers.
    #[arg(long, env = "SHUTDOWN_GRACE_SECONDS", default_value_t = 10.0)]
    pub grace_seconds: f64,
    /// Seconds between readiness checks of the database and NATS.
    #[arg(long, env = "READINESS_INTERVAL_SECONDS", default_value_t = 1.0)]
    pub readiness_interval_seconds: f64,
    /// Largest request message accepted, in bytes (larger: RESOURCE_EXHAUSTED); at most
    /// 4 MiB, tonic's own limit.
    #[arg(long, env = "MAX_REQUEST_BYTES", default_value_t = crate::guard::DEFAULT_MAX_REQUEST_BYTES,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::guard::DEFAULT_MAX_REQUEST_BYTES)))]
    pub max_request_bytes: u32,
    /// Seconds a client has to send a whole request head (HTTP/1 headers, or the HTTP/2
    /// preface and its first request's headers) once connected; then the connection is
    /// closed. The metrics listener's header timeout too.
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECONDS", default_value_t = 10.0)]
    pub header_read_timeout_seconds: f64,
    /// Seconds a connection may stay open without a request in flight.
    #[arg(long, env = "IDLE_TIMEOUT_SECONDS", default_value_t = 300.0)]
    pub idle_timeout_seconds: f64,
    /// Seconds between HTTP/2 pings the server sends on each connection...
    #[arg(long, env = "HTTP2_KEEPALIVE_INTERVAL_SECONDS", default_value_t = 30.0)]
    pub http2_keepalive_interval_seconds: f64,
    /// ...and the seconds an answer may take before the peer is taken for dead and its
    /// connection closed.
    #[arg(long, env = "HTTP2_KEEPALIVE_TIMEOUT_SECONDS", default_value_t = 20.0)]
    pub http2_keepalive_timeout_seconds: f64,
    /// Connections held at once; more are closed as they come. Lowered at start to the
    /// open-files limit (raised to its hard limit) less 256 for the server's own use.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Connections held at once from one client address (its /64 for IPv6); a trusted
    /// proxy is exempt.
    #[arg(long, env = "MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 512,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_address: u32,
    /// Seconds a request message has to arrive whole once its head is in; a body that
    /// stalls longer is cut (`DEADLINE_EXCEEDED`).
    #[arg(long, env = "BODY_READ_TIMEOUT_SECONDS", default_value_t = 10.0)]
    pub body_read_timeout_seconds: f64,
    /// Request bytes held in memory at once for one connection (a message's announced
    /// length counts from its first bytes); more is refused with `RESOURCE_EXHAUSTED`.
    #[arg(long, env = "MAX_BUFFERED_BYTES_PER_CONNECTION", default_value_t = 8 * MIB)]
    pub max_buffered_bytes_per_connection: usize,
    /// Request bytes held in memory at once for one client address (its /64 for IPv6).
    #[arg(long, env = "MAX_BUFFERED_BYTES_PER_ADDRESS", default_value_t = 16 * MIB)]
    pub max_buffered_bytes_per_address: usize,
    /// Request bytes held in memory at once in all; more is `UNAVAILABLE`.
    #[arg(long, env = "MAX_BUFFERED_BYTES", default_value_t = 32 * MIB)]
    pub max_buffered_bytes: usize,
    /// Admin address serving Prometheus metrics at `GET /metrics` (port 0 picks one,
    /// printed on stdout). Unset: no endpoint, and nothing is recorded.
    #[arg(long, env = "METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Logs on stderr as text for people, or as JSON lines for a log pipeline; the level
    /// comes from `RUST_LOG` (default `info`).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = crate::telemetry::LogFormat::Text, ignore_case = true)]
    pub log_format: crate::telemetry::LogFormat,
}

impl ServerSettings {
    pub(super) fn secs(v: f64) -> Duration {
        Duration::try_from_secs_f64(v.max(0.0)).unwrap_or(Duration::ZERO)
    }

    /// The bounds on each connection and request, or the setting at fault and why.
    ///
    /// # Errors
    /// The setting's name and what is wrong with it.
    pub fn bounds(&self) -> Result<Bounds, (&'static str, String)> {
        let message = self.max_request_bytes as usize;
        let holds_a_message = |name: &'static str, bytes: usize| {
            if bytes >= message {
                Ok(bytes)
            } else {
                Err((name, format!("must hold one message of MAX_REQUEST_BYTES ({message} bytes)")))
            }
        };
        Ok(Bounds {
            header_read: seconds("HEADER_READ_TIMEOUT_SECONDS", self.header_read_timeout_seconds)?,
            body_read: seconds("BODY_READ_TIMEOUT_SECONDS", self.body_read_timeout_seconds)?,
            idle: seconds("IDLE_TIMEOUT_SECONDS", self.idle_timeout_seconds)?,
            keepalive_interval: seconds("HTTP2_KEEPALIVE_INTERVAL_SECONDS", self.http2_keepalive_interval_seconds)?,
            keepalive_timeout: seconds("HTTP2_KEEPALIVE_TIMEOUT_SECONDS", self.http2_keepalive_timeout_seconds)?,
            max_connections: self.max_connections as usize,
            max_connections_per_address: self.max_connections_per_address as usize,
            buffers: BufferLimits {
                per_connection: holds_a_message(
                    "MAX_BUFFERED_BYTES_PER_CONNECTION",
                    self.max_buffered_bytes_per_connection,
                )?,
                per_address: holds_a_message("MAX_BUFFERED_BYTES_PER_ADDRESS", self.max_buffered_bytes_per_address)?,
                total: holds_a_message("MAX_BUFFERED_BYTES", self.max_buffered_bytes)?,
            },
        })
    }
}

/// What a server allows each connection and request, from its settings.
#[derive(Debug, Clone)]
pub struct Bounds {
    /// Until a new connection's first request head is in, and the metrics listener's
    /// header timeout.
    pub header_read: Duration,
    /// Until a request's message is in whole.
    pub body_read: Duration,
    /// A connection without a request in flight.
    pub idle: Duration,
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    /// Request bytes held at once.
    pub buffers: BufferLimits,
}

/// A positive, finite number of seconds.
fn seconds(name: &'static str, v: f64) -> Result<Duration, (&'static str, String)> {
    Duration::try_from_secs_f64(v)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or((name, "must be a number of seconds above 0".to_owned()))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        server: ServerSettings,
    }

    fn refused(args: &[&str]) -> &'static str {
        let flags = Flags::try_parse_from([&["server"], args].concat()).expect("parses");
        flags.server.bounds().expect_err("refused").0
    }

    #[test]
    fn a_bad_bound_is_refused_by_its_name() {
        assert!(Flags::try_parse_from(["server"]).unwrap().server.bounds().is_ok(), "the defaults are good");
        for bad in ["0", "-1", "NaN", "inf"] {
            let flag = format!("--header-read-timeout-seconds={bad}");
            assert_eq!(refused(&[&flag]), "HEADER_READ_TIMEOUT_SECONDS", "{bad}");
            for (flag, name) in [
                ("body-read-timeout-seconds", "BODY_READ_TIMEOUT_SECONDS"),
                ("idle-timeout-seconds", "IDLE_TIMEOUT_SECONDS"),
                ("http2-keepalive-interval-seconds", "HTTP2_KEEPALIVE_INTERVAL_SECONDS"),
                ("http2-keepalive-timeout-seconds", "HTTP2_KEEPALIVE_TIMEOUT_SECONDS"),
            ] {
                assert_eq!(refused(&[&format!("--{flag}={bad}")]), name, "{bad}");
            }
        }
        // Each buffer must hold the largest message, or such a message could never pass.
        assert_eq!(refused(&["--max-buffered-bytes-per-connection=4194303"]), "MAX_BUFFERED_BYTES_PER_CONNECTION");
        assert_eq!(refused(&["--max-buffered-bytes-per-address=1000"]), "MAX_BUFFERED_BYTES_PER_ADDRESS");
        assert_eq!(refused(&["--max-buffered-bytes=1000", "--max-request-bytes=1001"]), "MAX_BUFFERED_BYTES");
        let small = ["server", "--max-request-bytes=1000", "--max-buffered-bytes=1000"];
        assert!(Flags::try_parse_from(small).unwrap().server.bounds().is_ok(), "a smaller message, a smaller buffer");
        for zero in ["--max-connections=0", "--max-connections-per-address=0"] {
            assert!(Flags::try_parse_from(["server", zero]).is_err(), "{zero}");
        }
    }
}
