//! The inbound gRPC adapter, and the page's protobuf form (also its stored form).

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use grpc_adapter::convert::{from_timestamp, timestamp};
use grpc_adapter::pb::mypage::v1 as pb;
use grpc_adapter::{auth, paging, status};
use kernel::CustomerId;
use mypage_domain::archive::Cursor;
use mypage_domain::{Entry, GiftStatus, MissionStatus, MyPage, MyPageError, RewardStatus};
use tonic::{Request, Response, Status};

use crate::App;

pub fn server(app: Arc<App>) -> pb::my_page_service_server::MyPageServiceServer<Handlers> {
    pb::my_page_service_server::MyPageServiceServer::new(Handlers { app })
}

pub struct Handlers {
    app: Arc<App>,
}

fn to_status(e: MyPageError) -> Status {
    match e {
        MyPageError::Unavailable(detail) => status::unavailable(&detail),
        // A cursor beyond the page's history was never in a token we made.
        MyPageError::Cursor(_) => paging::forged_token(),
    }
}

fn opt_id(id: Option<uuid::Uuid>) -> String {
    id.map(|i| i.to_string()).unwrap_or_default()
}

pub fn entry_to_proto(e: &Entry) -> pb::Entry {
    pb::Entry {
        mission_id: e.mission_id.to_string(),
        mission_code: e.mission_code.clone(),
        mission_status: match e.mission_status {
            None => pb::MissionStatus::Unspecified,
            Some(MissionStatus::Achieved) => pb::MissionStatus::Achieved,
            Some(MissionStatus::Rewarded) => pb::MissionStatus::Rewarded,
        } as i32,
        reward_id: opt_id(e.reward_id),
        reward_status: match e.reward_status {
            None => pb::RewardStatus::Unspecified,
            Some(RewardStatus::Allocated) => pb::RewardStatus::Allocated,
            Some(RewardStatus::Issued) => pb::RewardStatus::Issued,
            Some(RewardStatus::Exchanged) => pb::RewardStatus::Exchanged,
        } as i32,
        points: e.points,
        gift_id: opt_id(e.gift_id),
        gift_status: match e.gift_status {
            None => pb::GiftStatus::Unspecified,
            Some(GiftStatus::Issued) => pb::GiftStatus::Issued,
            Some(GiftStatus::Used) => pb::GiftStatus::Used,
        } as i32,
        gift_code: e.gift_code.clone(),
    }
}

/// The page with `entries` (in mission order) as its entries.
pub fn page_to_proto(p: &MyPage, entries: &[Entry]) -> pb::MyPage {
    pb::MyPage {
        customer_id: p.customer_id.to_string(),
        entries: entries.iter().map(entry_to_proto).collect(),
        points_issued: p.points_issued,
        points_exchanged: p.points_exchanged,
        version: p.version,
        updated_at: p.updated_at.map(timestamp),
        entry_count: p.entry_count,
    }
}

fn id(raw: &str) -> Result<Option<uuid::Uuid>, String> {
    if raw.is_empty() { Ok(None) } else { uuid::Uuid::try_parse(raw).map(Some).map_err(|e| e.to_string()) }
}

/// The stored form of an entry back into the domain.
///
/// # Errors
/// When an id in it is not a UUID.
pub fn entry_from_proto(e: pb::Entry) -> Result<Entry, String> {
    Ok(Entry {
        mission_id: id(&e.mission_id)?.ok_or("entry without mission id")?,
        mission_code: e.mission_code,
        mission_status: match pb::MissionStatus::try_from(e.mission_status) {
            Ok(pb::MissionStatus::Achieved) => Some(MissionStatus::Achieved),
            Ok(pb::MissionStatus::Rewarded) => Some(MissionStatus::Rewarded),
            _ => None,
        },
        reward_id: id(&e.reward_id)?,
        reward_status: match pb::RewardStatus::try_from(e.reward_status) {
            Ok(pb::RewardStatus::Allocated) => Some(RewardStatus::Allocated),
            Ok(pb::RewardStatus::Issued) => Some(RewardStatus::Issued),
            Ok(pb::RewardStatus::Exchanged) => Some(RewardStatus::Exchanged),
            _ => None,
        },
        points: e.points,
        gift_id: id(&e.gift_id)?,
        gift_code: e.gift_code,
        gift_status: match pb::GiftStatus::try_from(e.gift_status) {
            Ok(pb::GiftStatus::Issued) => Some(GiftStatus::Issued),
            Ok(pb::GiftStatus::Used) => Some(GiftStatus::Used),
            _ => None,
        },
    })
}

/// The stored form back into the domain (`version` and the archive are set by the
/// caller). A page stored before pages were bounded has every entry and no count: the
/// count is its entries, and its next change archives all but the recent ones.
///
/// # Errors
/// When an id in the stored page is not a UUID.
pub fn page_from_proto(customer: &CustomerId, p: pb::MyPage) -> Result<MyPage, String> {
    let entries = p.entries.into_iter().map(entry_from_proto).collect::<Result<Vec<_>, _>>()?;
    let entry_count = p.entry_count.max(entries.len() as u64);
    Ok(MyPage {
        customer_id: customer.clone(),
        entries,
        points_issued: p.points_issued,
        points_exchanged: p.points_exchanged,
        entry_count,
        archive: mypage_domain::archive::Archive::default(),
        version: p.version,
        updated_at: p.updated_at.as_ref().and_then(from_timestamp),
    })
}

/// The entries of a page, newest first, as a page shows them: in mission order.
fn in_mission_order(mut entries: Vec<Entry>) -> Vec<Entry> {
    entries.sort_by_key(|e| e.mission_id);
    entries
}

/// A page token's cursor: the generation it was made in (after the first rebuild) and
/// where the next page starts. Generation 0's tokens are the bare cursor.
fn render_token(g: u64, c: Cursor) -> String {
    if g == 0 { c.render() } else { format!("g{g}.{}", c.render()) }
}

/// Strict inverse of [`render_token`].
fn parse_token(raw: &str) -> Option<(u64, Cursor)> {
    match raw.strip_prefix('g').and_then(|rest| rest.split_once('.')) {
        Some((n, c)) => {
            let g = n.parse::<u64>().ok().filter(|g| *g > 0 && g.to_string() == n)?;
            Some((g, Cursor::parse(c)?))
        }
        None => Some((0, Cursor::parse(raw)?)),
    }
}

type PageStream = Pin<Box<dyn Stream<Item = Result<pb::WatchMyPageResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::my_page_service_server::MyPageService for Handlers {
    async fn get_my_page(&self, req: Request<pb::GetMyPageRequest>) -> Result<Response<pb::GetMyPageResponse>, Status> {
        let customer = auth::read_for(&req, &req.get_ref().customer_id)?;
        let scope = format!("mypage/{customer}");
        let r = req.get_ref();
        let size = kernel::paging::PageRequest::new(r.page_size, None).map_err(|e| status::invalid(&e))?.size;
        let (g, cursor) = if r.page_token.is_empty() {
            (None, Cursor::FIRST)
        } else {
            let raw = paging::raw_cursor(&r.page_token, &scope)?;
            let (g, c) = parse_token(&raw).ok_or_else(paging::forged_token)?;
            (Some(g), c)
        };
        let (g, page, entries, next) = self.app.entries(&customer, g, cursor, size).await.map_err(to_status)?;
        Ok(Response::new(pb::GetMyPageResponse {
            page: Some(page_to_proto(&page, &in_mission_order(entries))),
            next_page_token: next.map(|c| paging::raw_token(&render_token(g, c), &scope)).unwrap_or_default(),
        }))
    }

    type WatchMyPageStream = PageStream;

    async fn watch_my_page(&self, req: Request<pb::WatchMyPageRequest>) -> Result<Response<PageStream>, Status> {
        let customer = auth::read_for(&req, &req.get_ref().customer_id)?;
        // Watch first, then read: no change can fall between the two.
        let updates = self.app.watch(&customer).await.map_err(to_status)?;
        let (g, current) = self.app.page(&customer).await.map_err(to_status)?;
        // (generation, version): a page of a newer generation comes after any of an older one
        let mut last = (g, current.version);
        let first = futures::stream::once(async move {
            Ok(pb::WatchMyPageResponse { page: Some(page_to_proto(&current, &current.entries)) })
        });
        let rest = updates.filter_map(move |update| {
            let out = match update {
                Ok((g, page)) if (g, page.version) > last => {
                    last = (g, page.version);
                    Some(Ok(pb::WatchMyPageResponse { page: Some(page_to_proto(&page, &page.entries)) }))
                }
                Ok(_) => None,
                Err(e) => Some(Err(to_status(MyPageError::Unavailable(e.to_string())))),
            };
            futures::future::ready(out)
        });
        Ok(Response::new(Box::pin(first.chain(rest))))
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use mypage_domain::Fact;

    use super::*;

    #[test]
    fn a_page_survives_its_stored_form() {
        let customer = CustomerId::new("c-11").unwrap();
        let mut page = MyPage::empty(customer.clone());
        let (m, r, g) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        page.apply(
            &Fact::RewardAllocated { mission_id: m, reward_id: r, points: 10, mission_code: "daily-login".into() },
            None,
            Utc::now(),
        );
        page.apply(
            &Fact::GiftIssued { mission_id: m, reward_id: r, gift_id: g, gift_code: "coffee".into() },
            None,
            Utc::now(),
        );
        // an archived entry, a chunk and a tail, as the page bookkeeps them
        let old = Entry { mission_id: uuid::Uuid::now_v7(), points: 3, ..Entry::default() };
        page.archive.pending.push(old.clone());
        page.archive.tail.push(old.mission_id);
        page.archive.unsealed.push(mypage_domain::archive::Chunk { number: 0, ids: vec![uuid::Uuid::now_v7()] });
        page.archive.sealed = 1;
        page.version = 4;
        let stored = crate::kv::encode(&page);
        let proto = <pb::MyPage as prost::Message>::decode(stored.as_slice()).unwrap();
        assert_eq!(proto.entries[0].reward_status, pb::RewardStatus::Allocated as i32);
        let mut back = crate::kv::decode(&customer, &stored, 4).unwrap();
        back.updated_at = page.updated_at.map(|t| grpc_adapter::convert::from_timestamp(&timestamp(t)).unwrap());
        assert_eq!(back, page);
    }
}

#[cfg(test)]
mod status_tests {
    use super::*;

    #[test]
    fn page_tokens_name_their_generation_and_only_their_own_form_parses() {
        let c = Cursor::Archive { chunk: 2, before: 7, below: None };
        for g in [0, 1, 12] {
            assert_eq!(parse_token(&render_token(g, c)), Some((g, c)));
        }
        assert_eq!(render_token(0, Cursor::FIRST), "r");
        for bad in ["g0.r", "g01.r", "g.r", "gx.r", "g2", "g2.x", "x"] {
            assert_eq!(parse_token(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_unavailable_bucket_is_unavailable_without_its_detail() {
        let s = to_status(MyPageError::Unavailable("kv bucket mypage: timed out at nats://10.0.0.1".into()));
        assert_eq!(s.code(), tonic::Code::Unavailable);
        assert!(!s.message().contains("10.0.0.1"), "{}", s.message());
    }
}
