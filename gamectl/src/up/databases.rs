//! `--database postgres`: each relational role's own database on one server.

use crate::cli::UpArgs;
use crate::services;

/// Every relational role's own database on the PostgreSQL server of `--database-url`
/// (else `DATABASE_URL`, else `TEST_DATABASE_URL`, else the local server):
/// `<prefix>_<role>`, created if missing.
pub(super) async fn postgres_databases(args: &UpArgs) -> Result<Vec<(&'static str, String)>, String> {
    let server = args
        .database_url
        .clone()
        .or_else(|| std::env::var("TEST_DATABASE_URL").ok())
        .unwrap_or_else(|| DEFAULT_POSTGRES.to_owned());
    let prefix = args.database_prefix.clone();
    tokio::task::spawn_blocking(move || {
        services::RELATIONAL
            .iter()
            .map(|role| {
                let name = format!("{prefix}_{role}");
                store_adapter::connection::ensure_postgres_database(&server, &name)
                    .map(|url| (*role, url))
                    .map_err(|e| format!("--database postgres: {e}"))
            })
            .collect()
    })
    .await
    .map_err(|e| format!("--database postgres: {e}"))?
}

/// The PostgreSQL server `--database postgres` uses when none is named.
const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";
