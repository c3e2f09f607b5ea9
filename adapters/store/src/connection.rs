//! One connection type for both backends, and a pool manager that opens exactly the
//! backend the URL names (diesel's derived `establish` would try each backend in turn,
//! so an unreachable PostgreSQL could silently become a SQLite file named like a URL).

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use deadpool_diesel::Runtime;
use diesel::{Connection, ConnectionResult, PgConnection, RunQueryDsl, SqliteConnection};

#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub(crate) enum DatabaseUrl {
    Sqlite(String),
    Postgres(String),
}

impl DatabaseUrl {
    pub(crate) fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            let tls_asked = std::env::var_os("PGSSLMODE").is_some();
            return Ok(Self::Postgres(without_tls_on_loopback(raw, tls_asked)));
        }
        if let Some(path) = raw.strip_prefix("sqlite://").or_else(|| raw.strip_prefix("sqlite:")) {
            if path.is_empty() {
                return Err("sqlite URL without a file path".into());
            }
            return Ok(Self::Sqlite(path.to_owned()));
        }
        if raw.contains("://") {
            return Err(format!("unsupported scheme in '{}' (use sqlite:// or postgres://)", redact(raw)));
        }
        Ok(Self::Sqlite(raw.to_owned()))
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    pub(crate) fn establish(&self) -> ConnectionResult<AnyConnection> {
        match self {
            Self::Postgres(url) => PgConnection::establish(url).map(AnyConnection::Postgresql),
            Self::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(path)?;
                // WAL: readers never block the writer. synchronous=NORMAL: a commit survives
                // a crash of the process; the last commits may be lost on power loss.
                diesel::sql_query(
                    "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                )
                .execute(&mut conn)
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
                Ok(AnyConnection::Sqlite(conn))
            }
        }
    }
}

/// A PostgreSQL URL whose host is this machine's loopback (`localhost`, `127.x.x.x`,
/// `[::1]`) and that says nothing of TLS gets `sslmode=disable`: libpq's default
/// (`prefer`) would encrypt every round trip to a server that offers TLS, protecting
/// bytes that only this machine's root could read — who can read either process's
/// memory anyway — at 10-19 % of the PostgreSQL path's throughput on the project's
/// bench (`bench/results/README.md`, "TLS on loopback"). An `sslmode` in the URL or
/// `PGSSLMODE` (`tls_asked`) is left to decide; any other host is left alone.
fn without_tls_on_loopback(url: &str, tls_asked: bool) -> String {
    if tls_asked || url.contains("sslmode=") {
        return url.to_owned();
    }
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}sslmode=disable")
}

/// Hides a password in a URL before it goes anywhere near a log.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}://{user}:***@{}", &url[..s], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

pub(crate) struct Manager {
    url: DatabaseUrl,
    runtime: Runtime,
}

impl Manager {
    pub(crate) fn new(url: DatabaseUrl, runtime: Runtime) -> Self {
        Self { url, runtime }
    }
}

pub(crate) type Pool = managed::Pool<Manager>;

impl managed::Manager for Manager {
    type Type = deadpool_diesel::Connection<AnyConnection>;
    type Error = deadpool_diesel::Error;

    async fn create(&self) -> Result<Self::Type, Self::Error> {
        let url = self.url.clone();
        deadpool_diesel::Connection::new(self.runtime, move || {
            url.establish().map_err(deadpool_diesel::Error::Connection)
        })
        .await
    }

    async fn recycle(&self, obj: &mut Self::Type, _: &Metrics) -> RecycleResult<Self::Error> {
        if obj.is_mutex_poisoned() {
            return Err(RecycleError::message("connection mutex poisoned"));
        }
        fn broken(c: &mut AnyConnection) -> bool {
            use diesel::connection::TransactionManager;
            <AnyConnection as Connection>::TransactionManager::is_broken_transaction_manager(c)
        }
        // The check reads the connection's own state (no I/O), so it runs here rather
        // than on a blocking thread: one hand-off less for every read. The connection is
        // only busy when a cancelled read's closure still runs; then it waits for it.
        let here = obj.try_lock().ok().map(|mut c| broken(&mut c));
        let broken = match here {
            Some(broken) => broken,
            None => obj.interact(broken).await.map_err(|e| RecycleError::message(e.to_string()))?,
        };
        if broken { Err(RecycleError::message("broken transaction")) } else { Ok(()) }
    }
}

pub(crate) fn pool_error(e: managed::PoolError<deadpool_diesel::Error>) -> String {
    match e {
        managed::PoolError::Backend(e) => e.to_string(),
        other => other.to_string(),
    }
}

/// The URL of database `name` on the PostgreSQL server of `server` (a URL naming any of
/// its databases): the same user, host and options, another database.
pub fn postgres_database_url(server: &str, name: &str) -> String {
    let (url, options) = server.split_once('?').map_or((server, None), |(u, o)| (u, Some(o)));
    let base = match url.find("://").map(|s| s + 3) {
        Some(host) => url[host..].find('/').map_or(url, |slash| &url[..host + slash]),
        None => url,
    };
    match options {
        Some(o) => format!("{base}/{name}?{o}"),
        None => format!("{base}/{name}"),
    }
}

/// Creates database `name` on the PostgreSQL server of `server` unless it exists; returns
/// its URL. The name must be a plain identifier (lower-case letters, digits, `_`).
///
/// # Errors
/// When the name is not one, the server cannot be reached, or it refuses.
pub fn ensure_postgres_database(server: &str, name: &str) -> Result<String, String> {
    plain_name(name)?;
    let mut admin = PgConnection::establish(server).map_err(|e| format!("{}: {e}", redact(server)))?;
    match diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut admin) {
        Ok(_) => {}
        // Already there (or created by someone else at the same moment).
        Err(diesel::result::Error::DatabaseError(_, info)) if info.message().contains("already exists") => {}
        Err(e) => return Err(format!("CREATE DATABASE {name} on {}: {e}", redact(server))),
    }
    Ok(postgres_database_url(server, name))
}

/// Drops database `name` on the PostgreSQL server of `server` if it exists, closing the
/// connections still open to it; returns whether it existed. The name must be a plain
/// identifier, as for [`ensure_postgres_database`].
///
/// # Errors
/// When the name is not one, the server cannot be reached, or it refuses.
pub fn drop_postgres_database(server: &str, name: &str) -> Result<bool, String> {
    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    plain_name(name)?;
    let mut admin = PgConnection::establish(server).map_err(|e| format!("{}: {e}", redact(server)))?;
    let found: Found = diesel::sql_query(format!("SELECT count(*) AS n FROM pg_database WHERE datname = '{name}'"))
        .get_result(&mut admin)
        .map_err(|e| format!("looking for {name} on {}: {e}", redact(server)))?;
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .map_err(|e| format!("DROP DATABASE {name} on {}: {e}", redact(server)))?;
    Ok(found.n > 0)
}

/// A name used in SQL as it is: lower-case letters, digits and `_`, at most 63.
fn plain_name(name: &str) -> Result<(), String> {
    let plain = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if plain {
        Ok(())
    } else {
        Err(format!("database name {name:?}: lower-case letters, digits and _ only, at most 63"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_the_backend_and_bad_ones_say_why() {
        assert_eq!(DatabaseUrl::parse("sqlite://data/mission.db").unwrap().backend(), Backend::Sqlite);
        assert_eq!(DatabaseUrl::parse("data/mission.db").unwrap().backend(), Backend::Sqlite);
        assert_eq!(DatabaseUrl::parse("postgres://u@h/db").unwrap().backend(), Backend::Postgres);
        assert!(DatabaseUrl::parse("mysql://x").err().unwrap().contains("unsupported scheme"));
        assert!(DatabaseUrl::parse("").is_err());
    }

    #[test]
    fn a_database_url_is_the_servers_with_another_database() {
        assert_eq!(
            postgres_database_url("postgres://u:p@h:5432/postgres", "game_mission"),
            "postgres://u:p@h:5432/game_mission"
        );
        assert_eq!(postgres_database_url("postgres://u@h", "x"), "postgres://u@h/x");
        assert_eq!(postgres_database_url("postgres://u@h/db?sslmode=require", "x"), "postgres://u@h/x?sslmode=require");
    }

    #[test]
    fn a_server_on_loopback_is_reached_without_tls_unless_asked_for() {
        let plain = |u: &str| without_tls_on_loopback(u, false);
        assert_eq!(plain("postgres://u:p@127.0.0.1:5432/db"), "postgres://u:p@127.0.0.1:5432/db?sslmode=disable");
        assert_eq!(
            plain("postgres://localhost/db?application_name=x"),
            "postgres://localhost/db?application_name=x&sslmode=disable"
        );
        assert_eq!(plain("postgresql://u@[::1]:5432/db"), "postgresql://u@[::1]:5432/db?sslmode=disable");
        assert_eq!(plain("postgres://u@127.0.0.2"), "postgres://u@127.0.0.2?sslmode=disable");
        // another host, an sslmode in the URL, or PGSSLMODE: as given
        assert_eq!(plain("postgres://u@db.internal:5432/db"), "postgres://u@db.internal:5432/db");
        assert_eq!(plain("postgres://u@10.0.0.7/db"), "postgres://u@10.0.0.7/db");
        assert_eq!(plain("postgres://u@127.0.0.1/db?sslmode=require"), "postgres://u@127.0.0.1/db?sslmode=require");
        assert_eq!(without_tls_on_loopback("postgres://u@127.0.0.1/db", true), "postgres://u@127.0.0.1/db");
        // a user named like a loopback host is not the host
        assert_eq!(plain("postgres://localhost@db.internal/db"), "postgres://localhost@db.internal/db");
    }

    #[test]
    fn a_password_never_reaches_a_message() {
        assert_eq!(redact("postgres://user:secret@host/db"), "postgres://user:***@host/db");
        assert_eq!(redact("mysql://u:pw@h/x"), "mysql://u:***@h/x");
    }
}
