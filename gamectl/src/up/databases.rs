//! Where the relational roles keep their data, and starting over (`up --reset`).
//!
//! A system started by `up` is known by its id, made on its first start and kept in
//! `<data-dir>/system-id`: with `--database postgres` each relational role's database is
//! `<prefix>_<id>_<role>`, so two data dirs on one server (one after the other, or at
//! once) never share a table, and `--reset` drops exactly the databases named with it.

use std::path::{Path, PathBuf};

use crate::cli::{Database, UpArgs};
use crate::services;

/// The file holding the id of the system whose data dir it is in.
pub(super) fn system_id_file(data_dir: &Path) -> PathBuf {
    data_dir.join("system-id")
}

/// The system's id: the one recorded in the data dir, or a new one (8 lower-case hex
/// digits) recorded there now.
///
/// # Errors
/// When the file cannot be read or written, or holds something else than an id.
pub(super) fn system_id(data_dir: &Path) -> Result<String, String> {
    let path = system_id_file(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim();
            if is_id(id) {
                Ok(id.to_owned())
            } else {
                Err(format!("{}: {id:?} is not a system id (8 lower-case hex digits)", path.display()))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = auth_adapter::secret::generate().map_err(|e| format!("no randomness: {e}"))?[..ID_LEN].to_owned();
            std::fs::write(&path, format!("{id}\n")).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(id)
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

const ID_LEN: usize = 8;

fn is_id(id: &str) -> bool {
    id.len() == ID_LEN && id.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

/// The name of `role`'s database for the system `id`.
pub(super) fn database_name(prefix: &str, id: &str, role: &str) -> String {
    format!("{prefix}_{id}_{role}")
}

/// The PostgreSQL server of `--database-url` (else `TEST_DATABASE_URL`, else the local
/// server).
fn server(args: &UpArgs) -> String {
    args.database_url
        .clone()
        .or_else(|| std::env::var("TEST_DATABASE_URL").ok())
        .unwrap_or_else(|| DEFAULT_POSTGRES.to_owned())
}

/// Every relational role's own database on the PostgreSQL server, named with the system's
/// id, created if missing.
pub(super) async fn postgres_databases(args: &UpArgs, id: &str) -> Result<Vec<(&'static str, String)>, String> {
    let server = server(args);
    let names: Vec<_> =
        services::RELATIONAL.iter().map(|role| (*role, database_name(&args.database_prefix, id, role))).collect();
    blocking(move || {
        names
            .into_iter()
            .map(|(role, name)| {
                store_adapter::connection::ensure_postgres_database(&server, &name).map(|url| (role, url))
            })
            .collect()
    })
    .await
}

/// `up --reset`: drops this system's own databases (or removes its SQLite files) and what
/// its services kept beside them in the data dir (the JetStream store of the nats-server
/// `up` runs, the signing keys, the mailbox, the first admin's password, the stored
/// token), so that it starts as fresh as on its first start. Its id, the secrets and the
/// bus credentials are kept. Returns what was removed, for the operator.
pub(super) async fn reset(data_dir: &Path, args: &UpArgs, id: &str) -> Result<Vec<String>, String> {
    let mut removed = Vec::new();
    match args.database {
        Database::Postgres => {
            let server = server(args);
            let names: Vec<_> =
                services::RELATIONAL.iter().map(|role| database_name(&args.database_prefix, id, role)).collect();
            let dropped = blocking(move || {
                let mut dropped = Vec::new();
                for name in names {
                    if store_adapter::connection::drop_postgres_database(&server, &name)? {
                        dropped.push(format!("database {name}"));
                    }
                }
                Ok(dropped)
            })
            .await?;
            removed.extend(dropped);
        }
        Database::Sqlite => {
            for role in services::RELATIONAL {
                for suffix in ["db", "db-wal", "db-shm"] {
                    let file = data_dir.join(format!("{role}.{suffix}"));
                    if remove(&file)? && suffix == "db" {
                        removed.push(file.display().to_string());
                    }
                }
            }
        }
    }
    let mut kept = vec![
        crate::secrets::Paths::of(data_dir).admin_password_file,
        services::keys_dir(data_dir),
        services::mailbox_dir(data_dir),
        data_dir.join("token"),
    ];
    if args.nats_url.is_none() {
        kept.push(data_dir.join("nats"));
    }
    for path in kept {
        if remove(&path)? {
            removed.push(path.display().to_string());
        }
    }
    Ok(removed)
}

/// Removes a file or a directory with everything in it; whether there was one.
fn remove(path: &Path) -> Result<bool, String> {
    let gone = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => Err(e),
    };
    gone.map(|()| true).map_err(|e| format!("cannot remove {}: {e}", path.display()))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, String> + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("--database postgres: {e}"))?
        .map_err(|e| format!("--database postgres: {e}"))
}

/// The PostgreSQL server `--database postgres` uses when none is named.
const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_dir_gets_its_id_on_the_first_start_and_keeps_it() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let id = system_id(a.path()).unwrap();
        assert!(is_id(&id), "{id}");
        assert_eq!(system_id(a.path()).unwrap(), id, "kept");
        assert_ne!(system_id(b.path()).unwrap(), id, "another data dir, another system");
        assert_eq!(database_name("game", &id, "wallet"), format!("game_{id}_wallet"));
        std::fs::write(system_id_file(a.path()), "../../x\n").unwrap();
        assert!(system_id(a.path()).unwrap_err().contains("not a system id"));
    }
}
