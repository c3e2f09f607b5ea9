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
    /// The gateway (or another address serving every API) to call.
    /// [default: the gateway in `<data-dir>/endpoints.json`, else http://127.0.0.1:50051]
    #[arg(long, env = "GAMECTL_ENDPOINT", global = true)]
    pub endpoint: Option<String>,
    /// Call each service at its own address from endpoints.json instead of the gateway
    /// (to look behind it; the services check tokens the same way).
    #[arg(long, global = true)]
    pub direct: bool,
    /// Where `up` keeps databases, keys, JetStream files and endpoints.json, and `login`
    /// the token.
    #[arg(long, env = "GAMECTL_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,
    /// Print JSON (camelCase field names, as grpcurl does) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Bearer token to send instead of the one `gamectl login` stored.
    #[arg(long, env = "GAMECTL_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Where `login` stores the token and every command reads it [default: <data-dir>/token].
    #[arg(long, env = "GAMECTL_TOKEN_FILE", global = true)]
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start nats-server (NATS_SERVER_BIN, else the PATH's; refused when older than the
    /// supported minimum; with authentication: a key per service in <data-dir>/nats-auth),
    /// the auth service, every service and the gateway (each a `gamectl serve <role>`
    /// child, or all in one with --all-in-one), wait until all are SERVING, supervise them
    /// until Ctrl-C or SIGTERM.
    Up(UpArgs),
    /// Health of the running system from each role's metrics (endpoints.json): readiness,
    /// consumer lag, outbox backlog and age, dead letters, the breaker. Exits 1 when
    /// something is unhealthy (for scripts), 2 when there is no endpoints.json.
    Status(crate::status::StatusArgs),
    /// Run one role of the system in this process (`gamectl serve mission --help` lists
    /// its flags and their environment variables), or several (`--roles a,b` or `all`).
    Serve(Box<crate::serve::ServeArgs>),
    /// Create a customer's credentials with the auth service.
    Register {
        customer_id: String,
        /// Asked on the terminal (without echo) when not given; read from stdin when that
        /// is not a terminal.
        #[arg(long, env = "GAMECTL_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// Get a token for a customer (or, with --service-account, for a service account) and
    /// keep it (readable by you only) for every later command.
    #[command(
        override_usage = "gamectl login <CUSTOMER_ID> [--password P]\n       gamectl login --service-account <CLIENT_ID> [--secret S]"
    )]
    Login {
        #[arg(required_unless_present = "service_account", conflicts_with = "service_account")]
        customer_id: Option<String>,
        /// Asked on the terminal (without echo) when not given; read from stdin when that
        /// is not a terminal.
        #[arg(long, env = "GAMECTL_PASSWORD", hide_env_values = true, conflicts_with = "service_account")]
        password: Option<String>,
        /// Log in as this service account (a game server): its client id, `svc-<name>`.
        #[arg(long, value_name = "CLIENT_ID")]
        service_account: Option<String>,
        /// The service account's secret; asked on the terminal when not given, or read
        /// from stdin.
        #[arg(long, env = "GAMECTL_SERVICE_SECRET", hide_env_values = true, conflicts_with = "customer_id")]
        secret: Option<String>,
    },
    /// Forget the stored token.
    Logout,
    /// Who the token is for, its role and when it expires (read from the token, not
    /// checked).
    Whoami,
    /// Start signing tokens with a new key (admins only); tokens signed with the old one
    /// stay valid until they expire.
    RotateKey,
    /// Give or take back a customer's role (admins only; audited).
    Role {
        #[command(subcommand)]
        command: RoleCommand,
    },
    /// Refuse every token issued to a customer (or service account) until now, everywhere
    /// within seconds (admins only; audited). They log in again to get a new one.
    Revoke {
        customer_id: String,
        /// The id is a subject of another identity provider, unknown here: revoke anyway.
        #[arg(long)]
        external: bool,
    },
    /// Service accounts: game servers and our own services (admins only).
    ServiceAccount {
        #[command(subcommand)]
        command: ServiceAccountCommand,
    },
    /// Who changed which role, account or tokens, and when, newest first (admins only).
    Audit {
        /// Only what concerns this customer or client id.
        #[arg(long)]
        subject: Option<String>,
        /// At most this many entries [default and maximum: 500].
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Record that a customer (you, when not named) achieved a mission.
    #[command(override_usage = "gamectl achieve [OPTIONS] [CUSTOMER_ID] <MISSION_CODE>")]
    Achieve {
        /// [CUSTOMER_ID] MISSION_CODE
        #[arg(value_name = "ARGS", num_args = 1..=2, required = true)]
        args: Vec<String>,
        /// Idempotency key: repeating a request with the same id has no further effect.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// The missions a customer (you, when not named) achieved, newest first, a page at a time.
    Missions {
        customer_id: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// One mission.
    Mission { mission_id: String },
    /// The missions that can be achieved and their rules; with where each stands for a
    /// customer (you, when logged in as a player).
    Catalog { customer_id: Option<String> },
    /// The rewards allocated to a customer (you, when not named), newest first, a page at a time.
    Rewards {
        customer_id: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// One reward.
    Reward { reward_id: String },
    /// A customer's wallet (yours, when not named), newest first, a page at a time.
    Wallet {
        customer_id: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Exchange one of a customer's (your) ISSUED rewards for a gift from the gift catalog.
    #[command(override_usage = "gamectl exchange [OPTIONS] [CUSTOMER_ID] <REWARD_ID> <GIFT_CODE>")]
    Exchange {
        /// [CUSTOMER_ID] REWARD_ID GIFT_CODE (see `gift-catalog`, e.g. coffee)
        #[arg(value_name = "ARGS", num_args = 2..=3, required = true)]
        args: Vec<String>,
        /// Idempotency key: repeating a request with the same id answers the same result.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// The state of the circuit breaker guarding the wallet's calls to the gift service.
    ExchangeStatus,
    /// A customer's (your) points balance.
    Balance { customer_id: Option<String> },
    /// A customer's (your) points ledger: one entry per movement, newest first, a page at a time.
    Ledger {
        customer_id: Option<String>,
        /// Only entries of this kind.
        #[arg(long, value_enum)]
        kind: Option<EntryKind>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Spend a gift's cost from your balance, over as many rewards as it takes.
    #[command(override_usage = "gamectl redeem [OPTIONS] [CUSTOMER_ID] <GIFT_CODE>")]
    Redeem {
        /// [CUSTOMER_ID] GIFT_CODE (see `gift-catalog`, e.g. movie-ticket)
        #[arg(value_name = "ARGS", num_args = 1..=2, required = true)]
        args: Vec<String>,
        /// Idempotency key: repeating a request with the same id answers the same result.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// Admins: refund a gift: cancelled (unused only), its points back to the rewards they came from.
    Refund {
        gift_id: String,
        /// Why (required): kept on the REFUNDED ledger entry.
        #[arg(long)]
        reason: String,
        /// Idempotency key: repeating a request with the same id answers the same result.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// Admins: add (AMOUNT > 0) or take (AMOUNT < 0) points to or from a customer's balance.
    Adjust {
        customer_id: String,
        #[arg(allow_negative_numbers = true)]
        amount: i64,
        /// Why (required): kept on the ADJUSTED ledger entry.
        #[arg(long)]
        reason: String,
        /// Idempotency key: repeating a request with the same id answers the same result.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// The gifts issued to a customer (you, when not named), newest first, a page at a time.
    Gifts {
        customer_id: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// One gift.
    Gift { gift_id: String },
    /// The gifts that can be had, and what they cost in points.
    GiftCatalog,
    /// Use a gift (once).
    UseGift {
        gift_id: String,
        /// The customer using it [default: you]; the gift service checks it is theirs.
        #[arg(long)]
        customer_id: Option<String>,
    },
    /// The e-mails sent to a customer (you, when not named), newest first, a page at a time.
    Notifications {
        customer_id: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Dead-lettered events: list, show, redrive, discard (admins only; or with --bus, the
    /// operator's NATS key).
    Dlq(DlqArgs),
    /// Rebuild a view from the streams into a new generation while the old one serves,
    /// then switch reads over (admins only; or with --bus, the operator's NATS key): `mypage`.
    Rebuild(RebuildArgs),
    /// A customer's page (yours, when not named): everything they have.
    Mypage {
        customer_id: Option<String>,
        /// Keep printing the page every time it changes, until Ctrl-C.
        #[arg(long, conflicts_with_all = ["page_size", "page_token", "all"])]
        watch: bool,
        /// Entries: the first page holds the most recent; older ones page by page.
        #[command(flatten)]
        paging: Paging,
    },
}

/// The bus, with the operator's key.
#[derive(Debug, Clone, clap::Args)]
pub struct BusArgs {
    /// The bus [default: the one `gamectl up` started for this data dir (its
    /// endpoints.json), else nats://127.0.0.1:4222].
    #[arg(long, env = "NATS_URL", global = true)]
    pub nats_url: Option<String>,
    /// The operator's NKEY seed file [default: <data-dir>/nats-auth/operator.nk when it exists].
    #[arg(long, env = "NATS_NKEY_SEED_FILE", global = true)]
    pub nats_key: Option<std::path::PathBuf>,
}

/// The dead-letter stream: through the gateway with an admin's token
/// (`game.admin.v1.DeadLetterService`), or with --bus on the bus with the operator's key.
#[derive(Debug, clap::Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    pub command: DlqCommand,
    /// Straight on the bus with the operator's NATS key, instead of asking the ops
    /// service through the gateway with an admin's token.
    #[arg(long, global = true)]
    pub bus: bool,
    #[command(flatten)]
    pub nats: BusArgs,
}

/// A view rebuilt from the streams.
#[derive(Debug, clap::Args)]
pub struct RebuildArgs {
    /// The view to rebuild.
    #[arg(value_parser = ["mypage"])]
    pub view: String,
    /// Rebuild even when a stream no longer holds its oldest events (removed by its
    /// retention limits): what they said is lost from the rebuilt pages.
    #[arg(long)]
    pub allow_partial: bool,
    /// Rebuild in this process straight on the bus with the operator's NATS key, instead
    /// of asking the mypage service through the gateway with an admin's token.
    #[arg(long)]
    pub bus: bool,
    /// Milliseconds to hold the caught-up generation before switching to it (with --bus;
    /// for tests: what arrives meanwhile must reach both generations).
    #[arg(long, default_value_t = 0, requires = "bus", hide = true)]
    pub hold_before_switch_ms: u64,
    /// The key-value bucket of the pages (with --bus).
    #[arg(long, env = "MYPAGE_BUCKET", default_value = nats_adapter::roles::MYPAGE_BUCKET, requires = "bus")]
    pub bucket: String,
    #[command(flatten)]
    pub nats: BusArgs,
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// The events waiting: consumer, subject, reason, attempts, when, event id, customer.
    List {
        /// Only this consumer's (e.g. notification-gift-issued).
        #[arg(long)]
        consumer: Option<String>,
        /// Oldest first (through the gateway; --bus lists up to 1000 at once).
        #[command(flatten)]
        paging: Paging,
    },
    /// One event, decoded.
    Show { id: u64 },
    /// Send events back to their subject with the same event id: the consumer that failed
    /// handles it, the others' inboxes know it already. Safe to run twice.
    Redrive {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<u64>,
        /// Every event waiting (of --consumer when given).
        #[arg(long)]
        all: bool,
        #[arg(long, requires = "all")]
        consumer: Option<String>,
    },
    /// Take an event out of the waiting list for good; the event and the reason are kept.
    Discard {
        id: u64,
        #[arg(long)]
        reason: String,
    },
}

/// Which page of a list to print.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Paging {
    /// Items per page (newest first) [default: 50, at most 500].
    #[arg(long)]
    pub page_size: Option<i32>,
    /// The page after the one that printed this token.
    #[arg(long)]
    pub page_token: Option<String>,
    /// Every page, not only the first.
    #[arg(long, conflicts_with = "page_token")]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Give a customer a role: `admin` (they get it with their next login).
    Grant { customer_id: String, role: String },
    /// Take a role back: the customer is a player again, and their tokens are revoked.
    Revoke { customer_id: String, role: String },
}

#[derive(Debug, Subcommand)]
pub enum ServiceAccountCommand {
    /// Create a service account; its secret is printed this once (only its hash is kept).
    Create {
        /// 1-64 characters of a-z, 0-9, '-', '_'; the client id is `svc-<name>`.
        name: String,
        #[arg(long, default_value = "game_server", value_parser = ["game_server", "service"])]
        role: String,
    },
    /// Print the `SERVICE_ACCOUNTS_FILE` the auth service provisions at start, for one
    /// account whose secret you give (e.g. for a Kubernetes Secret): the secret's argon2id
    /// hash, never the secret. Calls nothing.
    ProvisionFile {
        /// `svc-<name>`.
        client_id: String,
        #[arg(long, default_value = "service", value_parser = ["game_server", "service"])]
        role: String,
        /// Asked on the terminal when not given, or read from stdin.
        #[arg(long, env = "GAMECTL_SERVICE_SECRET", hide_env_values = true)]
        secret: Option<String>,
    },
}

/// Splits `[CUSTOMER_ID] REST...` (clap checked the count): the customer is there when
/// there is one more argument than `rest`.
pub fn optional_customer(mut args: Vec<String>, rest: usize) -> (Option<String>, Vec<String>) {
    if args.len() > rest { (Some(args.remove(0)), args) } else { (None, args) }
}

/// A kind of ledger entry (`gamectl ledger --kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EntryKind {
    Earned,
    Spent,
    Refunded,
    Expired,
    Adjusted,
}

impl EntryKind {
    pub fn to_proto(self) -> contracts::pb::wallet::v1::LedgerEntryKind {
        use contracts::pb::wallet::v1::LedgerEntryKind as K;
        match self {
            Self::Earned => K::Earned,
            Self::Spent => K::Spent,
            Self::Refunded => K::Refunded,
            Self::Expired => K::Expired,
            Self::Adjusted => K::Adjusted,
        }
    }
}

/// Where `up` keeps the relational roles' data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Database {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// Use this NATS server instead of starting one; the services connect to it without
    /// credentials, so it must let anonymous clients in.
    #[arg(long)]
    pub nats_url: Option<String>,
    /// Port of the nats-server started by gamectl [default: base-port + 100]; a
    /// cluster's nodes listen on it and the ports after it.
    #[arg(long)]
    pub nats_port: Option<u16>,
    /// Start this many nats-servers clustered on loopback (JetStream on each, its own
    /// store directory, routes on nats-port + 10 + i) instead of one: streams, consumers
    /// and buckets get min(n, 3) replicas and every service all the nodes' URLs.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub nats_cluster: u8,
    /// Where the relational roles (mission, reward, wallet, gift, notification, auth)
    /// keep their data: a SQLite file each in the data dir, or a database each on the
    /// PostgreSQL server of --database-url, `<database-prefix>_<system>_<role>`, created if
    /// missing, where <system> is this data dir's system id (made on its first start, kept
    /// in <data-dir>/system-id): another data dir is another system with its own databases.
    #[arg(long, value_enum, default_value_t = Database::Sqlite)]
    pub database: Database,
    /// The PostgreSQL server of --database postgres: a URL naming any database on it
    /// [default: TEST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres].
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Each role's database is `<prefix>_<system>_<role>` (lower-case letters, digits, _).
    #[arg(long, default_value = "game")]
    pub database_prefix: String,
    /// Start this system over: drop its own databases (those named with its system id;
    /// with SQLite, remove its files), its JetStream store, signing keys, mailbox, first
    /// admin's password and stored token, then start as on the first start. Nothing of any
    /// other system is touched.
    #[arg(long)]
    pub reset: bool,
    /// The gateway listens here, each service on base-port + its offset (mission +1,
    /// reward +2, wallet +3, mypage +4, gift +5, notification +6, auth +7, ops +8).
    #[arg(long, default_value_t = 50051)]
    pub base_port: u16,
    /// Processes of every role but the gateway, sharing the role's database and durable
    /// consumers; the gateway balances over the SERVING ones and a dead one is restarted.
    /// Replica r listens on base-port + offset + 10·(r−1) (mission-2 on base-port + 11)
    /// and is named <role>-<r> in endpoints.json. More than one needs --database postgres
    /// and is refused with --all-in-one [default: 2 with --database postgres, else 1]
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=i64::from(crate::services::MAX_REPLICAS)))]
    pub replicas: Option<u8>,
    /// Run every role in one child process (`gamectl serve --roles all`) instead of one
    /// child per role: less memory and a faster start; a role that fails restarts them all.
    #[arg(long)]
    pub all_in_one: bool,
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

#[cfg(test)]
mod tests;
