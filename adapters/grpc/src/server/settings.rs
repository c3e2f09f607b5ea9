//! The settings every server takes (each a flag with an environment variable).

use std::net::SocketAddr;
use std::time::Duration;

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
}
