//! The inbound gRPC adapter: proto in, domain call, proto out.

use std::sync::Arc;

use auth_adapter::Role;
use chrono::Utc;
use contracts::pb::mission::v1 as pb;
use grpc_adapter::convert::timestamp;
use grpc_adapter::{auth, paging, status};
use mission_domain::rules::{Availability, Repeat, ReportedBy, Schedule};
use mission_domain::{AchieveMission, Caller, Mission, MissionError, MissionStatus, Refusal, Reporter};
use tonic::{Request, Response, Status};

use crate::App;

pub fn server(app: Arc<App>) -> pb::mission_service_server::MissionServiceServer<Handlers> {
    pb::mission_service_server::MissionServiceServer::new(Handlers { app })
}

pub struct Handlers {
    app: Arc<App>,
}

/// A refusal of the economy's rules: PERMISSION_DENIED naming the mission when the caller
/// may not report it; otherwise FAILED_PRECONDITION with the player's message and a
/// `google.rpc.ErrorInfo` (reason, `mission_code`, `next_available_at` when there is one).
fn refused(r: &Refusal, schedule: &Schedule) -> Status {
    let message = r.message(schedule);
    if r.is_permission() {
        return Status::permission_denied(message);
    }
    let mut metadata = vec![("mission_code", r.code().as_str().to_owned())];
    if let Some(next) = r.next_available() {
        metadata.push(("next_available_at", schedule.local(next)));
    }
    status::refused(message, r.reason(), metadata)
}

fn to_status(e: MissionError, schedule: &Schedule) -> Status {
    match e {
        MissionError::Invalid(v) => status::invalid(&v),
        MissionError::NotFound(what) => status::not_found(what),
        MissionError::Refused(r) => Status::failed_precondition(r.to_string()),
        MissionError::Rule(r) => refused(&r, schedule),
        MissionError::UnknownCustomer(c) => {
            let message = MissionError::UnknownCustomer(c.clone()).to_string();
            status::refused(message, "CUSTOMER_NOT_REGISTERED", vec![("customer_id", c.to_string())])
        }
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
        reported_by: m.reported_by,
        slot: m.slot.unwrap_or_default(),
    }
}

fn availability_to_proto(a: Availability, schedule: &Schedule) -> pb::MissionAvailability {
    pb::MissionAvailability {
        mission_code: a.code.as_str().to_owned(),
        available: a.available,
        reason: a.refusal.as_ref().map(|r| r.reason().to_owned()).unwrap_or_default(),
        message: a.refusal.as_ref().map(|r| r.message(schedule)).unwrap_or_default(),
        next_available_at: a.next_at.map(timestamp),
        remaining_in_period: a.remaining,
    }
}

/// Who reports an achievement, from the verified token: a player only for themselves, a
/// game server or an admin for anyone. Our own services (role `service`) report nothing.
///
/// # Errors
/// `UNAUTHENTICATED` without a token, `INVALID_ARGUMENT` for a malformed customer id,
/// `PERMISSION_DENIED` for a player reporting for someone else, or a service.
fn caller<T>(req: &Request<T>, customer: &str) -> Result<Caller, Status> {
    let who = auth::identity(req)?;
    let customer = status::customer(customer)?;
    let kind = match who.role {
        Role::Player if who.customer_id == customer.as_str() => Reporter::Player,
        Role::GameServer => Reporter::GameServer,
        Role::Admin => Reporter::Admin,
        Role::Player | Role::Service => {
            return Err(Status::permission_denied("customer_id: you may only act for yourself"));
        }
    };
    Ok(Caller { kind, subject: who.customer_id })
}

#[tonic::async_trait]
impl pb::mission_service_server::MissionService for Handlers {
    async fn achieve_mission(
        &self,
        req: Request<pb::AchieveMissionRequest>,
    ) -> Result<Response<pb::AchieveMissionResponse>, Status> {
        let ctx = auth::context(&req);
        let customer = auth::or_caller(&auth::identity(&req)?, &req.get_ref().customer_id).to_owned();
        let by = caller(&req, &customer)?;
        let r = req.into_inner();
        let cmd =
            AchieveMission::new(&customer, &r.mission_code, &r.request_id, by).map_err(|e| status::invalid(&e))?;
        let schedule = self.app.catalog().schedule();
        let mission = self.app.achieve(cmd, &ctx).await.map_err(|e| to_status(e, schedule))?;
        Ok(Response::new(pb::AchieveMissionResponse { mission: Some(to_proto(mission)) }))
    }

    async fn get_mission(
        &self,
        req: Request<pb::GetMissionRequest>,
    ) -> Result<Response<pb::GetMissionResponse>, Status> {
        let who = auth::identity(&req)?;
        let id = status::id("mission_id", &req.get_ref().mission_id)?;
        let mission = self.app.get(id).await.map_err(|e| to_status(e, self.app.catalog().schedule()))?;
        auth::check_visible(&who, mission.customer_id.as_str(), "mission")?;
        Ok(Response::new(pb::GetMissionResponse { mission: Some(to_proto(mission)) }))
    }

    async fn list_missions(
        &self,
        req: Request<pb::ListMissionsRequest>,
    ) -> Result<Response<pb::ListMissionsResponse>, Status> {
        let customer = auth::read_for(&req, &req.get_ref().customer_id)?;
        let scope = format!("missions/{customer}");
        let page = paging::request(req.get_ref().page_size, &req.get_ref().page_token, &scope)?;
        let missions = self.app.list(&customer, page).await.map_err(|e| to_status(e, self.app.catalog().schedule()))?;
        let (missions, next_page_token) = paging::answer(missions, &scope, to_proto);
        Ok(Response::new(pb::ListMissionsResponse { missions, next_page_token }))
    }

    async fn list_catalog(
        &self,
        _: Request<pb::ListCatalogRequest>,
    ) -> Result<Response<pb::ListCatalogResponse>, Status> {
        let catalog = self.app.catalog();
        let missions = catalog
            .missions()
            .iter()
            .map(|m| pb::CatalogMission {
                mission_code: m.code.as_str().to_owned(),
                title: m.title.clone(),
                reward_points: m.points,
                repeat: match m.repeat {
                    Repeat::Once => pb::Repeat::Once,
                    Repeat::Daily => pb::Repeat::Daily,
                    Repeat::Weekly => pb::Repeat::Weekly,
                    Repeat::Unlimited => pb::Repeat::Unlimited,
                } as i32,
                max_per_period: m.cap().unwrap_or(0),
                reported_by: match m.reported_by {
                    ReportedBy::Player => pb::Reporter::Player,
                    ReportedBy::GameServer => pb::Reporter::GameServer,
                } as i32,
                available_from: m.available_from.map(timestamp),
                available_until: m.available_until.map(timestamp),
                requires: m.requires.iter().map(|r| r.as_str().to_owned()).collect(),
            })
            .collect();
        let schedule = catalog.schedule();
        Ok(Response::new(pb::ListCatalogResponse {
            missions,
            reset_at: schedule.reset_at.format("%H:%M:%S").to_string(),
            time_zone: schedule.time_zone.name().to_owned(),
        }))
    }

    async fn get_availability(
        &self,
        req: Request<pb::GetAvailabilityRequest>,
    ) -> Result<Response<pb::GetAvailabilityResponse>, Status> {
        let customer = auth::act_for(&req, &req.get_ref().customer_id)?;
        let schedule = self.app.catalog().schedule();
        let now = Utc::now();
        let missions = self.app.availability(&customer, now).await.map_err(|e| to_status(e, schedule))?;
        Ok(Response::new(pb::GetAvailabilityResponse {
            customer_id: customer.to_string(),
            missions: missions.into_iter().map(|a| availability_to_proto(a, schedule)).collect(),
            as_of: Some(timestamp(now)),
        }))
    }
}

#[cfg(test)]
mod status_tests {
    use tonic::Code;

    use super::*;

    fn code(raw: &str) -> mission_domain::MissionCode {
        mission_domain::MissionCode::new(raw).unwrap()
    }

    #[test]
    fn each_mission_error_becomes_its_status_naming_what_is_wrong() {
        let schedule = Schedule::default();
        let invalid = MissionError::Invalid(kernel::ValidationError::new("mission_code", "unknown mission"));
        let s = to_status(invalid, &schedule);
        assert_eq!((s.code(), s.message()), (Code::InvalidArgument, "mission_code: unknown mission"));
        let s = to_status(MissionError::NotFound("mission"), &schedule);
        assert_eq!((s.code(), s.message()), (Code::NotFound, "mission not found"));
        let s = to_status(MissionError::Refused(kernel::RequestReused.into()), &schedule);
        assert_eq!(s.code(), Code::FailedPrecondition);
        let s = to_status(MissionError::Unavailable("database is locked at /data/mission.db".into()), &schedule);
        assert_eq!(s.code(), Code::Unavailable);
        assert!(!s.message().contains("/data/mission.db"), "{}", s.message());
    }

    #[test]
    fn a_rule_refusal_is_a_failed_precondition_with_error_info_or_permission_denied() {
        let schedule = Schedule::default();
        let s = to_status(MissionError::Rule(Refusal::AlreadyAchieved { code: code("tutorial-complete") }), &schedule);
        assert_eq!(s.code(), Code::FailedPrecondition);
        let (reason, metadata) = status::error_info(&s).expect("ErrorInfo");
        assert_eq!(
            (reason.as_str(), metadata["mission_code"].as_str()),
            ("MISSION_ALREADY_ACHIEVED", "tutorial-complete")
        );
        let s = to_status(MissionError::Rule(Refusal::ReportedByGameServer { code: code("first-win") }), &schedule);
        assert_eq!(s.code(), Code::PermissionDenied);
        assert_eq!(s.message(), "first-win is reported by the game server, not by players");
        assert!(status::error_info(&s).is_none(), "a permission, not a rule of the economy to retry");
    }
}
