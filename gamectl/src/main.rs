//! gamectl: runs Game Rewards on one machine (`gamectl up`) and calls its APIs.
//!
//! # Layout
//! - [`cli`] — flags and subcommands.
//! - [`up`] — starts, supervises and stops nats-server, the auth service, the services
//!   and the gateway.
//! - [`status`] — `gamectl status`: the system's health from the roles' metrics.
//! - [`services`] — the table of services, their ports and their environment.
//! - [`endpoints`] — `<data-dir>/endpoints.json`, written by `up`; which address clients
//!   dial (the gateway).
//! - [`client`] — one gRPC call per subcommand; [`output`] — how answers are printed.
//! - [`auth`] — the token `login` stores and every command sends, what it says, passwords.
//! - [`secrets`] — the first admin's password and the service accounts' secrets `up`
//!   keeps in the data dir (0600).

mod auth;
mod cli;
mod client;
mod endpoints;
mod output;
mod secrets;
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
        command => client::run(&global, command).await,
    }
}
