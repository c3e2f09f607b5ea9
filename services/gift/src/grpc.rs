//! The inbound gRPC adapter.

use std::sync::Arc;

use gift_domain::{Gift, GiftCode, GiftError, GiftRefusal, GiftStatus, IssueGift};
use grpc_adapter::convert::timestamp;
use grpc_adapter::pb::gift::v1 as pb;
use grpc_adapter::{auth, status};
use tonic::{Request, Response, Status};

use crate::App;

pub fn server(app: Arc<App>) -> pb::gift_service_server::GiftServiceServer<Handlers> {
    pb::gift_service_server::GiftServiceServer::new(Handlers { app })
}

pub struct Handlers {
    app: Arc<App>,
}

fn to_status(e: GiftError) -> Status {
    match e {
        GiftError::Refused(GiftRefusal::Invalid(v)) => status::invalid(&v),
        GiftError::Refused(GiftRefusal::NotOwner) => Status::permission_denied("this gift is not yours"),
        GiftError::NotFound(_) => status::not_found("gift"),
        GiftError::Refused(r) => Status::failed_precondition(r.to_string()),
        GiftError::Unavailable(detail) => status::unavailable(&detail),
    }
}

fn to_proto(g: Gift) -> pb::Gift {
    pb::Gift {
        gift_id: g.id.to_string(),
        customer_id: g.customer_id.to_string(),
        reward_id: g.reward_id.to_string(),
        gift_code: g.code.as_str().to_owned(),
        name: g.name,
        status: match g.status {
            GiftStatus::Issued => pb::GiftStatus::Issued,
            GiftStatus::Used => pb::GiftStatus::Used,
        } as i32,
        issued_at: Some(timestamp(g.issued_at)),
        used_at: g.used_at.map(timestamp),
        mission_id: g.mission_id.to_string(),
    }
}

#[tonic::async_trait]
impl pb::gift_service_server::GiftService for Handlers {
    async fn list_catalog(
        &self,
        _: Request<pb::ListCatalogRequest>,
    ) -> Result<Response<pb::ListCatalogResponse>, Status> {
        let gifts = self
            .app
            .catalog()
            .gifts()
            .iter()
            .map(|g| pb::CatalogGift {
                gift_code: g.code.as_str().to_owned(),
                name: g.name.clone(),
                cost_points: g.cost_points,
            })
            .collect();
        Ok(Response::new(pb::ListCatalogResponse { gifts }))
    }

    async fn issue_gift(&self, req: Request<pb::IssueGiftRequest>) -> Result<Response<pb::IssueGiftResponse>, Status> {
        let customer = auth::act_for(&req, &req.get_ref().customer_id)?;
        let traceparent = status::header(&req, "traceparent");
        let cause = status::header(&req, "x-request-id");
        let r = req.into_inner();
        let cmd = IssueGift {
            customer_id: customer,
            reward_id: status::id("reward_id", &r.reward_id)?,
            mission_id: status::id("mission_id", &r.mission_id)?,
            code: GiftCode::new(r.gift_code).map_err(|e| status::invalid(&e))?,
            points: r.points,
        };
        let gift = self.app.issue(cmd, cause, traceparent).await.map_err(to_status)?;
        Ok(Response::new(pb::IssueGiftResponse { gift: Some(to_proto(gift)) }))
    }

    async fn get_gift(&self, req: Request<pb::GetGiftRequest>) -> Result<Response<pb::GetGiftResponse>, Status> {
        let who = auth::identity(&req)?;
        let id = status::id("gift_id", &req.get_ref().gift_id)?;
        let gift = self.app.get(id).await.map_err(to_status)?;
        auth::check_owner(&who, gift.customer_id.as_str(), "gift")?;
        Ok(Response::new(pb::GetGiftResponse { gift: Some(to_proto(gift)) }))
    }

    async fn list_gifts(&self, req: Request<pb::ListGiftsRequest>) -> Result<Response<pb::ListGiftsResponse>, Status> {
        let customer = auth::act_for(&req, &req.get_ref().customer_id)?;
        let gifts = self.app.list(&customer).await.map_err(to_status)?;
        Ok(Response::new(pb::ListGiftsResponse { gifts: gifts.into_iter().map(to_proto).collect() }))
    }

    async fn use_gift(&self, req: Request<pb::UseGiftRequest>) -> Result<Response<pb::UseGiftResponse>, Status> {
        // The gift id names the thing; the customer defaults to the caller.
        let customer = match req.get_ref().customer_id.as_str() {
            "" => status::customer(&auth::identity(&req)?.customer_id)?,
            named => auth::act_for(&req, named)?,
        };
        let traceparent = status::header(&req, "traceparent");
        let r = req.into_inner();
        let id = status::id("gift_id", &r.gift_id)?;
        let by = Some(customer);
        let gift = self.app.use_gift(id, by.as_ref(), traceparent).await.map_err(to_status)?;
        Ok(Response::new(pb::UseGiftResponse { gift: Some(to_proto(gift)) }))
    }
}
