//! gamectl: the one executable of Game Rewards. Runs any role of the system
//! (`gamectl serve <role>`, or several in one process), the whole system on one machine
//! (`gamectl up`), and calls its APIs.
//!
//! # Layout
//! - [`cli`] — flags and subcommands.
//! - [`serve`] — the roles (every service, the auth service, the gateway) in this process.
//! - [`up`] — starts, supervises and stops nats-server, the auth service, the services
//!   and the gateway.
//! - [`status`] — `gamectl status`: the system's health from the roles' metrics.
//! - [`services`] — the table of services, their ports and their environment.
//! - [`endpoints`] — `<data-dir>/endpoints.json`, written by `up`; which address clients
//!   dial (the gateway).
//! - [`dlq`], [`rebuild`] — the operator's dead letters and view rebuilds.
//! - [`client`] — one gRPC call per subcommand; [`output`] — how answers are printed.
//! - [`auth`] — the token `login` stores and every command sends, what it says, passwords.
//! - [`secrets`] — the first admin's password and the service accounts' secrets `up`
//!   keeps in the data dir (0600).

mod auth;
mod cli;
mod client;
mod dlq;
mod endpoints;
mod output;
mod rebuild;
mod secrets;
mod serve;
mod services;
mod status;
mod up;

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli::Cli { global, command } = cli::Cli::parse();
    match command {
        cli::Command::Up(args) => up::run(&global, args).await,
        cli::Command::Status(args) => status::run(&global, args).await,
        cli::Command::Dlq(args) if args.bus => dlq::run(&global, args).await,
        cli::Command::Rebuild(args) if args.bus => rebuild::run(&global, args).await,
        cli::Command::Serve(args) => serve::run(*args).await,
        command => client::run(&global, command).await,
    }
}
