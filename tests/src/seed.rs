//! A long history written straight into my page's bucket, in its stored form, the way
//! the mypage service builds it (apply each fact, settle): a customer with a year of
//! missions in seconds, for the whale test and the bench's whale phase.

use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use kernel::CustomerId;
use mypage_domain::{Entry, Fact, MyPage};
use mypage_service::kv;
use uuid::Uuid;

use crate::System;

/// Writes a page of `missions` `match-played` missions, each with its reward issued (1
/// point), for `customer`: the page, its archived entries and chunks. Returns the mission
/// ids, oldest first.
pub async fn whale_page(sys: &System, customer: &str, missions: usize) -> Vec<Uuid> {
    let js = sys.operator_js().await;
    let bucket = crate::eventually(Duration::from_secs(10), "the page bucket exists", || async {
        js.get_key_value(nats_adapter::roles::MYPAGE_BUCKET).await.ok()
    })
    .await;
    let c = CustomerId::new(customer).expect("a customer id");
    let mut page = MyPage::empty(c.clone());
    let (mut ids, mut archived, mut chunks) = (Vec::with_capacity(missions), Vec::new(), Vec::new());
    for _ in 0..missions {
        let id = Uuid::now_v7();
        ids.push(id);
        let achieved = Fact::MissionAchieved { mission_id: id, mission_code: "match-played".into(), points: 1 };
        let issued = Fact::RewardIssued { mission_id: id, reward_id: Uuid::now_v7(), points: 1 };
        page.apply(&achieved, None, Utc::now());
        page.apply(&issued, None, Utc::now());
        page.settle();
        archived.append(&mut page.archive.pending);
        chunks.append(&mut page.archive.unsealed);
    }
    let puts = archived
        .iter()
        .map(|e: &Entry| (kv::entry_key(&c, e.mission_id), kv::encode_entry(e)))
        .chain(chunks.iter().map(|ch| (kv::chunk_key(&c, ch.number), kv::encode_chunk(ch))));
    futures::stream::iter(puts)
        .map(|(k, v)| {
            let bucket = bucket.clone();
            async move { bucket.put(k, v.into()).await.expect("seed an archive key") }
        })
        .buffer_unordered(256)
        .collect::<Vec<_>>()
        .await;
    bucket.create(kv::key(&c), kv::encode(&page).into()).await.expect("seed the page");
    ids
}
