//! The inbound gRPC adapter.

use std::sync::Arc;

use grpc_adapter::pb::wallet::v1 as pb;
use grpc_adapter::{auth, paging, status};
use resilience_adapter::{Breaker, State};
use tonic::{Request, Response, Status};
use wallet_domain::{
    EntryKind, ExchangeRefusal, ExchangeReward, GiftRefusal, ItemStatus, LedgerEntry, Spend, SpendPoints, WalletError,
    WalletItem,
};

use crate::App;

mod corrections;
pub use corrections::ALREADY_REFUNDED;

/// The handlers over `app`; `gift_breaker` is the breaker of the gift client, whose
/// state `GetExchangeStatus` reports.
pub fn server(app: Arc<App>, gift_breaker: Breaker) -> pb::wallet_service_server::WalletServiceServer<Handlers> {
    pb::wallet_service_server::WalletServiceServer::new(Handlers { app, gift_breaker })
}

pub struct Handlers {
    app: Arc<App>,
    gift_breaker: Breaker,
}

/// The ErrorInfo reason of a spend the balance does not cover.
pub const NOT_ENOUGH_POINTS: &str = "WALLET_NOT_ENOUGH_POINTS";

fn to_status(e: WalletError) -> Status {
    match e {
        WalletError::Invalid(v) => status::invalid(&v),
        WalletError::NotFound(what) => status::not_found(what),
        WalletError::Refused(ExchangeRefusal::NotFound) => status::not_found("reward"),
        WalletError::Refused(r @ (ExchangeRefusal::AlreadyExchanged | ExchangeRefusal::RequestReused(_))) => {
            Status::failed_precondition(r.to_string())
        }
        WalletError::Refused(ExchangeRefusal::NotEnoughPoints(n)) => status::refused(
            format!("not enough points: the gift costs {}, the balance is {}", n.cost, n.balance),
            NOT_ENOUGH_POINTS,
            vec![("cost_points", n.cost.to_string()), ("balance", n.balance.to_string())],
        ),
        WalletError::Correction(r) => corrections::refusal(r),
        WalletError::GiftInvalid(why) => Status::invalid_argument(why),
        // The gift's own words and reason: the player learns what was refused and when
        // to try again (out of stock, one per customer, not enough points).
        WalletError::GiftRefused(GiftRefusal { message, reason: Some((reason, metadata)) }) => {
            status::refused(message, &reason, metadata.iter().map(|(k, v)| (k.as_str(), v.clone())).collect())
        }
        WalletError::GiftRefused(GiftRefusal { message, reason: None }) => Status::failed_precondition(message),
        WalletError::GiftUnavailable { retry_after, reason } => {
            tracing::info!(%reason, ?retry_after, "exchange refused: gift service unavailable");
            let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            let mut s = Status::unavailable(format!(
                "gift exchange is temporarily unavailable; your reward is unchanged, please try again in {seconds} s"
            ));
            s.metadata_mut().insert("retry-after", seconds.into());
            s
        }
        WalletError::Unavailable(detail) => status::unavailable(&detail),
    }
}

pub fn item_to_proto(i: WalletItem) -> pb::WalletItem {
    pb::WalletItem {
        reward_id: i.reward_id.to_string(),
        mission_id: i.mission_id.to_string(),
        points: i.points,
        status: match i.status {
            ItemStatus::Issued => pb::WalletItemStatus::Issued,
            ItemStatus::Exchanged => pb::WalletItemStatus::Exchanged,
        } as i32,
        gift_id: i.gift_id.map(|g| g.to_string()).unwrap_or_default(),
        remaining_points: i.remaining,
        expires_at: i.expires_at.map(grpc_adapter::convert::timestamp),
    }
}

fn kind_to_proto(k: EntryKind) -> pb::LedgerEntryKind {
    match k {
        EntryKind::Earned => pb::LedgerEntryKind::Earned,
        EntryKind::Spent => pb::LedgerEntryKind::Spent,
        EntryKind::Refunded => pb::LedgerEntryKind::Refunded,
        EntryKind::Expired => pb::LedgerEntryKind::Expired,
        EntryKind::Adjusted => pb::LedgerEntryKind::Adjusted,
    }
}

/// The kind filter of `ListLedgerEntries`: unspecified is every kind.
fn kind_from_proto(raw: i32) -> Result<Option<EntryKind>, Status> {
    Ok(match pb::LedgerEntryKind::try_from(raw) {
        Ok(pb::LedgerEntryKind::Unspecified) => None,
        Ok(pb::LedgerEntryKind::Earned) => Some(EntryKind::Earned),
        Ok(pb::LedgerEntryKind::Spent) => Some(EntryKind::Spent),
        Ok(pb::LedgerEntryKind::Refunded) => Some(EntryKind::Refunded),
        Ok(pb::LedgerEntryKind::Expired) => Some(EntryKind::Expired),
        Ok(pb::LedgerEntryKind::Adjusted) => Some(EntryKind::Adjusted),
        Err(_) => return Err(Status::invalid_argument("kind: unknown ledger entry kind")),
    })
}

pub fn entry_to_proto(e: LedgerEntry) -> pb::LedgerEntry {
    pb::LedgerEntry {
        entry_id: e.entry_id.to_string(),
        kind: kind_to_proto(e.kind) as i32,
        amount: e.amount,
        balance_after: e.balance_after,
        reference: e.reference,
        actor: e.actor,
        reason: e.reason,
        create_time: Some(grpc_adapter::convert::timestamp(e.at)),
        sequence: e.seq,
    }
}

fn spend_to_proto(s: Spend) -> pb::RedeemGiftResponse {
    pb::RedeemGiftResponse {
        gift_id: s.gift_id.to_string(),
        cost_points: s.cost,
        balance: s.balance_after,
        entry_id: s.entry_id.to_string(),
        draws: s
            .draws
            .into_iter()
            .map(|d| pb::SpendDraw { reward_id: d.reward_id.to_string(), points: d.points })
            .collect(),
    }
}

#[tonic::async_trait]
impl pb::wallet_service_server::WalletService for Handlers {
    async fn get_wallet(&self, req: Request<pb::GetWalletRequest>) -> Result<Response<pb::GetWalletResponse>, Status> {
        let customer = auth::read_for(&req, &req.get_ref().customer_id)?;
        let scope = format!("wallet-items/{customer}");
        let first = paging::request(req.get_ref().page_size, "", &scope)?;
        let wallet = self.app.wallet(&customer, first).await.map_err(to_status)?;
        let (items, next_page_token) = paging::answer(wallet.items, &scope, item_to_proto);
        Ok(Response::new(pb::GetWalletResponse {
            wallet: Some(pb::Wallet {
                customer_id: wallet.customer_id.to_string(),
                available_points: wallet.available_points,
                balance: wallet.balance,
                items,
                next_expiry_points: wallet.next_expiry.map_or(0, |n| n.points),
                next_expiry_at: wallet.next_expiry.map(|n| grpc_adapter::convert::timestamp(n.at)),
            }),
            next_page_token,
        }))
    }

    async fn list_wallet_items(
        &self,
        req: Request<pb::ListWalletItemsRequest>,
    ) -> Result<Response<pb::ListWalletItemsResponse>, Status> {
        let customer = auth::read_for(&req, &req.get_ref().customer_id)?;
        let scope = format!("wallet-items/{customer}");
        let page = paging::request(req.get_ref().page_size, &req.get_ref().page_token, &scope)?;
        let items = self.app.items(&customer, page).await.map_err(to_status)?;
        let (items, next_page_token) = paging::answer(items, &scope, item_to_proto);
        Ok(Response::new(pb::ListWalletItemsResponse { items, next_page_token }))
    }

    async fn exchange_reward(
        &self,
        req: Request<pb::ExchangeRewardRequest>,
    ) -> Result<Response<pb::ExchangeRewardResponse>, Status> {
        let ctx = auth::context(&req);
        // Only the owner exchanges; someone else's reward is not found.
        let customer = auth::acting_owner(&req, &req.get_ref().customer_id)?;
        let r = req.into_inner();
        let cmd = ExchangeReward::new(customer.as_str(), &r.reward_id, &r.gift_code, &r.request_id)
            .map_err(|e| status::invalid(&e))?;
        let app = self.app.clone();
        let (item, gift_id) = uncancelled(async move { app.exchange(cmd, &ctx).await }).await?.map_err(to_status)?;
        Ok(Response::new(pb::ExchangeRewardResponse { item: Some(item_to_proto(item)), gift_id: gift_id.to_string() }))
    }

    async fn redeem_gift(
        &self,
        req: Request<pb::RedeemGiftRequest>,
    ) -> Result<Response<pb::RedeemGiftResponse>, Status> {
        let ctx = auth::context(&req);
        // Only the owner spends their points (as ExchangeReward).
        let customer = auth::acting_owner(&req, &req.get_ref().customer_id)?;
        let r = req.into_inner();
        let cmd =
            SpendPoints::redeem(customer.as_str(), &r.gift_code, &r.request_id).map_err(|e| status::invalid(&e))?;
        let app = self.app.clone();
        let spend = uncancelled(async move { app.redeem(cmd, &ctx).await }).await?.map_err(to_status)?;
        Ok(Response::new(spend_to_proto(spend)))
    }

    async fn list_ledger_entries(
        &self,
        req: Request<pb::ListLedgerEntriesRequest>,
    ) -> Result<Response<pb::ListLedgerEntriesResponse>, Status> {
        let customer = auth::read_for(&req, &req.get_ref().customer_id)?;
        let kind = kind_from_proto(req.get_ref().kind)?;
        let scope = format!("ledger/{customer}/{}", kind.map_or("ALL", EntryKind::as_str));
        let page = paging::request(req.get_ref().page_size, &req.get_ref().page_token, &scope)?;
        let entries = self.app.ledger(&customer, kind, page).await.map_err(to_status)?;
        let (entries, next_page_token) = paging::answer(entries, &scope, entry_to_proto);
        Ok(Response::new(pb::ListLedgerEntriesResponse { entries, next_page_token }))
    }

    async fn refund_gift(
        &self,
        req: Request<pb::RefundGiftRequest>,
    ) -> Result<Response<pb::RefundGiftResponse>, Status> {
        corrections::refund_gift(&self.app, req).await
    }

    async fn adjust_points(
        &self,
        req: Request<pb::AdjustPointsRequest>,
    ) -> Result<Response<pb::AdjustPointsResponse>, Status> {
        corrections::adjust_points(&self.app, req).await
    }

    async fn get_exchange_status(
        &self,
        req: Request<pb::GetExchangeStatusRequest>,
    ) -> Result<Response<pb::GetExchangeStatusResponse>, Status> {
        auth::require_admin(&auth::identity(&req)?)?;
        let g = self.gift_breaker.snapshot();
        Ok(Response::new(pb::GetExchangeStatusResponse {
            breaker_state: match g.state {
                State::Closed => pb::BreakerState::Closed,
                State::Open => pb::BreakerState::Open,
                State::HalfOpen => pb::BreakerState::HalfOpen,
            } as i32,
            retry_after_seconds: g.retry_after.as_secs_f64().ceil() as u64,
            failure_rate: g.failure_rate,
            slow_call_rate: g.slow_call_rate,
            calls_in_window: u32::try_from(g.calls_in_window).unwrap_or(u32::MAX),
            rejected_calls: g.rejected,
            transitions: g.transitions,
        }))
    }
}

/// Runs a spend to its end even when the caller goes away: the gift service is asked
/// first and the points are spent after, so a handler dropped between the two (a client
/// deadline, a reset stream) would leave a gift nobody paid for. The spend runs as its
/// own task; the caller only waits for it.
async fn uncancelled<T: Send + 'static>(
    spend: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, Status> {
    use tracing::Instrument as _;
    tokio::spawn(spend.in_current_span()).await.map_err(|e| {
        tracing::error!(error = %e, "a spend's task failed");
        Status::unavailable("the spend was interrupted; retry with the same request_id")
    })
}

#[cfg(test)]
mod status_tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use tonic::Code;

    use super::*;

    fn of(e: WalletError) -> (Code, String) {
        let s = to_status(e);
        (s.code(), s.message().to_owned())
    }

    #[test]
    fn each_wallet_error_becomes_its_status_naming_what_is_wrong() {
        let invalid = WalletError::Invalid(kernel::ValidationError::new("reward_id", "not a UUID"));
        assert_eq!(of(invalid), (Code::InvalidArgument, "reward_id: not a UUID".into()));
        assert_eq!(of(WalletError::NotFound("wallet")), (Code::NotFound, "wallet not found".into()));
        assert_eq!(of(WalletError::Refused(ExchangeRefusal::NotFound)), (Code::NotFound, "reward not found".into()));
        let (code, _) = of(WalletError::Refused(ExchangeRefusal::AlreadyExchanged));
        assert_eq!(code, Code::FailedPrecondition);
        let (code, _) = of(WalletError::Refused(ExchangeRefusal::RequestReused(kernel::RequestReused)));
        assert_eq!(code, Code::FailedPrecondition);
        assert_eq!(
            of(WalletError::GiftInvalid("gift_code: unknown gift".into())),
            (Code::InvalidArgument, "gift_code: unknown gift".into())
        );
        let (code, message) = of(WalletError::Unavailable("database is locked at /data/wallet.db".into()));
        assert_eq!(code, Code::Unavailable);
        assert!(!message.contains("/data/wallet.db"), "{message}");
    }

    #[test]
    fn a_gift_refusal_reaches_the_player_with_its_words_and_error_info() {
        let metadata = BTreeMap::from([("gift_code".to_owned(), "coffee".to_owned())]);
        let refusal = GiftRefusal {
            message: "coffee is out of stock".into(),
            reason: Some(("GIFT_OUT_OF_STOCK".into(), metadata)),
        };
        let s = to_status(WalletError::GiftRefused(refusal));
        assert_eq!((s.code(), s.message()), (Code::FailedPrecondition, "coffee is out of stock"));
        let (reason, metadata) = status::error_info(&s).expect("ErrorInfo");
        assert_eq!((reason.as_str(), metadata["gift_code"].as_str()), ("GIFT_OUT_OF_STOCK", "coffee"));
        let plain = to_status(WalletError::GiftRefused(GiftRefusal { message: "no".into(), reason: None }));
        assert_eq!(plain.code(), Code::FailedPrecondition);
        assert!(status::error_info(&plain).is_none());
    }

    #[test]
    fn a_short_balance_is_a_failed_precondition_with_the_cost_and_the_balance() {
        let short = wallet_domain::NotEnoughPoints { cost: 50, balance: 10 };
        let s = to_status(WalletError::Refused(ExchangeRefusal::NotEnoughPoints(short)));
        assert_eq!(s.code(), Code::FailedPrecondition);
        assert!(s.message().contains("costs 50") && s.message().contains("points"), "{}", s.message());
        let (reason, metadata) = status::error_info(&s).expect("ErrorInfo");
        assert_eq!(reason, "WALLET_NOT_ENOUGH_POINTS");
        assert_eq!((metadata["cost_points"].as_str(), metadata["balance"].as_str()), ("50", "10"));
    }

    #[test]
    fn an_unavailable_gift_service_says_when_to_try_again() {
        let e =
            WalletError::GiftUnavailable { retry_after: Duration::from_millis(2300), reason: "breaker open".into() };
        let s = to_status(e);
        assert_eq!(s.code(), Code::Unavailable);
        assert!(s.message().contains("try again in 3 s") && !s.message().contains("breaker"), "{}", s.message());
        assert_eq!(s.metadata().get("retry-after").and_then(|v| v.to_str().ok()), Some("3"));
    }
}
