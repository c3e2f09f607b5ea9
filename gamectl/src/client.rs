//! The API subcommands: find the service, call it, print the answer.
//!
//! Exit codes: 0 done, 1 the service answered with an error, 2 it could not be reached.

use std::fmt;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use grpc_adapter::pb::{mission, mypage, reward, wallet};
use serde_json::{Value, json};
use tonic::transport::{Channel, Endpoint};

use crate::cli::{Command, Global};
use crate::endpoints;
use crate::output;

/// Why a command failed, and so what it prints and how it exits.
#[derive(Debug)]
pub enum Failure {
    /// No address for the service.
    Resolve { service: &'static str, why: String },
    /// The address is known but nothing answers there.
    Connect {
        service: &'static str,
        addr: String,
        why: String,
    },
    /// The service answered with an error status.
    Status(tonic::Status),
}

impl Failure {
    fn exit_code(&self) -> ExitCode {
        match self {
            Self::Status(_) => ExitCode::from(1),
            Self::Resolve { .. } | Self::Connect { .. } => ExitCode::from(2),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Resolve { service, why } => write!(f, "no address for {service}: {why}"),
            Self::Connect { service, addr, why } => {
                write!(f, "cannot reach {service} at {addr}: {why}")
            }
            Self::Status(s) => write!(f, "{}: {}", code_name(s.code()), s.message()),
        }
    }
}

impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Self {
        Self::Status(s)
    }
}

/// The canonical name of a gRPC code, as grpcurl and the gRPC docs spell it.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
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

async fn connect(global: &Global, service: &'static str) -> Result<Channel, Failure> {
    let addr = endpoints::resolve(service, global.endpoint.as_deref(), &global.data_dir)
        .map_err(|why| Failure::Resolve { service, why })?;
    let endpoint = Endpoint::from_shared(addr.clone()).map_err(|e| Failure::Resolve {
        service,
        why: format!("{addr} is not a valid address: {e}"),
    })?;
    endpoint
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| Failure::Connect {
            service,
            addr,
            why: chain(&e),
        })
}

/// Prints JSON (pretty) or text, ignoring a closed stdout.
fn emit(global: &Global, json: impl FnOnce() -> Value, text: impl FnOnce() -> String) {
    let out = if global.json {
        serde_json::to_string_pretty(&json()).unwrap_or_default()
    } else {
        text()
    };
    let _ = writeln!(std::io::stdout(), "{out}");
}

async fn call(global: &Global, command: Command) -> Result<(), Failure> {
    match command {
        Command::Up(_) => unreachable!("`up` is not an API call"),
        Command::Achieve {
            customer_id,
            mission_code,
            request_id,
        } => {
            let mut c = mission::v1::mission_service_client::MissionServiceClient::new(
                connect(global, "mission").await?,
            );
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
            let mut c = mission::v1::mission_service_client::MissionServiceClient::new(
                connect(global, "mission").await?,
            );
            let r = c
                .get_mission(mission::v1::GetMissionRequest { mission_id })
                .await?
                .into_inner();
            show_mission(global, r.mission.as_ref());
        }
        Command::Missions { customer_id } => {
            let mut c = mission::v1::mission_service_client::MissionServiceClient::new(
                connect(global, "mission").await?,
            );
            let r = c
                .list_missions(mission::v1::ListMissionsRequest { customer_id })
                .await?
                .into_inner();
            emit(
                global,
                || json!({"missions": r.missions.iter().map(output::mission_json).collect::<Vec<_>>()}),
                || output::missions_text(&r.missions),
            );
        }
        Command::Catalog => {
            let mut c = mission::v1::mission_service_client::MissionServiceClient::new(
                connect(global, "mission").await?,
            );
            let r = c
                .list_catalog(mission::v1::ListCatalogRequest {})
                .await?
                .into_inner();
            emit(
                global,
                || json!({"missions": r.missions.iter().map(output::catalog_mission_json).collect::<Vec<_>>()}),
                || output::catalog_text(&r.missions),
            );
        }
        Command::Rewards { customer_id } => {
            let mut c = reward::v1::reward_service_client::RewardServiceClient::new(
                connect(global, "reward").await?,
            );
            let r = c
                .list_rewards(reward::v1::ListRewardsRequest { customer_id })
                .await?
                .into_inner();
            emit(
                global,
                || json!({"rewards": r.rewards.iter().map(output::reward_json).collect::<Vec<_>>()}),
                || output::rewards_text(&r.rewards),
            );
        }
        Command::Reward { reward_id } => {
            let mut c = reward::v1::reward_service_client::RewardServiceClient::new(
                connect(global, "reward").await?,
            );
            let r = c
                .get_reward(reward::v1::GetRewardRequest { reward_id })
                .await?
                .into_inner();
            emit(
                global,
                || output::wrap("reward", r.reward.as_ref().map(output::reward_json)),
                || {
                    r.reward
                        .as_ref()
                        .map_or_else(|| "no reward".into(), output::reward_text)
                },
            );
        }
        Command::Wallet { customer_id } => {
            let mut c = wallet::v1::wallet_service_client::WalletServiceClient::new(
                connect(global, "wallet").await?,
            );
            let r = c
                .get_wallet(wallet::v1::GetWalletRequest { customer_id })
                .await?
                .into_inner();
            emit(
                global,
                || output::wrap("wallet", r.wallet.as_ref().map(output::wallet_json)),
                || {
                    r.wallet
                        .as_ref()
                        .map_or_else(|| "no wallet".into(), output::wallet_text)
                },
            );
        }
        Command::Mypage {
            customer_id,
            watch: false,
        } => {
            let mut c = mypage::v1::my_page_service_client::MyPageServiceClient::new(
                connect(global, "mypage").await?,
            );
            let r = c
                .get_my_page(mypage::v1::GetMyPageRequest { customer_id })
                .await?
                .into_inner();
            show_page(global, r.page.as_ref(), false);
        }
        Command::Mypage {
            customer_id,
            watch: true,
        } => {
            let mut c = mypage::v1::my_page_service_client::MyPageServiceClient::new(
                connect(global, "mypage").await?,
            );
            let mut stream = c
                .watch_my_page(mypage::v1::WatchMyPageRequest { customer_id })
                .await?
                .into_inner();
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
    fn an_unreachable_service_names_itself_and_its_address() {
        let f = Failure::Connect {
            service: "wallet",
            addr: "http://127.0.0.1:1".into(),
            why: "connection refused".into(),
        };
        assert_eq!(
            f.to_string(),
            "cannot reach wallet at http://127.0.0.1:1: connection refused"
        );
        assert_eq!(f.exit_code(), ExitCode::from(2));
    }
}
