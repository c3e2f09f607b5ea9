//! Mission events on the wire, and the policy reacting to `RewardAllocated`.

use std::sync::Arc;

use contracts::pb::events::v1 as pb;
use grpc_adapter::convert::timestamp;
use kernel::{Envelope, parse_id};
use mission_domain::{MissionError, MissionEvent};
use nats_adapter::consumer::{Delivery, HandleError, Handler};
use nats_adapter::envelope::outbox;
use prost::Message;
use store_adapter::outbox::OutboxMessage;

use crate::App;

/// Encodes a domain event for the outbox.
pub fn to_outbox(e: &Envelope<MissionEvent>) -> OutboxMessage {
    match &e.event {
        MissionEvent::Achieved { mission_id, customer_id, code, reward_points, achieved_at, points_expire_after } => {
            let body = pb::MissionAchieved {
                mission_id: mission_id.to_string(),
                customer_id: customer_id.to_string(),
                mission_code: code.as_str().to_owned(),
                reward_points: *reward_points,
                achieved_at: Some(timestamp(*achieved_at)),
                points_expire_after_seconds: points_expire_after
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            };
            outbox(&e.meta, &body)
        }
        MissionEvent::Rewarded { mission_id, customer_id, reward_id } => {
            let body = pb::MissionRewarded {
                mission_id: mission_id.to_string(),
                customer_id: customer_id.to_string(),
                reward_id: reward_id.to_string(),
            };
            outbox(&e.meta, &body)
        }
    }
}

pub use nats_adapter::roles::mission::RECORD_REWARD;

pub struct RecordReward(pub Arc<App>);

impl Handler for RecordReward {
    async fn handle(&self, d: &Delivery) -> Result<(), HandleError> {
        let e = pb::RewardAllocated::decode(d.payload.as_ref())
            .map_err(|e| HandleError::Reject(format!("undecodable: {e}")))?;
        let mission_id = parse_id("mission_id", &e.mission_id).map_err(|e| HandleError::Reject(e.to_string()))?;
        let reward_id = parse_id("reward_id", &e.reward_id).map_err(|e| HandleError::Reject(e.to_string()))?;
        self.0.on_reward_allocated(d.inbound(), &d.meta, mission_id, reward_id).await.map_err(|e| match e {
            MissionError::NotFound(_) | MissionError::Unavailable(_) => HandleError::Retry(e.to_string()),
            MissionError::Invalid(_)
            | MissionError::Refused(_)
            | MissionError::Rule(_)
            | MissionError::UnknownCustomer(_) => HandleError::Reject(e.to_string()),
        })
    }
}
