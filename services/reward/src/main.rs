//! The reward service binary.

use clap::Parser;

#[tokio::main]
async fn main() {
    grpc_adapter::telemetry::init();
    reward_service::run(reward_service::Settings::parse()).await;
}
