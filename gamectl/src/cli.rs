//! Command-line shape of gamectl: global flags, `up`, and one subcommand per API call.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "gamectl", version, about = "Start Game Rewards locally and call its APIs")]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand understands.
#[derive(Debug, Args)]
pub struct Global {
    /// Address used for every service (e.g. http://127.0.0.1:50051, later the gateway).
    /// Without it, the address comes from `<data-dir>/endpoints.json` written by `up`.
    #[arg(long, env = "GAMECTL_ENDPOINT", global = true)]
    pub endpoint: Option<String>,
    /// Where `up` keeps databases, JetStream files and endpoints.json.
    #[arg(long, env = "GAMECTL_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,
    /// Print JSON (camelCase field names, as grpcurl does) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Bearer token to send. Without it, a short-lived token is signed with the key `up`
    /// keeps in `<data-dir>/keys`: as the customer the command names, else as an admin.
    #[arg(long, env = "GAMECTL_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start nats-server and every service, wait until all are SERVING, supervise them
    /// until Ctrl-C or SIGTERM.
    Up(UpArgs),
    /// Record that a customer achieved a mission.
    Achieve {
        customer_id: String,
        mission_code: String,
        /// Idempotency key: repeating a request with the same id has no further effect.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// The missions a customer achieved.
    Missions { customer_id: String },
    /// One mission.
    Mission { mission_id: String },
    /// The missions that can be achieved.
    Catalog,
    /// The rewards allocated to a customer.
    Rewards { customer_id: String },
    /// One reward.
    Reward { reward_id: String },
    /// A customer's wallet.
    Wallet { customer_id: String },
    /// Exchange one of a customer's ISSUED rewards for a gift from the gift catalog.
    Exchange {
        customer_id: String,
        reward_id: String,
        /// See `gift-catalog`, e.g. coffee.
        gift_code: String,
        /// Idempotency key: repeating a request with the same id answers the same result.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// The state of the circuit breaker guarding the wallet's calls to the gift service.
    ExchangeStatus,
    /// The gifts issued to a customer.
    Gifts { customer_id: String },
    /// One gift.
    Gift { gift_id: String },
    /// The gifts that can be had, and what they cost in points.
    GiftCatalog,
    /// Use a gift (once).
    UseGift {
        gift_id: String,
        /// The customer using it; the gift service checks it is theirs.
        #[arg(long)]
        customer_id: Option<String>,
    },
    /// The e-mails sent to a customer.
    Notifications { customer_id: String },
    /// A customer's page: everything they have.
    Mypage {
        customer_id: String,
        /// Keep printing the page every time it changes, until Ctrl-C.
        #[arg(long)]
        watch: bool,
    },
}

#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// Use this NATS server instead of starting one.
    #[arg(long)]
    pub nats_url: Option<String>,
    /// Port of the nats-server started by gamectl [default: base-port + 100].
    #[arg(long)]
    pub nats_port: Option<u16>,
    /// The gateway listens here, each service on base-port + its offset.
    #[arg(long, default_value_t = 50051)]
    pub base_port: u16,
    /// Where the service binaries are [default: the directory of gamectl itself].
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Restart a service that has not been SERVING for this many seconds after it had
    /// been SERVING (0: never).
    #[arg(long, default_value_t = 0.0)]
    pub health_restart_after: f64,
    /// Seconds to wait for every service to become SERVING.
    #[arg(long, default_value_t = 60.0)]
    pub ready_timeout: f64,
    /// Seconds each child gets to exit after SIGTERM before it is killed.
    #[arg(long, default_value_t = 15.0)]
    pub stop_timeout: f64,
}
