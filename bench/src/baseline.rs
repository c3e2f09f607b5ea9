//! Raw baselines on the same machine, in the same run:
//! - a trivial tonic unary server in this process (`NotificationService/ListNotifications`
//!   answering an empty list, plus `grpc.health.v1.Health`), served exactly like the
//!   services serve (tonic over a `TcpListenerStream`), optionally with `TCP_NODELAY`;
//! - JetStream publishes to a private nats-server, acks pipelined or one at a time;
//! - one-row and batched (100 rows per transaction) commits through diesel on SQLite
//!   (WAL, `synchronous = NORMAL`, like the services) and on PostgreSQL.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use contracts::pb::notification::v1 as notification;
use diesel::prelude::*;
use notification::notification_service_server::{NotificationService, NotificationServiceServer};
use serde::Serialize;
use tokio_stream::StreamExt as _;

use crate::hist::{Recorder, Summary};

// ---------------------------------------------------------------- tonic unary echo

/// Answers every call with the same list (empty, or a few KB like a wallet's answer).
struct Echo(Vec<notification::Notification>);

#[tonic::async_trait]
impl NotificationService for Echo {
    async fn list_notifications(
        &self,
        _: tonic::Request<notification::ListNotificationsRequest>,
    ) -> Result<tonic::Response<notification::ListNotificationsResponse>, tonic::Status> {
        Ok(tonic::Response::new(notification::ListNotificationsResponse {
            notifications: self.0.clone(),
            ..Default::default()
        }))
    }
}

fn items(n: usize) -> Vec<notification::Notification> {
    (0..n)
        .map(|i| notification::Notification {
            notification_id: uuid::Uuid::now_v7().to_string(),
            customer_id: "echo".into(),
            channel: "email".into(),
            subject: format!("Your gift number {i} is ready"),
            event_id: uuid::Uuid::now_v7().to_string(),
            sent_at: None,
            recipient: "echo@example.invalid".into(),
        })
        .collect()
}

/// A trivial unary server running in this process until dropped.
pub struct EchoServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    _health: tonic_health::server::HealthReporter,
}

impl EchoServer {
    /// `nodelay`: set `TCP_NODELAY` on accepted sockets (the services do not); every
    /// answer carries `answer_items` notifications (about 150 bytes each).
    pub async fn start(nodelay: bool, answer_items: usize) -> Result<Self, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter.set_serving::<NotificationServiceServer<Echo>>().await;
        let echo = Echo(items(answer_items));
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(move |s| {
            if let Ok(s) = &s {
                let _ = s.set_nodelay(nodelay);
            }
            s
        });
        let router =
            tonic::transport::Server::builder().add_service(health).add_service(NotificationServiceServer::new(echo));
        let task = tokio::spawn(async move {
            let _ = router.serve_with_incoming(incoming).await;
        });
        Ok(Self { addr, task, _health: reporter })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------- JetStream

/// JetStream publish figures.
#[derive(Debug, Clone, Serialize, Default)]
pub struct JetStreamFigures {
    /// Publishes with up to `window` acks in flight; latency is publish -> ack.
    pub pipelined: Summary,
    pub window: usize,
    /// One publish at a time, each waiting for its ack.
    pub one_at_a_time: Summary,
    pub payload_bytes: usize,
}

/// Publishes to a fresh stream configured like the services' (file storage, one replica,
/// a de-duplication window, a `Nats-Msg-Id` on every message like the outbox relay).
pub async fn jetstream(nats_url: &str, each: Duration, window: usize) -> Result<JetStreamFigures, String> {
    use async_nats::jetstream::{self, message::PublishMessage, stream};
    let client = async_nats::connect(nats_url).await.map_err(|e| e.to_string())?;
    let js = jetstream::new(client);
    js.get_or_create_stream(stream::Config {
        name: "BENCH".into(),
        subjects: vec!["bench.>".into()],
        storage: stream::StorageType::File,
        num_replicas: 1,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .map_err(|e| format!("stream: {e}"))?;
    let payload = bytes::Bytes::from(vec![b'x'; 200]);
    let message = || PublishMessage::build().payload(payload.clone()).message_id(uuid::Uuid::now_v7().to_string());

    // Pipelined: keep `window` acks in flight.
    let mut rec = Recorder::default();
    let start = Instant::now();
    let mut in_flight = std::collections::VecDeque::new();
    while start.elapsed() < each {
        while in_flight.len() >= window {
            let (t, ack): (Instant, jetstream::context::PublishAckFuture) = in_flight.pop_front().expect("in flight");
            rec.record(t.elapsed(), ack.await.map(drop).map_err(|_| tonic::Code::Unavailable));
        }
        let t = Instant::now();
        match js.send_publish("bench.pipelined", message()).await {
            Ok(ack) => in_flight.push_back((t, ack)),
            Err(_) => rec.record(t.elapsed(), Err(tonic::Code::Unavailable)),
        }
    }
    while let Some((t, ack)) = in_flight.pop_front() {
        rec.record(t.elapsed(), ack.await.map(drop).map_err(|_| tonic::Code::Unavailable));
    }
    let pipelined = rec.summary(start.elapsed());

    let mut rec = Recorder::default();
    let start = Instant::now();
    while start.elapsed() < each {
        let t = Instant::now();
        let r = match js.send_publish("bench.sync", message()).await {
            Ok(ack) => ack.await.map(drop).map_err(|_| tonic::Code::Unavailable),
            Err(_) => Err(tonic::Code::Unavailable),
        };
        rec.record(t.elapsed(), r);
    }
    let one_at_a_time = rec.summary(start.elapsed());
    Ok(JetStreamFigures { pipelined, window, one_at_a_time, payload_bytes: payload.len() })
}

// ---------------------------------------------------------------- SQL commits

diesel::table! {
    bench_rows (id) {
        id -> Text,
        customer_id -> Text,
        payload -> Text,
        created_at -> BigInt,
    }
}

#[derive(Insertable)]
#[diesel(table_name = bench_rows)]
struct Row {
    id: String,
    customer_id: String,
    payload: String,
    created_at: i64,
}

fn row(i: u64) -> Row {
    Row {
        id: uuid::Uuid::now_v7().to_string(),
        customer_id: format!("c-{}", i % 1000),
        payload: format!(
            "{{\"mission_code\":\"daily-login\",\"points\":10,\"n\":{i},\"pad\":\"{}\"}}",
            "x".repeat(120)
        ),
        created_at: chrono::Utc::now().timestamp_micros(),
    }
}

const CREATE: &str = "CREATE TABLE bench_rows (id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, \
                      payload TEXT NOT NULL, created_at BIGINT NOT NULL)";

/// Commits of one database.
#[derive(Debug, Clone, Serialize, Default)]
pub struct CommitFigures {
    /// What the durability settings are (SQLite pragmas, PostgreSQL's settings).
    pub durability: String,
    /// One row per transaction: `ok_per_s` is commits per second.
    pub one_row: Summary,
    /// `rows_per_tx` rows per transaction, one INSERT each: `ok_per_s` is transactions per second.
    pub batched: Summary,
    pub rows_per_tx: usize,
    pub batched_rows_per_s: f64,
    /// `rows_per_tx` rows per transaction in one multi-row INSERT.
    pub multi_row: Summary,
    pub multi_row_rows_per_s: f64,
}

/// Inserts `rows` in a transaction already open: one statement per row, or all in one.
type Insert<C> = fn(&mut C, &[Row]) -> QueryResult<usize>;

fn commit_loop<C: Connection>(conn: &mut C, rows_per_tx: usize, each: Duration, insert: Insert<C>) -> Summary {
    let mut rec = Recorder::default();
    let mut n = 0u64;
    let start = Instant::now();
    while start.elapsed() < each {
        let rows: Vec<Row> = (0..rows_per_tx)
            .map(|_| {
                n += 1;
                row(n)
            })
            .collect();
        let t = Instant::now();
        let r = conn.transaction(|c| insert(c, &rows));
        rec.record(t.elapsed(), r.map(drop).map_err(|_| tonic::Code::Internal));
    }
    rec.summary(start.elapsed())
}

fn figures<C: Connection>(
    conn: &mut C,
    durability: String,
    each: Duration,
    per_row: Insert<C>,
    multi_row: Insert<C>,
) -> CommitFigures {
    let one_row = commit_loop(conn, 1, each, per_row);
    let rows_per_tx = 100;
    let batched = commit_loop(conn, rows_per_tx, each, per_row);
    let batched_rows_per_s = batched.ok_per_s * rows_per_tx as f64;
    let multi_row = commit_loop(conn, rows_per_tx, each, multi_row);
    let multi_row_rows_per_s = multi_row.ok_per_s * rows_per_tx as f64;
    CommitFigures { durability, one_row, batched, rows_per_tx, batched_rows_per_s, multi_row, multi_row_rows_per_s }
}

/// One INSERT statement per row.
macro_rules! per_row {
    () => {
        |c, rows| {
            for r in rows {
                diesel::insert_into(bench_rows::table).values(r).execute(c)?;
            }
            Ok(rows.len())
        }
    };
}

/// One INSERT statement for all the rows.
macro_rules! multi_row {
    () => {
        |c, rows| diesel::insert_into(bench_rows::table).values(rows).execute(c)
    };
}

/// SQLite in a file under `dir`, opened like the services open theirs.
pub async fn sqlite(dir: std::path::PathBuf, each: Duration) -> Result<CommitFigures, String> {
    tokio::task::spawn_blocking(move || {
        let path = dir.join("baseline.db");
        let mut conn = SqliteConnection::establish(&path.display().to_string()).map_err(|e| e.to_string())?;
        diesel::sql_query(
            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
        )
        .execute(&mut conn)
        .map_err(|e| e.to_string())?;
        diesel::sql_query(CREATE).execute(&mut conn).map_err(|e| e.to_string())?;
        // No fsync per commit: a commit survives a crash of the process; the last ones may
        // be lost on power loss.
        let durability = "journal_mode=WAL, synchronous=NORMAL".to_owned();
        Ok(figures(&mut conn, durability, each, per_row!(), multi_row!()))
    })
    .await
    .map_err(|e| e.to_string())?
}

/// PostgreSQL on a fresh database of the test server; `Err` when it cannot be reached.
pub async fn postgres(each: Duration) -> Result<CommitFigures, String> {
    tokio::task::spawn_blocking(move || {
        let server = store_adapter::testing::postgres_server();
        PgConnection::establish(&server).map_err(|e| format!("no PostgreSQL at {}: {e}", redact(&server)))?;
        let db = e2e::TestDatabase::postgres();
        let mut conn = PgConnection::establish(&db.url).map_err(|e| e.to_string())?;
        diesel::sql_query(CREATE).execute(&mut conn).map_err(|e| e.to_string())?;
        let setting = |name: &str, conn: &mut PgConnection| {
            diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>(&format!("current_setting('{name}')")))
                .get_result::<String>(conn)
                .unwrap_or_else(|_| "?".into())
        };
        let durability = format!(
            "synchronous_commit={}, fsync={}, wal_sync_method={}",
            setting("synchronous_commit", &mut conn),
            setting("fsync", &mut conn),
            setting("wal_sync_method", &mut conn)
        );
        let f = figures(&mut conn, durability, each, per_row!(), multi_row!());
        drop(conn);
        drop(db);
        Ok(f)
    })
    .await
    .map_err(|e| e.to_string())?
}

fn redact(url: &str) -> String {
    store_adapter::connection::redact(url)
}
