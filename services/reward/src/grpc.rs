//! The inbound gRPC adapter.

use std::sync::Arc;

use contracts::pb::reward::v1 as pb;
use grpc_adapter::{auth, paging, status};
use reward_domain::{Reward, RewardError, RewardStatus};
use tonic::{Request, Response, Status};

use crate::App;

pub fn server(app: Arc<App>) -> pb::reward_service_server::RewardServiceServer<Handlers> {
    pb::reward_service_server::RewardServiceServer::new(Handlers { app })
}

pub struct Handlers {
    app: Arc<App>,
}

fn to_status(e: RewardError) -> Status {
    match e {
        RewardError::NotFound(what) => status::not_found(what),
        RewardError::Unavailable(detail) => status::unavailable(&detail),
    }
}

fn to_proto(r: Reward) -> pb::Reward {
    pb::Reward {
        reward_id: r.id.to_string(),
        mission_id: r.mission_id.to_string(),
        customer_id: r.customer_id.to_string(),
        points: r.points,
        status: match r.status {
            RewardStatus::Allocated => pb::RewardStatus::Allocated,
            RewardStatus::Issued => pb::RewardStatus::Issued,
            RewardStatus::Exchanged => pb::RewardStatus::Exchanged,
        } as i32,
    }
}

#[tonic::async_trait]
impl pb::reward_service_server::RewardService for Handlers {
    async fn get_reward(&self, req: Request<pb::GetRewardRequest>) -> Result<Response<pb::GetRewardResponse>, Status> {
        let who = auth::identity(&req)?;
        let id = status::id("reward_id", &req.get_ref().reward_id)?;
        let reward = self.app.get(id).await.map_err(to_status)?;
        auth::check_visible(&who, reward.customer_id.as_str(), "reward")?;
        Ok(Response::new(pb::GetRewardResponse { reward: Some(to_proto(reward)) }))
    }

    async fn list_rewards(
        &self,
        req: Request<pb::ListRewardsRequest>,
    ) -> Result<Response<pb::ListRewardsResponse>, Status> {
        let customer = auth::read_for(&req, &req.get_ref().customer_id)?;
        let scope = format!("rewards/{customer}");
        let page = paging::request(req.get_ref().page_size, &req.get_ref().page_token, &scope)?;
        let rewards = self.app.list(&customer, page).await.map_err(to_status)?;
        let (rewards, next_page_token) = paging::answer(rewards, &scope, to_proto);
        Ok(Response::new(pb::ListRewardsResponse { rewards, next_page_token }))
    }
}

#[cfg(test)]
mod status_tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn each_reward_error_becomes_its_status_and_internal_detail_stays_in_the_log() {
        let s = to_status(RewardError::NotFound("reward"));
        assert_eq!((s.code(), s.message()), (Code::NotFound, "reward not found"));
        let s = to_status(RewardError::Unavailable("database is locked at /data/reward.db".into()));
        assert_eq!(s.code(), Code::Unavailable);
        assert!(!s.message().contains("/data/reward.db"), "{}", s.message());
    }
}
