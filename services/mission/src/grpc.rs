//! The inbound gRPC adapter: proto in, domain call, proto out.

use std::sync::Arc;

use grpc_adapter::convert::timestamp;
use grpc_adapter::pb::mission::v1 as pb;
use grpc_adapter::{auth, status};
use mission_domain::{AchieveMission, Mission, MissionError, MissionStatus};
use tonic::{Request, Response, Status};

use crate::App;

pub fn server(app: Arc<App>) -> pb::mission_service_server::MissionServiceServer<Handlers> {
    pb::mission_service_server::MissionServiceServer::new(Handlers { app })
}

pub struct Handlers {
    app: Arc<App>,
}

fn to_status(e: MissionError) -> Status {
    match e {
        MissionError::Invalid(v) => status::invalid(&v),
        MissionError::NotFound(what) => status::not_found(what),
        MissionError::Refused(r) => Status::failed_precondition(r.to_string()),
        MissionError::Unavailable(detail) => status::unavailable(&detail),
    }
}

fn to_proto(m: Mission) -> pb::Mission {
    pb::Mission {
        mission_id: m.id.to_string(),
        customer_id: m.customer_id.to_string(),
        mission_code: m.code.as_str().to_owned(),
        status: match m.status {
            MissionStatus::Achieved => pb::MissionStatus::Achieved,
            MissionStatus::Rewarded => pb::MissionStatus::Rewarded,
        } as i32,
        reward_id: m.reward_id.map(|r| r.to_string()).unwrap_or_default(),
        achieved_at: Some(timestamp(m.achieved_at)),
        reward_points: m.reward_points,
    }
}

#[tonic::async_trait]
impl pb::mission_service_server::MissionService for Handlers {
    async fn achieve_mission(
        &self,
        req: Request<pb::AchieveMissionRequest>,
    ) -> Result<Response<pb::AchieveMissionResponse>, Status> {
        let tp = status::header(&req, "traceparent");
        let customer = auth::act_for(&req, &req.get_ref().customer_id)?;
        let r = req.into_inner();
        let cmd =
            AchieveMission::new(customer.as_str(), &r.mission_code, &r.request_id).map_err(|e| status::invalid(&e))?;
        let mission = self.app.achieve(cmd, tp).await.map_err(to_status)?;
        Ok(Response::new(pb::AchieveMissionResponse { mission: Some(to_proto(mission)) }))
    }

    async fn get_mission(
        &self,
        req: Request<pb::GetMissionRequest>,
    ) -> Result<Response<pb::GetMissionResponse>, Status> {
        let who = auth::identity(&req)?;
        let id = status::id("mission_id", &req.get_ref().mission_id)?;
        let mission = self.app.get(id).await.map_err(to_status)?;
        auth::check_visible(&who, mission.customer_id.as_str(), "mission")?;
        Ok(Response::new(pb::GetMissionResponse { mission: Some(to_proto(mission)) }))
    }

    async fn list_missions(
        &self,
        req: Request<pb::ListMissionsRequest>,
    ) -> Result<Response<pb::ListMissionsResponse>, Status> {
        let customer = auth::read_for(&req, &req.get_ref().customer_id)?;
        let missions = self.app.list(&customer).await.map_err(to_status)?;
        Ok(Response::new(pb::ListMissionsResponse { missions: missions.into_iter().map(to_proto).collect() }))
    }

    async fn list_catalog(
        &self,
        _: Request<pb::ListCatalogRequest>,
    ) -> Result<Response<pb::ListCatalogResponse>, Status> {
        let missions = self
            .app
            .catalog()
            .missions()
            .iter()
            .map(|m| pb::CatalogMission {
                mission_code: m.code.as_str().to_owned(),
                title: m.title.clone(),
                reward_points: m.reward_points,
            })
            .collect();
        Ok(Response::new(pb::ListCatalogResponse { missions }))
    }
}
