//! The expiry scan: every `EXPIRY_SCAN_SECONDS`, lots whose expiry has come leave the
//! balance (`EXPIRED` entries, once across replicas: the store guards it), and
//! `points_outstanding` is read again from the store; customers whose points expire
//! within `EXPIRY_NOTICE_DAYS` are told, once per expiry date (`PointsExpiring`, which
//! the notification service e-mails). Every replica runs it.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::App;

/// Customers expired per round at most (the next round takes the rest at once).
const BATCH: usize = 200;

/// Runs until `shutdown`.
/// `notice`: how long before their expiry customers are told (zero: never).
pub async fn scan(app: Arc<App>, every: Duration, notice: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        round(&app, notice).await;
    }
}

/// One round: expire what is due (batch after batch while batches come full), then
/// refresh the gauge.
pub async fn round(app: &App, notice: Duration) {
    loop {
        match app.expire_due(Utc::now(), BATCH).await {
            Ok(expired) => {
                if !expired.is_empty() {
                    let points: i64 = expired.iter().map(|e| -e.amount).sum();
                    tracing::info!(entries = expired.len(), points, "points expired");
                }
                if expired.len() < BATCH {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "expiry scan failed; the next round tries again");
                break;
            }
        }
    }
    if !notice.is_zero() {
        match app.notify_expiring(Utc::now(), notice, BATCH * 10).await {
            Ok(told) if !told.is_empty() => tracing::info!(notices = told.len(), "customers told of expiring points"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "expiry notices failed; the next round tries again"),
        }
    }
    match app.outstanding().await {
        Ok(total) => metrics_adapter::points().outstanding(total),
        Err(e) => tracing::warn!(error = %e, "points_outstanding not refreshed"),
    }
}
