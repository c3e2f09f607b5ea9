//! The server bootstrap every service shares: bind, serve with health and reflection,
//! keep readiness in step with the service's dependencies, and on SIGTERM or Ctrl-C
//! drain and stop within a bounded time.

use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

mod admit;
mod conn;
pub mod connect;
mod health;
mod settings;
mod web;
pub use admit::Admission;
use admit::AdmitLayer;
pub use health::Health;
use health::{health_server, keep_readiness};
pub use settings::{Bounds, ServerSettings};
use tonic::body::Body;
pub use web::{Arrival, Web, WebLayer};

/// Answers whether the service's dependencies are usable right now.
pub type Probe = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// A service ready to run: its gRPC routes, the names it reports health for, the
/// background tasks (relay, consumers) that must stop with it.
pub struct Server {
    settings: ServerSettings,
    routes: Routes,
    names: Vec<&'static str>,
    probe: Probe,
    /// Cancelled when the service stops taking new work: background tasks watch it.
    pub stopping: CancellationToken,
    tasks: JoinSet<()>,
    auth: Option<crate::auth::AuthLayer>,
    /// Services listed by reflection, when not just `names` (the gateway lists everyone's).
    reflection: Option<Vec<&'static str>>,
    cors: Option<tower_http::cors::CorsLayer>,
    pages: Option<Pages>,
    admission: Option<Admission>,
    trusted: crate::peer::TrustedProxies,
    /// A second address and what it alone serves (see [`Self::with_internal_listener`]).
    internal_listener: Option<(SocketAddr, Routes)>,
    /// Services whose unary methods are also served as Connect JSON.
    connect_json: Option<Vec<&'static str>>,
}

/// Answers every plain HTTP GET and HEAD, before authentication: the gateway's web page
/// (its files are public). gRPC and grpc-web are POSTs and never reach it.
pub type Pages = Arc<dyn Fn(&http::Request<Body>) -> http::Response<Body> + Send + Sync>;

impl Server {
    pub fn new(settings: ServerSettings, routes: Routes, names: Vec<&'static str>, probe: Probe) -> Self {
        // Recording starts now, not when the endpoint is bound in `run`: the background
        // tasks spawned before it (the bus and backlog watchers) look once, at their
        // start, whether metrics are on, and one that looked first never reported.
        if settings.metrics_addr.is_some() {
            metrics_adapter::enable();
        }
        Self {
            settings,
            routes,
            names,
            probe,
            stopping: CancellationToken::new(),
            tasks: JoinSet::new(),
            auth: None,
            reflection: None,
            cors: None,
            pages: None,
            admission: None,
            trusted: crate::peer::TrustedProxies::none(),
            internal_listener: None,
            connect_json: None,
        }
    }

    /// Also serves the unary methods of the `routed` services as Connect JSON
    /// (`POST /<service>/<method>`, `content-type: application/json`), through the same
    /// authentication, limits, deadline and metrics as gRPC (see [`connect`]).
    #[must_use]
    pub fn with_connect_json(mut self, routed: Vec<&'static str>) -> Self {
        self.connect_json = Some(routed);
        self
    }

    /// Also listens on `addr`, serving `routes` (and health) there only: the auth
    /// service's internal port, which a NetworkPolicy opens to our own services while its
    /// public port is the gateway's alone. Its address is printed before the main one
    /// (`internal on ...`); it stops with the server.
    #[must_use]
    pub fn with_internal_listener(mut self, addr: SocketAddr, routes: Routes) -> Self {
        self.internal_listener = Some((addr, routes));
        self
    }

    /// Serves a web page: every GET and HEAD goes to `pages` instead of the routes.
    #[must_use]
    pub fn with_pages(mut self, pages: Pages) -> Self {
        self.pages = Some(pages);
        self
    }

    /// Decides on each request from its head, after authentication and before its body is
    /// read (the gateway's rate limits).
    #[must_use]
    pub fn with_admission(mut self, admission: Admission) -> Self {
        self.admission = Some(admission);
        self
    }

    /// Proxies (a load balancer) whose `x-forwarded-for` names the client: its requests
    /// are counted in that client's budget of request bytes, not the proxy's, and its
    /// connections (many clients' each) are not capped per address.
    #[must_use]
    pub fn with_trusted_proxies(mut self, trusted: crate::peer::TrustedProxies) -> Self {
        self.trusted = trusted;
        self
    }

    /// Lists `names` in server reflection instead of the services whose health we report.
    #[must_use]
    pub fn with_reflection(mut self, names: Vec<&'static str>) -> Self {
        self.reflection = Some(names);
        self
    }

    /// Answers browsers' CORS preflights (grpc-web from a page on another origin).
    #[must_use]
    pub fn with_cors(mut self, cors: tower_http::cors::CorsLayer) -> Self {
        self.cors = Some(cors);
        self
    }

    /// Requires a valid bearer token on every method except health, reflection and
    /// `public` (gRPC path prefixes); the verifier's keys are refreshed in the background.
    #[must_use]
    pub fn with_auth(
        mut self,
        verifier: std::sync::Arc<auth_adapter::Verifier>,
        refresh: Duration,
        public: &[&str],
    ) -> Self {
        if verifier.has_sources() {
            verifier.spawn_refresh(refresh);
        } else {
            tracing::warn!("no JWKS_URLS or JWKS_FILES: every protected call will be refused");
        }
        if !verifier.has_revocation_sources() {
            tracing::warn!("no REVOCATION_URLS: a revoked token is accepted here until it expires");
        }
        self.auth = Some(crate::auth::AuthLayer::new(verifier, public));
        self
    }

    /// Methods (path prefixes, e.g. a whole internal service) only callers with the role
    /// `service` may call; call after [`Self::with_auth`].
    #[must_use]
    pub fn with_internal(mut self, internal: &[&str]) -> Self {
        self.auth = self.auth.map(|a| a.internal(internal));
        self
    }

    /// Runs `task` until the service stops; it should return soon after
    /// [`Self::stopping`] is cancelled, having finished what it was doing.
    pub fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(task);
    }

    /// Serves until `shutdown` is cancelled (the caller cancels it on SIGTERM or Ctrl-C:
    /// see [`signal`]); then drains.
    ///
    /// # Errors
    /// When the address cannot be bound or the server fails.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let bounds = self.settings.bounds().map_err(|(what, e)| Error::new(what, e))?;
        self.serve(bounds, shutdown).await.map_err(|e| Error::new("server failed", e))
    }

    async fn serve(
        self,
        bounds: Bounds,
        external: CancellationToken,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let Self {
            settings,
            routes,
            names,
            probe,
            stopping,
            mut tasks,
            auth,
            reflection: listed,
            cors,
            pages,
            admission,
            trusted,
            internal_listener,
            connect_json,
        } = self;
        let connect_json = connect_json.map(|routed| connect::ConnectLayer::new(&routed, settings.max_request_bytes));
        let listed = listed.unwrap_or_else(|| names.clone());
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
        let addr = listener.local_addr()?;
        if let Some(metrics) = settings.metrics_addr {
            let bound =
                metrics_adapter::serve(metrics, env!("CARGO_PKG_VERSION"), bounds.header_read, stopping.clone())
                    .await
                    .map_err(|e| format!("cannot listen on METRICS_ADDR {metrics}: {e}"))?;
            // Before the address line: whoever waits for that one has seen this one too.
            println!("metrics on {bound}");
            tracing::info!(%bound, "metrics at /metrics");
        }
        let internal = match internal_listener {
            Some((at, routes)) => {
                let listener =
                    TcpListener::bind(at).await.map_err(|e| format!("cannot listen on INTERNAL_ADDR {at}: {e}"))?;
                println!("internal on {}", listener.local_addr()?);
                Some((listener, routes))
            }
            None => None,
        };
        // The one line on stdout: how parents and tests learn the port.
        println!("listening on {addr}");
        let _ = std::io::stdout().flush();
        tracing::info!(%addr, services = ?names, "serving");

        let reporter = HealthReporter::new();
        let health = health_server(&reporter);
        for name in &names {
            reporter.set_service_status(*name, ServingStatus::NotServing).await;
        }
        let draining = CancellationToken::new();
        let ready_metric = Arc::new(metrics_adapter::process().server());
        ready_metric.ready(false);
        let readiness = tokio::spawn(keep_readiness(
            Arc::clone(&ready_metric),
            reporter.clone(),
            names.clone(),
            probe,
            ServerSettings::secs(settings.readiness_interval_seconds),
            draining.clone(),
        ));

        // grpcurl 1.8 speaks only v1alpha; newer clients use v1.
        let v1 = reflection(&listed).build_v1()?;
        let v1alpha = reflection(&listed).build_v1alpha()?;
        let routes = routes.add_service(health).add_service(v1).add_service(v1alpha);

        let fd_limit = conn::raise_fd_limit();
        let limits = conn::Limits {
            total: conn::connection_cap(bounds.max_connections, fd_limit),
            per_address: bounds.max_connections_per_address,
            exempt: trusted.clone(),
            first_request: bounds.header_read,
            idle: bounds.idle,
        };
        tracing::info!(max_connections = limits.total, per_address = limits.per_address, ?fd_limit, "connections");
        let internal = internal.map(|(listener, routes)| {
            let limits = conn::Limits { exempt: crate::peer::TrustedProxies::none(), ..limits.clone() };
            let routes = routes.add_service(health_server(&reporter));
            tokio::spawn(
                tonic::transport::Server::builder()
                    .accept_http1(true)
                    .http2_keepalive_interval(Some(bounds.keepalive_interval))
                    .http2_keepalive_timeout(Some(bounds.keepalive_timeout))
                    .layer(conn::ConnLayer)
                    .layer(WebLayer::new(None))
                    .layer(crate::trace::TraceLayer)
                    .layer(crate::metrics::MetricsLayer)
                    .layer(crate::guard::GuardLayer::new(
                        settings.max_request_bytes,
                        bounds.body_read,
                        crate::budget::Budget::new(bounds.buffers),
                        crate::peer::TrustedProxies::none(),
                    ))
                    .add_routes(routes)
                    .serve_with_incoming_shutdown(
                        conn::Incoming::new(listener, limits),
                        stopping.clone().cancelled_owned(),
                    ),
            )
        });
        let server_stop = stopping.clone();
        let serve = tonic::transport::Server::builder()
            .accept_http1(true)
            // Pings drop a peer that went away without closing (its fd and its streams).
            .http2_keepalive_interval(Some(bounds.keepalive_interval))
            .http2_keepalive_timeout(Some(bounds.keepalive_timeout))
            // Each request counted on its connection, whose peer the rest read.
            .layer(conn::ConnLayer)
            .layer(tower::util::option_layer(cors))
            .layer(WebLayer::new(pages))
            // A Connect JSON call becomes the gRPC call it stands for, and goes on as one.
            .layer(tower::util::option_layer(connect_json))
            // Every gRPC call, the ones authentication refuses included: its span, its metrics.
            .layer(crate::trace::TraceLayer)
            .layer(crate::metrics::MetricsLayer)
            .layer(tower::util::option_layer(auth))
            // From the head alone, after authentication: a refused call's body is never read.
            .layer(AdmitLayer(admission))
            // After authentication: a caller without a token does not get its body read.
            .layer(crate::guard::GuardLayer::new(
                settings.max_request_bytes,
                bounds.body_read,
                crate::budget::Budget::new(bounds.buffers),
                trusted,
            ))
            .add_routes(routes)
            .serve_with_incoming_shutdown(conn::Incoming::new(listener, limits), server_stop.cancelled_owned());
        let mut serve = tokio::spawn(serve);

        tokio::select! {
            () = external.cancelled() => tracing::info!("shutdown requested"),
            res = &mut serve => {
                res??;
                return Ok(());
            }
        }
        // 1. stop being ready, 2. let balancers notice, 3. stop taking work, 4. finish.
        draining.cancel();
        let _ = readiness.await;
        ready_metric.ready(false);
        for name in &names {
            reporter.set_service_status(*name, ServingStatus::NotServing).await;
        }
        tokio::time::sleep(ServerSettings::secs(settings.drain_seconds)).await;
        stopping.cancel();
        let grace = ServerSettings::secs(settings.grace_seconds);
        let finish = async {
            let _ = serve.await;
            if let Some(internal) = internal {
                let _ = internal.await;
            }
            while tasks.join_next().await.is_some() {}
        };
        if tokio::time::timeout(grace, finish).await.is_err() {
            tracing::warn!(?grace, "in-flight work did not finish within the grace period");
        }
        tracing::info!("stopped");
        telemetry_adapter::shutdown();
        Ok(())
    }
}

/// Reflection lists only this service's own APIs and health, and knows the
/// `google.rpc` error details our refusals carry (so grpcurl decodes an ErrorInfo).
fn reflection(names: &[&'static str]) -> tonic_reflection::server::Builder<'static> {
    let mut b = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health");
    for n in names {
        b = b.with_service_name(*n);
    }
    b
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// The socket address a client should dial for a listen address (`0.0.0.0` -> loopback).
pub fn dial_addr(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() { SocketAddr::from(([127, 0, 0, 1], addr.port())) } else { addr }
}

/// Helper for probes: boxes an async block.
pub fn probe<F, Fut>(f: F) -> Probe
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    Arc::new(move || Box::pin(f()))
}

/// Why a role could not start or stopped serving: the setting or step at fault and what
/// is wrong. `main` reports it (`error: <what>: <detail>`) and exits 1; nothing below
/// `main` exits the process, so several roles can share one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub what: String,
    pub detail: String,
}

impl Error {
    pub fn new(what: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        Self { what: what.into(), detail: detail.to_string() }
    }

    /// `.map_err(Error::at("MISSION_CATALOG"))`
    pub fn at<E: std::fmt::Display>(what: impl Into<String>) -> impl FnOnce(E) -> Self {
        let what = what.into();
        move |e| Self::new(what, e)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, self.detail)
    }
}

impl std::error::Error for Error {}

/// Reports a fatal error the way an operator wants to read it (for `main`).
pub fn report(e: &Error) {
    tracing::error!(error = %e.detail, "{}", e.what);
    eprintln!("error: {e}");
}

/// A token cancelled on the first SIGTERM or Ctrl-C (for `main`).
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        signal().await;
        cancel.cancel();
    });
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_listen_address_is_dialled_on_loopback() {
        assert_eq!(dial_addr("0.0.0.0:5".parse().unwrap()), "127.0.0.1:5".parse().unwrap());
        assert_eq!(dial_addr("127.0.0.2:5".parse().unwrap()), "127.0.0.2:5".parse().unwrap());
    }
}
