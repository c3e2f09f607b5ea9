//! The composition every event-driven service shares, so that each `run` says only what
//! is its own (its routes, its stream, its consumers):
//! - open the database (migrations included) and connect to NATS, failing fast with a
//!   clear message when the settings are wrong;
//! - readiness = the database answers and NATS answers a PING (what the service has);
//! - publish the outbox to the service's own stream;
//! - run durable consumers;
//! - serve with authentication until the caller's shutdown token is cancelled, then drain.

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

pub use grpc_adapter::server::Error;

/// The size of a service's PostgreSQL connection pool.
#[derive(Debug, Clone, clap::Args)]
pub struct PoolSettings {
    /// Connections to PostgreSQL per process (keep replicas x services x pool under the
    /// server's `max_connections`) [default: 8].
    #[arg(long, env = "DATABASE_POOL_SIZE", value_parser = clap::value_parser!(u16).range(1..))]
    pub database_pool_size: Option<u16>,
    /// Writer sessions to PostgreSQL per process, each group-committing the units of the
    /// customers routed to it: more for a database across a network, whose round trips
    /// keep one session waiting (one more connection each; SQLite has one writer whatever
    /// this says) [default: 1].
    #[arg(long, env = "DATABASE_WRITERS", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub database_writers: Option<u16>,
}

/// Opens the service's database, or says what is wrong.
///
/// # Errors
/// When the database cannot be opened or migrated.
pub async fn open_store(url: &str, pool: &PoolSettings, migrations: Migrations) -> Result<Store, Error> {
    let sizes = store_adapter::PostgresSizes {
        pool: pool.database_pool_size.map(usize::from),
        writers: pool.database_writers.map(usize::from),
    };
    Store::open_sized(url, migrations, sizes).await.map_err(Error::at("cannot open the database"))
}

/// A NATS connection made in the background (the service starts while NATS is down).
#[derive(Clone)]
pub struct Nats {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub settings: NatsSettings,
}

/// Connects to NATS as `name`.
///
/// # Errors
/// When the URL is malformed or the credentials are unusable or refused.
pub async fn connect_nats(settings: &NatsSettings, name: &str) -> Result<Nats, Error> {
    let client = nats_adapter::connect(settings, name).await.map_err(Error::at("cannot connect to NATS"))?;
    Ok(Nats { js: jetstream::new(client.clone()), client, settings: settings.clone() })
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

/// `inbox_rows` is counted once per this many samples of the store's gauges.
const INBOX_COUNT_EVERY: u64 = 30;

/// Samples `db_pool_in_use` (every second) and `inbox_rows` (every 30 s) until
/// `stopping`, while metrics are on.
async fn sample_store(db: Store, stopping: CancellationToken) {
    if !metrics_adapter::enabled() {
        return;
    }
    // Counting the inbox reads every row of a table that holds the whole de-duplication
    // horizon (weeks of events): every INBOX_COUNT_EVERY samples, not every second.
    let database = metrics_adapter::store().database();
    for sample in 0u64.. {
        let inbox = if sample % INBOX_COUNT_EVERY == 0 { store_adapter::inbox::rows(&db).await.ok() } else { None };
        database.set(db.pool_in_use(), inbox);
        tokio::select! {
            () = tokio::time::sleep(METRICS_INTERVAL) => {}
            () = stopping.cancelled() => return,
        }
    }
}

/// How often the inbox is pruned of rows older than its horizon.
const INBOX_PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Forgets, every [`INBOX_PRUNE_EVERY`], the inbox rows older than `horizon` (longer
/// than any redelivery, see `NatsSettings::inbox_horizon`), so the table does not grow
/// for ever.
async fn prune_inbox(db: Store, horizon: Duration, stopping: CancellationToken) {
    loop {
        match db.prune_inbox(horizon).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, ?horizon, "inbox pruned"),
            Err(e) => tracing::warn!(error = %e, "inbox pruning failed; trying again later"),
        }
        tokio::select! {
            () = tokio::time::sleep(INBOX_PRUNE_EVERY) => {}
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
        let (js, replicas, limits) = (nats.js.clone(), nats.settings.stream_replicas, nats.settings.stream_limits());
        self.tasks.push(Box::pin(async move {
            while let Err(e) = streams::ensure_limited(&js, stream, replicas, limits).await {
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
            self.tasks.push(Box::pin(nats_adapter::watch::dead_letters(nats.js.clone(), self.stopping.clone())));
        }
        if let Some(db) = self.db.clone() {
            let (horizon, stopping) = (nats.settings.inbox_horizon(), self.stopping.clone());
            self.tasks.push(Box::pin(prune_inbox(db, horizon, stopping)));
        }
        self
    }

    /// Serves until `shutdown` is cancelled, then drains.
    ///
    /// # Errors
    /// When the address cannot be bound or the server fails.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
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
        let verifier = auth_adapter::Verifier::new(&self.auth).map_err(Error::at("REVOCATION_KEY_FILE"))?;
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
        server.run(shutdown).await
    }
}
