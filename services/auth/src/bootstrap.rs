//! What the auth service is given to set up at start: the first admin's password
//! (`ADMIN_PASSWORD_FILE`) and the service accounts to provision (`SERVICE_ACCOUNTS_FILE`,
//! hashes only). Both are read and checked before anything else, so a bad file stops the
//! start with a message naming it and what is wrong.

use std::path::Path;

use auth_adapter::secret::{self, ServiceAccountsFile};
use auth_domain::{ClientId, Password, Provisioned, Role};

/// The password in the file: its first line (a trailing newline is not part of it).
///
/// # Errors
/// When the file cannot be read or the password breaks the rules.
pub fn admin_password(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let password = text.lines().next().unwrap_or_default().to_owned();
    Password::new(&password).map_err(|e| e.to_string())?;
    Ok(password)
}

/// Says in `path` whether the first admin was `created` with the password file now or
/// `exists` already: `created` replaces the file, `exists` is written only when there is
/// none (another replica may have just created the admin and said so).
///
/// # Errors
/// When the file cannot be written.
pub fn write_admin_status(path: &Path, created: bool) -> Result<(), String> {
    use std::io::Write as _;
    if created {
        return std::fs::write(path, "created\n").map_err(|e| e.to_string());
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(mut f) => f.write_all(b"exists\n").map_err(|e| e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// The service accounts of the file, checked.
///
/// # Errors
/// When the file cannot be read or parsed, or an entry is wrong (named by its index and
/// field).
pub fn service_accounts(path: &Path) -> Result<Vec<Provisioned>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    parse(&text)
}

fn parse(text: &str) -> Result<Vec<Provisioned>, String> {
    let file: ServiceAccountsFile = serde_json::from_str(text).map_err(|e| format!("not the expected JSON: {e}"))?;
    file.service_accounts
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let at = |e: &dyn std::fmt::Display| format!("service_accounts[{i}].{e}");
            let client_id = ClientId::parse(&a.client_id).map_err(|e| at(&e))?;
            let role = Role::parse(&a.role).map_err(|e| at(&e))?;
            if !matches!(role, Role::Service | Role::GameServer) {
                return Err(at(&"role: a service account is a game_server or a service"));
            }
            if !secret::is_hash(&a.secret_hash) {
                return Err(at(&"secret_hash: must be an argon2id PHC string (never the secret itself)"));
            }
            Ok(Provisioned { client_id, role, secret_hash: a.secret_hash })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash() -> String {
        secret::hash("a secret of the wallet", secret::Cost { memory_kib: 1024, iterations: 1 }).unwrap()
    }

    #[test]
    fn a_service_accounts_file_gives_the_accounts_it_names() {
        let text = format!(
            r#"{{"service_accounts": [{{"client_id": "svc-wallet", "role": "service", "secret_hash": "{}"}}]}}"#,
            hash()
        );
        let accounts = parse(&text).unwrap();
        assert_eq!(accounts.len(), 1);
        assert_eq!((accounts[0].client_id.as_str(), accounts[0].role), ("svc-wallet", Role::Service));
    }

    #[test]
    fn a_wrong_entry_is_named_by_its_place_and_field() {
        let entry = |id: &str, role: &str, h: &str| {
            format!(r#"{{"service_accounts": [{{"client_id": "{id}", "role": "{role}", "secret_hash": "{h}"}}]}}"#)
        };
        assert!(parse(&entry("wallet", "service", &hash())).unwrap_err().starts_with("service_accounts[0].client_id"));
        assert!(parse(&entry("svc-wallet", "admin", &hash())).unwrap_err().starts_with("service_accounts[0].role"));
        let plain = parse(&entry("svc-wallet", "service", "the-secret-itself")).unwrap_err();
        assert!(plain.starts_with("service_accounts[0].secret_hash"), "{plain}");
        assert!(parse("[]").unwrap_err().contains("JSON"));
        assert!(parse(r#"{"service_accounts": [], "extra": 1}"#).is_err(), "unknown fields are mistakes");
    }

    #[test]
    fn the_admin_password_is_the_first_line_and_must_be_a_real_password() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.password");
        std::fs::write(&path, "long enough password\n").unwrap();
        assert_eq!(admin_password(&path).unwrap(), "long enough password");
        std::fs::write(&path, "short\n").unwrap();
        assert!(admin_password(&path).unwrap_err().contains("password"));
        assert!(admin_password(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn the_admin_status_says_created_over_a_replicas_exists_and_exists_over_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let status = dir.path().join("admin.status");
        let read = || std::fs::read_to_string(&status).unwrap();
        write_admin_status(&status, false).unwrap();
        assert_eq!(read(), "exists\n");
        write_admin_status(&status, true).unwrap();
        assert_eq!(read(), "created\n");
        write_admin_status(&status, false).unwrap();
        assert_eq!(read(), "created\n", "a replica that found the admin does not hide its creation");
    }
}
