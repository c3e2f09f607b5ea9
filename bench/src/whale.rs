//! The whale phase: does a long history slow a customer down? One customer gets a
//! seeded history of 100,000 missions on my page (10,000 with `--quick`), another none;
//! then each gets the same missions reported one after the other, and the phase measures
//! each one's flow rate (missions whose reward is issued on their page, per second) and
//! the whale's page reads (latency and size). The ratio whale / new should be close to 1.

use std::time::{Duration, Instant};

use contracts::pb::mypage::v1 as mypage;
use e2e::System;
use mypage::my_page_service_client::MyPageServiceClient;
use prost::Message as _;
use serde::Serialize;

use crate::cli::Plan;
use crate::progress::Progress;

#[derive(Debug, Clone, Serialize, Default)]
pub struct WhaleFigures {
    /// Missions in the whale's seeded history.
    pub history: usize,
    pub seeded_s: f64,
    /// Missions reported for each of the two customers.
    pub missions: usize,
    pub whale_flow_per_s: f64,
    pub new_flow_per_s: f64,
    /// The first page of the whale: latency and encoded size.
    pub first_page_ms: f64,
    pub first_page_bytes: usize,
    /// The slowest and the largest of 20 older pages of 50.
    pub older_page_max_ms: f64,
    pub older_page_max_bytes: usize,
}

/// Reports `n` missions for `customer`, then waits until all of them show an issued
/// reward on the page: missions per second from the first report.
async fn flow_rate(sys: &System, customer: &str, n: usize) -> f64 {
    let start = Instant::now();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        ids.push(e2e::api::report(sys, customer, "match-played", &format!("whale-phase-{i}")).await.mission_id);
    }
    let mut c = MyPageServiceClient::new(sys.as_customer(&sys.mypage, customer));
    let deadline = start + Duration::from_secs(120);
    loop {
        // the first page holds the 50 most recent entries: every mission reported here
        let req = mypage::GetMyPageRequest { customer_id: customer.into(), ..Default::default() };
        if let Ok(r) = c.get_my_page(req).await {
            let entries = r.into_inner().page.unwrap_or_default().entries;
            let done = ids.iter().all(|id| {
                entries.iter().any(|e| &e.mission_id == id && e.reward_status == mypage::RewardStatus::Issued as i32)
            });
            if done || Instant::now() > deadline {
                return n as f64 / start.elapsed().as_secs_f64();
            }
        }
        // not faster: polling competes for the CPU with the flow it measures
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn run(plan: &Plan, progress: &Progress, sys: &System) -> WhaleFigures {
    let history = if plan.quick { 10_000 } else { 100_000 };
    let missions = if plan.quick { 10 } else { 40 }; // within the page's 50 recent entries
    progress.phase(
        "whale: a customer with a long history vs a new one",
        Duration::from_secs(if plan.quick { 3 } else { 15 }),
    );
    let seeding = Instant::now();
    e2e::seed::whale_page(sys, "whale", history).await;
    let seeded_s = seeding.elapsed().as_secs_f64();

    let mut c = MyPageServiceClient::new(sys.as_customer(&sys.mypage, "whale"));
    let mut read = async |token: String| {
        let at = Instant::now();
        let req = mypage::GetMyPageRequest { customer_id: "whale".into(), page_size: 50, page_token: token };
        let r = c.get_my_page(req).await.map(tonic::Response::into_inner).unwrap_or_default();
        (at.elapsed().as_secs_f64() * 1e3, r.encoded_len(), r.next_page_token)
    };
    read(String::new()).await; // a warm connection
    let (first_page_ms, first_page_bytes, mut token) = read(String::new()).await;
    let (mut older_page_max_ms, mut older_page_max_bytes) = (0.0_f64, 0);
    for _ in 0..20 {
        let (took, bytes, next) = read(token).await;
        (older_page_max_ms, older_page_max_bytes) = (older_page_max_ms.max(took), older_page_max_bytes.max(bytes));
        token = next;
    }

    // alternate who goes first, so that neither customer gets the quieter machine
    let (mut whale, mut new) = (0.0, 0.0);
    for round in 0..2 {
        let newcomer = format!("newcomer-{round}");
        if round % 2 == 0 {
            new += flow_rate(sys, &newcomer, missions).await / 2.0;
            whale += flow_rate(sys, "whale", missions).await / 2.0;
        } else {
            whale += flow_rate(sys, "whale", missions).await / 2.0;
            new += flow_rate(sys, &newcomer, missions).await / 2.0;
        }
    }
    WhaleFigures {
        history,
        seeded_s,
        missions,
        whale_flow_per_s: whale,
        new_flow_per_s: new,
        first_page_ms,
        first_page_bytes,
        older_page_max_ms,
        older_page_max_bytes,
    }
}
