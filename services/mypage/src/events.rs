//! Every context's events, as the facts my page is built from.

use std::sync::Arc;

use grpc_adapter::pb::events::v1 as pb;
use kernel::{CustomerId, parse_id};
use mypage_domain::{Fact, MyPageError};
use nats_adapter::consumer::{Delivery, HandleError, Handler};
use nats_adapter::streams::subject;
use prost::Message;

use crate::App;

pub use nats_adapter::roles::mypage::CONSUMERS;

fn reject(e: impl std::fmt::Display) -> HandleError {
    HandleError::Reject(e.to_string())
}

fn id(field: &'static str, raw: &str) -> Result<uuid::Uuid, HandleError> {
    parse_id(field, raw).map_err(reject)
}

/// The fact an event carries for my page, if any.
///
/// # Errors
/// `Reject` when the payload is not the event its subject names.
pub fn fact(subject_name: &str, payload: &[u8]) -> Result<Option<Fact>, HandleError> {
    Ok(Some(match subject_name {
        subject::MISSION_ACHIEVED => {
            let e = pb::MissionAchieved::decode(payload).map_err(reject)?;
            Fact::MissionAchieved {
                mission_id: id("mission_id", &e.mission_id)?,
                mission_code: e.mission_code,
                points: e.reward_points,
            }
        }
        subject::MISSION_REWARDED => {
            let e = pb::MissionRewarded::decode(payload).map_err(reject)?;
            Fact::MissionRewarded {
                mission_id: id("mission_id", &e.mission_id)?,
                reward_id: id("reward_id", &e.reward_id)?,
            }
        }
        subject::REWARD_ALLOCATED => {
            let e = pb::RewardAllocated::decode(payload).map_err(reject)?;
            Fact::RewardAllocated {
                mission_id: id("mission_id", &e.mission_id)?,
                reward_id: id("reward_id", &e.reward_id)?,
                points: e.points,
                mission_code: e.mission_code,
            }
        }
        subject::REWARD_ISSUED => {
            let e = pb::RewardIssued::decode(payload).map_err(reject)?;
            Fact::RewardIssued {
                mission_id: id("mission_id", &e.mission_id)?,
                reward_id: id("reward_id", &e.reward_id)?,
                points: e.points,
            }
        }
        subject::REWARD_EXCHANGED => {
            let e = pb::RewardExchanged::decode(payload).map_err(reject)?;
            Fact::RewardExchanged {
                mission_id: id("mission_id", &e.mission_id)?,
                reward_id: id("reward_id", &e.reward_id)?,
                points: e.points,
                gift_id: id("gift_id", &e.gift_id)?,
                gift_code: e.gift_code,
            }
        }
        subject::GIFT_ISSUED => {
            let e = pb::GiftIssued::decode(payload).map_err(reject)?;
            Fact::GiftIssued {
                mission_id: id("mission_id", &e.mission_id)?,
                reward_id: id("reward_id", &e.reward_id)?,
                gift_id: id("gift_id", &e.gift_id)?,
                gift_code: e.gift_code,
            }
        }
        subject::GIFT_USED => {
            let e = pb::GiftUsed::decode(payload).map_err(reject)?;
            Fact::GiftUsed { mission_id: id("mission_id", &e.mission_id)?, gift_id: id("gift_id", &e.gift_id)? }
        }
        // An event my page does not show (yet): nothing to do.
        _ => return Ok(None),
    }))
}

/// The live projection: facts go to every generation the pointer names.
pub struct Project(pub Arc<App>);

/// The projection into one generation: a rebuild replaying the streams.
pub struct ProjectInto {
    pub app: Arc<App>,
    pub generation: u64,
}

impl Target for Project {
    async fn apply(&self, customer: &CustomerId, facts: &[Fact]) -> Result<(), MyPageError> {
        self.0.apply(customer, facts).await
    }
}

impl Target for ProjectInto {
    async fn apply(&self, customer: &CustomerId, facts: &[Fact]) -> Result<(), MyPageError> {
        self.app.at(self.generation).apply(customer, facts).await
    }
}

/// Where a projection's facts go.
pub trait Target: Send + Sync + 'static {
    fn apply(
        &self,
        customer: &CustomerId,
        facts: &[Fact],
    ) -> impl std::future::Future<Output = Result<(), MyPageError>> + Send;
}

fn retry(e: MyPageError) -> HandleError {
    match e {
        MyPageError::Unavailable(_) => HandleError::Retry(e.to_string()),
        // (a read's refusal: applying facts plans no cursor)
        MyPageError::Cursor(_) => HandleError::Reject(e.to_string()),
    }
}

/// A [`Target`] as the handler of a consumer (live) or of a replay (rebuild).
pub struct Projection<T>(pub T);

impl<T: Target> Handler for Projection<T> {
    async fn handle(&self, d: &Delivery) -> Result<(), HandleError> {
        let Some(fact) = fact(&d.subject, &d.payload)? else { return Ok(()) };
        self.0.apply(&d.meta.customer_id, &[fact]).await.map_err(retry)
    }

    /// One customer's events become one page update: a backlog of N events costs one
    /// read and one write of the page instead of N of each.
    async fn handle_all(&self, deliveries: &[Delivery]) -> Vec<Result<(), HandleError>> {
        let Some(first) = deliveries.first() else { return Vec::new() };
        let mut outcomes: Vec<Result<(), HandleError>> = Vec::with_capacity(deliveries.len());
        let (mut facts, mut fact_at) = (Vec::new(), Vec::new());
        for d in deliveries {
            match fact(&d.subject, &d.payload) {
                Ok(Some(f)) => {
                    facts.push(f);
                    fact_at.push(outcomes.len());
                    outcomes.push(Ok(()));
                }
                other => outcomes.push(other.map(drop)),
            }
        }
        if !facts.is_empty()
            && let Err(e) = self.0.apply(&first.meta.customer_id, &facts).await
        {
            // The page was not stored: every fact in it comes back later.
            let reason = e.to_string();
            for i in fact_at {
                outcomes[i] = Err(HandleError::Retry(reason.clone()));
            }
        }
        outcomes
    }
}
