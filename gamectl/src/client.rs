//! The API subcommands: find the service, call it, print the answer.
//!
//! Exit codes: 0 done, 1 the service answered with an error, 2 it could not be reached.

use std::fmt;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use grpc_adapter::pb::admin::v1 as admin_pb;
use grpc_adapter::pb::auth::v1 as auth_pb;
use grpc_adapter::pb::{gift, mission, mypage, notification, reward, wallet};
use grpc_adapter::status::code_name;
use serde_json::{Value, json};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::cli::{self, Command, Global};
use crate::output;
use crate::{auth, endpoints};

/// How long `rebuild` waits for the view to be rebuilt.
const REBUILD_DEADLINE: Duration = Duration::from_secs(30 * 60);

/// Why a command failed, and so what it prints and how it exits.
#[derive(Debug)]
pub enum Failure {
    /// No address for the service.
    Resolve { service: &'static str, why: String },
    /// The address is known but nothing answers there.
    Connect { what: String, addr: String, why: String },
    /// No token, or no customer, to call with.
    Token(String),
    /// Local trouble: a password that cannot be read, a token that cannot be stored.
    Local(String),
    /// The service answered with an error status.
    Status(tonic::Status),
    /// `register` or `login` was refused: said as it is (logging in again is no advice).
    Refused(tonic::Status),
}

impl Failure {
    fn exit_code(&self) -> ExitCode {
        match self {
            Self::Status(_) | Self::Refused(_) => ExitCode::from(1),
            Self::Resolve { .. } | Self::Connect { .. } | Self::Token(_) | Self::Local(_) => ExitCode::from(2),
        }
    }

    fn refused(self) -> Self {
        match self {
            Self::Status(s) => Self::Refused(s),
            other => other,
        }
    }
}

fn status_text(f: &mut fmt::Formatter<'_>, s: &tonic::Status) -> fmt::Result {
    write!(f, "{}: {}", code_name(s.code()), s.message())?;
    match retry_after(s) {
        Some(secs) => write!(f, "; retry after {secs} s"),
        None => Ok(()),
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Resolve { service, why } => write!(f, "no address for {service}: {why}"),
            Self::Token(why) | Self::Local(why) => f.write_str(why),
            Self::Connect { what, addr, why } => {
                write!(f, "cannot reach {what} at {addr}: {why} (is `gamectl up` running? see --endpoint, --data-dir)")
            }
            Self::Status(s) => {
                status_text(f, s)?;
                if s.code() == tonic::Code::Unauthenticated {
                    f.write_str(" (run gamectl login)")?;
                }
                Ok(())
            }
            Self::Refused(s) => status_text(f, s),
        }
    }
}

impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Self {
        Self::Status(s)
    }
}

/// The `retry-after` metadata (seconds) of an UNAVAILABLE answer (e.g. from the wallet
/// while the gift service is failing) or a RESOURCE_EXHAUSTED one (the gateway's rate
/// limit, the auth service's lock-out after failed logins).
pub fn retry_after(s: &tonic::Status) -> Option<&str> {
    if !matches!(s.code(), tonic::Code::Unavailable | tonic::Code::ResourceExhausted) {
        return None;
    }
    s.metadata().get("retry-after").and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// An error and its causes on one line: tonic's own message ("transport error") says
/// little without them.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        next = cause.source();
    }
    s
}

pub async fn run(global: &Global, command: Command) -> ExitCode {
    match call(global, command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            let _ = writeln!(std::io::stderr(), "error: {f}");
            f.exit_code()
        }
    }
}

/// A channel whose every call carries the bearer token (if any).
pub type Authed = InterceptedService<Channel, Bearer>;

#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// How this command reaches services: where, and with which token.
struct Conn<'a> {
    global: &'a Global,
    bearer: Bearer,
    /// Who the token is for, when there is one.
    claims: Option<auth::Claims>,
}

impl<'a> Conn<'a> {
    fn new(global: &'a Global) -> Result<Self, Failure> {
        let token = auth::current(global).map_err(Failure::Token)?;
        let value = token
            .as_ref()
            .map(|(t, _)| {
                format!("Bearer {t}")
                    .parse()
                    .map_err(|_| Failure::Token("the token is not a valid header value (run gamectl login)".into()))
            })
            .transpose()?;
        let claims = token.and_then(|(t, _)| auth::decode(&t).ok());
        Ok(Self { global, bearer: Bearer(value), claims })
    }

    /// The customer a command is about: the one it names, else the one logged in.
    fn customer(&self, named: Option<String>) -> Result<String, Failure> {
        if let Some(c) = named {
            return Ok(c);
        }
        self.claims.as_ref().map(|c| c.sub.clone()).ok_or_else(|| {
            Failure::Token("name the customer, or log in to act as yourself: gamectl login <customer-id>".into())
        })
    }

    async fn connect(&self, service: &'static str) -> Result<Authed, Failure> {
        let global = self.global;
        let target = endpoints::resolve(service, global.endpoint.as_deref(), global.direct, &global.data_dir)
            .map_err(|why| Failure::Resolve { service, why })?;
        let addr = target.url;
        let endpoint = Endpoint::from_shared(addr.clone())
            .map_err(|e| Failure::Resolve { service, why: format!("{addr} is not a valid address: {e}") })?;
        let channel = endpoint
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| Failure::Connect { what: target.what, addr, why: chain(&e) })?;
        Ok(InterceptedService::new(channel, self.bearer.clone()))
    }

    async fn auth_client(&self) -> Result<auth_pb::auth_service_client::AuthServiceClient<Authed>, Failure> {
        Ok(auth_pb::auth_service_client::AuthServiceClient::new(self.connect("auth").await?))
    }
}

/// Prints JSON (pretty) or text, ignoring a closed stdout.
/// The page `paging` asks for, or with `--all` every page: the items, and the token of
/// the page after them (empty at the end).
async fn paged<T, F, Fut>(paging: &cli::Paging, mut fetch: F) -> Result<(Vec<T>, String), Failure>
where
    F: FnMut(i32, String) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, String), Failure>>,
{
    let size = paging.page_size.unwrap_or(0);
    let (mut items, mut token) = (Vec::new(), paging.page_token.clone().unwrap_or_default());
    loop {
        let (page, next) = fetch(size, token).await?;
        items.extend(page);
        if !paging.all || next.is_empty() {
            return Ok((items, next));
        }
        token = next;
    }
}

/// A list as JSON (`{"<key>": [...], "nextPageToken": "..."}`) or text (with how to read on).
fn emit_list<T>(
    global: &Global,
    key: &str,
    (items, next): &(Vec<T>, String),
    json_of: impl Fn(&T) -> Value,
    text_of: impl FnOnce(&[T]) -> String,
) {
    emit(
        global,
        || json!({ key: items.iter().map(json_of).collect::<Vec<_>>(), "nextPageToken": next }),
        || output::with_next_page(text_of(items), next),
    );
}

fn emit(global: &Global, json: impl FnOnce() -> Value, text: impl FnOnce() -> String) {
    let out = if global.json { serde_json::to_string_pretty(&json()).unwrap_or_default() } else { text() };
    let _ = writeln!(std::io::stdout(), "{out}");
}

async fn call(global: &Global, command: Command) -> Result<(), Failure> {
    let conn = Conn::new(global)?;
    match command {
        Command::Up(_) | Command::Serve(_) | Command::Status(_) => {
            unreachable!("`up`, `serve` and `status` are not API calls")
        }
        Command::Dlq(args) => {
            let c = admin_pb::dead_letter_service_client::DeadLetterServiceClient::new(conn.connect("ops").await?);
            crate::dlq::via_gateway(global, c, args.command).await?;
        }
        Command::Register { customer_id, password } => {
            let password = auth::password(password, &customer_id, true).map_err(Failure::Local)?;
            let r = conn
                .auth_client()
                .await?
                .register_customer(auth_pb::RegisterCustomerRequest { customer_id, password })
                .await
                .map_err(|s| Failure::from(s).refused())?
                .into_inner();
            emit(
                global,
                || json!({"customerId": r.customer_id}),
                || format!("registered {} (next: gamectl login {})", r.customer_id, r.customer_id),
            );
        }
        Command::Login { customer_id, password, service_account, secret } => {
            let (r, named) = match (customer_id, service_account) {
                (_, Some(client_id)) => {
                    let client_secret = auth::service_secret(secret, &client_id).map_err(Failure::Local)?;
                    let r = conn
                        .auth_client()
                        .await?
                        .issue_service_token(auth_pb::IssueServiceTokenRequest {
                            client_id: client_id.clone(),
                            client_secret,
                        })
                        .await
                        .map_err(|s| Failure::from(s).refused())?;
                    (r.into_inner(), client_id)
                }
                (Some(customer_id), None) => {
                    let password = auth::password(password, &customer_id, false).map_err(Failure::Local)?;
                    let r = conn
                        .auth_client()
                        .await?
                        .issue_token(auth_pb::IssueTokenRequest { customer_id: customer_id.clone(), password })
                        .await
                        .map_err(|s| Failure::from(s).refused())?;
                    (r.into_inner(), customer_id)
                }
                (None, None) => return Err(Failure::Local("login: name a customer, or --service-account".into())),
            };
            let path = auth::token_path(global);
            auth::save_token(&path, &r.access_token)
                .map_err(|e| Failure::Local(format!("cannot store the token in {}: {e}", path.display())))?;
            let claims = auth::decode(&r.access_token).ok();
            let sub = claims.as_ref().map_or(named, |c| c.sub.clone());
            let role = claims.map(|c| c.role).unwrap_or_default();
            emit(
                global,
                || json!({"customerId": sub, "role": role, "expiresIn": r.expires_in, "tokenFile": path}),
                || {
                    format!(
                        "logged in as {sub} ({role}) for {}; token in {}",
                        output::duration(r.expires_in),
                        path.display()
                    )
                },
            );
        }
        Command::Logout => {
            let path = auth::token_path(global);
            let removed = auth::remove_token(&path)
                .map_err(|e| Failure::Local(format!("cannot remove {}: {e}", path.display())))?;
            emit(
                global,
                || json!({"loggedOut": removed, "tokenFile": path}),
                || if removed { "logged out".into() } else { "not logged in".into() },
            );
        }
        Command::Whoami => {
            let (token, source) = auth::current(global)
                .map_err(Failure::Token)?
                .ok_or_else(|| Failure::Token("not logged in (run gamectl login)".into()))?;
            let c = auth::decode(&token).map_err(|e| Failure::Token(format!("the token is unreadable: {e}")))?;
            let now = chrono::Utc::now().timestamp();
            let from = match source {
                auth::Source::Given => "--token".to_owned(),
                auth::Source::File(p) => p.display().to_string(),
            };
            emit(global, || output::whoami_json(&c, now, &from), || output::whoami_text(&c, now, &from));
        }
        Command::RotateKey => {
            let r =
                conn.auth_client().await?.rotate_signing_key(auth_pb::RotateSigningKeyRequest {}).await?.into_inner();
            emit(
                global,
                || json!({"keyId": r.key_id}),
                || {
                    format!(
                        "signing with key {}; tokens signed with earlier keys stay valid until they expire",
                        r.key_id
                    )
                },
            );
        }
        Command::Role { command } => {
            let mut c = conn.auth_client().await?;
            let (customer_id, role, changed, granted) = match command {
                cli::RoleCommand::Grant { customer_id, role } => {
                    let r = c.grant_role(auth_pb::GrantRoleRequest { customer_id, role }).await?.into_inner();
                    (r.customer_id, r.role, r.changed, true)
                }
                cli::RoleCommand::Revoke { customer_id, role } => {
                    let r = c.revoke_role(auth_pb::RevokeRoleRequest { customer_id, role }).await?.into_inner();
                    (r.customer_id, r.role, r.changed, false)
                }
            };
            emit(
                global,
                || json!({"customerId": customer_id, "role": role, "changed": changed}),
                || match (granted, changed) {
                    (true, true) => format!("{customer_id} is now {role} (from their next login)"),
                    (false, true) => format!("{customer_id} is now {role}; their tokens are revoked"),
                    (_, false) => format!("{customer_id} is {role}: nothing changed"),
                },
            );
        }
        Command::Revoke { customer_id } => {
            let r = conn
                .auth_client()
                .await?
                .revoke_tokens(auth_pb::RevokeTokensRequest { customer_id })
                .await?
                .into_inner();
            let before = output::timestamp(r.revoked_before.as_ref()).unwrap_or_default();
            emit(
                global,
                || json!({"customerId": r.customer_id, "revokedBefore": before}),
                || format!("every token of {} issued before {before} is refused from now on", r.customer_id),
            );
        }
        Command::ServiceAccount { command: cli::ServiceAccountCommand::Create { name, role } } => {
            let r = conn
                .auth_client()
                .await?
                .create_service_account(auth_pb::CreateServiceAccountRequest { name, role })
                .await?
                .into_inner();
            emit(
                global,
                || json!({"clientId": r.client_id, "clientSecret": r.client_secret, "role": r.role}),
                || {
                    format!(
                        "service account {} ({})\nsecret: {}\nKeep the secret now: it is not shown again. Log in with: \
                         gamectl login --service-account {}",
                        r.client_id, r.role, r.client_secret, r.client_id
                    )
                },
            );
        }
        Command::ServiceAccount { command: cli::ServiceAccountCommand::ProvisionFile { client_id, role, secret } } => {
            let secret = auth::service_secret(secret, &client_id).map_err(Failure::Local)?;
            let file = crate::secrets::provision_file(&[(client_id, role, secret)]).map_err(Failure::Local)?;
            let _ = writeln!(std::io::stdout(), "{file}");
        }
        Command::Rebuild(args) => {
            let mut c =
                mypage::v1::my_page_admin_service_client::MyPageAdminServiceClient::new(conn.connect("mypage").await?);
            let mut req = tonic::Request::new(mypage::v1::RebuildMyPageRequest { allow_partial: args.allow_partial });
            // A long history takes minutes: the gateway passes the deadline on.
            req.set_timeout(REBUILD_DEADLINE);
            let r = c.rebuild_my_page(req).await?.into_inner();
            crate::rebuild::print(global, &args.view, &r);
        }
        Command::Audit { subject, limit } => {
            let r = conn
                .auth_client()
                .await?
                .list_audit_entries(auth_pb::ListAuditEntriesRequest {
                    subject: subject.unwrap_or_default(),
                    limit: limit.unwrap_or(0),
                })
                .await?
                .into_inner();
            emit(
                global,
                || json!({"entries": r.entries.iter().map(output::audit_json).collect::<Vec<_>>()}),
                || output::audit_text(&r.entries),
            );
        }
        Command::Achieve { args, request_id } => {
            let (customer_id, rest) = cli::optional_customer(args, 1);
            let customer_id = conn.customer(customer_id)?;
            let [mission_code]: [String; 1] =
                rest.try_into().map_err(|_| Failure::Token("achieve: [CUSTOMER_ID] MISSION_CODE".into()))?;
            let mut c = mission::v1::mission_service_client::MissionServiceClient::new(conn.connect("mission").await?);
            let r = c
                .achieve_mission(mission::v1::AchieveMissionRequest {
                    customer_id,
                    mission_code,
                    request_id: request_id.unwrap_or_default(),
                })
                .await?
                .into_inner();
            show_mission(global, r.mission.as_ref());
        }
        Command::Mission { mission_id } => {
            let mut c = mission::v1::mission_service_client::MissionServiceClient::new(conn.connect("mission").await?);
            let r = c.get_mission(mission::v1::GetMissionRequest { mission_id }).await?.into_inner();
            show_mission(global, r.mission.as_ref());
        }
        Command::Missions { customer_id, paging } => {
            let customer_id = conn.customer(customer_id)?;
            let c = mission::v1::mission_service_client::MissionServiceClient::new(conn.connect("mission").await?);
            let list = paged(&paging, |page_size, page_token| {
                let (mut c, customer_id) = (c.clone(), customer_id.clone());
                async move {
                    let r = c
                        .list_missions(mission::v1::ListMissionsRequest { customer_id, page_size, page_token })
                        .await?
                        .into_inner();
                    Ok((r.missions, r.next_page_token))
                }
            })
            .await?;
            emit_list(global, "missions", &list, output::mission_json, |m| output::missions_text(m));
        }
        Command::Catalog { customer_id } => {
            let mut c = mission::v1::mission_service_client::MissionServiceClient::new(conn.connect("mission").await?);
            let r = c.list_catalog(mission::v1::ListCatalogRequest {}).await?.into_inner();
            // Where each mission stands: for the customer named, else for the player
            // logged in (a game server's or an operator's own token has no missions).
            let customer = match customer_id {
                Some(named) => Some(named),
                None => conn
                    .claims
                    .as_ref()
                    .filter(|c| matches!(c.role.as_str(), "" | "player" | "customer"))
                    .map(|c| c.sub.clone()),
            };
            let availability = match customer {
                Some(customer_id) => {
                    Some(c.get_availability(mission::v1::GetAvailabilityRequest { customer_id }).await?.into_inner())
                }
                None => None,
            };
            emit(
                global,
                || output::catalog_json(&r, availability.as_ref()),
                || output::catalog_text(&r, availability.as_ref()),
            );
        }
        Command::Rewards { customer_id, paging } => {
            let customer_id = conn.customer(customer_id)?;
            let c = reward::v1::reward_service_client::RewardServiceClient::new(conn.connect("reward").await?);
            let list = paged(&paging, |page_size, page_token| {
                let (mut c, customer_id) = (c.clone(), customer_id.clone());
                async move {
                    let r = c
                        .list_rewards(reward::v1::ListRewardsRequest { customer_id, page_size, page_token })
                        .await?
                        .into_inner();
                    Ok((r.rewards, r.next_page_token))
                }
            })
            .await?;
            emit_list(global, "rewards", &list, output::reward_json, |r| output::rewards_text(r));
        }
        Command::Reward { reward_id } => {
            let mut c = reward::v1::reward_service_client::RewardServiceClient::new(conn.connect("reward").await?);
            let r = c.get_reward(reward::v1::GetRewardRequest { reward_id }).await?.into_inner();
            emit(
                global,
                || output::wrap("reward", r.reward.as_ref().map(output::reward_json)),
                || r.reward.as_ref().map_or_else(|| "no reward".into(), output::reward_text),
            );
        }
        Command::Wallet { customer_id, paging } => {
            let customer_id = conn.customer(customer_id)?;
            let mut c = wallet::v1::wallet_service_client::WalletServiceClient::new(conn.connect("wallet").await?);
            let page_size = paging.page_size.unwrap_or(0);
            let first = wallet::v1::GetWalletRequest { customer_id: customer_id.clone(), page_size };
            // The balance and the first page; the items after it from ListWalletItems.
            let r = c.get_wallet(first).await?.into_inner();
            let mut wallet = r.wallet.unwrap_or_default();
            let mut next = r.next_page_token;
            if paging.page_token.is_some() || (paging.all && !next.is_empty()) {
                let from = cli::Paging { page_token: paging.page_token.clone().or(Some(next)), ..paging.clone() };
                let (items, after) = paged(&from, |page_size, page_token| {
                    let (mut c, customer_id) = (c.clone(), customer_id.clone());
                    async move {
                        let req = wallet::v1::ListWalletItemsRequest { customer_id, page_size, page_token };
                        let r = c.list_wallet_items(req).await?.into_inner();
                        Ok((r.items, r.next_page_token))
                    }
                })
                .await?;
                if paging.all {
                    wallet.items.extend(items);
                } else {
                    wallet.items = items;
                }
                next = after;
            }
            emit(
                global,
                || {
                    let mut v = output::wrap("wallet", Some(output::wallet_json(&wallet)));
                    v["nextPageToken"] = json!(next);
                    v
                },
                || output::with_next_page(output::wallet_text(&wallet), &next),
            );
        }
        Command::Exchange { args, request_id } => {
            let (customer_id, rest) = cli::optional_customer(args, 2);
            let customer_id = conn.customer(customer_id)?;
            let [reward_id, gift_code]: [String; 2] =
                rest.try_into().map_err(|_| Failure::Token("exchange: [CUSTOMER_ID] REWARD_ID GIFT_CODE".into()))?;
            let r = wallet_client(&conn)
                .await?
                .exchange_reward(wallet::v1::ExchangeRewardRequest {
                    customer_id,
                    reward_id,
                    gift_code,
                    request_id: request_id.unwrap_or_default(),
                })
                .await?
                .into_inner();
            emit(global, || output::exchange_json(&r), || output::exchange_text(&r));
        }
        Command::ExchangeStatus => {
            let r = wallet_client(&conn)
                .await?
                .get_exchange_status(wallet::v1::GetExchangeStatusRequest {})
                .await?
                .into_inner();
            emit(global, || output::exchange_status_json(&r), || output::exchange_status_text(&r));
        }
        Command::Gifts { customer_id, paging } => {
            let customer_id = conn.customer(customer_id)?;
            let c = gift_client(&conn).await?;
            let list = paged(&paging, |page_size, page_token| {
                let (mut c, customer_id) = (c.clone(), customer_id.clone());
                async move {
                    let r = c
                        .list_gifts(gift::v1::ListGiftsRequest { customer_id, page_size, page_token })
                        .await?
                        .into_inner();
                    Ok((r.gifts, r.next_page_token))
                }
            })
            .await?;
            emit_list(global, "gifts", &list, output::gift_json, |g| output::gifts_text(g));
        }
        Command::Gift { gift_id } => {
            let r = gift_client(&conn).await?.get_gift(gift::v1::GetGiftRequest { gift_id }).await?.into_inner();
            show_gift(global, r.gift.as_ref());
        }
        Command::GiftCatalog => {
            let r = gift_client(&conn).await?.list_catalog(gift::v1::ListCatalogRequest {}).await?.into_inner();
            emit(
                global,
                || json!({"gifts": r.gifts.iter().map(output::catalog_gift_json).collect::<Vec<_>>()}),
                || output::gift_catalog_text(&r.gifts),
            );
        }
        Command::UseGift { gift_id, customer_id } => {
            let r = gift_client(&conn)
                .await?
                .use_gift(gift::v1::UseGiftRequest { gift_id, customer_id: customer_id.unwrap_or_default() })
                .await?
                .into_inner();
            show_gift(global, r.gift.as_ref());
        }
        Command::Notifications { customer_id, paging } => {
            let customer_id = conn.customer(customer_id)?;
            let c = notification::v1::notification_service_client::NotificationServiceClient::new(
                conn.connect("notification").await?,
            );
            let list = paged(&paging, |page_size, page_token| {
                let (mut c, customer_id) = (c.clone(), customer_id.clone());
                async move {
                    let req = notification::v1::ListNotificationsRequest { customer_id, page_size, page_token };
                    let r = c.list_notifications(req).await?.into_inner();
                    Ok((r.notifications, r.next_page_token))
                }
            })
            .await?;
            emit_list(global, "notifications", &list, output::notification_json, |n| output::notifications_text(n));
        }
        Command::Mypage { customer_id, watch: false, paging } => {
            let customer_id = conn.customer(customer_id)?;
            let c = mypage::v1::my_page_service_client::MyPageServiceClient::new(conn.connect("mypage").await?);
            let (pages, next) = paged(&paging, |page_size, page_token| {
                let (mut c, customer_id) = (c.clone(), customer_id.clone());
                async move {
                    let req = mypage::v1::GetMyPageRequest { customer_id, page_size, page_token };
                    let r = c.get_my_page(req).await?.into_inner();
                    Ok((vec![r.page.unwrap_or_default()], r.next_page_token))
                }
            })
            .await?;
            // the totals of the first page read, the entries of every page, in mission order
            let mut page = pages.first().cloned().unwrap_or_default();
            page.entries = pages.into_iter().flat_map(|p| p.entries).collect();
            page.entries.sort_by(|a, b| a.mission_id.cmp(&b.mission_id));
            emit(
                global,
                || {
                    let mut v = output::wrap("page", Some(output::page_json(&page)));
                    v["nextPageToken"] = json!(next);
                    v
                },
                || output::with_next_page(output::page_text(&page), &next),
            );
        }
        Command::Mypage { customer_id, watch: true, .. } => {
            let customer_id = conn.customer(customer_id)?;
            let mut c = mypage::v1::my_page_service_client::MyPageServiceClient::new(conn.connect("mypage").await?);
            let mut stream = c.watch_my_page(mypage::v1::WatchMyPageRequest { customer_id }).await?.into_inner();
            loop {
                tokio::select! {
                    msg = stream.message() => match msg? {
                        Some(r) => show_page(global, r.page.as_ref(), true),
                        None => break,
                    },
                    _ = tokio::signal::ctrl_c() => break,
                }
            }
        }
    }
    Ok(())
}

async fn wallet_client(
    conn: &Conn<'_>,
) -> Result<wallet::v1::wallet_service_client::WalletServiceClient<Authed>, Failure> {
    Ok(wallet::v1::wallet_service_client::WalletServiceClient::new(conn.connect("wallet").await?))
}

async fn gift_client(conn: &Conn<'_>) -> Result<gift::v1::gift_service_client::GiftServiceClient<Authed>, Failure> {
    Ok(gift::v1::gift_service_client::GiftServiceClient::new(conn.connect("gift").await?))
}

fn show_gift(global: &Global, g: Option<&gift::v1::Gift>) {
    emit(
        global,
        || output::wrap("gift", g.map(output::gift_json)),
        || g.map_or_else(|| "no gift".into(), output::gift_text),
    );
}

fn show_mission(global: &Global, m: Option<&mission::v1::Mission>) {
    emit(
        global,
        || output::wrap("mission", m.map(output::mission_json)),
        || m.map_or_else(|| "no mission".into(), output::mission_text),
    );
}

/// A watched page is one compact JSON line per change (easy to read line by line), or
/// text pages separated by a blank line.
fn show_page(global: &Global, p: Option<&mypage::v1::MyPage>, watching: bool) {
    if watching && global.json {
        let v = output::wrap("page", p.map(output::page_json));
        let _ = writeln!(std::io::stdout(), "{v}");
        return;
    }
    emit(
        global,
        || output::wrap("page", p.map(output::page_json)),
        || {
            let text = p.map_or_else(|| "no page".into(), output::page_text);
            if watching { format!("{text}\n") } else { text }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_prints_its_canonical_code_and_message() {
        let f = Failure::from(tonic::Status::not_found("mission m-1 not found"));
        assert_eq!(f.to_string(), "NOT_FOUND: mission m-1 not found");
        assert_eq!(f.exit_code(), ExitCode::from(1));
    }

    #[test]
    fn an_unavailable_exchange_says_when_to_retry() {
        let mut s = tonic::Status::unavailable(
            "gift exchange is temporarily unavailable; your reward is unchanged, please try again in 7 s",
        );
        s.metadata_mut().insert("retry-after", 7u64.into());
        let f = Failure::from(s);
        assert_eq!(
            f.to_string(),
            "UNAVAILABLE: gift exchange is temporarily unavailable; your reward is unchanged, \
             please try again in 7 s; retry after 7 s"
        );
        assert_eq!(f.exit_code(), ExitCode::from(1));
    }

    #[test]
    fn retry_after_is_only_read_from_unavailable_answers_that_carry_it() {
        let plain = tonic::Status::unavailable("gift is down");
        assert_eq!(retry_after(&plain), None);
        assert_eq!(Failure::from(plain).to_string(), "UNAVAILABLE: gift is down");
        let mut other = tonic::Status::failed_precondition("already exchanged");
        other.metadata_mut().insert("retry-after", 3u64.into());
        assert_eq!(retry_after(&other), None);
    }

    #[test]
    fn an_unreachable_gateway_names_itself_its_address_and_what_to_check() {
        let f = Failure::Connect {
            what: "the gateway".into(),
            addr: "http://127.0.0.1:1".into(),
            why: "connection refused".into(),
        };
        assert_eq!(
            f.to_string(),
            "cannot reach the gateway at http://127.0.0.1:1: connection refused \
             (is `gamectl up` running? see --endpoint, --data-dir)"
        );
        assert_eq!(f.exit_code(), ExitCode::from(2));
    }

    #[test]
    fn unauthenticated_says_to_log_in_except_when_logging_in() {
        let s = || tonic::Status::unauthenticated("missing bearer token");
        assert_eq!(Failure::from(s()).to_string(), "UNAUTHENTICATED: missing bearer token (run gamectl login)");
        let bad = tonic::Status::unauthenticated("invalid customer id or password");
        assert_eq!(Failure::from(bad).refused().to_string(), "UNAUTHENTICATED: invalid customer id or password");
        assert_eq!(Failure::from(s()).refused().exit_code(), ExitCode::from(1));
        let denied = Failure::from(tonic::Status::permission_denied("admins only"));
        assert_eq!(denied.to_string(), "PERMISSION_DENIED: admins only");
    }

    #[test]
    fn a_lock_out_or_rate_limit_says_when_to_retry() {
        let mut s = tonic::Status::resource_exhausted("too many failed logins");
        s.metadata_mut().insert("retry-after", 30u64.into());
        assert_eq!(
            Failure::from(s).refused().to_string(),
            "RESOURCE_EXHAUSTED: too many failed logins; retry after 30 s"
        );
    }
}
