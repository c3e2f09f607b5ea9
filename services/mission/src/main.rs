//! The mission service binary.

use clap::Parser;

#[tokio::main]
async fn main() {
    grpc_adapter::telemetry::init();
    mission_service::run(mission_service::Settings::parse()).await;
}
