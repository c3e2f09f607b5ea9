//! The mypage service binary.

use clap::Parser;

#[tokio::main]
async fn main() {
    grpc_adapter::telemetry::init();
    mypage_service::run(mypage_service::Settings::parse()).await;
}
