//! Upstream endpoints per service and their health. Each configured URL may stand for
//! several endpoints: its host name is resolved again and again (a Kubernetes headless
//! Service resolves to the addresses of its ready pods), and every address becomes an
//! endpoint with its own connection. Each endpoint is checked with the gRPC health
//! protocol for its service name; requests go round-robin to endpoints that are SERVING,
//! so a replica that starts draining (NOT_SERVING) stops getting new requests before it
//! stops taking them. When none is known healthy, the unchecked ones are tried, then all.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint as TonicEndpoint};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use contracts::services::Api;

/// Where the public services are (flags or environment): one setting per API of the role
/// table, its address variable, each a comma-separated list of URLs, e.g.
/// `MISSION_URL=http://mission-headless:8080` or
/// `MISSION_URL=http://127.0.0.1:7001,http://127.0.0.1:7002` (flag: `--<role>`).
#[derive(Debug, Clone, clap::Args)]
pub struct UpstreamSettings {
    #[command(flatten)]
    pub urls: ApiUrls,
    /// Milliseconds between health checks of each endpoint.
    #[arg(long, env = "UPSTREAM_HEALTH_INTERVAL_MS", default_value_t = 250)]
    pub health_interval_ms: u64,
    /// Milliseconds between resolutions of the upstream host names.
    #[arg(long, env = "UPSTREAM_RESOLVE_INTERVAL_MS", default_value_t = 5000)]
    pub resolve_interval_ms: u64,
    /// Connect timeout to an endpoint, in milliseconds.
    #[arg(long, env = "UPSTREAM_CONNECT_TIMEOUT_MS", default_value_t = 1000)]
    pub connect_timeout_ms: u64,
}

/// The URLs of every API, by its service name: the flags `--<role>` and their variables
/// (`MISSION_URL`, ...), one per API of the role table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiUrls(HashMap<&'static str, Vec<String>>);

impl ApiUrls {
    /// The APIs with the role serving them (its name is the flag).
    fn apis() -> impl Iterator<Item = (&'static str, &'static Api)> {
        contracts::roles::ALL.iter().filter_map(|r| r.api.as_ref().map(|api| (r.name, api)))
    }

    /// The URLs of the API named `service`.
    pub fn of(&self, service: &str) -> &[String] {
        self.0.get(service).map_or(&[], Vec::as_slice)
    }
}

impl<const N: usize> From<[(&'static str, Vec<String>); N]> for ApiUrls {
    fn from(urls: [(&'static str, Vec<String>); N]) -> Self {
        Self(urls.into_iter().collect())
    }
}

impl clap::FromArgMatches for ApiUrls {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut urls = Self::default();
        urls.update_from_arg_matches(matches)?;
        Ok(urls)
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        for (role, api) in Self::apis() {
            if let Some(urls) = matches.get_many::<String>(role) {
                self.0.insert(api.name, urls.cloned().collect());
            }
        }
        Ok(())
    }
}

impl clap::Args for ApiUrls {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        Self::apis().fold(cmd, |cmd, (role, api)| {
            cmd.arg(
                clap::Arg::new(role)
                    .long(role)
                    .env(api.url_env)
                    .value_name("URL,...")
                    .value_delimiter(',')
                    .action(clap::ArgAction::Append)
                    .value_parser(clap::value_parser!(String))
                    .help(format!("Where {} is served", api.name)),
            )
        })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
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

/// A configured URL: scheme and port, and the host to resolve.
#[derive(Debug, Clone)]
struct Target {
    scheme: String,
    host: String,
    port: u16,
}

impl Target {
    fn parse(var: &str, url: &str) -> Result<Self, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("{var}: {url}: {e}"))?;
        let scheme = uri.scheme_str().unwrap_or("http").to_owned();
        let host = uri.host().ok_or_else(|| format!("{var}: {url}: no host"))?.trim_matches(['[', ']']).to_owned();
        let port = uri.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
        Ok(Self { scheme, host, port })
    }

    fn url(&self, addr: SocketAddr) -> String {
        format!("{}://{addr}", self.scheme)
    }
}

pub struct Upstream {
    /// The gRPC service name, also the health-check name.
    pub service: &'static str,
    targets: Vec<Target>,
    endpoints: RwLock<Vec<Arc<Endpoint>>>,
    next: AtomicUsize,
}

impl Upstream {
    /// The next endpoint to use: round-robin over the healthy, else over the unchecked,
    /// else over all of them ("panic routing", as Envoy does): when no endpoint is known
    /// healthy, a health check that is a moment behind must not fail calls that would work.
    pub fn pick(&self) -> Option<Arc<Endpoint>> {
        let endpoints = self.endpoints.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = endpoints.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for wanted in [HEALTHY, UNKNOWN, UNHEALTHY] {
            for i in 0..n {
                let e = &endpoints[(start + i) % n];
                if e.state.load(Ordering::Relaxed) == wanted {
                    return Some(e.clone());
                }
            }
        }
        None
    }

    pub fn endpoints(&self) -> Vec<Arc<Endpoint>> {
        self.endpoints.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

pub struct Upstreams {
    by_service: HashMap<&'static str, Arc<Upstream>>,
    health_interval: Duration,
    resolve_interval: Duration,
    connect_timeout: Duration,
}

impl Upstreams {
    /// # Errors
    /// A message naming the variable with a malformed URL.
    pub fn from_settings(s: &UpstreamSettings) -> Result<Self, String> {
        let mut by_service = HashMap::new();
        for api in contracts::services::APIS {
            let (service, var) = (api.name, api.url_env);
            let targets = s
                .urls
                .of(service)
                .iter()
                .map(|u| u.trim())
                .filter(|u| !u.is_empty())
                .map(|u| Target::parse(var, u))
                .collect::<Result<Vec<_>, _>>()?;
            if targets.is_empty() {
                tracing::warn!(service, "{var} is not set: calls to it will fail with UNAVAILABLE");
            }
            let upstream = Upstream { service, targets, endpoints: RwLock::default(), next: AtomicUsize::new(0) };
            by_service.insert(service, Arc::new(upstream));
        }
        Ok(Self {
            by_service,
            health_interval: Duration::from_millis(s.health_interval_ms.max(10)),
            resolve_interval: Duration::from_millis(s.resolve_interval_ms.max(100)),
            connect_timeout: Duration::from_millis(s.connect_timeout_ms.max(10)),
        })
    }

    pub fn get(&self, service: &str) -> Option<&Upstream> {
        // A service served beside an API (the contracts say which) goes to its endpoints.
        let service = contracts::services::route(service).map_or(service, |api| api.name);
        self.by_service.get(service).map(AsRef::as_ref)
    }

    /// Resolves the upstreams' hosts once, then keeps resolving them and checking every
    /// endpoint's health until `stop`.
    pub async fn watch_health(&self, stop: CancellationToken) {
        let (health, resolve, connect) = (self.health_interval, self.resolve_interval, self.connect_timeout);
        for upstream in self.by_service.values() {
            resolve_once(upstream, health, connect, &stop).await;
        }
        for upstream in self.by_service.values() {
            let (upstream, stop) = (upstream.clone(), stop.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = tokio::time::sleep(resolve) => {}
                        () = stop.cancelled() => return,
                    }
                    resolve_once(&upstream, health, connect, &stop).await;
                }
            });
        }
    }
}

/// Brings the endpoint list in line with what the hosts resolve to now. A host that does
/// not resolve keeps its endpoints (DNS trouble is not a reason to stop routing).
async fn resolve_once(upstream: &Arc<Upstream>, health: Duration, connect: Duration, stop: &CancellationToken) {
    let mut wanted: Vec<String> = Vec::new();
    let mut failed = false;
    for t in &upstream.targets {
        match tokio::net::lookup_host((t.host.as_str(), t.port)).await {
            Ok(addrs) => wanted.extend(addrs.map(|a| t.url(a))),
            Err(e) => {
                failed = true;
                tracing::warn!(service = upstream.service, host = t.host, error = %e, "cannot resolve upstream");
            }
        }
    }
    wanted.sort();
    wanted.dedup();
    let mut endpoints = upstream.endpoints.write().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !failed {
        endpoints.retain(|e| {
            let keep = wanted.contains(&e.url);
            if !keep {
                tracing::info!(service = upstream.service, url = e.url, "upstream endpoint gone");
            }
            keep
        });
    }
    for url in wanted {
        if endpoints.iter().any(|e| e.url == url) {
            continue;
        }
        let Ok(endpoint) = TonicEndpoint::from_shared(url.clone()) else { continue };
        let channel = endpoint.connect_timeout(connect).tcp_nodelay(true).connect_lazy();
        let endpoint = Arc::new(Endpoint { url, channel, state: AtomicU8::new(UNKNOWN) });
        tracing::info!(service = upstream.service, url = endpoint.url, "upstream endpoint found");
        tokio::spawn(check_health(Arc::downgrade(&endpoint), upstream.service, health, stop.clone()));
        endpoints.push(endpoint);
    }
}

/// Checks one endpoint until it is dropped from the list or `stop`.
async fn check_health(
    endpoint: std::sync::Weak<Endpoint>,
    service: &'static str,
    interval: Duration,
    stop: CancellationToken,
) {
    loop {
        let Some(e) = endpoint.upgrade() else { return };
        let mut client = HealthClient::new(e.channel.clone());
        let check = client.check(HealthCheckRequest { service: service.to_owned() });
        let serving = matches!(
            tokio::time::timeout(Duration::from_secs(1), check).await,
            Ok(Ok(r)) if r.get_ref().status == ServingStatus::Serving as i32
        );
        let now = if serving { HEALTHY } else { UNHEALTHY };
        if e.state.swap(now, Ordering::Relaxed) != now {
            tracing::info!(service, url = e.url, healthy = serving, "upstream health changed");
        }
        drop((client, e));
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = stop.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_their_scheme_and_port_and_default_the_port() {
        let t = Target::parse("X_URL", "http://mission-headless:8080").unwrap();
        assert_eq!((t.scheme.as_str(), t.host.as_str(), t.port), ("http", "mission-headless", 8080));
        assert_eq!(Target::parse("X_URL", "http://a").unwrap().port, 80);
        assert_eq!(Target::parse("X_URL", "http://[::1]:9").unwrap().host, "::1");
        assert!(Target::parse("X_URL", "not a url").unwrap_err().starts_with("X_URL"));
        assert_eq!(t.url("10.0.0.7:8080".parse().unwrap()), "http://10.0.0.7:8080");
    }

    #[test]
    fn every_api_of_the_contracts_is_routed_from_its_own_variable() {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Args {
            #[command(flatten)]
            upstreams: UpstreamSettings,
        }
        // Each variable's flag (`MISSION_URL` is `--mission`) gives its API a distinct URL.
        let mut argv = vec!["gateway".to_owned()];
        for (i, api) in contracts::services::APIS.iter().enumerate() {
            let role = contracts::services::role_of(api.name).expect("a role serves it").name;
            argv.push(format!("--{role}=http://10.0.0.{i}:1"));
        }
        let settings = Args::try_parse_from(argv).expect("a flag per API").upstreams;
        let ups = Upstreams::from_settings(&settings).unwrap();
        for (i, api) in contracts::services::APIS.iter().enumerate() {
            let up = ups.get(api.name).unwrap_or_else(|| panic!("{} is not routed", api.name));
            assert_eq!(up.targets.len(), 1, "{}", api.name);
            assert_eq!(up.targets[0].host, format!("10.0.0.{i}"), "{} from {}", api.name, api.url_env);
        }
    }

    #[tokio::test]
    async fn a_host_resolving_to_several_addresses_becomes_several_endpoints() {
        let mission = contracts::services::MISSION.name;
        let settings = UpstreamSettings {
            urls: ApiUrls::from([(mission, vec!["http://localhost:1".into(), "http://127.0.0.1:2".into()])]),
            health_interval_ms: 50,
            resolve_interval_ms: 100,
            connect_timeout_ms: 50,
        };
        let ups = Upstreams::from_settings(&settings).unwrap();
        let stop = CancellationToken::new();
        let mission = ups.by_service[mission].clone();
        resolve_once(&mission, Duration::from_millis(50), Duration::from_millis(50), &stop).await;
        let urls: Vec<_> = mission.endpoints().iter().map(|e| e.url.clone()).collect();
        assert!(urls.contains(&"http://127.0.0.1:1".to_owned()), "{urls:?}");
        assert!(urls.contains(&"http://127.0.0.1:2".to_owned()), "{urls:?}");
        // nothing listens there: once checked both are unhealthy, and still tried
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(mission.endpoints().iter().all(|e| !e.is_healthy()));
        assert!(mission.pick().is_some(), "panic routing: all unhealthy, all tried");
        stop.cancel();
    }
}
