//! Token verification against JWK sets from our auth service or any configured issuer,
//! and against the revocations our auth service publishes ([`crate::revocation`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::Validation;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;

pub use crate::revocation::{Revocation, RevocationList};
use crate::revocation::{RevocationKey, Sealed};
use crate::{AuthError, Claims, Identity};

mod jwks;
use jwks::{Key, fetch, keys_of};

/// Who may sign tokens we accept (flags or environment).
#[derive(Debug, Clone, clap::Args)]
pub struct AuthSettings {
    /// Issuers (`iss`) whose tokens are accepted, comma-separated.
    #[arg(long, env = "JWT_ISSUERS", default_value = "game-rewards", value_delimiter = ',')]
    pub issuers: Vec<String>,
    /// The audience (`aud`) tokens must be meant for.
    #[arg(long, env = "JWT_AUDIENCE", default_value = "game-rewards")]
    pub audience: String,
    /// JWKS URLs (plain http), comma-separated: our auth service's
    /// `http://<auth>/.well-known/jwks.json`, a Keycloak realm's `.../protocol/openid-connect/certs`.
    #[arg(long, env = "JWKS_URLS", value_delimiter = ',')]
    pub jwks_urls: Vec<String>,
    /// JWKS files, comma-separated (e.g. an issuer's keys mounted from a ConfigMap).
    #[arg(long, env = "JWKS_FILES", value_delimiter = ',')]
    pub jwks_files: Vec<PathBuf>,
    /// Seconds between key refreshes.
    #[arg(long, env = "JWKS_REFRESH_SECONDS", default_value_t = 60)]
    pub refresh_seconds: u64,
    /// Where our auth service lists revoked tokens (plain http), comma-separated:
    /// `http://<auth>/revocations`. Without it a revoked token is accepted until it expires.
    #[arg(long, env = "REVOCATION_URLS", value_delimiter = ',')]
    pub revocation_urls: Vec<String>,
    /// A file holding the key the auth service seals revoked subjects with (the same file
    /// as its own `REVOCATION_KEY_FILE`; a Kubernetes Secret): required with
    /// `REVOCATION_URLS`.
    #[arg(long, env = "REVOCATION_KEY_FILE")]
    pub revocation_key_file: Option<PathBuf>,
    /// Seconds between refreshes of the revocations: a revoked token is refused everywhere
    /// within about this long (plus one request to the auth service).
    #[arg(long, env = "REVOCATION_REFRESH_SECONDS", default_value_t = 2.0)]
    pub revocation_refresh_seconds: f64,
}

/// Verifies bearer tokens; cheap to share (`Arc`).
pub struct Verifier {
    keys: RwLock<HashMap<String, Key>>,
    issuers: Vec<String>,
    audience: String,
    urls: Vec<String>,
    files: Vec<PathBuf>,
    /// When keys were last fetched because of an unknown key id (rate limit).
    last_forced: std::sync::Mutex<Option<Instant>>,
    /// Held while keys are fetched: a call with a key id not known yet waits for a fetch
    /// under way (the first one at start, or another call's) before it is refused.
    refreshing: tokio::sync::Mutex<()>,
    /// Sealed subject -> its tokens issued before this time (`iat`, seconds) are refused.
    /// Checked on every call, remembered tokens included, so a revocation reaches tokens
    /// already verified.
    revocations: RwLock<HashMap<Sealed, i64>>,
    /// What the subjects of the revocations are sealed with.
    revocation_key: RevocationKey,
    revocation_urls: Vec<String>,
    revocation_refresh: Duration,
    /// Tokens whose signature and claims were checked, so a client's next calls with the
    /// same token cost a lookup, not a signature check (the gateway and then the service
    /// each see every call). A hit is still refused once the token expires or its key is
    /// no longer published.
    verified: std::sync::Mutex<HashMap<String, Verified>>,
    /// Counts the changes of the revocations and of the keys: calls that last (streams)
    /// verify their token again at each ([`Self::changes`]).
    changes: tokio::sync::watch::Sender<u64>,
}

#[derive(Clone)]
struct Verified {
    /// `issued_at` included: checked against the revocations on every hit.
    identity: Identity,
    kid: String,
    exp: i64,
}

/// Verified tokens remembered at most; the memory is dropped and refilled when full.
const VERIFIED_CAPACITY: usize = 1024;

/// Seconds of clock skew tolerated on `exp` and `nbf`.
const LEEWAY: u64 = 30;
/// At most one refresh per this interval when tokens with unknown key ids arrive.
const FORCED_REFRESH_EVERY: Duration = Duration::from_secs(2);

/// How long after start a service waits quietly (INFO) for the auth service's first
/// answer: on a first `gamectl up` (all in one) auth starts beside it. A wait past it is a
/// WARN, as is any failure once it has answered.
pub const EXPECTED_WAIT: Duration = Duration::from_secs(30);

fn non_empty(list: &[String]) -> Vec<String> {
    list.iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()
}

impl Verifier {
    /// A verifier for the settings; call [`Self::refresh`] (or [`Self::spawn_refresh`]) to
    /// load keys and revocations.
    ///
    /// # Errors
    /// What is wrong with `REVOCATION_KEY_FILE`: missing (with revocation URLs),
    /// unreadable or too short.
    pub fn new(settings: &AuthSettings) -> Result<Arc<Self>, String> {
        let revocation_urls = non_empty(&settings.revocation_urls);
        let revocation_key = match &settings.revocation_key_file {
            Some(path) if !path.as_os_str().is_empty() => RevocationKey::from_file(path)?,
            _ if !revocation_urls.is_empty() => {
                return Err("required with REVOCATION_URLS (the file of the key the auth service seals revoked \
                            subjects with)"
                    .into());
            }
            _ => RevocationKey::random(),
        };
        Ok(Arc::new(Self {
            keys: RwLock::default(),
            issuers: non_empty(&settings.issuers),
            audience: settings.audience.clone(),
            urls: non_empty(&settings.jwks_urls),
            files: settings.jwks_files.iter().filter(|p| !p.as_os_str().is_empty()).cloned().collect(),
            last_forced: std::sync::Mutex::default(),
            refreshing: tokio::sync::Mutex::default(),
            revocations: RwLock::default(),
            revocation_key,
            revocation_urls,
            revocation_refresh: Duration::try_from_secs_f64(settings.revocation_refresh_seconds)
                .unwrap_or(Duration::from_secs(2))
                .max(Duration::from_millis(100)),
            verified: std::sync::Mutex::default(),
            changes: tokio::sync::watch::Sender::new(0),
        }))
    }

    /// A verifier with the given keys only (tests, or an auth service verifying its own).
    pub fn with_keys(set: &JwkSet, issuers: Vec<String>, audience: &str) -> Arc<Self> {
        Arc::new(Self {
            keys: RwLock::new(keys_of(set)),
            issuers,
            audience: audience.to_owned(),
            urls: Vec::new(),
            files: Vec::new(),
            last_forced: std::sync::Mutex::default(),
            refreshing: tokio::sync::Mutex::default(),
            revocations: RwLock::default(),
            revocation_key: RevocationKey::random(),
            revocation_urls: Vec::new(),
            revocation_refresh: Duration::from_secs(2),
            verified: std::sync::Mutex::default(),
            changes: tokio::sync::watch::Sender::new(0),
        })
    }

    /// Whether revocations are fetched (`REVOCATION_URLS`).
    pub fn has_revocation_sources(&self) -> bool {
        !self.revocation_urls.is_empty()
    }

    /// Replaces the revocations in force (the auth service sets its own from its store).
    pub fn set_revocations(&self, list: &[Revocation]) {
        let fresh = list.iter().map(|r| (self.revocation_key.seal(&r.subject), r.before)).collect();
        let mut held = self.revocations.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.replace(&mut held, fresh);
    }

    /// Puts `fresh` in force; a change is announced to [`Self::changes`].
    fn replace(&self, held: &mut HashMap<Sealed, i64>, fresh: HashMap<Sealed, i64>) {
        if *held != fresh {
            *held = fresh;
            self.changed();
        }
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Changes as they happen to what refuses a token verified before: the revocations
    /// (fetched every `REVOCATION_REFRESH_SECONDS`) and the keys. A call that lasts
    /// verifies its token again at each.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Reloads the revocations from every URL; keeps the previous ones when a source
    /// fails (an auth outage must not stop every service, nor forget a revocation).
    ///
    /// # Errors
    /// The failures, joined.
    pub async fn refresh_revocations(&self) -> Result<usize, String> {
        let mut fresh: HashMap<Sealed, i64> = HashMap::new();
        let mut errors = Vec::new();
        for url in &self.revocation_urls {
            let parsed = fetch(url).await.and_then(|b| {
                let list = serde_json::from_slice::<RevocationList>(&b).map_err(|e| format!("{url}: {e}"))?;
                self.revocation_key.open(list).map_err(|e| format!("{url}: {e}"))
            });
            match parsed {
                Ok(list) => {
                    for (subject, before) in list {
                        let b = fresh.entry(subject).or_insert(before);
                        *b = (*b).max(before);
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        let n = fresh.len();
        let mut held = self.revocations.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if errors.is_empty() {
            self.replace(&mut held, fresh);
            Ok(n)
        } else {
            let mut merged = held.clone();
            for (subject, before) in fresh {
                let b = merged.entry(subject).or_insert(before);
                *b = (*b).max(before);
            }
            self.replace(&mut held, merged);
            Err(errors.join("; "))
        }
    }

    fn is_revoked(&self, identity: &Identity) -> bool {
        let sealed = self.revocation_key.seal(&identity.customer_id);
        let before = self.revocations.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(&sealed).copied();
        crate::revoked(identity.issued_at, before)
    }

    pub fn has_sources(&self) -> bool {
        !self.urls.is_empty() || !self.files.is_empty()
    }

    /// Reloads every source; keeps the previous keys of a source that fails.
    ///
    /// # Errors
    /// The failures, joined (the keys that could be loaded are in use anyway).
    pub async fn refresh(&self) -> Result<usize, String> {
        let _one_at_a_time = self.refreshing.lock().await;
        let mut fresh = HashMap::new();
        let mut errors = Vec::new();
        for url in &self.urls {
            match fetch(url).await.and_then(|b| serde_json::from_slice::<JwkSet>(&b).map_err(|e| format!("{url}: {e}")))
            {
                Ok(set) => fresh.extend(keys_of(&set)),
                Err(e) => errors.push(e),
            }
        }
        for file in &self.files {
            match std::fs::read(file)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<JwkSet>(&b).map_err(|e| e.to_string()))
            {
                Ok(set) => fresh.extend(keys_of(&set)),
                Err(e) => errors.push(format!("{}: {e}", file.display())),
            }
        }
        let n = fresh.len();
        {
            let mut keys = self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            let before: std::collections::HashSet<String> = keys.keys().cloned().collect();
            if errors.is_empty() {
                *keys = fresh;
            } else {
                keys.extend(fresh);
            }
            // A key no longer published refuses the tokens it signed.
            if keys.len() != before.len() || keys.keys().any(|k| !before.contains(k)) {
                self.changed();
            }
        }
        if errors.is_empty() { Ok(n) } else { Err(errors.join("; ")) }
    }

    /// Refreshes the keys every `every`, and the revocations every
    /// `REVOCATION_REFRESH_SECONDS`, for as long as the process runs.
    pub fn spawn_refresh(self: &Arc<Self>, every: Duration) {
        if self.has_revocation_sources() {
            let me = Arc::downgrade(self);
            let interval = self.revocation_refresh;
            tokio::spawn(async move {
                let mut failing = false;
                let mut start = Some(Instant::now());
                loop {
                    let Some(v) = me.upgrade() else { return };
                    match v.refresh_revocations().await {
                        // Before the first answer: auth may be starting beside us.
                        Err(e) if start.is_some_and(|t| t.elapsed() < EXPECTED_WAIT) => {
                            tracing::info!(error = %e, "waiting for the auth service's revocations");
                        }
                        Err(e) if !failing => {
                            tracing::warn!(error = %e, "revocations refresh failed; keeping the ones we have");
                            failing = true;
                        }
                        Err(_) => {}
                        Ok(_) => {
                            failing = false;
                            start = None;
                        }
                    }
                    drop(v);
                    tokio::time::sleep(interval).await;
                }
            });
        }
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut start = Some(Instant::now());
            loop {
                let Some(v) = me.upgrade() else { return };
                match v.refresh().await {
                    // Before the first answer: auth may be starting beside us.
                    Err(e) if start.is_some_and(|t| t.elapsed() < EXPECTED_WAIT) => {
                        tracing::info!(error = %e, "waiting for the auth service's keys (JWKS)");
                    }
                    Err(e) => tracing::warn!(error = %e, "JWKS refresh failed; keeping the keys we have"),
                    Ok(_) => start = None,
                }
                drop(v);
                tokio::time::sleep(every.max(Duration::from_secs(1))).await;
            }
        });
    }

    /// Verifies a token with the keys at hand.
    ///
    /// # Errors
    /// [`AuthError`] saying why the token is refused.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let identity = self.remembered(token).map_or_else(|| self.check(token), Ok)?;
        if self.is_revoked(&identity) {
            return Err(AuthError::Revoked);
        }
        Ok(identity)
    }

    /// A token verified before that is still within its `exp` and whose key is still
    /// published.
    fn remembered(&self, token: &str) -> Option<Identity> {
        let hit = self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(token).cloned()?;
        let now = jsonwebtoken::get_current_timestamp().cast_signed();
        let key_known = self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner).contains_key(&hit.kid);
        (key_known && hit.exp.saturating_add(LEEWAY.cast_signed()) >= now).then_some(hit.identity)
    }

    fn remember(&self, token: &str, verified: Verified) {
        let mut memory = self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if memory.len() >= VERIFIED_CAPACITY {
            memory.clear();
        }
        memory.insert(token.to_owned(), verified);
    }

    /// The full check: key, algorithm, signature, issuer, audience, times.
    fn check(&self, token: &str) -> Result<Identity, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        let kid = header.kid.ok_or(AuthError::Malformed)?;
        let key = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&kid)
            .cloned()
            .ok_or(AuthError::UnknownKey)?;
        // The key decides the algorithm, never the token (no "alg" confusion).
        if header.alg != key.algorithm {
            return Err(AuthError::BadAlgorithm);
        }
        let mut validation = Validation::new(key.algorithm);
        validation.leeway = LEEWAY;
        validation.validate_nbf = true;
        validation.set_issuer(&self.issuers);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
            ErrorKind::InvalidAudience => AuthError::WrongAudience,
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::InvalidAlgorithm => AuthError::BadAlgorithm,
            _ => AuthError::Malformed,
        })?;
        if data.claims.sub.trim().is_empty() {
            return Err(AuthError::Malformed);
        }
        let exp = data.claims.exp;
        let identity = Identity {
            role: data.claims.role(),
            customer_id: data.claims.sub,
            token: token.to_owned(),
            issued_at: data.claims.iat,
            expires_at: exp,
        };
        self.remember(token, Verified { identity: identity.clone(), kid, exp });
        Ok(identity)
    }

    /// Verifies a token; a key id we do not know yet makes us reload the keys first (at
    /// most every couple of seconds), so a rotated key is picked up at once.
    ///
    /// # Errors
    /// [`AuthError`] saying why the token is refused.
    pub async fn authenticate(&self, token: &str) -> Result<Identity, AuthError> {
        match self.verify(token) {
            Err(AuthError::UnknownKey) if self.has_sources() => {
                // A fetch under way may bring the key (a replica just started is still
                // loading its keys while the first calls arrive): wait for it, then look again.
                drop(self.refreshing.lock().await);
                match self.verify(token) {
                    Err(AuthError::UnknownKey) if self.may_force_refresh() => {
                        if let Err(e) = self.refresh().await {
                            tracing::warn!(error = %e, "JWKS refresh failed");
                        }
                        self.verify(token)
                    }
                    other => other,
                }
            }
            other => other,
        }
    }

    fn may_force_refresh(&self) -> bool {
        let mut last = self.last_forced.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_some_and(|t| t.elapsed() < FORCED_REFRESH_EVERY) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }
}

#[cfg(test)]
mod tests;
