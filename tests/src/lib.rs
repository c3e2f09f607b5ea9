//! The end-to-end harness: the real server executable (`gamectl serve <role>`) as child
//! processes, a private
//! nats-server with the authorisation `gamectl up` gives it (every service with its own
//! credentials and permissions; tests that publish or inspect events act as the
//! operator), fresh databases, real gRPC over loopback sockets.
//!
//! The executables must be built first (`cargo build --workspace --bins`, which the
//! README's test command does). Each process's log goes to `<tmp>/<name>.log`; set
//! `E2E_LOGS=1` to see them on the terminal instead.

pub use nats_adapter::access::OPERATOR as NATS_OPERATOR;
pub use nats_adapter::testing::{NatsCluster, NatsServer, ServerErrors, connect_as as nats_connect_as, free_port};
pub use store_adapter::testing::TestDatabase;

mod process;
mod proxy;
mod system;
mod tokens;

pub use process::{Service, bin, bin_dir, serve, serve_command};
pub use proxy::SlowProxy;
pub use system::{
    GATEWAY_CLIENT_ID, Options, Secrets, System, WALLET_CLIENT_ID, auth_env, count_events, verifier_env,
    wallet_account_env,
};
pub use tokens::{Authed, Bearer, Tokens, with_token};

pub mod api;
pub mod clients;
pub mod events;
pub mod raw;
/// A long history seeded straight into my page.
pub mod seed;
pub mod up;

use std::time::{Duration, Instant};

/// Polls `check` every 50 ms until it returns `Some`, or panics after `timeout`.
///
/// # Panics
/// With `what` when the time runs out.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// The services' gRPC names (also their health names), the contracts'.
pub const MISSION: &str = contracts::services::MISSION.name;
pub const REWARD: &str = contracts::services::REWARD.name;
pub const WALLET: &str = contracts::services::WALLET.name;
pub const MYPAGE: &str = contracts::services::MYPAGE.name;

pub const GIFT: &str = contracts::services::GIFT.name;
pub const NOTIFICATION: &str = contracts::services::NOTIFICATION.name;
pub const AUTH: &str = contracts::services::AUTH.name;
pub const GATEWAY: &str = contracts::services::GATEWAY;
/// The first admin the auth service creates at start (`ADMIN_ID`).
pub const ADMIN: &str = "admin";
/// The game server of the economy's tests, by its service account's name.
pub const GAME_SERVER: &str = "studio-1";
/// The subject of its tokens (`Tokens::game_server(GAME_SERVER)`): what missions it
/// reports record as `reported_by`.
pub const GAME_SERVER_SUBJECT: &str = "svc-studio-1";
