//! The wallet service binary.

use clap::Parser;

#[tokio::main]
async fn main() {
    grpc_adapter::telemetry::init();
    wallet_service::run(wallet_service::Settings::parse()).await;
}
