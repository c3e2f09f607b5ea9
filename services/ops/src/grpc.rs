//! `game.admin.v1.DeadLetterService`: list, show, redrive, discard; admins only.

use async_nats::jetstream;
use grpc_adapter::pb::admin::v1 as pb;
use grpc_adapter::pb::events::v1 as ev;
use grpc_adapter::{auth, paging, status};
use nats_adapter::dlq::{self, DeadLetter};
use prost::Message as _;
use tonic::{Request, Response, Status};

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;
/// Longest discard reason kept.
const MAX_REASON: usize = 1000;
/// Longest consumer name asked for (durable names are far shorter).
const MAX_CONSUMER: usize = 200;

pub fn server(js: jetstream::Context) -> pb::dead_letter_service_server::DeadLetterServiceServer<DeadLetters> {
    pb::dead_letter_service_server::DeadLetterServiceServer::new(DeadLetters { js })
}

pub struct DeadLetters {
    js: jetstream::Context,
}

/// The event of a dead letter decoded, field by field.
pub fn decoded(d: &DeadLetter) -> String {
    let p = d.payload.as_ref();
    let text = match d.event_type.rsplit('.').next().unwrap_or_default() {
        "MissionAchieved" => ev::MissionAchieved::decode(p).map(|m| format!("{m:?}")),
        "MissionRewarded" => ev::MissionRewarded::decode(p).map(|m| format!("{m:?}")),
        "RewardAllocated" => ev::RewardAllocated::decode(p).map(|m| format!("{m:?}")),
        "RewardIssued" => ev::RewardIssued::decode(p).map(|m| format!("{m:?}")),
        "RewardExchanged" => ev::RewardExchanged::decode(p).map(|m| format!("{m:?}")),
        "GiftIssued" => ev::GiftIssued::decode(p).map(|m| format!("{m:?}")),
        "GiftUsed" => ev::GiftUsed::decode(p).map(|m| format!("{m:?}")),
        "NotificationSent" => ev::NotificationSent::decode(p).map(|m| format!("{m:?}")),
        _ => return format!("{} bytes of an unknown event type", p.len()),
    };
    text.unwrap_or_else(|e| format!("undecodable: {e}"))
}

fn to_pb(d: &DeadLetter) -> pb::DeadLetter {
    pb::DeadLetter {
        id: d.seq,
        consumer: d.consumer.clone(),
        subject: d.subject.clone(),
        reason: d.reason.clone(),
        attempts: d.attempts,
        occurred_at: d.occurred_at.clone(),
        dead_lettered_at: d.dead_lettered_at.clone(),
        event_id: d.event_id.clone(),
        event_type: d.event_type.clone(),
        customer_id: d.customer_id.clone(),
        discard_reason: d.discarded.clone().unwrap_or_default(),
    }
}

fn consumer(c: &str) -> Result<Option<&str>, Status> {
    if c.len() > MAX_CONSUMER || c.chars().any(|ch| ch.is_control() || ch.is_whitespace()) {
        return Err(Status::invalid_argument("consumer: not a consumer name"));
    }
    Ok((!c.is_empty()).then_some(c))
}

fn id(id: u64) -> Result<u64, Status> {
    if id == 0 {
        Err(Status::invalid_argument("id: required (a dead letter's id, from ListDeadLetters)"))
    } else {
        Ok(id)
    }
}

fn admin<T>(req: &Request<T>) -> Result<String, Status> {
    let who = auth::identity(req)?;
    auth::require_admin(&who)?;
    Ok(who.customer_id)
}

#[tonic::async_trait]
impl pb::dead_letter_service_server::DeadLetterService for DeadLetters {
    async fn list_dead_letters(
        &self,
        req: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        admin(&req)?;
        let r = req.get_ref();
        let of = consumer(&r.consumer)?;
        let size = match usize::try_from(r.page_size) {
            Err(_) => return Err(Status::invalid_argument("page_size: must not be negative")),
            Ok(0) => DEFAULT_PAGE,
            Ok(n) => n.min(MAX_PAGE),
        };
        let scope = format!("deadletters/{}", of.unwrap_or("*"));
        let after = if r.page_token.is_empty() {
            0
        } else {
            paging::raw_cursor(&r.page_token, &scope)?.parse::<u64>().map_err(|_| paging::forged_token())?
        };
        let (items, next) = dlq::page(&self.js, of, after, size).await.map_err(|e| status::unavailable(&e))?;
        Ok(Response::new(pb::ListDeadLettersResponse {
            dead_letters: items.iter().map(to_pb).collect(),
            next_page_token: next.map(|n| paging::raw_token(&n.to_string(), &scope)).unwrap_or_default(),
        }))
    }

    async fn get_dead_letter(
        &self,
        req: Request<pb::GetDeadLetterRequest>,
    ) -> Result<Response<pb::GetDeadLetterResponse>, Status> {
        admin(&req)?;
        let seq = id(req.get_ref().id)?;
        let d = dlq::get(&self.js, seq)
            .await
            .map_err(|e| status::unavailable(&e))?
            .ok_or_else(|| Status::not_found(format!("id: no dead letter {seq}")))?;
        Ok(Response::new(pb::GetDeadLetterResponse {
            dead_letter: Some(to_pb(&d)),
            event: decoded(&d),
            payload: d.payload.to_vec(),
        }))
    }

    async fn redrive_dead_letters(
        &self,
        req: Request<pb::RedriveDeadLettersRequest>,
    ) -> Result<Response<pb::RedriveDeadLettersResponse>, Status> {
        let who = admin(&req)?;
        let r = req.get_ref();
        let of = consumer(&r.consumer)?;
        let ids: Vec<u64> = match (r.id, r.all) {
            (0, true) => {
                dlq::list(&self.js, of).await.map_err(|e| status::unavailable(&e))?.iter().map(|d| d.seq).collect()
            }
            (n, false) if n > 0 => {
                if of.is_some() {
                    return Err(Status::invalid_argument("consumer: only with all"));
                }
                vec![n]
            }
            (0, false) => return Err(Status::invalid_argument("id: required, or all")),
            _ => return Err(Status::invalid_argument("all: not with an id")),
        };
        let done = dlq::redrive_each(&self.js, ids).await.map_err(|e| status::unavailable(&e))?;
        tracing::info!(admin = %who, redriven = ?done.sent, refused = done.refused.len(), "dead letters redriven");
        Ok(Response::new(pb::RedriveDeadLettersResponse {
            redriven: done.sent,
            refused: done.refused.into_iter().map(|(id, reason)| pb::RefusedDeadLetter { id, reason }).collect(),
        }))
    }

    async fn discard_dead_letter(
        &self,
        req: Request<pb::DiscardDeadLetterRequest>,
    ) -> Result<Response<pb::DiscardDeadLetterResponse>, Status> {
        let who = admin(&req)?;
        let r = req.get_ref();
        let seq = id(r.id)?;
        let reason = r.reason.trim();
        if reason.is_empty() || reason.len() > MAX_REASON {
            return Err(Status::invalid_argument(format!("reason: required, at most {MAX_REASON} bytes")));
        }
        let discarded = dlq::discard(&self.js, seq, reason).await.map_err(|e| status::unavailable(&e))?;
        tracing::info!(admin = %who, id = seq, discarded, reason, "dead letter discarded");
        Ok(Response::new(pb::DiscardDeadLetterResponse { discarded }))
    }
}
