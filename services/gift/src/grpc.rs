//! The inbound gRPC adapters: the public `GiftService` (catalog, a customer's gifts,
//! using one) and the internal `GiftIssuingService` (the wallet issuing a gift for a
//! reward; the runtime lets only tokens with the role `service` reach it).

use std::sync::Arc;

use gift_domain::rules::{Refusal, Schedule};
use gift_domain::{Gift, GiftCode, GiftError, GiftRefusal, GiftStatus, IssueGift};
use grpc_adapter::convert::timestamp;
use grpc_adapter::pb::gift::v1 as pb;
use grpc_adapter::{auth, paging, status};
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

/// A refusal of the catalog's rules: FAILED_PRECONDITION with the customer's message and
/// a `google.rpc.ErrorInfo` (reason, `gift_code`, `next_available_at` when there is one).
fn refused(r: &Refusal, schedule: &Schedule) -> Status {
    let mut metadata = vec![("gift_code", r.code().as_str().to_owned())];
    if let Some(next) = r.next_available() {
        metadata.push(("next_available_at", schedule.local(next)));
    }
    status::refused(r.message(schedule), r.reason(), metadata)
}

/// The ErrorInfo reason of a gift that cannot be used nor cancelled: it was used.
pub const ALREADY_USED: &str = "GIFT_ALREADY_USED";
/// The ErrorInfo reason of a gift that cannot be used: it was cancelled (refunded).
pub const CANCELLED: &str = "GIFT_CANCELLED";

fn to_status(e: GiftError, schedule: &Schedule) -> Status {
    match e {
        GiftError::Refused(GiftRefusal::Rule(r)) => refused(&r, schedule),
        GiftError::Refused(ref r @ GiftRefusal::NotEnoughPoints { ref code, cost, points }) => {
            let metadata = vec![
                ("gift_code", code.as_str().to_owned()),
                ("cost_points", cost.to_string()),
                ("reward_points", points.to_string()),
            ];
            status::refused(r.to_string(), "GIFT_NOT_ENOUGH_POINTS", metadata)
        }
        GiftError::Refused(GiftRefusal::Invalid(v)) => status::invalid(&v),
        GiftError::Refused(r @ GiftRefusal::AlreadyUsed) => status::refused(r.to_string(), ALREADY_USED, vec![]),
        GiftError::Refused(r @ GiftRefusal::Cancelled) => status::refused(r.to_string(), CANCELLED, vec![]),
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
            GiftStatus::Cancelled => pb::GiftStatus::Cancelled,
        } as i32,
        issued_at: Some(timestamp(g.issued_at)),
        used_at: g.used_at.map(timestamp),
        mission_id: g.mission_id.to_string(),
    }
}

impl Handlers {
    fn status(&self, e: GiftError) -> Status {
        to_status(e, self.app.catalog().schedule())
    }
}

impl Issuing {
    fn status(&self, e: GiftError) -> Status {
        to_status(e, self.app.catalog().schedule())
    }
}

#[tonic::async_trait]
impl pb::gift_service_server::GiftService for Handlers {
    async fn list_catalog(
        &self,
        _: Request<pb::ListCatalogRequest>,
    ) -> Result<Response<pb::ListCatalogResponse>, Status> {
        let offers = self.app.offers().await.map_err(|e| self.status(e))?;
        let gifts = offers
            .into_iter()
            .map(|o| pb::CatalogGift {
                gift_code: o.rule.code.as_str().to_owned(),
                name: o.rule.name.clone(),
                cost_points: o.rule.cost_points,
                stock: o.rule.stock,
                remaining: o.left,
                per_customer_limit: o
                    .rule
                    .per_customer
                    .map(|l| pb::PerCustomerLimit { period: l.period.as_str().to_owned(), count: l.count }),
                available_from: o.rule.available_from.map(timestamp),
                available_until: o.rule.available_until.map(timestamp),
            })
            .collect();
        let schedule = self.app.catalog().schedule();
        Ok(Response::new(pb::ListCatalogResponse {
            gifts,
            reset_at: schedule.reset_at.format("%H:%M:%S").to_string(),
            time_zone: schedule.time_zone.name().to_owned(),
        }))
    }

    async fn get_gift(&self, req: Request<pb::GetGiftRequest>) -> Result<Response<pb::GetGiftResponse>, Status> {
        let who = auth::identity(&req)?;
        let id = status::id("gift_id", &req.get_ref().gift_id)?;
        let gift = self.app.get(id).await.map_err(|e| self.status(e))?;
        auth::check_visible(&who, gift.customer_id.as_str(), "gift")?;
        Ok(Response::new(pb::GetGiftResponse { gift: Some(to_proto(gift)) }))
    }

    async fn list_gifts(&self, req: Request<pb::ListGiftsRequest>) -> Result<Response<pb::ListGiftsResponse>, Status> {
        let customer = auth::read_for(&req, &req.get_ref().customer_id)?;
        let scope = format!("gifts/{customer}");
        let page = paging::request(req.get_ref().page_size, &req.get_ref().page_token, &scope)?;
        let gifts = self.app.list(&customer, page).await.map_err(|e| self.status(e))?;
        let (gifts, next_page_token) = paging::answer(gifts, &scope, to_proto);
        Ok(Response::new(pb::ListGiftsResponse { gifts, next_page_token }))
    }

    async fn use_gift(&self, req: Request<pb::UseGiftRequest>) -> Result<Response<pb::UseGiftResponse>, Status> {
        // Only its owner uses a gift: someone else's is not found.
        let customer = auth::acting_owner(&req, &req.get_ref().customer_id)?;
        let ctx = auth::context(&req);
        let r = req.into_inner();
        let id = status::id("gift_id", &r.gift_id)?;
        let gift = self.app.use_gift(id, Some(&customer), &ctx).await.map_err(|e| self.status(e))?;
        Ok(Response::new(pb::UseGiftResponse { gift: Some(to_proto(gift)) }))
    }
}

#[tonic::async_trait]
impl pb::gift_issuing_service_server::GiftIssuingService for Issuing {
    /// For any customer: the caller is the wallet (role `service`, checked by the layer
    /// for the whole service), which has checked the reward is theirs. The price comes
    /// from our catalog; what the reward is worth, from the wallet's own records.
    async fn issue_gift(&self, req: Request<pb::IssueGiftRequest>) -> Result<Response<pb::IssueGiftResponse>, Status> {
        let ctx = auth::context(&req);
        let r = req.into_inner();
        let cmd = IssueGift {
            customer_id: status::customer(&r.customer_id)?,
            reward_id: status::id("reward_id", &r.reward_id)?,
            mission_id: status::id("mission_id", &r.mission_id)?,
            code: GiftCode::new(r.gift_code).map_err(|e| status::invalid(&e))?,
            points: r.points,
        };
        let gift = self.app.issue(cmd, &ctx).await.map_err(|e| self.status(e))?;
        Ok(Response::new(pb::IssueGiftResponse { gift: Some(to_proto(gift)) }))
    }

    /// The wallet refunding a gift (role `service`, as `IssueGift`): an admin's decision
    /// the wallet has checked.
    async fn cancel_gift(
        &self,
        req: Request<pb::CancelGiftRequest>,
    ) -> Result<Response<pb::CancelGiftResponse>, Status> {
        let id = status::id("gift_id", &req.get_ref().gift_id)?;
        let gift = self.app.cancel(id).await.map_err(|e| self.status(e))?;
        tracing::info!(gift_id = %gift.id, customer_id = %gift.customer_id, "gift cancelled");
        Ok(Response::new(pb::CancelGiftResponse { gift: Some(to_proto(gift)) }))
    }
}

#[cfg(test)]
mod status_tests {
    use tonic::Code;

    use super::*;

    fn coffee() -> GiftCode {
        GiftCode::new("coffee").unwrap()
    }

    #[test]
    fn each_gift_error_becomes_its_status_naming_what_is_wrong() {
        let schedule = Schedule::default();
        let of = |e: GiftError| {
            let s = to_status(e, &schedule);
            (s.code(), s.message().to_owned())
        };
        let invalid = GiftError::Refused(GiftRefusal::Invalid(kernel::ValidationError::new("gift_id", "not a UUID")));
        assert_eq!(of(invalid), (Code::InvalidArgument, "gift_id: not a UUID".into()));
        // Someone else's gift is answered exactly like an unknown one.
        assert_eq!(of(GiftError::Refused(GiftRefusal::NotOwner)), of(GiftError::NotFound("gift")));
        assert_eq!(of(GiftError::NotFound("gift")), (Code::NotFound, "gift not found".into()));
        assert_eq!(of(GiftError::Refused(GiftRefusal::AlreadyUsed)).0, Code::FailedPrecondition);
        let used = to_status(GiftError::Refused(GiftRefusal::AlreadyUsed), &schedule);
        assert_eq!(status::error_info(&used).expect("ErrorInfo").0, "GIFT_ALREADY_USED");
        assert_eq!(of(GiftError::Refused(GiftRefusal::RewardTaken)).0, Code::FailedPrecondition);
        let (code, message) = of(GiftError::Unavailable("database is locked at /data/gift.db".into()));
        assert_eq!(code, Code::Unavailable);
        assert!(!message.contains("/data/gift.db"), "{message}");
    }

    #[test]
    fn a_refusal_by_points_or_rules_carries_its_error_info() {
        let schedule = Schedule::default();
        let poor = GiftRefusal::NotEnoughPoints { code: coffee(), cost: 50, points: 10 };
        let s = to_status(GiftError::Refused(poor), &schedule);
        assert_eq!(s.code(), Code::FailedPrecondition);
        let (reason, metadata) = status::error_info(&s).expect("ErrorInfo");
        assert_eq!(reason, "GIFT_NOT_ENOUGH_POINTS");
        assert_eq!((metadata["cost_points"].as_str(), metadata["reward_points"].as_str()), ("50", "10"));
        let s = to_status(GiftError::Refused(GiftRefusal::Rule(Refusal::OutOfStock { code: coffee() })), &schedule);
        assert_eq!(s.code(), Code::FailedPrecondition);
        let (reason, metadata) = status::error_info(&s).expect("ErrorInfo");
        assert_eq!((reason.as_str(), metadata["gift_code"].as_str()), ("GIFT_OUT_OF_STOCK", "coffee"));
    }
}
