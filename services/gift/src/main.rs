//! The gift service binary.

use clap::Parser;

#[tokio::main]
async fn main() {
    grpc_adapter::telemetry::init();
    gift_service::run(gift_service::Settings::parse()).await;
}
