//! The gateway binary.

use clap::Parser;

#[tokio::main]
async fn main() {
    grpc_adapter::telemetry::init();
    gateway::run(gateway::Settings::parse()).await;
}
