//! `gamectl serve`: the one server executable. `gamectl serve <role>` runs one role with
//! exactly the flags and environment variables that role has always had;
//! `gamectl serve --roles mission,reward` (or `all`) runs several in this process, on one
//! tokio runtime, each with its settings from the environment: `<VAR>` as for a single
//! role, overridden for one role by `<ROLE>__<VAR>` (e.g. `MISSION__LISTEN_ADDR`,
//! `WALLET__DATABASE_URL`), since each role needs its own address, database and bus
//! credentials.
//!
//! Nothing below here exits the process: every role's `run(settings, shutdown)` returns
//! its error, and this module reports it and stops the other roles.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, FromArgMatches as _, Subcommand};
use contracts::roles;
use grpc_adapter::server::{self, Error};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

/// Every role, in the order `all` starts them: the role table's start order (auth
/// first: the others fetch its keys; the gateway last).
pub fn roles() -> Vec<&'static str> {
    contracts::roles::start_order()
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, arg_required_else_help = true)]
pub struct ServeArgs {
    /// Run several roles in this process, comma-separated, or `all`; each role reads its
    /// settings from the environment, `<ROLE>__<VAR>` before `<VAR>` (e.g.
    /// `MISSION__LISTEN_ADDR`).
    #[arg(long, value_delimiter = ',', value_name = "ROLE,...")]
    pub roles: Vec<String>,
    #[command(subcommand)]
    pub role: Option<Role>,
}

type Running = std::pin::Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;

/// The registry of the roles this executable runs: one line per row of the role table
/// (`contracts::roles`), naming the crate whose `Settings` (its flags, their environment
/// variables, `--help`) and `run(settings, shutdown)` serve it.
macro_rules! registry {
    ($($variant:ident => $row:path, $service:ident;)*) => {
        /// One role of the system, with its own settings (flags, or their environment
        /// variables).
        #[derive(Debug, Clone, Subcommand)]
        pub enum Role {
            $(#[command(name = $row.name)] $variant($service::Settings),)*
        }

        impl Role {
            /// Its name in the role table.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $row.name,)*
                }
            }

            /// The settings every role has: address, drain, grace, log format.
            pub fn server(&self) -> &grpc_adapter::server::ServerSettings {
                match self {
                    $(Self::$variant(s) => &s.server,)*
                }
            }

            /// Serves the role until `shutdown` is cancelled.
            pub fn run(self, shutdown: CancellationToken) -> Running {
                match self {
                    $(Self::$variant(s) => Box::pin($service::run(s, shutdown)),)*
                }
            }
        }

        /// The roles of the registry, by name.
        #[cfg(test)]
        const REGISTERED: &[&str] = &[$($row.name),*];
    };
}

registry! {
    Gateway => roles::gateway::ROLE, gateway_service;
    Mission => roles::mission::ROLE, mission_service;
    Reward => roles::reward::ROLE, reward_service;
    Wallet => roles::wallet::ROLE, wallet_service;
    Mypage => roles::mypage::ROLE, mypage_service;
    Gift => roles::gift::ROLE, gift_service;
    Notification => roles::notification::ROLE, notification_service;
    Auth => roles::auth::ROLE, auth_service;
    Ops => roles::ops::ROLE, ops_service;
}

impl Role {
    /// The role `name` with its settings from `env` (a variable's value by name):
    /// `<ROLE>__<VAR>` before `<VAR>` before the default.
    ///
    /// # Errors
    /// An unknown role, or a setting it refuses (clap's message, naming the flag).
    pub fn from_env(name: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        if roles::find(name).is_none() {
            return Err(unknown(name));
        }
        // The role's own overrides become flags, which clap puts before its environment.
        let sub = Self::augment_subcommands(clap::Command::new("serve"))
            .find_subcommand(name)
            .cloned()
            .ok_or_else(|| format!("unknown role {name:?}"))?;
        let prefix = format!("{}__", name.to_uppercase());
        let mut argv = vec!["serve".to_owned(), name.to_owned()];
        for arg in sub.get_arguments() {
            let (Some(var), Some(long)) = (arg.get_env(), arg.get_long()) else { continue };
            let var = format!("{prefix}{}", var.to_string_lossy());
            let Some(value) = env(&var) else { continue };
            if arg.get_action().takes_values() {
                argv.push(format!("--{long}={value}"));
            } else if !matches!(value.as_str(), "" | "0" | "false") {
                argv.push(format!("--{long}"));
            }
        }
        let cmd = Self::augment_subcommands(clap::Command::new("serve").subcommand_required(true));
        let matches = cmd.try_get_matches_from(argv).map_err(|e| format!("{name}: {e}"))?;
        Self::from_arg_matches(&matches).map_err(|e| format!("{name}: {e}"))
    }
}

/// The roles of `--roles` (`all` = every role), each once, in start order.
///
/// # Errors
/// An unknown role or none.
pub fn parse_roles(roles: &[String]) -> Result<Vec<&'static str>, String> {
    let order = self::roles();
    let mut chosen = Vec::new();
    for r in roles.iter().map(|r| r.trim()).filter(|r| !r.is_empty()) {
        if r == "all" {
            chosen.extend(&order);
        } else {
            chosen.push(roles::find(r).ok_or_else(|| unknown(r))?.name);
        }
    }
    let mut ordered: Vec<&'static str> = order.into_iter().filter(|r| chosen.contains(r)).collect();
    ordered.dedup();
    if ordered.is_empty() {
        return Err("--roles names no role".to_owned());
    }
    Ok(ordered)
}

fn unknown(name: &str) -> String {
    format!("unknown role {name:?}: the roles are {} (or all)", self::roles().join(", "))
}

/// How long the roles get to stop once told to (each drains within its own
/// `SHUTDOWN_GRACE_SECONDS`); a role still starting (e.g. waiting for its bucket) does not
/// watch the shutdown and is dropped after this.
const STOP_BOUND: Duration = Duration::from_secs(30);

/// Runs `roles` in this process until `shutdown`, or until one of them fails: then the
/// others are stopped too and the first error is returned.
///
/// # Errors
/// The first role's error.
pub async fn run_roles(roles: Vec<Role>, shutdown: CancellationToken) -> Result<(), Error> {
    let mut running = JoinSet::new();
    for role in roles {
        let span = tracing::info_span!("role", name = role.name());
        running.spawn(role.run(shutdown.clone()).instrument(span));
    }
    let mut first = None;
    let mut bound = None;
    loop {
        tokio::select! {
            done = running.join_next() => {
                let Some(done) = done else { break };
                if let Err(e) = done.unwrap_or_else(|e| Err(Error::new("a role stopped", e))) {
                    // One role down takes the process down: its supervisor restarts it whole.
                    shutdown.cancel();
                    first.get_or_insert(e);
                }
            }
            () = shutdown.cancelled(), if bound.is_none() => {
                bound = Some(Box::pin(tokio::time::sleep(STOP_BOUND)));
            }
            () = async { bound.as_mut().expect("set").await }, if bound.is_some() => {
                tracing::warn!(?STOP_BOUND, "roles still running after the stop bound: dropped");
                running.abort_all();
                break;
            }
        }
    }
    first.map_or(Ok(()), Err)
}

/// `gamectl serve ...`: the process's exit code.
pub async fn run(args: ServeArgs) -> ExitCode {
    let roles = match (args.role, args.roles.is_empty()) {
        (Some(role), _) => Ok(vec![role]),
        (None, false) => parse_roles(&args.roles).and_then(|names| {
            let env = |var: &str| std::env::var(var).ok();
            names.into_iter().map(|n| Role::from_env(n, &env)).collect()
        }),
        (None, true) => Err("name a role (gamectl serve <ROLE>) or several (--roles a,b or all)".to_owned()),
    };
    let roles = match roles {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // One subscriber for the process: JSON as soon as one role asks for it.
    let json = roles.iter().any(|r| r.server().log_format == grpc_adapter::telemetry::LogFormat::Json);
    // Traces name the role (several in one process: the system's name).
    let service = if roles.len() == 1 { roles[0].name() } else { "game-rewards" };
    let format = if json { grpc_adapter::telemetry::LogFormat::Json } else { grpc_adapter::telemetry::LogFormat::Text };
    if let Err(e) = grpc_adapter::telemetry::init_as(format, service) {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    match run_roles(roles, server::shutdown_on_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            server::report(&e);
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |k| vars.get(k).cloned()
    }

    #[test]
    fn all_is_every_role_once_auth_first_and_the_gateway_last() {
        let all = parse_roles(&["all".into()]).unwrap();
        assert_eq!(all, roles());
        assert_eq!((all.first(), all.last(), all.len()), (Some(&"auth"), Some(&"gateway"), roles::ALL.len()));
        assert_eq!(parse_roles(&["reward".into(), "mission".into(), "reward".into()]).unwrap(), ["mission", "reward"]);
        assert!(parse_roles(&["mission".into(), "nope".into()]).unwrap_err().contains("unknown role \"nope\""));
        assert!(parse_roles(&[]).is_err());
    }

    #[test]
    fn every_role_of_the_table_is_registered_once_under_its_name() {
        let mut registered = REGISTERED.to_vec();
        let mut table: Vec<_> = roles::ALL.iter().map(|r| r.name).collect();
        registered.sort_unstable();
        table.sort_unstable();
        assert_eq!(registered, table);
    }

    #[test]
    fn a_role_prefixed_variable_overrides_that_role_only() {
        let vars = env(&[("MISSION__LISTEN_ADDR", "127.0.0.1:7001"), ("MISSION__DATABASE_URL", "sqlite://m.db")]);
        let Role::Mission(m) = Role::from_env("mission", &vars).unwrap() else { panic!("mission") };
        assert_eq!(m.server.listen.to_string(), "127.0.0.1:7001");
        assert_eq!(m.database_url, "sqlite://m.db");
        let Role::Reward(r) = Role::from_env("reward", &vars).unwrap() else { panic!("reward") };
        assert_eq!(r.database_url, "sqlite://data/reward.db", "the default, not the mission's");
    }

    #[test]
    fn a_bad_role_setting_is_refused_naming_the_role_and_the_flag() {
        let vars = env(&[("GATEWAY__MAX_REQUEST_BYTES", "0")]);
        let e = Role::from_env("gateway", &vars).unwrap_err();
        assert!(e.starts_with("gateway: ") && e.contains("--max-request-bytes"), "{e}");
        assert!(Role::from_env("nope", &env(&[])).unwrap_err().contains("unknown role"));
    }

    #[test]
    fn pool_size_and_log_format_are_flags_with_their_environment_variables() {
        use grpc_adapter::telemetry::LogFormat;
        let vars = env(&[("WALLET__DATABASE_POOL_SIZE", "3"), ("WALLET__LOG_FORMAT", "JSON")]);
        let Role::Wallet(w) = Role::from_env("wallet", &vars).unwrap() else { panic!("wallet") };
        assert_eq!((w.pool.database_pool_size, w.server.log_format), (Some(3), LogFormat::Json));
        let e = Role::from_env("auth", &env(&[("AUTH__DATABASE_POOL_SIZE", "0")])).unwrap_err();
        assert!(e.contains("--database-pool-size"), "{e}");
        let e = Role::from_env("mission", &env(&[("MISSION__LOG_FORMAT", "xml")])).unwrap_err();
        assert!(e.contains("--log-format"), "{e}");
    }

    #[test]
    fn list_settings_take_their_comma_separated_values() {
        let vars = env(&[("GATEWAY__CORS_ALLOWED_ORIGINS", "http://a,http://b")]);
        let Role::Gateway(g) = Role::from_env("gateway", &vars).unwrap() else { panic!("gateway") };
        assert_eq!(g.cors_origins, ["http://a", "http://b"]);
    }
}
