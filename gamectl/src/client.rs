//! The API subcommands: find the service, call it, print the answer.
//!
//! Exit codes: 0 done, 1 the service answered with an error, 2 it could not be reached.

use std::fmt;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use contracts::pb::admin::v1 as admin_pb;
use contracts::pb::auth::v1 as auth_pb;
use contracts::pb::{gift, mission, mypage, wallet};
use grpc_adapter::status::code_name;
use serde_json::{Value, json};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::cli::{self, Command, Global};
use crate::output;
use crate::{auth, endpoints};

// One module per service area, one function per command.
mod gifts;
mod identity;
mod missions;
mod pages;
mod points;
mod rewards;

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

    /// What `--json` prints on stderr: `{"error": {"code", "message", "reason"?,
    /// "metadata"?, "retryAfterSeconds"?}}`, the code a gRPC code's canonical name, or
    /// `NO_ADDRESS`, `CANNOT_CONNECT`, `NO_TOKEN`, `LOCAL` for what failed here.
    fn to_json(&self) -> Value {
        let error = match self {
            Self::Status(s) | Self::Refused(s) => {
                let mut e = json!({ "code": code_name(s.code()), "message": s.message() });
                if let Some((reason, metadata)) = grpc_adapter::status::error_info(s) {
                    e["reason"] = json!(reason);
                    e["metadata"] = json!(metadata);
                }
                if let Some(secs) = retry_after(s).and_then(|v| v.parse::<u64>().ok()) {
                    e["retryAfterSeconds"] = json!(secs);
                }
                e
            }
            Self::Resolve { .. } => json!({ "code": "NO_ADDRESS", "message": self.to_string() }),
            Self::Connect { .. } => json!({ "code": "CANNOT_CONNECT", "message": self.to_string() }),
            Self::Token(_) => json!({ "code": "NO_TOKEN", "message": self.to_string() }),
            Self::Local(_) => json!({ "code": "LOCAL", "message": self.to_string() }),
        };
        json!({ "error": error })
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
        Err(f) if global.json => {
            let _ = writeln!(std::io::stderr(), "{}", f.to_json());
            f.exit_code()
        }
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
            crate::dlq::via_gateway(global, c, args.command).await
        }
        Command::Register { customer_id, password } => identity::register(&conn, customer_id, password).await,
        Command::Login { customer_id, password, service_account, secret } => {
            identity::login(&conn, customer_id, password, service_account, secret).await
        }
        Command::Logout => identity::logout(&conn).await,
        Command::Whoami => identity::whoami(&conn).await,
        Command::RotateKey => identity::rotate_key(&conn).await,
        Command::Role { command } => identity::role(&conn, command).await,
        Command::Revoke { customer_id, external } => identity::revoke(&conn, customer_id, external).await,
        Command::ServiceAccount { command: cli::ServiceAccountCommand::Create { name, role } } => {
            identity::create_service_account(&conn, name, role).await
        }
        Command::ServiceAccount { command: cli::ServiceAccountCommand::ProvisionFile { client_id, role, secret } } => {
            identity::provision_file(client_id, role, secret).await
        }
        Command::Rebuild(args) => pages::rebuild(&conn, args).await,
        Command::Audit { subject, limit } => identity::audit(&conn, subject, limit).await,
        Command::Achieve { args, request_id } => missions::achieve(&conn, args, request_id).await,
        Command::Mission { mission_id } => missions::mission(&conn, mission_id).await,
        Command::Missions { customer_id, paging } => missions::missions(&conn, customer_id, paging).await,
        Command::Catalog { customer_id } => missions::catalog(&conn, customer_id).await,
        Command::Rewards { customer_id, paging } => rewards::rewards(&conn, customer_id, paging).await,
        Command::Reward { reward_id } => rewards::reward(&conn, reward_id).await,
        Command::Wallet { customer_id, paging } => rewards::wallet(&conn, customer_id, paging).await,
        Command::Exchange { args, request_id } => rewards::exchange(&conn, args, request_id).await,
        Command::ExchangeStatus => rewards::exchange_status(&conn).await,
        Command::Balance { customer_id } => points::balance(&conn, customer_id).await,
        Command::Ledger { customer_id, kind, paging } => points::ledger(&conn, customer_id, kind, paging).await,
        Command::Redeem { args, request_id } => points::redeem(&conn, args, request_id).await,
        Command::Refund { gift_id, reason, request_id } => points::refund(&conn, gift_id, reason, request_id).await,
        Command::Adjust { customer_id, amount, reason, request_id } => {
            points::adjust(&conn, customer_id, amount, reason, request_id).await
        }
        Command::Gifts { customer_id, paging } => gifts::gifts(&conn, customer_id, paging).await,
        Command::Gift { gift_id } => gifts::gift(&conn, gift_id).await,
        Command::GiftCatalog => gifts::catalog(&conn).await,
        Command::UseGift { gift_id, customer_id } => gifts::use_gift(&conn, gift_id, customer_id).await,
        Command::Notifications { customer_id, paging } => pages::notifications(&conn, customer_id, paging).await,
        Command::Mypage { customer_id, watch: false, paging } => pages::mypage(&conn, customer_id, paging).await,
        Command::Mypage { customer_id, watch: true, .. } => pages::watch(&conn, customer_id).await,
    }
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
    fn in_json_a_refusal_carries_its_code_message_reason_metadata_and_retry() {
        let mut s = grpc_adapter::status::refused(
            "not enough points: coffee costs 10, your balance is 4",
            "WALLET_NOT_ENOUGH_POINTS",
            vec![("cost_points", "10".into()), ("balance", "4".into())],
        );
        assert_eq!(
            Failure::from(s.clone()).to_json(),
            json!({"error": {
                "code": "FAILED_PRECONDITION",
                "message": "not enough points: coffee costs 10, your balance is 4",
                "reason": "WALLET_NOT_ENOUGH_POINTS",
                "metadata": {"balance": "4", "cost_points": "10"},
            }})
        );
        s = tonic::Status::unavailable("later");
        s.metadata_mut().insert("retry-after", 7u64.into());
        assert_eq!(
            Failure::from(s).to_json(),
            json!({"error": {"code": "UNAVAILABLE", "message": "later", "retryAfterSeconds": 7}})
        );
        let local = Failure::Token("no token".into()).to_json();
        assert_eq!(local, json!({"error": {"code": "NO_TOKEN", "message": "no token"}}));
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
