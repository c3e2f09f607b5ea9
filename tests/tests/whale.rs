//! A customer with a year of history: 100,000 missions on my page, seeded straight into
//! the page's bucket in its stored form (totals, the recent entries, the archive), then
//! read through the gateway: every page answers in under 50 ms and 64 KiB, older
//! entries come page by page, and a new mission still reaches the page within a second.

use std::time::{Duration, Instant};

use chrono::Utc;
use e2e::api as flow;
use e2e::clients::*;
use e2e::{Options, System, eventually, with_token};
use futures::StreamExt;
use grpc_adapter::pb::mypage::v1 as mypage;
use kernel::CustomerId;
use mypage_domain::{Entry, Fact, MyPage};
use mypage_service::kv;
use prost::Message;
use uuid::Uuid;

const HISTORY: usize = 100_000;
const READ_LIMIT: Duration = Duration::from_millis(50);
const SIZE_LIMIT: usize = 64 * 1024;

/// Builds the page of `HISTORY` issued missions the way the service does (apply, then
/// settle) and writes it, its archived entries and chunks into the bucket.
async fn seed(sys: &System, customer: &str) -> Vec<Uuid> {
    let js = sys.operator_js().await;
    let bucket = eventually(Duration::from_secs(10), "the page bucket exists", || async {
        js.get_key_value("mypage").await.ok()
    })
    .await;
    let c = CustomerId::new(customer).unwrap();
    let mut page = MyPage::empty(c.clone());
    let (mut ids, mut archived, mut chunks) = (Vec::with_capacity(HISTORY), Vec::new(), Vec::new());
    for _ in 0..HISTORY {
        let id = Uuid::now_v7();
        ids.push(id);
        let issued = Fact::RewardIssued { mission_id: id, reward_id: Uuid::now_v7(), points: 1 };
        let achieved = Fact::MissionAchieved { mission_id: id, mission_code: "match-played".into(), points: 1 };
        page.apply(&achieved, None, Utc::now());
        page.apply(&issued, None, Utc::now());
        page.settle();
        let (entries, sealed) = (std::mem::take(&mut page.archive.pending), std::mem::take(&mut page.archive.unsealed));
        archived.extend(entries);
        chunks.extend(sealed);
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

#[tokio::test]
async fn a_customer_with_100000_missions_reads_small_fast_pages_and_new_missions_still_arrive_within_a_second() {
    let sys = System::start_with(Options { gateway: true, ..Options::default() }).await;
    let started = Instant::now();
    let ids = seed(&sys, "whale").await;
    eprintln!("seeded {HISTORY} missions in {:?}", started.elapsed());
    let client = || MyPageServiceClient::new(with_token(sys.gateway().channel(), &sys.tokens.customer("whale")));
    let read = |token: String, size: i32| {
        let mut c = client();
        async move {
            let at = Instant::now();
            let r = c
                .get_my_page(mypage::GetMyPageRequest {
                    customer_id: "whale".into(),
                    page_size: size,
                    page_token: token,
                })
                .await
                .expect("a page")
                .into_inner();
            (at.elapsed(), r.encoded_len(), r)
        }
    };
    read(String::new(), 0).await; // connections warm

    // the first page: totals of everything, the 50 most recent entries
    let (took, bytes, first) = read(String::new(), 0).await;
    let page = first.page.clone().unwrap();
    assert_eq!((page.entry_count, page.points_issued, page.entries.len()), (HISTORY as u64, HISTORY as i64, 50));
    assert_eq!(page.entries.last().unwrap().mission_id, ids.last().unwrap().to_string());
    let (mut slowest, mut largest) = (took, bytes);

    // older entries page by page, newest first, none missed: 40 pages of 50, then 40 of 500
    let mut token = first.next_page_token;
    let mut expected = ids.iter().rev().skip(50);
    for size in [50; 40].into_iter().chain([500; 40]) {
        let (took, bytes, r) = read(token, size).await;
        (slowest, largest) = (slowest.max(took), largest.max(bytes));
        let entries = r.page.unwrap().entries;
        assert_eq!(entries.len(), size as usize);
        for e in entries.iter().rev() {
            assert_eq!(e.mission_id, expected.next().unwrap().to_string(), "newest first, in order");
            assert_eq!(e.reward_status, mypage::RewardStatus::Issued as i32);
        }
        token = r.next_page_token;
    }
    eprintln!("slowest read {slowest:?}, largest answer {largest} bytes");
    assert!(slowest < READ_LIMIT, "every read under {READ_LIMIT:?}: {slowest:?}");
    assert!(largest < SIZE_LIMIT, "every answer under {SIZE_LIMIT} bytes: {largest}");

    // the watch starts from the same small page
    let mut watch = client()
        .watch_my_page(mypage::WatchMyPageRequest { customer_id: "whale".into() })
        .await
        .expect("watch")
        .into_inner();
    let current = watch.message().await.unwrap().unwrap().page.unwrap();
    assert!(current.encoded_len() < SIZE_LIMIT);

    // a new mission reaches the page within a second of being reported
    let reported = Instant::now();
    let m = flow::report(&sys, "whale", "match-played", "w-new").await;
    let arrived = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let page = watch.message().await.expect("watching").expect("the watch goes on").page.unwrap();
            if page.entries.iter().any(|e| e.mission_id == m.mission_id) {
                return reported.elapsed();
            }
        }
    })
    .await
    .expect("the new mission on the watched page");
    eprintln!("a new mission reached the whale's page in {arrived:?}");
    assert!(arrived < Duration::from_secs(1), "{arrived:?}");
    let (took, bytes, after) = read(String::new(), 0).await;
    let page = after.page.unwrap();
    assert_eq!((page.entry_count, page.entries.len()), (HISTORY as u64 + 1, 50));
    assert!(took < READ_LIMIT && bytes < SIZE_LIMIT, "{took:?} {bytes}");
}
