//! The notification service binary.

use clap::Parser;

#[tokio::main]
async fn main() {
    grpc_adapter::telemetry::init();
    notification_service::run(notification_service::Settings::parse()).await;
}
