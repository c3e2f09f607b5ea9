//! The auth service binary.

use clap::Parser;

#[tokio::main]
async fn main() {
    grpc_adapter::telemetry::init();
    auth_service::run(auth_service::Settings::parse()).await;
}
