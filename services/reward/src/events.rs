//! Reward events on the wire, and the policies reacting to mission and wallet events.

use std::sync::Arc;

use contracts::pb::events::v1 as pb;
use kernel::{CustomerId, Envelope, parse_id};
use nats_adapter::consumer::{Delivery, HandleError, Handler};
use nats_adapter::envelope::outbox;
use nats_adapter::streams::subject;
use prost::Message;
use reward_domain::service::MissionAchieved;
use reward_domain::{RewardError, RewardEvent, RewardStatus};
use store_adapter::outbox::OutboxMessage;

use crate::App;

pub fn to_outbox(e: &Envelope<RewardEvent>) -> OutboxMessage {
    match &e.event {
        RewardEvent::Allocated { reward_id, mission_id, customer_id, points, mission_code, points_expire_after } => {
            let body = pb::RewardAllocated {
                reward_id: reward_id.to_string(),
                mission_id: mission_id.to_string(),
                customer_id: customer_id.to_string(),
                points: *points,
                mission_code: mission_code.clone(),
                points_expire_after_seconds: points_expire_after
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            };
            outbox(&e.meta, &body)
        }
    }
}

pub use nats_adapter::roles::reward::{ALLOCATE, EXCHANGED, ISSUED};

pub struct Policies(pub Arc<App>);

/// A `points_expire_after_seconds` on the wire: 0 (or below, never written) is never.
fn expiry(secs: i64) -> Option<std::time::Duration> {
    u64::try_from(secs).ok().filter(|s| *s > 0).map(std::time::Duration::from_secs)
}

fn reject(e: impl std::fmt::Display) -> HandleError {
    HandleError::Reject(e.to_string())
}

fn outcome(e: RewardError) -> HandleError {
    match e {
        RewardError::NotFound(_) | RewardError::Unavailable(_) => HandleError::Retry(e.to_string()),
    }
}

impl Handler for Policies {
    async fn handle(&self, d: &Delivery) -> Result<(), HandleError> {
        match d.subject.as_str() {
            subject::MISSION_ACHIEVED => {
                let e = pb::MissionAchieved::decode(d.payload.as_ref()).map_err(reject)?;
                let fact = MissionAchieved {
                    mission_id: parse_id("mission_id", &e.mission_id).map_err(reject)?,
                    customer_id: CustomerId::new(e.customer_id).map_err(reject)?,
                    mission_code: e.mission_code,
                    reward_points: e.reward_points,
                    points_expire_after: expiry(e.points_expire_after_seconds),
                };
                self.0.on_mission_achieved(d.inbound(), &d.meta, fact).await.map_err(outcome)
            }
            subject::REWARD_ISSUED => {
                let e = pb::RewardIssued::decode(d.payload.as_ref()).map_err(reject)?;
                let id = parse_id("reward_id", &e.reward_id).map_err(reject)?;
                self.0
                    .on_wallet_changed(d.inbound(), &d.meta.customer_id, id, RewardStatus::Issued)
                    .await
                    .map_err(outcome)
            }
            subject::REWARD_EXCHANGED => {
                let e = pb::RewardExchanged::decode(d.payload.as_ref()).map_err(reject)?;
                let id = parse_id("reward_id", &e.reward_id).map_err(reject)?;
                self.0
                    .on_wallet_changed(d.inbound(), &d.meta.customer_id, id, RewardStatus::Exchanged)
                    .await
                    .map_err(outcome)
            }
            other => Err(reject(format!("unexpected subject {other}"))),
        }
    }
}
