//! Relational storage shared by every service: one diesel connection type over SQLite
//! (the zero-setup default) and PostgreSQL (production), pooled with deadpool.
//!
//! # Layout
//! - [`connection`] — `AnyConnection`, URL parsing, the pool manager and per-connection
//!   SQLite settings.
//! - [`Store`]: the pools, migrations at start-up, `read` / `write` units of work.
//! - [`outbox`], [`inbox`]: the tables that make publishing and consuming exactly-once
//!   in effect.

mod bookkeeping;
pub mod connection;
pub mod inbox;
pub mod outbox;
mod prepared;
pub mod schema;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use deadpool_diesel::Runtime;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};
use kernel::StoreError;

pub use connection::{AnyConnection, Backend};
use connection::{DatabaseUrl, Manager, Pool};
pub use prepared::{Prepared, Unprepared};

/// The outbox and inbox tables every service has.
static SHARED_SQLITE: EmbeddedMigrations = diesel_migrations::embed_migrations!("migrations/sqlite");
static SHARED_POSTGRES: EmbeddedMigrations = diesel_migrations::embed_migrations!("migrations/postgres");

/// A service's own migrations, one directory per backend.
#[derive(Clone, Copy)]
pub struct Migrations {
    pub sqlite: &'static EmbeddedMigrations,
    pub postgres: &'static EmbeddedMigrations,
}

/// Lets a `&'static EmbeddedMigrations` be handed around by value.
struct Source(&'static EmbeddedMigrations);

impl<DB: diesel::backend::Backend> diesel::migration::MigrationSource<DB> for Source {
    fn migrations(&self) -> diesel::migration::Result<Vec<Box<dyn diesel::migration::Migration<DB>>>> {
        <EmbeddedMigrations as diesel::migration::MigrationSource<DB>>::migrations(self.0)
    }
}

fn run_all<DB: diesel::backend::Backend>(
    h: &mut impl MigrationHarness<DB>,
    sets: [&'static EmbeddedMigrations; 2],
) -> Result<(), String> {
    for set in sets {
        h.run_pending_migrations(Source(set)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Reader connections on SQLite (the one writer is the group-commit thread).
const SQLITE_READERS: usize = 4;
/// Connections per process on PostgreSQL unless the service's `DATABASE_POOL_SIZE` says
/// otherwise. Every replica of every service holds up to this many, so it is kept small:
/// replicas x services x pool must stay under the server's `max_connections` (100 by
/// default).
pub const POSTGRES_POOL: usize = 8;
/// Writer sessions per process on PostgreSQL unless the service's `DATABASE_WRITERS` says
/// otherwise ([`writer`]). One: on this project's 2-core machine, with the database on
/// loopback, four sessions moved CPU from the flow to the front door and gained nothing in
/// all (bench/results/README.md, "PostgreSQL writer sessions"). More sessions are for a
/// database whose round trips are long (across a network), where one session waits more
/// than it works; each is one more connection.
pub const POSTGRES_WRITERS: usize = 1;

/// How many connections a store may hold on PostgreSQL (SQLite has its own readers and
/// one writer whatever these say).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PostgresSizes {
    /// Reader pool [default: [`POSTGRES_POOL`]].
    pub pool: Option<usize>,
    /// Writer sessions [default: [`POSTGRES_WRITERS`]].
    pub writers: Option<usize>,
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("DATABASE_URL: {0}")]
    Url(String),
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("migrations failed: {0}")]
    Migrate(String),
}

/// Maps a diesel error to what a repository port may say. Unique violations are
/// duplicates; everything else is the store being unusable.
pub fn db(e: DieselError) -> StoreError {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => StoreError::Duplicate,
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// The result of a versioned update (`UPDATE .. WHERE id = ? AND version = <as read>`):
/// no row updated means another writer moved the version on (or the row is gone), which
/// the repository ports call a conflict.
///
/// # Errors
/// [`StoreError::Conflict`] when no row was updated; as [`db`] for a failed statement.
pub fn versioned(updated: Result<usize, DieselError>) -> Result<(), StoreError> {
    match updated.map_err(db)? {
        0 => Err(StoreError::Conflict),
        _ => Ok(()),
    }
}

/// The result of a conditional write (an `UPDATE .. WHERE <the state it may move from>`,
/// through [`versioned`]): `Ok(false)` when it did not apply ([`StoreError::Conflict`]:
/// the unit failed, so nothing of it was written, not even its inbox row or events).
///
/// # Errors
/// Any other error of the write.
pub fn applied(written: Result<(), StoreError>) -> Result<bool, StoreError> {
    match written {
        Ok(()) => Ok(true),
        Err(StoreError::Conflict) => Ok(false),
        Err(e) => Err(e),
    }
}

/// A service's database: a pool of readers, and writer threads that group-commit every
/// waiting unit of work ([`writer`]: one on SQLite, a few keyed sessions on PostgreSQL). SQLite takes one writer at a time anyway, and on
/// both backends one transaction (one durable commit) for many units is cheaper than one
/// each, or than retrying on `SQLITE_BUSY`.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    group: writer::Writer,
    backend: Backend,
    /// Wakes the outbox relay after a commit that appended events.
    appended: Arc<tokio::sync::Notify>,
}

/// A connection whose work failed for a reason other than a business one (a lost socket,
/// a server restart) leaves the pool instead of going back to it: the next request gets
/// a fresh connection, so the service recovers by itself when the database returns.
fn discard_if_broken<T>(conn: deadpool::managed::Object<connection::Manager>, result: &Result<T, StoreError>) {
    if matches!(result, Err(StoreError::Unavailable(_))) {
        drop(deadpool::managed::Object::take(conn));
    }
}

/// A SQLite database (password hashes, customers' data) is readable by its owner only:
/// the file is created 0600 before SQLite opens it, and SQLite gives its `-wal` and
/// `-shm` files the database's mode. A database made looser by an earlier version is
/// made private.
#[cfg(unix)]
fn private_sqlite_files(db: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if db.as_os_str() == ":memory:" || db.to_string_lossy().starts_with("file:") {
        return Ok(());
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(db) {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        match std::fs::metadata(&file) {
            Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn private_sqlite_files(_: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}

/// The advisory lock key the migrations of a PostgreSQL database run under.
const MIGRATION_LOCK: i64 = 0x6761_6d65_6d69_6772; // "gamemigr"

async fn migrate(pool: &Pool, migrations: Migrations) -> Result<(), OpenError> {
    let conn = pool.get().await.map_err(|e| OpenError::Connect(connection::pool_error(e)))?;
    conn.interact(move |conn| match conn {
        AnyConnection::Sqlite(c) => run_all(c, [&SHARED_SQLITE, migrations.sqlite]),
        AnyConnection::Postgresql(c) => {
            use diesel::RunQueryDsl as _;
            // Replicas starting together on a new database would each run the migrations
            // and all but one fail ("duplicate key value violates unique constraint"): one
            // at a time, the others then find nothing pending. The lock is the database's
            // own (advisory locks are per database) and ends with the session at worst.
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
                .execute(c)
                .map_err(|e| format!("cannot take the migrations lock: {e}"))?;
            let migrated = run_all(c, [&SHARED_POSTGRES, migrations.postgres]);
            let unlocked = diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})")).execute(c);
            migrated.and(unlocked.map(drop).map_err(|e| format!("cannot release the migrations lock: {e}")))
        }
    })
    .await
    .map_err(|e| OpenError::Migrate(e.to_string()))?
    .map_err(OpenError::Migrate)
}

impl Store {
    /// Opens the database named by `url` (`sqlite://path`, a plain path, or
    /// `postgres://…`), runs the shared and the service's migrations, and pools it.
    ///
    /// # Errors
    /// [`OpenError`] with a message an operator can act on.
    pub async fn open(url: &str, migrations: Migrations) -> Result<Self, OpenError> {
        Self::open_sized(url, migrations, PostgresSizes::default()).await
    }

    /// [`Self::open`] with `sizes` connections on PostgreSQL.
    ///
    /// # Errors
    /// As [`Self::open`].
    pub async fn open_sized(url: &str, migrations: Migrations, sizes: PostgresSizes) -> Result<Self, OpenError> {
        let url = DatabaseUrl::parse(url).map_err(OpenError::Url)?;
        let backend = url.backend();
        if let DatabaseUrl::Sqlite(path) = &url {
            if let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| OpenError::Connect(format!("{}: {e}", dir.display())))?;
            }
            private_sqlite_files(std::path::Path::new(path)).map_err(|e| OpenError::Connect(format!("{path}: {e}")))?;
        }
        let pool_size = sizes.pool.unwrap_or(POSTGRES_POOL).max(1);
        let writers = sizes.writers.unwrap_or(POSTGRES_WRITERS);
        let pool = Pool::builder(Manager::new(url.clone(), Runtime::Tokio1))
            .max_size(match backend {
                Backend::Sqlite => SQLITE_READERS,
                Backend::Postgres => pool_size,
            })
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(5)))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| OpenError::Connect(e.to_string()))?;
        migrate(&pool, migrations).await?;
        let group = writer::Writer::start(&url, writers).map_err(|e| OpenError::Connect(e.to_string()))?;
        Ok(Self { pool, group, backend, appended: Arc::default() })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Forgets the inbox rows older than `horizon` ([`inbox::prune`]); returns how many.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database cannot be used.
    pub async fn prune_inbox(&self, horizon: Duration) -> Result<usize, StoreError> {
        let horizon = chrono::Duration::from_std(horizon).unwrap_or(chrono::Duration::MAX);
        let before = (chrono::Utc::now() - horizon).naive_utc();
        self.write(move |c| inbox::prune(c, before)).await
    }

    /// Runs `f` in its own savepoint of the next group commit ([`writer`]); its effects
    /// are rolled back on any error, and the answer comes after the commit. Work of one
    /// customer goes through [`Self::write_for`] instead, so it can run beside other
    /// customers' on PostgreSQL; this one takes the first writer session.
    ///
    /// # Errors
    /// What `f` returns, or [`StoreError::Unavailable`] when the database cannot be used.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        self.group.write(None, writer::Bookkeeping::default(), f).await
    }

    /// [`Self::write`] in the writer session of `key`: the customer whose rows `f`
    /// writes, or the shared row it takes (a gift's stock). Units of one key run in
    /// order in one session; two sessions never hold rows of the same key.
    ///
    /// # Errors
    /// As [`Self::write`].
    pub async fn write_for<T, F>(&self, key: &str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        self.group.write(Some(key), writer::Bookkeeping::default(), f).await
    }

    /// The writer session `key`'s units go to, of how many (for logs and tests).
    pub fn writer_session(&self, key: &str) -> (usize, usize) {
        (self.group.session_of(Some(key)), self.group.sessions())
    }

    /// Runs `f` on a reader connection, outside any explicit transaction.
    ///
    /// # Errors
    /// What `f` returns, or [`StoreError::Unavailable`] when no connection can be had.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.pool.get().await.map_err(|e| StoreError::Unavailable(connection::pool_error(e)))?;
        let result = conn.interact(f).await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
        discard_if_broken(conn, &result);
        result
    }

    /// Whether the database answers a trivial query within `timeout`, through a reader
    /// and through the writer thread too (a writer that stopped or hangs makes the service
    /// not ready rather than failing every write).
    pub async fn ping(&self, timeout: Duration) -> bool {
        fn select_one(c: &mut AnyConnection) -> Result<(), StoreError> {
            use diesel::RunQueryDsl;
            diesel::sql_query("SELECT 1").execute(c).map(drop).map_err(db)
        }
        let probe = async {
            self.read(select_one).await?;
            for session in 0..self.group.sessions() {
                self.group.write_to(session, writer::Bookkeeping::default(), select_one).await?;
            }
            Ok::<_, StoreError>(())
        };
        matches!(tokio::time::timeout(timeout, probe).await, Ok(Ok(())))
    }

    /// Connections lent out of the pool right now (on SQLite, readers; the writer thread
    /// holds its own).
    pub fn pool_in_use(&self) -> usize {
        let s = self.pool.status();
        s.size.saturating_sub(s.available)
    }

    /// Tells the outbox relay that events were committed.
    pub fn notify_appended(&self) {
        self.appended.notify_one();
    }

    /// Resolves when [`Self::notify_appended`] was called since the last wait.
    pub async fn appended(&self) {
        self.appended.notified().await;
    }
}

/// Fresh databases for tests: a temporary SQLite file, or a new database on the
/// PostgreSQL server named by `TEST_DATABASE_URL` (default: the local server), dropped
/// when the guard goes.
pub mod testing {
    use diesel::{Connection, PgConnection, RunQueryDsl};

    /// The server tests create their databases on.
    pub fn postgres_server() -> String {
        std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
    }

    /// A database that exists until this guard is dropped.
    pub struct TestDatabase {
        pub url: String,
        name: Option<String>,
        _dir: Option<tempfile::TempDir>,
    }

    impl TestDatabase {
        pub fn sqlite() -> Self {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("test.db").display());
            Self { url, name: None, _dir: Some(dir) }
        }

        /// # Panics
        /// When the PostgreSQL server cannot be reached: the tests need it.
        pub fn postgres() -> Self {
            let server = postgres_server();
            let name = format!("game_test_{}", uuid::Uuid::new_v4().simple());
            let mut admin = PgConnection::establish(&server)
                .unwrap_or_else(|e| panic!("PostgreSQL for tests at {}: {e}", super::connection::redact(&server)));
            diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut admin).expect("create test database");
            let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
            Self { url: format!("{base}/{name}"), name: Some(name), _dir: None }
        }
    }

    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }

    /// How many statements starting with `sql_start` PostgreSQL holds prepared for the
    /// store's first writer session (where every unit of work without a key runs).
    ///
    /// # Panics
    /// When the store is not on PostgreSQL or cannot be used.
    pub async fn prepared_in_writer_session(store: &crate::Store, sql_start: &str) -> i64 {
        let pattern = format!("{}%", sql_start.replace('\'', "''"));
        store
            .write(move |c| {
                diesel::sql_query(format!(
                    "SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE '{pattern}'"
                ))
                .get_result::<Count>(c)
                .map(|r| r.n)
                .map_err(crate::db)
            })
            .await
            .expect("pg_prepared_statements")
    }

    impl Drop for TestDatabase {
        fn drop(&mut self) {
            if let Some(name) = &self.name
                && let Ok(mut admin) = PgConnection::establish(&postgres_server())
            {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin);
            }
        }
    }
}

/// Runs each named `async fn(TestDatabase)` as two tests: `sqlite::name` and
/// `postgres::name`, so both backends pass the same repository tests.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $name() { super::$name($crate::testing::TestDatabase::sqlite()).await } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $name() { super::$name($crate::testing::TestDatabase::postgres()).await } )*
        }
    };
}
