//! The gRPC health service, and readiness kept in step with the service's dependencies.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use super::Probe;

/// The gRPC health service (tonic-health's), served through our generated server so
/// that its requests are read like every other (see `build.rs`).
pub(super) fn health_server(
    reporter: &HealthReporter,
) -> contracts::pb::health::v1::health_server::HealthServer<Health> {
    let service = tonic_health::server::HealthService::from_health_reporter(reporter.clone());
    contracts::pb::health::v1::health_server::HealthServer::new(Health(service))
}

pub struct Health(tonic_health::server::HealthService);

#[tonic::async_trait]
impl contracts::pb::health::v1::health_server::Health for Health {
    async fn check(
        &self,
        req: tonic::Request<tonic_health::pb::HealthCheckRequest>,
    ) -> Result<tonic::Response<tonic_health::pb::HealthCheckResponse>, tonic::Status> {
        tonic_health::pb::health_server::Health::check(&self.0, req).await
    }

    type WatchStream = tonic_health::server::WatchStream;

    async fn watch(
        &self,
        req: tonic::Request<tonic_health::pb::HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        tonic_health::pb::health_server::Health::watch(&self.0, req).await
    }
}

pub(super) async fn keep_readiness(
    ready_metric: Arc<metrics_adapter::ServerReadiness>,
    reporter: HealthReporter,
    names: Vec<&'static str>,
    probe: Probe,
    interval: Duration,
    draining: CancellationToken,
) {
    let mut last = None;
    loop {
        let ready = tokio::select! {
            ready = probe() => ready,
            () = draining.cancelled() => return,
        };
        ready_metric.ready(ready);
        if last != Some(ready) {
            let status = if ready { ServingStatus::Serving } else { ServingStatus::NotServing };
            for name in &names {
                reporter.set_service_status(*name, status).await;
            }
            if last.is_some() || !ready {
                tracing::info!(ready, "readiness changed");
            }
            last = Some(ready);
        }
        // While not ready, look again soon: a service becomes SERVING as soon as its
        // dependencies answer (at start, NATS connects a few milliseconds after we listen).
        let next = if ready { interval } else { interval.min(NOT_READY_RETRY) };
        tokio::select! {
            () = tokio::time::sleep(next) => {}
            () = draining.cancelled() => return,
        }
    }
}

/// How soon a service that is not ready checks its dependencies again.
const NOT_READY_RETRY: Duration = Duration::from_millis(25);
