//! Identity for a system run by `up`, until the auth service does it: `up` keeps a
//! signing key in `<data-dir>/keys` and has every service trust it through
//! `JWKS_FILES=<data-dir>/jwks.json`; client commands sign a short-lived token with that
//! key, as the customer the command is about (or as an admin when it names none). A
//! token given with `--token` is sent as it is instead.

use std::path::{Path, PathBuf};
use std::time::Duration;

use auth_adapter::{KeyRing, Role, TokenIssuer};

use crate::cli::{Command, Global};

const KEYS_DIR: &str = "keys";
const JWKS_FILE: &str = "jwks.json";
/// What the services accept by default (`JWT_ISSUERS`, `JWT_AUDIENCE`).
const ISSUER: &str = "game-rewards";
const AUDIENCE: &str = "game-rewards";
/// The subject of admin tokens.
pub const ADMIN: &str = "operator";
/// Lifetime of the tokens gamectl signs: one command's worth, with room for slow clocks.
const TOKEN_TTL: Duration = Duration::from_secs(300);
/// How long a retired key keeps verifying: the auth service's default token lifetime,
/// since it signs with the same ring.
const RING_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// Who a command acts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller<'a> {
    Customer(&'a str),
    Admin,
}

/// The customer a command is about, else an admin.
pub fn caller(command: &Command) -> Caller<'_> {
    match command {
        Command::Achieve { customer_id, .. }
        | Command::Missions { customer_id }
        | Command::Rewards { customer_id }
        | Command::Wallet { customer_id }
        | Command::Mypage { customer_id, .. }
        | Command::Exchange { customer_id, .. }
        | Command::Gifts { customer_id }
        | Command::Notifications { customer_id }
        | Command::UseGift { customer_id: Some(customer_id), .. } => Caller::Customer(customer_id),
        Command::Up(_)
        | Command::Mission { .. }
        | Command::Catalog
        | Command::Reward { .. }
        | Command::ExchangeStatus
        | Command::Gift { .. }
        | Command::GiftCatalog
        | Command::UseGift { customer_id: None, .. } => Caller::Admin,
    }
}

/// The signing keys of a data directory (also the auth service's `AUTH_KEYS_DIR`).
pub fn keys_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(KEYS_DIR)
}

fn ring(data_dir: &Path) -> std::io::Result<KeyRing> {
    KeyRing::open(keys_dir(data_dir), RING_TOKEN_TTL)
}

/// Makes (or reuses) the signing key and writes the JWKS the services read.
///
/// # Errors
/// When the data directory is not writable.
pub fn prepare(data_dir: &Path) -> Result<PathBuf, String> {
    let keys = keys_dir(data_dir);
    let jwks = ring(data_dir)
        .and_then(|r| r.jwks())
        .map_err(|e| format!("cannot make a signing key in {}: {e}", keys.display()))?;
    let path = data_dir.join(JWKS_FILE);
    let tmp = data_dir.join(format!(".{JWKS_FILE}.tmp"));
    let text = serde_json::to_vec(&jwks).map_err(|e| format!("cannot write the JWKS: {e}"))?;
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// The bearer token to send: `--token`, else one signed with the data directory's key
/// when `up` made one there, else none (the service will say UNAUTHENTICATED).
///
/// # Errors
/// When the key exists but cannot be read.
pub fn token(global: &Global, caller: Caller<'_>) -> Result<Option<String>, String> {
    if let Some(t) = global.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(Some(t.to_owned()));
    }
    let keys = keys_dir(&global.data_dir);
    if !keys.is_dir() {
        return Ok(None);
    }
    let issuer = TokenIssuer {
        ring: ring(&global.data_dir).map_err(|e| format!("cannot read {}: {e}", keys.display()))?,
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        ttl: TOKEN_TTL,
    };
    let (subject, role) = match caller {
        Caller::Customer(c) => (c, Role::Customer),
        Caller::Admin => (ADMIN, Role::Admin),
    };
    issuer
        .issue(subject, role)
        .map(|(t, _)| Some(t))
        .map_err(|e| format!("cannot sign a token with {}: {e}", keys.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(data_dir: &Path, token: Option<&str>) -> Global {
        Global { endpoint: None, data_dir: data_dir.to_path_buf(), json: false, token: token.map(str::to_owned) }
    }

    #[test]
    fn a_command_acts_as_its_customer_or_as_an_admin() {
        let exchange = Command::Exchange {
            customer_id: "c-1".into(),
            reward_id: "r-1".into(),
            gift_code: "coffee".into(),
            request_id: None,
        };
        assert_eq!(caller(&exchange), Caller::Customer("c-1"));
        let use_own = Command::UseGift { gift_id: "g-1".into(), customer_id: Some("c-2".into()) };
        assert_eq!(caller(&use_own), Caller::Customer("c-2"));
        let use_any = Command::UseGift { gift_id: "g-1".into(), customer_id: None };
        assert_eq!(caller(&use_any), Caller::Admin);
        assert_eq!(caller(&Command::ExchangeStatus), Caller::Admin);
        assert_eq!(caller(&Command::Notifications { customer_id: "c-3".into() }), Caller::Customer("c-3"));
    }

    #[test]
    fn a_given_token_is_sent_as_it_is_and_without_keys_none_is_made() {
        let nowhere = Path::new("/nonexistent-gamectl-dir");
        assert_eq!(token(&global(nowhere, Some(" abc ")), Caller::Admin).unwrap(), Some("abc".into()));
        assert_eq!(token(&global(nowhere, None), Caller::Admin).unwrap(), None);
    }

    #[test]
    fn tokens_signed_with_the_prepared_key_verify_against_the_written_jwks() {
        let dir = std::env::temp_dir().join(format!("gamectl-auth-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let jwks = prepare(&dir).unwrap();
        assert_eq!(jwks, dir.join("jwks.json"));
        let set = serde_json::from_slice(&std::fs::read(&jwks).unwrap()).unwrap();
        let verifier = auth_adapter::Verifier::with_keys(&set, vec![ISSUER.into()], AUDIENCE);
        let t = token(&global(&dir, None), Caller::Customer("c-1")).unwrap().unwrap();
        let who = verifier.verify(&t).unwrap();
        assert_eq!((who.customer_id.as_str(), who.role), ("c-1", Role::Customer));
        let t = token(&global(&dir, None), Caller::Admin).unwrap().unwrap();
        assert!(verifier.verify(&t).unwrap().is_admin());
        // A second `up` on the same directory keeps the key: tokens stay valid.
        prepare(&dir).unwrap();
        assert!(verifier.verify(&t).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
