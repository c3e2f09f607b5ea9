//! Wallet events on the wire, and the policy reacting to `RewardAllocated`.

use std::sync::Arc;

use grpc_adapter::pb::events::v1 as pb;
use kernel::{CustomerId, Envelope, parse_id};
use nats_adapter::consumer::{Delivery, HandleError, Handler};
use nats_adapter::envelope::outbox;
use prost::Message;
use store_adapter::outbox::OutboxMessage;
use wallet_domain::service::RewardAllocated;
use wallet_domain::{WalletError, WalletEvent};

use crate::App;

pub fn to_outbox(e: &Envelope<WalletEvent>) -> OutboxMessage {
    match &e.event {
        WalletEvent::Issued { reward_id, mission_id, customer_id, points } => {
            let body = pb::RewardIssued {
                reward_id: reward_id.to_string(),
                mission_id: mission_id.to_string(),
                customer_id: customer_id.to_string(),
                points: *points,
            };
            outbox(&e.meta, &body)
        }
        WalletEvent::Exchanged { reward_id, mission_id, customer_id, points, gift_id, gift_code } => {
            let body = pb::RewardExchanged {
                reward_id: reward_id.to_string(),
                mission_id: mission_id.to_string(),
                customer_id: customer_id.to_string(),
                points: *points,
                gift_id: gift_id.to_string(),
                gift_code: gift_code.clone(),
            };
            outbox(&e.meta, &body)
        }
        WalletEvent::PointsExpiring(n) => {
            let body = pb::PointsExpiring {
                customer_id: n.customer_id.to_string(),
                points: n.points,
                expiry_date: n.date.to_string(),
                expires_at: Some(grpc_adapter::convert::timestamp(n.expires_at)),
            };
            outbox(&e.meta, &body)
        }
    }
}

pub use nats_adapter::roles::wallet::ISSUE;

pub struct Issue(pub Arc<App>);

fn reject(e: impl std::fmt::Display) -> HandleError {
    HandleError::Reject(e.to_string())
}

impl Handler for Issue {
    async fn handle(&self, d: &Delivery) -> Result<(), HandleError> {
        let e = pb::RewardAllocated::decode(d.payload.as_ref()).map_err(reject)?;
        let fact = RewardAllocated {
            reward_id: parse_id("reward_id", &e.reward_id).map_err(reject)?,
            mission_id: parse_id("mission_id", &e.mission_id).map_err(reject)?,
            customer_id: CustomerId::new(e.customer_id).map_err(reject)?,
            points: e.points,
            points_expire_after: u64::try_from(e.points_expire_after_seconds)
                .ok()
                .filter(|s| *s > 0)
                .map(std::time::Duration::from_secs),
        };
        let (points, mission) = (fact.points, e.mission_code);
        let issued = self.0.on_reward_allocated(d.inbound(), &d.meta, fact).await.map_err(|e| match e {
            WalletError::Unavailable(_) => HandleError::Retry(e.to_string()),
            other => HandleError::Reject(other.to_string()),
        })?;
        if issued {
            metrics_adapter::points().earned(&mission, points);
        }
        Ok(())
    }
}
