//! gamectl: runs Game Rewards on one machine (`gamectl up`) and calls its APIs.
//!
//! # Layout
//! - [`cli`] — flags and subcommands.
//! - [`up`] — starts, supervises and stops nats-server and the services.
//! - [`services`] — the table of services and their ports.
//! - [`endpoints`] — `<data-dir>/endpoints.json`, written by `up`, read by clients.
//! - [`client`] — one gRPC call per subcommand; [`output`] — how answers are printed.
//! - [`auth`] — the key `up` makes the services trust, and the tokens clients sign with it.

mod auth;
mod cli;
mod client;
mod endpoints;
mod output;
mod services;
mod up;

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli::Cli { global, command } = cli::Cli::parse();
    match command {
        cli::Command::Up(args) => up::run(&global, args).await,
        command => client::run(&global, command).await,
    }
}
