//! The secrets `gamectl up` keeps in the data dir, each readable by its owner only (files
//! created 0600, never looser for a moment; their directory 0700), made on the first run
//! and kept for the next ones:
//!
//! - `admin.password`: the first admin's password, random. The auth service gets the
//!   file (`ADMIN_PASSWORD_FILE`) and creates the `admin` account with it at start,
//!   before the gateway opens, so nobody can register `admin` first; it says in
//!   `admin.status` whether it did (`up` removes a file it made that auth did not apply);
//! - `secrets/<service>.secret`: the secret of each internal service account (the
//!   wallet's, for its calls to the gift service), given to that service only
//!   (`SERVICE_CLIENT_SECRET_FILE`);
//! - `secrets/service-accounts.json`: their client ids, roles and argon2id hashes, never
//!   the secrets, given to the auth service (`SERVICE_ACCOUNTS_FILE`), which creates or
//!   updates them at start;
//! - `secrets/revocation.key`: the key the auth service seals the revoked subjects it
//!   publishes with, given to it and to every service and the gateway, which verify
//!   tokens against those revocations (`REVOCATION_KEY_FILE`).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use auth_adapter::secret::{self, Cost, ProvisionedAccount, ServiceAccountsFile};

/// The first admin's customer id (`ADMIN_ID`).
pub const ADMIN_ID: &str = "admin";

/// A service account one of our services calls others with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Internal {
    /// The service using it (its binary's name).
    pub service: &'static str,
    pub client_id: &'static str,
    pub role: &'static str,
}

/// The internal service accounts: the wallet calls the gift service; the gateway shows
/// its token to the auth service, which believes the client addresses it passes on.
pub const INTERNAL: &[Internal] = &[
    Internal { service: "wallet", client_id: "svc-wallet", role: "service" },
    Internal { service: "gateway", client_id: "svc-gateway", role: "service" },
];

/// Where `up` put the secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub admin_password_file: PathBuf,
    /// Where the auth service says whether it applied the password file (`created`) or
    /// found the first admin there already (`exists`): `ADMIN_STATUS_FILE`.
    pub admin_status_file: PathBuf,
    pub service_accounts_file: PathBuf,
    /// The secret file of each internal service account, in [`INTERNAL`] order.
    pub secret_files: Vec<(Internal, PathBuf)>,
    pub revocation_key_file: PathBuf,
}

impl Paths {
    pub fn of(data_dir: &Path) -> Self {
        let dir = data_dir.join("secrets");
        Self {
            admin_password_file: data_dir.join("admin.password"),
            admin_status_file: data_dir.join("admin.status"),
            service_accounts_file: dir.join("service-accounts.json"),
            secret_files: INTERNAL.iter().map(|i| (*i, dir.join(format!("{}.secret", i.service)))).collect(),
            revocation_key_file: dir.join("revocation.key"),
        }
    }

    /// The secret file of `service`'s service account, if it has one.
    pub fn secret_file(&self, service: &str) -> Option<(Internal, &Path)> {
        self.secret_files.iter().find(|(i, _)| i.service == service).map(|(i, p)| (*i, p.as_path()))
    }
}

/// Creates `path` with `bytes`, readable by its owner only from the start; `false` when
/// it existed (then it is left as it is, made private if it was not).
fn create_private(path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(mut f) => {
            f.write_all(bytes)?;
            f.sync_all()?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let mode = std::fs::metadata(path)?.permissions().mode();
            if mode & 0o077 != 0 {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            }
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Makes what is missing; keeps what an earlier run made.
///
/// # Errors
/// A message naming the file that cannot be written.
pub fn prepare(data_dir: &Path) -> Result<Paths, String> {
    let paths = Paths::of(data_dir);
    let fail = |p: &Path, e: &dyn std::fmt::Display| format!("cannot write {}: {e}", p.display());
    let random = || secret::generate().map_err(|e| format!("no randomness: {e}"));
    let admin = &paths.admin_password_file;
    create_private(admin, format!("{}\n", random()?).as_bytes()).map_err(|e| fail(admin, &e))?;
    let dir = paths.service_accounts_file.parent().unwrap_or(data_dir);
    private_dir(dir).map_err(|e| fail(dir, &e))?;
    let key = &paths.revocation_key_file;
    create_private(key, format!("{}\n", random()?).as_bytes()).map_err(|e| fail(key, &e))?;
    let mut fresh = false;
    for (_, file) in &paths.secret_files {
        fresh |= create_private(file, random()?.as_bytes()).map_err(|e| fail(file, &e))?;
    }
    let accounts = &paths.service_accounts_file;
    if fresh || !accounts.exists() {
        let mut entries = Vec::new();
        for (internal, file) in &paths.secret_files {
            let secret = std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            entries.push((internal.client_id.to_owned(), internal.role.to_owned(), secret.trim().to_owned()));
        }
        let text = provision_file(&entries)?;
        secret::write_private(accounts, text.as_bytes()).map_err(|e| fail(accounts, &e))?;
    }
    Ok(paths)
}

/// The `SERVICE_ACCOUNTS_FILE` for (client id, role, secret) entries: the secrets hashed
/// with argon2id at OWASP's cost.
///
/// # Errors
/// When hashing fails.
pub fn provision_file(entries: &[(String, String, String)]) -> Result<String, String> {
    let mut file = ServiceAccountsFile::default();
    for (client_id, role, secret) in entries {
        let secret_hash = secret::hash(secret, Cost::OWASP)?;
        file.service_accounts.push(ProvisionedAccount {
            client_id: client_id.clone(),
            role: role.clone(),
            secret_hash,
        });
    }
    serde_json::to_string_pretty(&file).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_secrets_are_private_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = prepare(dir.path()).unwrap();
        let password = std::fs::read_to_string(&first.admin_password_file).unwrap();
        assert_eq!(password.trim().len(), 64);
        let (internal, wallet) = first.secret_file("wallet").unwrap();
        assert_eq!(internal.client_id, "svc-wallet");
        let key = std::fs::read_to_string(&first.revocation_key_file).unwrap();
        assert_eq!(key.trim().len(), 64);
        for p in [
            &first.admin_password_file,
            &first.service_accounts_file,
            &wallet.to_path_buf(),
            &first.revocation_key_file,
        ] {
            assert_eq!(mode(p), 0o600, "{}", p.display());
        }
        assert_eq!(mode(first.service_accounts_file.parent().unwrap()), 0o700);
        let accounts: ServiceAccountsFile =
            serde_json::from_str(&std::fs::read_to_string(&first.service_accounts_file).unwrap()).unwrap();
        let secret = std::fs::read_to_string(wallet).unwrap();
        assert_eq!(accounts.service_accounts.len(), 2, "the wallet's and the gateway's");
        assert_eq!(accounts.service_accounts[1].client_id, "svc-gateway");
        let entry = &accounts.service_accounts[0];
        assert_eq!((entry.client_id.as_str(), entry.role.as_str()), ("svc-wallet", "service"));
        assert!(secret::verify(secret.trim(), &entry.secret_hash), "the hash of the secret");
        assert!(!entry.secret_hash.contains(secret.trim()), "never the secret itself");

        // A second run keeps everything, and makes private what someone loosened.
        std::fs::set_permissions(&first.admin_password_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let again = prepare(dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(&again.admin_password_file).unwrap(), password);
        assert_eq!(mode(&again.admin_password_file), 0o600);
        let same: ServiceAccountsFile =
            serde_json::from_str(&std::fs::read_to_string(&again.service_accounts_file).unwrap()).unwrap();
        assert_eq!(same, accounts, "not re-hashed when nothing changed");
        assert_eq!(std::fs::read_to_string(&again.revocation_key_file).unwrap(), key);
    }
}
