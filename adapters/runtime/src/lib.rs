//! The composition every event-driven service shares, so that each `run` says only what
//! is its own (its routes, its stream, its consumers):
//! - open the database (migrations included) and connect to NATS, failing fast with a
//!   clear message when the settings are wrong;
//! - readiness = the database answers and NATS answers a PING (what the service has);
//! - publish the outbox to the service's own stream;
//! - run durable consumers;
//! - serve with authentication until SIGTERM, then drain.

pub mod catalog_file;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use grpc_adapter::server::{self, Server, ServerSettings};
use nats_adapter::NatsSettings;
use nats_adapter::consumer::{self, ConsumerSpec, Handler};
use nats_adapter::streams::{self, StreamSpec};
use store_adapter::{Migrations, Store};
use tokio_util::sync::CancellationToken;

/// Opens the service's database, or exits with a message naming what is wrong.
pub async fn open_store(url: &str, migrations: Migrations) -> Store {
    Store::open(url, migrations).await.unwrap_or_else(|e| server::fail("cannot open the database", &e))
}

/// A NATS connection made in the background (the service starts while NATS is down).
#[derive(Clone)]
pub struct Nats {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub settings: NatsSettings,
}

/// Connects to NATS as `name`, or exits when the URL is malformed or the credentials
/// are unusable or refused.
pub async fn connect_nats(settings: &NatsSettings, name: &str) -> Nats {
    let client =
        nats_adapter::connect(settings, name).await.unwrap_or_else(|e| server::fail("cannot connect to NATS", &e));
    Nats { js: jetstream::new(client.clone()), client, settings: settings.clone() }
}

type Task = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A service being put together.
pub struct Runtime {
    settings: ServerSettings,
    auth: auth_adapter::AuthSettings,
    service_name: &'static str,
    public: Vec<&'static str>,
    internal: Vec<&'static str>,
    routes: tonic::service::Routes,
    db: Option<Store>,
    nats: Option<Nats>,
    /// Whether readiness waits for NATS (a service whose requests need only its database
    /// keeps serving while NATS is down: its outbox holds the events).
    ready_needs_nats: bool,
    stopping: CancellationToken,
    tasks: Vec<Task>,
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the store's gauges (outbox backlog, pool, inbox) are sampled.
const METRICS_INTERVAL: Duration = Duration::from_secs(1);

/// Samples `db_pool_in_use` and `inbox_rows` until `stopping`, while metrics are on.
async fn sample_store(db: Store, stopping: CancellationToken) {
    if !metrics_adapter::enabled() {
        return;
    }
    loop {
        let inbox = store_adapter::inbox::rows(&db).await.ok();
        metrics_adapter::store().sampled(db.pool_in_use(), inbox);
        tokio::select! {
            () = tokio::time::sleep(METRICS_INTERVAL) => {}
            () = stopping.cancelled() => return,
        }
    }
}

impl Runtime {
    pub fn new(
        settings: ServerSettings,
        auth: &auth_adapter::AuthSettings,
        service_name: &'static str,
        routes: tonic::service::Routes,
        db: Option<Store>,
        nats: Option<Nats>,
    ) -> Self {
        Self {
            settings,
            auth: auth.clone(),
            service_name,
            public: Vec::new(),
            internal: Vec::new(),
            routes,
            db,
            nats,
            ready_needs_nats: true,
            stopping: CancellationToken::new(),
            tasks: Vec::new(),
        }
    }

    /// Methods callable without a token, as gRPC path prefixes.
    #[must_use]
    pub fn public(mut self, paths: &[&'static str]) -> Self {
        self.public.extend_from_slice(paths);
        self
    }

    /// Methods only our own services may call (a token with the role `service`), as gRPC
    /// path prefixes: e.g. a whole internal service, `/game.gift.v1.GiftIssuingService/`.
    #[must_use]
    pub fn internal(mut self, paths: &[&'static str]) -> Self {
        self.internal.extend_from_slice(paths);
        self
    }

    /// Readiness follows the database only.
    #[must_use]
    pub fn ready_without_nats(mut self) -> Self {
        self.ready_needs_nats = false;
        self
    }

    fn nats(&self) -> Nats {
        self.nats.clone().expect("a service that publishes or consumes is built with NATS")
    }

    /// Creates the service's own stream (retrying while NATS is down) and relays its
    /// outbox there until shutdown.
    #[must_use]
    pub fn publish(mut self, stream: StreamSpec) -> Self {
        let nats = self.nats();
        let db = self.db.clone().expect("a service that publishes has a database with an outbox");
        let (js, replicas) = (nats.js.clone(), nats.settings.stream_replicas);
        self.tasks.push(Box::pin(async move {
            while let Err(e) = streams::ensure(&js, stream, replicas).await {
                tracing::warn!(error = %e, stream = stream.name, "cannot create the stream yet");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }));
        self.tasks.push(Box::pin(nats_adapter::relay::run(
            db.clone(),
            nats.client,
            nats.js.clone(),
            self.stopping.clone(),
        )));
        self.tasks.push(Box::pin(nats_adapter::relay::watch_backlog(db, METRICS_INTERVAL, self.stopping.clone())));
        self.tasks.push(Box::pin(nats_adapter::watch::stream_consumers(nats.js, stream, self.stopping.clone())));
        self
    }

    /// Runs one durable consumer per spec, all handled by `handler`, until shutdown.
    #[must_use]
    pub fn consume<H: Handler>(mut self, specs: &[ConsumerSpec], handler: Arc<H>) -> Self {
        let nats = self.nats();
        for spec in specs {
            let run =
                consumer::run(nats.js.clone(), nats.settings.clone(), *spec, handler.clone(), self.stopping.clone());
            self.tasks.push(Box::pin(run));
        }
        if !specs.is_empty() {
            self.tasks.push(Box::pin(nats_adapter::watch::dead_letters(nats.js, self.stopping.clone())));
        }
        self
    }

    /// Serves until SIGTERM or Ctrl-C, then drains; exits the process on failure.
    pub async fn run(self) {
        let db = self.db.clone();
        let nats = self.nats.as_ref().filter(|_| self.ready_needs_nats).map(|n| n.client.clone());
        let probe = server::probe(move || {
            let (db, nats) = (db.clone(), nats.clone());
            async move {
                let nats_ok = match &nats {
                    Some(c) => nats_adapter::responsive(c, PROBE_TIMEOUT).await,
                    None => true,
                };
                nats_ok
                    && match &db {
                        Some(d) => d.ping(PROBE_TIMEOUT).await,
                        None => true,
                    }
            }
        });
        let verifier = auth_adapter::Verifier::new(&self.auth);
        let refresh = Duration::from_secs(self.auth.refresh_seconds);
        let mut server = Server::new(self.settings, self.routes, vec![self.service_name], probe)
            .with_auth(verifier, refresh, &self.public)
            .with_internal(&self.internal);
        server.stopping = self.stopping;
        if let Some(db) = self.db.clone() {
            server.spawn(sample_store(db, server.stopping.clone()));
        }
        for task in self.tasks {
            server.spawn(task);
        }
        if let Err(e) = server.run(CancellationToken::new()).await {
            server::fail("server failed", &e);
        }
    }
}
