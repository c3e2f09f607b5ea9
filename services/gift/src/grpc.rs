//! The inbound gRPC adapters: the public `GiftService` (catalog, a customer's gifts,
//! using one) and the internal `GiftIssuingService` (the wallet issuing a gift for a
//! reward; the runtime lets only tokens with the role `service` reach it).

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

pub fn issuing_server(app: Arc<App>) -> pb::gift_issuing_service_server::GiftIssuingServiceServer<Issuing> {
    pb::gift_issuing_service_server::GiftIssuingServiceServer::new(Issuing { app })
}

pub struct Handlers {
    app: Arc<App>,
}

pub struct Issuing {
    app: Arc<App>,
}

fn to_status(e: GiftError) -> Status {
    match e {
        GiftError::Refused(GiftRefusal::Invalid(v)) => status::invalid(&v),
        // Someone else's gift is answered exactly like an unknown one.
        GiftError::Refused(GiftRefusal::NotOwner) | GiftError::NotFound(_) => status::not_found("gift"),
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

    async fn get_gift(&self, req: Request<pb::GetGiftRequest>) -> Result<Response<pb::GetGiftResponse>, Status> {
        let who = auth::identity(&req)?;
        let id = status::id("gift_id", &req.get_ref().gift_id)?;
        let gift = self.app.get(id).await.map_err(to_status)?;
        auth::check_visible(&who, gift.customer_id.as_str(), "gift")?;
        Ok(Response::new(pb::GetGiftResponse { gift: Some(to_proto(gift)) }))
    }

    async fn list_gifts(&self, req: Request<pb::ListGiftsRequest>) -> Result<Response<pb::ListGiftsResponse>, Status> {
        let customer = auth::read_for(&req, &req.get_ref().customer_id)?;
        let gifts = self.app.list(&customer).await.map_err(to_status)?;
        Ok(Response::new(pb::ListGiftsResponse { gifts: gifts.into_iter().map(to_proto).collect() }))
    }

    async fn use_gift(&self, req: Request<pb::UseGiftRequest>) -> Result<Response<pb::UseGiftResponse>, Status> {
        // Only its owner uses a gift: someone else's is not found.
        let customer = auth::acting_owner(&req, &req.get_ref().customer_id)?;
        let traceparent = status::header(&req, "traceparent");
        let r = req.into_inner();
        let id = status::id("gift_id", &r.gift_id)?;
        let gift = self.app.use_gift(id, Some(&customer), traceparent).await.map_err(to_status)?;
        Ok(Response::new(pb::UseGiftResponse { gift: Some(to_proto(gift)) }))
    }
}

#[tonic::async_trait]
impl pb::gift_issuing_service_server::GiftIssuingService for Issuing {
    /// For any customer: the caller is the wallet (role `service`, checked by the layer
    /// for the whole service), which has checked the reward is theirs. The price comes
    /// from our catalog; what the reward is worth, from the wallet's own records.
    async fn issue_gift(&self, req: Request<pb::IssueGiftRequest>) -> Result<Response<pb::IssueGiftResponse>, Status> {
        let traceparent = status::header(&req, "traceparent");
        let cause = status::header(&req, "x-request-id");
        let r = req.into_inner();
        let cmd = IssueGift {
            customer_id: status::customer(&r.customer_id)?,
            reward_id: status::id("reward_id", &r.reward_id)?,
            mission_id: status::id("mission_id", &r.mission_id)?,
            code: GiftCode::new(r.gift_code).map_err(|e| status::invalid(&e))?,
            points: r.points,
        };
        let gift = self.app.issue(cmd, cause, traceparent).await.map_err(to_status)?;
        Ok(Response::new(pb::IssueGiftResponse { gift: Some(to_proto(gift)) }))
    }
}
