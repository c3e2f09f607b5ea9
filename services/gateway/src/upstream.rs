//! Upstream endpoints per service and their health. Each endpoint is checked with the
//! gRPC health protocol for its service name; requests go round-robin to endpoints that
//! are SERVING, so a replica that starts draining (NOT_SERVING) stops getting new
//! requests before it stops taking them — the local equivalent of a Service over ready
//! pods. An endpoint not checked yet is used only when no endpoint is known healthy.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint as TonicEndpoint};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// Where the public services are (flags or environment); each a comma-separated list of
/// endpoints, e.g. `MISSION_URL=http://10.0.0.5:8080,http://10.0.0.6:8080`.
#[derive(Debug, Clone, clap::Args)]
pub struct UpstreamSettings {
    #[arg(long, env = "MISSION_URL", value_delimiter = ',')]
    pub mission: Vec<String>,
    #[arg(long, env = "REWARD_URL", value_delimiter = ',')]
    pub reward: Vec<String>,
    #[arg(long, env = "WALLET_URL", value_delimiter = ',')]
    pub wallet: Vec<String>,
    #[arg(long, env = "MYPAGE_URL", value_delimiter = ',')]
    pub mypage: Vec<String>,
    #[arg(long, env = "GIFT_URL", value_delimiter = ',')]
    pub gift: Vec<String>,
    #[arg(long, env = "NOTIFICATION_URL", value_delimiter = ',')]
    pub notification: Vec<String>,
    #[arg(long, env = "AUTH_URL", value_delimiter = ',')]
    pub auth: Vec<String>,
    /// Milliseconds between health checks of each endpoint.
    #[arg(long, env = "UPSTREAM_HEALTH_INTERVAL_MS", default_value_t = 250)]
    pub health_interval_ms: u64,
    /// Deadline of a proxied call, in seconds (streams excepted).
    #[arg(long, env = "UPSTREAM_CONNECT_TIMEOUT_MS", default_value_t = 1000)]
    pub connect_timeout_ms: u64,
}

const UNKNOWN: u8 = 0;
const HEALTHY: u8 = 1;
const UNHEALTHY: u8 = 2;

pub struct Endpoint {
    pub url: String,
    pub channel: Channel,
    state: AtomicU8,
}

impl Endpoint {
    pub fn is_healthy(&self) -> bool {
        self.state.load(Ordering::Relaxed) == HEALTHY
    }

    /// A call to it failed at the transport: avoid it until a check says otherwise.
    pub fn mark_unhealthy(&self) {
        self.state.store(UNHEALTHY, Ordering::Relaxed);
    }
}

pub struct Upstream {
    /// The gRPC service name, also the health-check name.
    pub service: &'static str,
    pub endpoints: Vec<Arc<Endpoint>>,
    next: AtomicUsize,
}

impl Upstream {
    /// The next endpoint to use: round-robin over the healthy, else over the unchecked.
    pub fn pick(&self) -> Option<Arc<Endpoint>> {
        let n = self.endpoints.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for wanted in [HEALTHY, UNKNOWN] {
            for i in 0..n {
                let e = &self.endpoints[(start + i) % n];
                if e.state.load(Ordering::Relaxed) == wanted {
                    return Some(e.clone());
                }
            }
        }
        None
    }
}

pub struct Upstreams {
    by_service: HashMap<&'static str, Upstream>,
    interval: Duration,
}

impl Upstreams {
    /// # Errors
    /// A message naming the variable with a malformed URL.
    pub fn from_settings(s: &UpstreamSettings) -> Result<Self, String> {
        let lists = [&s.mission, &s.reward, &s.wallet, &s.mypage, &s.gift, &s.notification, &s.auth];
        let mut by_service = HashMap::new();
        for ((service, var), urls) in crate::SERVICES.iter().zip(lists) {
            let mut endpoints = Vec::new();
            for url in urls.iter().map(|u| u.trim()).filter(|u| !u.is_empty()) {
                let channel = TonicEndpoint::from_shared(url.to_owned())
                    .map_err(|e| format!("{var}: {url}: {e}"))?
                    .connect_timeout(Duration::from_millis(s.connect_timeout_ms))
                    .tcp_nodelay(true)
                    .connect_lazy();
                endpoints.push(Arc::new(Endpoint { url: url.to_owned(), channel, state: AtomicU8::new(UNKNOWN) }));
            }
            if endpoints.is_empty() {
                tracing::warn!(service, "{var} is not set: calls to it will fail with UNAVAILABLE");
            }
            by_service.insert(*service, Upstream { service, endpoints, next: AtomicUsize::new(0) });
        }
        Ok(Self { by_service, interval: Duration::from_millis(s.health_interval_ms.max(10)) })
    }

    pub fn get(&self, service: &str) -> Option<&Upstream> {
        self.by_service.get(service)
    }

    /// Checks every endpoint's health until `stop`.
    pub fn watch_health(&self, stop: CancellationToken) {
        for upstream in self.by_service.values() {
            for endpoint in &upstream.endpoints {
                let (endpoint, service, interval, stop) =
                    (endpoint.clone(), upstream.service, self.interval, stop.clone());
                tokio::spawn(async move {
                    let mut health = HealthClient::new(endpoint.channel.clone());
                    loop {
                        let check = health.check(HealthCheckRequest { service: service.to_owned() });
                        let serving = matches!(
                            tokio::time::timeout(Duration::from_secs(1), check).await,
                            Ok(Ok(r)) if r.get_ref().status == ServingStatus::Serving as i32
                        );
                        let now = if serving { HEALTHY } else { UNHEALTHY };
                        let before = endpoint.state.swap(now, Ordering::Relaxed);
                        if before != now {
                            tracing::info!(service, url = endpoint.url, healthy = serving, "upstream health changed");
                        }
                        tokio::select! {
                            () = tokio::time::sleep(interval) => {}
                            () = stop.cancelled() => return,
                        }
                    }
                });
            }
        }
    }
}
