//! A role's Prometheus metrics: one registry per process, the metric families the roles
//! share (their names are what `k8s/monitoring` reads: keep them in step with
//! `k8s/monitoring/metrics_used.py`), and `GET /metrics` on the admin address
//! (`METRICS_ADDR`).
//!
//! Families are registered on first use, by group: a role exposes the groups it uses (the
//! wallet the breaker's, a consumer role the consumers', every role the process group).
//! Recording is off until [`serve`] starts the endpoint: a role started without
//! `METRICS_ADDR` pays one relaxed atomic load per recording site and nothing else.
//!
//! # Layout
//! - [`grpc`], [`gateway`], [`outbox`], [`consumers`], [`store`], [`breaker`],
//!   [`process`], [`points`] — the groups, each a set of families.
//! - [`serve`] — the HTTP endpoint.

pub mod duplicates;
mod http;
pub mod parts;
mod points;
mod process;
pub mod scrape;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

pub use http::serve;
use parts::{Part, Parts};
pub use points::{Points, points};
pub use process::{Process, ServerReadiness, Version, process};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether metrics are recorded (the endpoint is served).
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Turns recording on; [`serve`] does it. Tests of recording sites call it directly.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(Registry::default()))
}

fn register(name: &str, help: &str, metric: impl Metric) {
    // prometheus-client ends every help text with a full stop of its own.
    let help = help.trim_end_matches('.');
    registry().lock().unwrap_or_else(std::sync::PoisonError::into_inner).register(name, help, metric);
}

/// Every registered family in the OpenMetrics text format (what Prometheus scrapes).
pub fn encode() -> String {
    let mut out = String::new();
    let registry = registry().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

type Seconds = Family<Consumer, Histogram, fn() -> Histogram>;
type GaugeF64 = Gauge<f64, AtomicU64>;

/// 0.5 ms .. 16 s: a call, a handler, a commit.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

// ---- gRPC server ------------------------------------------------------------------------

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcCall {
    pub grpc_type: &'static str,
    pub grpc_service: String,
    pub grpc_method: String,
    pub grpc_code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcMethod {
    pub grpc_type: &'static str,
    pub grpc_service: String,
    pub grpc_method: String,
}

/// go-grpc-prometheus's names and labels, so its dashboards read ours.
pub struct Grpc {
    pub handled: Family<GrpcCall, Counter>,
    pub handling_seconds: Family<GrpcMethod, Histogram, fn() -> Histogram>,
}

pub fn grpc() -> &'static Grpc {
    static G: OnceLock<Grpc> = OnceLock::new();
    G.get_or_init(|| {
        let g = Grpc { handled: Family::default(), handling_seconds: Family::new_with_constructor(latency) };
        register("grpc_server_handled", "RPCs completed on the server, by code.", g.handled.clone());
        register(
            "grpc_server_handling_seconds",
            "Time from a request's arrival to its last byte (trailers) answered",
            g.handling_seconds.clone(),
        );
        g
    })
}

impl Grpc {
    /// Records one finished call; `code` is go-grpc-prometheus's name (`OK`, `NotFound`).
    pub fn observe(&self, grpc_type: &'static str, service: &str, method: &str, code: &'static str, seconds: f64) {
        if !enabled() {
            return;
        }
        let (grpc_service, grpc_method) = (service.to_owned(), method.to_owned());
        self.handling_seconds
            .get_or_create(&GrpcMethod {
                grpc_type,
                grpc_service: grpc_service.clone(),
                grpc_method: grpc_method.clone(),
            })
            .observe(seconds);
        self.handled.get_or_create(&GrpcCall { grpc_type, grpc_service, grpc_method, grpc_code: code }).inc();
    }
}

// ---- gateway ----------------------------------------------------------------------------

pub struct Gateway {
    pub rate_limited: Counter,
}

pub fn gateway() -> &'static Gateway {
    static G: OnceLock<Gateway> = OnceLock::new();
    G.get_or_init(|| {
        let g = Gateway { rate_limited: Counter::default() };
        register("gateway_rate_limited", "Calls refused by the gateway's rate limits.", g.rate_limited.clone());
        g
    })
}

impl Gateway {
    pub fn limited(&self) {
        if enabled() {
            self.rate_limited.inc();
        }
    }
}

// ---- outbox -----------------------------------------------------------------------------

pub struct Outbox {
    pub pending: Gauge,
    pub oldest_age_seconds: GaugeF64,
    pub published: Counter,
    pub publish_errors: Counter,
    backlogs: Arc<Parts<(i64, f64)>>,
}

pub fn outbox() -> &'static Outbox {
    static G: OnceLock<Outbox> = OnceLock::new();
    G.get_or_init(|| {
        let (pending, oldest_age_seconds) = (Gauge::default(), GaugeF64::default());
        let (p, a) = (pending.clone(), oldest_age_seconds.clone());
        let backlogs = Parts::new(move |outboxes: &[(i64, f64)]| {
            p.set(outboxes.iter().map(|o| o.0).sum());
            a.set(outboxes.iter().map(|o| o.1).fold(0.0, f64::max));
        });
        let g = Outbox {
            pending,
            oldest_age_seconds,
            published: Counter::default(),
            publish_errors: Counter::default(),
            backlogs,
        };
        register("outbox_pending", "Outbox rows not yet published.", g.pending.clone());
        register(
            "outbox_oldest_age_seconds",
            "Age of the oldest unpublished outbox row (0 when empty)",
            g.oldest_age_seconds.clone(),
        );
        register("outbox_published", "Events published from the outbox and acked by JetStream.", g.published.clone());
        register("outbox_publish_errors", "Outbox publishes that failed (retried).", g.publish_errors.clone());
        g
    })
}

impl Outbox {
    pub fn relayed(&self, published: usize, failed: usize) {
        if enabled() {
            self.published.inc_by(published as u64);
            self.publish_errors.inc_by(failed as u64);
        }
    }

    /// One outbox's reporter: the gauges show every outbox of the process (summed rows,
    /// the oldest age), so roles sharing a process do not overwrite each other.
    pub fn backlog(&self) -> OutboxBacklog {
        OutboxBacklog(self.backlogs.join())
    }
}

pub struct OutboxBacklog(Part<(i64, f64)>);

impl OutboxBacklog {
    pub fn set(&self, pending: i64, oldest_age_seconds: f64) {
        if enabled() {
            self.0.set((pending, oldest_age_seconds));
        }
    }
}

// ---- consumers --------------------------------------------------------------------------

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Consumer {
    pub consumer: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsumerOutcome {
    pub consumer: &'static str,
    pub outcome: &'static str,
}

/// How an event was settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Retry,
    DeadLetter,
    /// Handled before (the inbox said so): acked without a second effect.
    Duplicate,
}

impl Outcome {
    pub const ALL: [Self; 4] = [Self::Ok, Self::Retry, Self::DeadLetter, Self::Duplicate];

    pub fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Retry => "retry",
            Self::DeadLetter => "dead_letter",
            Self::Duplicate => "duplicate",
        }
    }
}

pub struct Consumers {
    pub lag: Family<Consumer, Gauge>,
    pub ack_pending: Family<Consumer, Gauge>,
    pub handled: Family<ConsumerOutcome, Counter>,
    pub handle_seconds: Seconds,
    pub deadletter_messages: Gauge,
}

pub fn consumers() -> &'static Consumers {
    static G: OnceLock<Consumers> = OnceLock::new();
    G.get_or_init(|| {
        let g = Consumers {
            lag: Family::default(),
            ack_pending: Family::default(),
            handled: Family::default(),
            handle_seconds: Family::new_with_constructor(latency),
            deadletter_messages: Gauge::default(),
        };
        register(
            "consumer_lag",
            "Events of the durable's filter not yet delivered (JetStream num_pending), reported by the stream's owner",
            g.lag.clone(),
        );
        register(
            "consumer_ack_pending",
            "Events delivered to the durable and not yet acknowledged (JetStream num_ack_pending)",
            g.ack_pending.clone(),
        );
        register("consumer_handled", "Events settled by the durable, by outcome.", g.handled.clone());
        register(
            "consumer_handle_seconds",
            "Time from an event's delivery to its acknowledgement",
            g.handle_seconds.clone(),
        );
        register("deadletter_messages", "Events in the dead-letter stream.", g.deadletter_messages.clone());
        g
    })
}

impl Consumers {
    /// Makes the durable's series exist at 0, so a scrape shows it before its first event
    /// (once per binding: recorded whether or not metrics are on yet).
    pub fn declare(&self, consumer: &'static str) {
        for o in Outcome::ALL {
            let _ = self.handled.get_or_create(&ConsumerOutcome { consumer, outcome: o.label() });
        }
        let _ = self.handle_seconds.get_or_create(&Consumer { consumer });
    }

    pub fn settled(&self, consumer: &'static str, outcome: Outcome, seconds: f64) {
        if !enabled() {
            return;
        }
        self.handled.get_or_create(&ConsumerOutcome { consumer, outcome: outcome.label() }).inc();
        self.handle_seconds.get_or_create(&Consumer { consumer }).observe(seconds);
    }

    pub fn pending(&self, consumer: &'static str, lag: u64, ack_pending: u64) {
        if !enabled() {
            return;
        }
        self.lag.get_or_create(&Consumer { consumer }).set(i64::try_from(lag).unwrap_or(i64::MAX));
        self.ack_pending.get_or_create(&Consumer { consumer }).set(i64::try_from(ack_pending).unwrap_or(i64::MAX));
    }

    pub fn dead_letters(&self, messages: u64) {
        if enabled() {
            self.deadletter_messages.set(i64::try_from(messages).unwrap_or(i64::MAX));
        }
    }
}

// ---- store ------------------------------------------------------------------------------

pub struct Store {
    pub write_batch_size: Histogram,
    pub commit_seconds: Histogram,
    pub pool_in_use: Gauge,
    pub inbox_rows: Gauge,
    databases: Arc<Parts<(i64, i64)>>,
}

pub fn store() -> &'static Store {
    static G: OnceLock<Store> = OnceLock::new();
    G.get_or_init(|| {
        let (pool_in_use, inbox_rows) = (Gauge::default(), Gauge::default());
        let (p, i) = (pool_in_use.clone(), inbox_rows.clone());
        let databases = Parts::new(move |dbs: &[(i64, i64)]| {
            p.set(dbs.iter().map(|d| d.0).sum());
            i.set(dbs.iter().map(|d| d.1).sum());
        });
        let g = Store {
            write_batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            commit_seconds: latency(),
            pool_in_use,
            inbox_rows,
            databases,
        };
        register(
            "db_write_batch_size",
            "Units of work per commit (the writer's group commit)",
            g.write_batch_size.clone(),
        );
        register("db_commit_seconds", "Time of one write transaction, begin to commit.", g.commit_seconds.clone());
        register("db_pool_in_use", "Database connections lent out of the pool.", g.pool_in_use.clone());
        register("inbox_rows", "Rows of the inbox (events handled, kept for de-duplication).", g.inbox_rows.clone());
        g
    })
}

impl Store {
    pub fn committed(&self, units: usize, seconds: f64) {
        if enabled() {
            self.write_batch_size.observe(units as f64);
            self.commit_seconds.observe(seconds);
        }
    }

    /// One database's reporter: the gauges show every database of the process (pools
    /// and inboxes summed), so roles sharing a process do not overwrite each other.
    pub fn database(&self) -> DatabaseSample {
        DatabaseSample { part: self.databases.join(), inbox_rows: AtomicI64::new(0) }
    }
}

pub struct DatabaseSample {
    part: Part<(i64, i64)>,
    inbox_rows: AtomicI64,
}

impl DatabaseSample {
    /// `inbox_rows` is counted less often than the pool is sampled: `None` keeps the last.
    pub fn set(&self, pool_in_use: usize, inbox_rows: Option<i64>) {
        if !enabled() {
            return;
        }
        if let Some(rows) = inbox_rows {
            self.inbox_rows.store(rows, Ordering::Relaxed);
        }
        let pool = i64::try_from(pool_in_use).unwrap_or(i64::MAX);
        self.part.set((pool, self.inbox_rows.load(Ordering::Relaxed)));
    }
}

// ---- breaker and load shedding ----------------------------------------------------------

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BreakerState {
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BreakerTo {
    pub to: &'static str,
}

/// The breaker's states as labels.
pub const BREAKER_STATES: [&str; 3] = ["closed", "open", "half_open"];

pub struct Breaker {
    pub state: Family<BreakerState, Gauge>,
    pub transitions: Family<BreakerTo, Counter>,
    pub rejected: Counter,
    pub shed: Counter,
}

pub fn breaker() -> &'static Breaker {
    static G: OnceLock<Breaker> = OnceLock::new();
    G.get_or_init(|| {
        let g = Breaker {
            state: Family::default(),
            transitions: Family::default(),
            rejected: Counter::default(),
            shed: Counter::default(),
        };
        register("breaker_state", "The circuit breaker's state, one-hot (1 on the current one).", g.state.clone());
        register("breaker_transitions", "Circuit breaker transitions, by the state entered.", g.transitions.clone());
        register("breaker_rejected", "Calls refused at once by the open circuit breaker.", g.rejected.clone());
        register(
            "gift_calls_shed",
            "Exchanges refused because the calls to gift in flight were at the limit.",
            g.shed.clone(),
        );
        g
    })
}

impl Breaker {
    /// Shows `state` (one of [`BREAKER_STATES`]) as the current one.
    /// Once at start and on each transition, so recorded whether or not metrics are on yet.
    pub fn show(&self, state: &'static str) {
        for s in BREAKER_STATES {
            self.state.get_or_create(&BreakerState { state: s }).set(i64::from(s == state));
            let _ = self.transitions.get_or_create(&BreakerTo { to: s });
        }
    }

    pub fn transition(&self, to: &'static str) {
        if enabled() {
            self.transitions.get_or_create(&BreakerTo { to }).inc();
            self.show(to);
        }
    }

    pub fn rejected(&self) {
        if enabled() {
            self.rejected.inc();
        }
    }

    pub fn shed(&self) {
        if enabled() {
            self.shed.inc();
        }
    }
}
