//! Who gamectl calls as: the token `gamectl login` got from the auth service and keeps
//! in `<data-dir>/token` (readable by its owner only), or one given with `--token`;
//! what such a token says about its holder (read, not verified: the services verify);
//! and the password `register` and `login` send (or a service account's secret).

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::cli::Global;

pub const TOKEN_FILE: &str = "token";

/// `--token-file`, else `<data-dir>/token`.
pub fn token_path(global: &Global) -> PathBuf {
    global.token_file.clone().unwrap_or_else(|| global.data_dir.join(TOKEN_FILE))
}

/// Stores a token so that only its owner can read it (0600), replacing any earlier one
/// whole (never a half-written file).
///
/// # Errors
/// When the directory cannot be created or written.
pub fn save_token(path: &Path, token: &str) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map_or_else(|| TOKEN_FILE.into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        // The mode above is filtered by the umask; say it again, exactly.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(token.trim().as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The stored token, `None` when there is none.
///
/// # Errors
/// When the file exists but cannot be read.
pub fn load_token(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t.trim().to_owned()).filter(|t| !t.is_empty())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Forgets the stored token; `false` when there was none.
///
/// # Errors
/// When it exists but cannot be removed.
pub fn remove_token(path: &Path) -> std::io::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Where the token a command sends comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--token` or `GAMECTL_TOKEN`.
    Given,
    /// Stored by `gamectl login` in this file.
    File(PathBuf),
}

/// The token to send: `--token` (or `GAMECTL_TOKEN`), else the stored one, else none
/// (public calls work without; the others answer UNAUTHENTICATED).
///
/// # Errors
/// When the token file exists but cannot be read.
pub fn current(global: &Global) -> Result<Option<(String, Source)>, String> {
    if let Some(t) = global.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(Some((t.to_owned(), Source::Given)));
    }
    let path = token_path(global);
    load_token(&path)
        .map(|t| t.map(|t| (t, Source::File(path.clone()))))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// What a token says about its holder (its payload, not verified).
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    /// The customer id.
    pub sub: String,
    /// `player`, `admin`, `game_server` or `service` (empty when the token has no role claim).
    pub role: String,
    /// Expiry, seconds since the epoch.
    pub exp: Option<i64>,
    pub iss: Option<String>,
    /// The whole payload, for `--json`.
    pub payload: Value,
}

impl Claims {
    /// Whether the token had expired at `now` (seconds since the epoch).
    pub fn expired_at(&self, now: i64) -> bool {
        self.exp.is_some_and(|exp| exp <= now)
    }
}

/// Reads the payload of a JWT without verifying its signature (only the services can
/// tell whether to trust it; this is for showing who a token is for).
///
/// # Errors
/// When the text is not a JWT with a JSON payload naming a subject.
pub fn decode(token: &str) -> Result<Claims, String> {
    let parts: Vec<&str> = token.trim().split('.').collect();
    let [_, payload, _] = parts.as_slice() else {
        return Err("not a JWT (expected three dot-separated parts)".into());
    };
    let bytes = base64url(payload).ok_or("not a JWT (the payload is not base64url)")?;
    let payload: Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("not a JWT (the payload is not JSON: {e})"))?;
    let text = |k: &str| payload.get(k).and_then(Value::as_str).map(str::to_owned);
    let sub = text("sub").filter(|s| !s.is_empty()).ok_or("the token names no subject (sub)")?;
    Ok(Claims {
        sub,
        role: text("role").unwrap_or_default(),
        exp: payload.get("exp").and_then(Value::as_i64),
        iss: text("iss"),
        payload,
    })
}

/// RFC 4648 §5 (URL-safe alphabet), padding optional.
fn base64url(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

/// The password to send: `--password` (or `GAMECTL_PASSWORD`), else asked on the
/// terminal without echo (twice with `confirm`), else one line read from stdin.
///
/// # Errors
/// When none is given, the two entries differ, or stdin cannot be read.
pub fn password(given: Option<String>, customer: &str, confirm: bool) -> Result<String, String> {
    let ask = Ask {
        prompt: &format!("Password for {customer}: "),
        what: "password",
        how: "pass --password, set GAMECTL_PASSWORD",
    };
    ask.read(given, confirm)
}

/// A service account's secret: `--secret` (or `GAMECTL_SERVICE_SECRET`), else asked on the
/// terminal without echo, else one line read from stdin.
///
/// # Errors
/// When none is given or stdin cannot be read.
pub fn service_secret(given: Option<String>, client_id: &str) -> Result<String, String> {
    let ask = Ask {
        prompt: &format!("Secret of {client_id}: "),
        what: "secret",
        how: "pass --secret, set GAMECTL_SERVICE_SECRET",
    };
    ask.read(given, false)
}

/// How to ask for something secret.
struct Ask<'a> {
    prompt: &'a str,
    /// What it is, in messages.
    what: &'a str,
    /// The ways to give it without being asked.
    how: &'a str,
}

impl Ask<'_> {
    fn read(&self, given: Option<String>, confirm: bool) -> Result<String, String> {
        let value = match given {
            Some(p) => p,
            None if std::io::stdin().is_terminal() => {
                let first = prompt(self.prompt)?;
                if confirm && prompt("Repeat it: ")? != first {
                    return Err(format!("the {}s differ", self.what));
                }
                first
            }
            None => read_line().map_err(|e| format!("cannot read the {} from stdin: {e}", self.what))?,
        };
        if value.is_empty() {
            return Err(format!("no {}: {}, or type it when asked", self.what, self.how));
        }
        Ok(value)
    }
}

fn read_line() -> std::io::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// Turns the terminal's echo off (with `stty`, on stdin) until dropped.
struct NoEcho(bool);

impl NoEcho {
    fn new() -> Self {
        Self(stty("-echo"))
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        if self.0 {
            stty("echo");
        }
    }
}

fn stty(arg: &str) -> bool {
    std::process::Command::new("stty")
        .arg(arg)
        .stdin(std::process::Stdio::inherit())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn prompt(text: &str) -> Result<String, String> {
    let mut err = std::io::stderr();
    let _ = write!(err, "{text}");
    let _ = err.flush();
    let hidden = NoEcho::new();
    let line = read_line();
    let echo_was_off = hidden.0;
    drop(hidden);
    if echo_was_off {
        // The Enter the user typed was not echoed either.
        let _ = writeln!(err);
    }
    line.map_err(|e| format!("cannot read it: {e}"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;
    use std::time::Duration;

    use super::*;

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gamectl-auth-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn global(data_dir: &Path, token: Option<&str>, token_file: Option<&Path>) -> Global {
        Global {
            endpoint: None,
            direct: false,
            data_dir: data_dir.to_path_buf(),
            json: false,
            token: token.map(str::to_owned),
            token_file: token_file.map(Path::to_path_buf),
        }
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_stored_token_is_readable_by_its_owner_only() {
        let dir = temp_dir();
        let path = dir.join("sub/token");
        save_token(&path, "aaa.bbb.ccc\n").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(load_token(&path).unwrap().as_deref(), Some("aaa.bbb.ccc"));
        // A file someone loosened is replaced by a private one.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        save_token(&path, "ddd.eee.fff").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(load_token(&path).unwrap().as_deref(), Some("ddd.eee.fff"));
        // Nothing left behind but the token.
        let names: Vec<_> = std::fs::read_dir(dir.join("sub")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["token"]);
        assert!(remove_token(&path).unwrap());
        assert!(!remove_token(&path).unwrap());
        assert_eq!(load_token(&path).unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_token_sent_is_the_given_one_else_the_stored_one_else_none() {
        let dir = temp_dir();
        let g = global(&dir, None, None);
        assert_eq!(token_path(&g), dir.join("token"));
        assert_eq!(current(&g).unwrap(), None);
        save_token(&token_path(&g), "stored").unwrap();
        assert_eq!(current(&g).unwrap(), Some(("stored".into(), Source::File(dir.join("token")))));
        let given = global(&dir, Some(" given "), None);
        assert_eq!(current(&given).unwrap(), Some(("given".into(), Source::Given)));
        let elsewhere = dir.join("other-token");
        let g = global(&dir, None, Some(&elsewhere));
        assert_eq!(token_path(&g), elsewhere);
        assert_eq!(current(&g).unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn whoami_reads_subject_role_and_expiry_of_a_real_token() {
        let dir = temp_dir();
        let ring = auth_adapter::KeyRing::open(dir.join("keys"), Duration::from_secs(3600)).unwrap();
        let issuer = auth_adapter::TokenIssuer {
            ring,
            issuer: "game-rewards".into(),
            audience: "game-rewards".into(),
            ttl: Duration::from_secs(600),
        };
        let now = chrono::Utc::now().timestamp();
        let (token, _) = issuer.issue("alice", auth_adapter::Role::Player).unwrap();
        let c = decode(&token).unwrap();
        assert_eq!((c.sub.as_str(), c.role.as_str(), c.iss.as_deref()), ("alice", "player", Some("game-rewards")));
        let exp = c.exp.unwrap();
        assert!((now + 590..=now + 610).contains(&exp), "{exp} vs {now}");
        assert!(!c.expired_at(now));
        assert!(c.expired_at(exp));
        let (token, _) = issuer.issue("ops", auth_adapter::Role::Admin).unwrap();
        assert_eq!(decode(&token).unwrap().role, "admin");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn whoami_decodes_unpadded_base64url_of_any_length() {
        // {"sub":"bob?>","exp":1} has bytes that need '-' and '_' in base64url.
        for payload in [r#"{"sub":"b"}"#, r#"{"sub":"bo"}"#, r#"{"sub":"bob?>~","exp":1}"#] {
            let encoded = encode(payload.as_bytes());
            let c = decode(&format!("e30.{encoded}.sig")).unwrap();
            assert_eq!(c.payload, serde_json::from_str::<Value>(payload).unwrap());
            assert_eq!(c.role, "");
            let padded = format!("{encoded}{}", "=".repeat((4 - encoded.len() % 4) % 4));
            assert_eq!(base64url(&padded), Some(payload.as_bytes().to_vec()));
        }
        assert_eq!(decode(&format!("e30.{}.s", encode(br#"{"sub":"bob?>~","exp":1}"#))).unwrap().exp, Some(1));
    }

    #[test]
    fn what_is_not_a_token_says_so() {
        assert!(decode("abc").unwrap_err().contains("three"));
        assert!(decode("a.b*c.d").unwrap_err().contains("base64url"));
        assert!(decode(&format!("a.{}.c", encode(b"nope"))).unwrap_err().contains("JSON"));
        assert!(decode(&format!("a.{}.c", encode(br#"{"role":"admin"}"#))).unwrap_err().contains("sub"));
    }

    fn encode(bytes: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn a_given_password_is_used_and_an_empty_one_refused() {
        assert_eq!(password(Some("s3cret-pass".into()), "alice", true).unwrap(), "s3cret-pass");
        assert!(password(Some(String::new()), "alice", false).unwrap_err().contains("--password"));
        assert!(service_secret(Some(String::new()), "svc-gs").unwrap_err().contains("--secret"));
        assert_eq!(service_secret(Some("s3cret".into()), "svc-gs").unwrap(), "s3cret");
    }
}
