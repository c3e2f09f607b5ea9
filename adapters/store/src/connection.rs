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
            return Ok(Self::Postgres(raw.to_owned()));
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
        let broken = obj
            .interact(|c| {
                use diesel::connection::TransactionManager;
                <AnyConnection as Connection>::TransactionManager::is_broken_transaction_manager(c)
            })
            .await
            .map_err(|e| RecycleError::message(e.to_string()))?;
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
    let plain = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !plain {
        return Err(format!("database name {name:?}: lower-case letters, digits and _ only, at most 63"));
    }
    let mut admin = PgConnection::establish(server).map_err(|e| format!("{}: {e}", redact(server)))?;
    match diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut admin) {
        Ok(_) => {}
        // Already there (or created by someone else at the same moment).
        Err(diesel::result::Error::DatabaseError(_, info)) if info.message().contains("already exists") => {}
        Err(e) => return Err(format!("CREATE DATABASE {name} on {}: {e}", redact(server))),
    }
    Ok(postgres_database_url(server, name))
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
    fn a_password_never_reaches_a_message() {
        assert_eq!(redact("postgres://user:secret@host/db"), "postgres://user:***@host/db");
        assert_eq!(redact("mysql://u:pw@h/x"), "mysql://u:***@h/x");
    }
}
