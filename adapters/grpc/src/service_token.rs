//! A service's own token, for its internal calls (the wallet calling the gift service):
//! it logs in at the auth service as its service account (`SERVICE_CLIENT_ID` and the
//! secret in `SERVICE_CLIENT_SECRET_FILE`), keeps the token, and renews it well before it
//! expires. While it has none (the auth service not reachable yet), [`ServiceToken::current`]
//! says so and the caller answers "try again shortly" instead of calling without one.
//!
//! The token carries the role `service` and the service's own identity, never a
//! customer's: the callee authorises the caller, not whoever the caller serves.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::failover::Failover;
use contracts::pb::auth::v1 as pb;

/// Who this service is at the auth service (flags or environment).
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceAccountSettings {
    /// This service's client id at the auth service (e.g. `svc-wallet`).
    #[arg(long, env = "SERVICE_CLIENT_ID")]
    pub client_id: Option<String>,
    /// A file holding the service account's secret (readable by this service only; a
    /// Kubernetes Secret). Read again at every renewal, so a rotated secret is picked up.
    #[arg(long, env = "SERVICE_CLIENT_SECRET_FILE")]
    pub client_secret_file: Option<PathBuf>,
    /// The auth service, e.g. `http://auth:8080`; several replicas comma-separated
    /// (`http://127.0.0.1:50058,http://127.0.0.1:50068`): a token is fetched from the one
    /// that last answered, else the next.
    #[arg(long = "auth-url", env = "AUTH_URL")]
    pub auth_url: Option<String>,
}

/// A token is renewed after this share of its lifetime has passed.
const RENEW_AT: f64 = 0.7;
/// A token is not handed out in the last seconds of its life.
const SAFETY: Duration = Duration::from_secs(5);
/// How long after start the token is waited for quietly (INFO): on a first `gamectl up`
/// (all in one) the auth service starts beside us. A wait past it is a WARN, as is a
/// failure to renew once we had one.
const EXPECTED_WAIT: Duration = Duration::from_secs(30);
const FIRST_RETRY: Duration = Duration::from_millis(250);
const MAX_RETRY: Duration = Duration::from_secs(15);
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

struct Held {
    token: String,
    usable_until: Instant,
}

/// The current token of this service, kept fresh by a background task.
pub struct ServiceToken {
    held: RwLock<Option<Held>>,
    /// Wakes the keeper to fetch a new token now.
    again: Notify,
}

fn read_secret(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let secret = text.lines().next().unwrap_or_default().trim().to_owned();
    if secret.is_empty() {
        return Err(format!("{}: empty", path.display()));
    }
    Ok(secret)
}

impl ServiceToken {
    /// Checks the settings, then fetches and renews the token in the background for as
    /// long as the returned value lives.
    ///
    /// # Errors
    /// A message naming the missing or wrong setting.
    pub fn start(settings: &ServiceAccountSettings) -> Result<Arc<Self>, String> {
        let client_id = settings
            .client_id
            .clone()
            .filter(|c| !c.trim().is_empty())
            .ok_or("SERVICE_CLIENT_ID: required (this service's service account at the auth service)")?;
        let secret_file = settings
            .client_secret_file
            .clone()
            .ok_or("SERVICE_CLIENT_SECRET_FILE: required (the file holding the service account's secret)")?;
        read_secret(&secret_file).map_err(|e| format!("SERVICE_CLIENT_SECRET_FILE {e}"))?;
        let auth = Failover::from_list("AUTH_URL", settings.auth_url.as_deref().unwrap_or_default(), |e| {
            e.connect_timeout(Duration::from_secs(2)).timeout(CALL_TIMEOUT)
        })?;
        let me = Arc::new(Self { held: RwLock::new(None), again: Notify::new() });
        let keeper = Keeper { token: Arc::downgrade(&me), auth, client_id, secret_file };
        tokio::spawn(keeper.run());
        Ok(me)
    }

    /// A token, for use now (a comfortable while before it expires); `None` while this
    /// service has none.
    pub fn current(&self) -> Option<String> {
        let held = self.held.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        held.as_ref().filter(|h| Instant::now() < h.usable_until).map(|h| h.token.clone())
    }

    /// The callee refused the token (revoked, or signed by a key it no longer knows):
    /// forget it and fetch a new one now.
    pub fn invalidate(&self) {
        *self.held.write().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        self.again.notify_one();
    }
}

struct Keeper {
    token: std::sync::Weak<ServiceToken>,
    /// Every replica of the auth service.
    auth: Failover,
    client_id: String,
    secret_file: PathBuf,
}

impl Keeper {
    async fn fetch(&self) -> Result<(String, Duration), String> {
        let client_secret = read_secret(&self.secret_file)?;
        let request = pb::IssueServiceTokenRequest { client_id: self.client_id.clone(), client_secret };
        let issue = self.auth.call(|channel| {
            let request = request.clone();
            async move { pb::auth_service_client::AuthServiceClient::new(channel).issue_service_token(request).await }
        });
        let answer = tokio::time::timeout(CALL_TIMEOUT, issue)
            .await
            .map_err(|_| "the auth service did not answer in time".to_owned())?
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?
            .into_inner();
        let lifetime = Duration::from_secs(u64::try_from(answer.expires_in).unwrap_or(0).max(1));
        Ok((answer.access_token, lifetime))
    }

    async fn run(self) {
        let mut retry = FIRST_RETRY;
        let mut failing = false;
        let mut starting = Some(Instant::now());
        loop {
            let wait = match self.fetch().await {
                Ok((token, lifetime)) => {
                    let Some(me) = self.token.upgrade() else { return };
                    let now = Instant::now();
                    let usable_until = now + lifetime.saturating_sub(SAFETY).max(lifetime / 2);
                    *me.held.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
                        Some(Held { token, usable_until });
                    if failing {
                        tracing::info!(client = self.client_id, "service token obtained");
                    }
                    failing = false;
                    starting = None;
                    retry = FIRST_RETRY;
                    lifetime.mul_f64(RENEW_AT)
                }
                Err(e) => {
                    if starting.is_some_and(|t| t.elapsed() < EXPECTED_WAIT) {
                        // Auth may be starting beside us.
                        tracing::info!(client = self.client_id, error = %e, "waiting for a service token");
                    } else if !failing {
                        tracing::warn!(client = self.client_id, error = %e, "cannot get a service token yet; retrying");
                        failing = true;
                    }
                    let wait = retry;
                    retry = (retry * 2).min(MAX_RETRY);
                    wait
                }
            };
            let Some(me) = self.token.upgrade() else { return };
            let again = async { me.again.notified().await };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = again => {}
            }
        }
    }
}
