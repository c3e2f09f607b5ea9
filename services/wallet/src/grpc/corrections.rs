//! The admin's corrections over gRPC: `RefundGift` and `AdjustPoints` (admins only; the
//! caller's subject is the entry's actor).

use std::sync::Arc;

use grpc_adapter::pb::wallet::v1 as pb;
use grpc_adapter::{auth, status};
use tonic::{Request, Response, Status};
use wallet_domain::{AdjustPoints, Correction, CorrectionRefusal, RefundGift};

use super::{NOT_ENOUGH_POINTS, to_status, uncancelled};
use crate::App;

/// The ErrorInfo reason of a gift refunded already.
pub const ALREADY_REFUNDED: &str = "WALLET_ALREADY_REFUNDED";

pub(super) fn refusal(r: CorrectionRefusal) -> Status {
    match r {
        CorrectionRefusal::AlreadyRefunded { gift_id } => {
            status::refused(r.to_string(), ALREADY_REFUNDED, vec![("gift_id", gift_id.to_string())])
        }
        CorrectionRefusal::RequestReused(_) => Status::failed_precondition(r.to_string()),
        CorrectionRefusal::NotEnoughPoints(n) => status::refused(
            r.to_string(),
            NOT_ENOUGH_POINTS,
            vec![("amount", (-n.cost).to_string()), ("balance", n.balance.to_string())],
        ),
        CorrectionRefusal::LotMismatch(_) => status::internal(&r),
    }
}

fn lots(c: &Correction) -> Vec<pb::SpendDraw> {
    c.lots.iter().map(|d| pb::SpendDraw { reward_id: d.reward_id.to_string(), points: d.points }).collect()
}

pub(super) async fn refund_gift(
    app: &Arc<App>,
    req: Request<pb::RefundGiftRequest>,
) -> Result<Response<pb::RefundGiftResponse>, Status> {
    let who = auth::identity(&req)?;
    auth::require_admin(&who)?;
    let ctx = auth::context(&req);
    let r = req.into_inner();
    let cmd =
        RefundGift::new(&r.gift_id, &r.reason, &r.request_id, &who.customer_id).map_err(|e| status::invalid(&e))?;
    let gift_id = cmd.gift_id;
    let app = app.clone();
    // Run to its end: a refund dropped between the cancel and the credit would wait for
    // a retry.
    let done = uncancelled(async move { app.refund(cmd, &ctx).await }).await?.map_err(to_status)?;
    tracing::info!(%gift_id, customer_id = %done.customer_id, points = done.amount, actor = %done.actor, "gift refunded");
    Ok(Response::new(pb::RefundGiftResponse {
        customer_id: done.customer_id.to_string(),
        gift_id: gift_id.to_string(),
        points: done.amount,
        balance: done.balance_after,
        entry_id: done.entry_id.to_string(),
        lots: lots(&done),
    }))
}

pub(super) async fn adjust_points(
    app: &Arc<App>,
    req: Request<pb::AdjustPointsRequest>,
) -> Result<Response<pb::AdjustPointsResponse>, Status> {
    let who = auth::identity(&req)?;
    auth::require_admin(&who)?;
    let r = req.into_inner();
    let cmd = AdjustPoints::new(&r.customer_id, r.amount, &r.reason, &r.request_id, &who.customer_id)
        .map_err(|e| status::invalid(&e))?;
    let app = app.clone();
    let done = uncancelled(async move { app.adjust(cmd).await }).await?.map_err(to_status)?;
    tracing::info!(customer_id = %done.customer_id, amount = done.amount, actor = %done.actor, "points adjusted");
    Ok(Response::new(pb::AdjustPointsResponse {
        customer_id: done.customer_id.to_string(),
        amount: done.amount,
        balance: done.balance_after,
        entry_id: done.entry_id.to_string(),
        lots: lots(&done),
    }))
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn a_refusal_of_a_correction_says_why_in_its_error_info() {
        let gift = uuid::Uuid::now_v7();
        let s = refusal(CorrectionRefusal::AlreadyRefunded { gift_id: gift });
        assert_eq!(s.code(), Code::FailedPrecondition);
        let (reason, metadata) = status::error_info(&s).expect("ErrorInfo");
        assert_eq!((reason.as_str(), metadata["gift_id"].clone()), (ALREADY_REFUNDED, gift.to_string()));
        let short = wallet_domain::NotEnoughPoints { cost: 1000, balance: 15 };
        let s = refusal(CorrectionRefusal::NotEnoughPoints(short));
        let (reason, metadata) = status::error_info(&s).expect("ErrorInfo");
        assert_eq!((reason.as_str(), metadata["balance"].as_str()), (NOT_ENOUGH_POINTS, "15"));
        assert!(s.message().contains("debit is 1000"), "{}", s.message());
        assert_eq!(refusal(CorrectionRefusal::RequestReused(kernel::RequestReused)).code(), Code::FailedPrecondition);
    }
}
