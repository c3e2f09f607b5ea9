//! My page rebuilt from the streams (`gamectl rebuild mypage`, real binaries, a real
//! nats-server):
//! - the view damaged (a page deleted, a page overwritten with garbage, an archived entry
//!   deleted), rebuilt by an admin through the gateway (a player and a caller without a
//!   token are refused): every page equals what it was, to the last archived entry, and
//!   after two more rebuilds the generation before the last is purged;
//! - rebuilt twice (`--bus`, the operator's NATS key) while missions keep arriving, once
//!   held for 2 s between catching up and switching: no page ever goes backwards, neither as
//!   read nor as watched, and every mission of the load reaches its page.

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use e2e::api as flow;
use e2e::clients::*;
use e2e::{Options, System, eventually};
use futures::StreamExt;
use grpc_adapter::pb::mypage::v1 as pb;
use grpc_adapter::pb::mypage::v1::my_page_admin_service_client::MyPageAdminServiceClient;
use kernel::CustomerId;
use mypage_service::kv;
use nats_adapter::access;
use serde_json::Value;

const SETTLE: Duration = Duration::from_secs(60);

/// `gamectl --json rebuild mypage --bus` as the operator (NATS key), the new generation
/// held `hold_ms` between catching up and the switch: its JSON answer.
async fn rebuild(sys: &System, hold_ms: u64) -> Value {
    let key = sys.nats.credentials().expect("a secured server").seed_file(access::OPERATOR);
    gamectl(&[
        "--json",
        "rebuild",
        "mypage",
        "--bus",
        "--nats-url",
        &sys.nats.url(),
        "--nats-key",
        &key.display().to_string(),
        "--hold-before-switch-ms",
        &hold_ms.to_string(),
    ])
    .await
}

/// `gamectl --json rebuild mypage` through the gateway with an admin's token: its JSON answer.
async fn rebuild_as_admin(sys: &System) -> Value {
    let (gateway, token) = (sys.gateway().url(), sys.tokens.admin());
    gamectl(&["--json", "--endpoint", &gateway, "--token", &token, "rebuild", "mypage"]).await
}

/// gamectl run beside the test's tasks (the load, the readers, the watchers keep going).
async fn gamectl(args: &[&str]) -> Value {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let out = tokio::task::spawn_blocking({
        let args = args.clone();
        move || Command::new(e2e::bin("gamectl")).args(args).output().expect("gamectl runs")
    })
    .await
    .expect("gamectl waited for");
    assert!(out.status.success(), "gamectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// `RebuildMyPage` through the gateway with `token` (none: no authorization header).
async fn rebuild_call(sys: &System, token: Option<&str>) -> Result<pb::RebuildMyPageResponse, tonic::Status> {
    let channel = sys.gateway().channel();
    let req = pb::RebuildMyPageRequest { allow_partial: false };
    match token {
        Some(t) => MyPageAdminServiceClient::new(e2e::with_token(channel, t)).rebuild_my_page(req).await,
        None => MyPageAdminServiceClient::new(channel).rebuild_my_page(req).await,
    }
    .map(tonic::Response::into_inner)
}

/// What a customer sees: the first page (totals and recent entries) and every entry,
/// read page by page, ordered by mission. Versions and times are left out: they are the
/// store's, not the customer's.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    entry_count: u64,
    points_issued: i64,
    points_exchanged: i64,
    recent: Vec<pb::Entry>,
    all: Vec<pb::Entry>,
}

async fn get(sys: &System, customer: &str, size: i32, token: String) -> Result<pb::GetMyPageResponse, tonic::Status> {
    MyPageServiceClient::new(sys.as_admin(&sys.mypage))
        .get_my_page(pb::GetMyPageRequest { customer_id: customer.into(), page_size: size, page_token: token })
        .await
        .map(tonic::Response::into_inner)
}

async fn seen(sys: &System, customer: &str) -> Result<Seen, tonic::Status> {
    let first = get(sys, customer, 0, String::new()).await?;
    let page = first.page.unwrap_or_default();
    let mut all = page.entries.clone();
    let mut token = first.next_page_token;
    while !token.is_empty() {
        let next = get(sys, customer, 500, token).await?;
        all.extend(next.page.unwrap_or_default().entries);
        token = next.next_page_token;
    }
    all.sort_by(|a, b| a.mission_id.cmp(&b.mission_id));
    Ok(Seen {
        entry_count: page.entry_count,
        points_issued: page.points_issued,
        points_exchanged: page.points_exchanged,
        recent: page.entries,
        all,
    })
}

/// The page once each of its `missions` is rewarded and its reward issued.
async fn settled(sys: &System, customer: &str, missions: usize) -> Seen {
    eventually(SETTLE, &format!("{customer}'s {missions} missions on the page"), || async {
        let s = seen(sys, customer).await.ok()?;
        let done = s.all.len() == missions
            && s.entry_count == missions as u64
            && s.all.iter().all(|e| {
                e.reward_status == pb::RewardStatus::Issued as i32
                    && e.mission_status == pb::MissionStatus::Rewarded as i32
            });
        done.then_some(s)
    })
    .await
}

#[tokio::test]
async fn a_damaged_view_rebuilt_by_an_admin_from_the_streams_shows_every_page_as_it_was() {
    let sys = System::start_with(Options { gateway: true, ..Options::default() }).await;
    let customers = [("ann", 120), ("bob", 7), ("cat", 3)];
    for (c, n) in customers {
        for i in 0..n {
            flow::report(&sys, c, "match-played", &format!("{c}-{i}")).await;
        }
    }
    let mut before = HashMap::new();
    for (c, n) in customers {
        before.insert(c, settled(&sys, c, n).await);
    }
    assert_eq!(before["ann"].recent.len(), 50, "ann's older entries are archived");

    // damage the view: bob's page gone, ann's page garbage, one of ann's archived entries gone
    let js = sys.operator_js().await;
    let bucket = js.get_key_value(nats_adapter::roles::MYPAGE_BUCKET).await.expect("the page bucket");
    let (ann, bob) = (CustomerId::new("ann").unwrap(), CustomerId::new("bob").unwrap());
    bucket.purge(kv::key(&bob)).await.expect("purge bob's page");
    bucket.put(kv::key(&ann), b"\xff\xff not a page".to_vec().into()).await.expect("spoil ann's page");
    let oldest: uuid::Uuid = before["ann"].all[0].mission_id.parse().unwrap();
    bucket.purge(kv::entry_key(&ann, oldest)).await.expect("purge an archived entry");
    assert_eq!(seen(&sys, "bob").await.expect("bob's page").entry_count, 0, "bob's page is gone");
    assert!(seen(&sys, "ann").await.is_err(), "ann's page does not read");

    // only an admin may rebuild
    let refused = rebuild_call(&sys, Some(&sys.tokens.customer("bob"))).await.expect_err("a player is refused");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    let refused = rebuild_call(&sys, None).await.expect_err("no token, no rebuild");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    assert_eq!(seen(&sys, "bob").await.expect("bob's page").entry_count, 0, "still broken");

    let r = rebuild_as_admin(&sys).await;
    eprintln!("rebuild through the gateway: {r}");
    assert_eq!((r["previousGeneration"].as_u64(), r["generation"].as_u64()), (Some(0), Some(1)), "{r}");
    assert!(r["eventsReplayed"].as_u64().unwrap_or(0) >= 4 * 130, "every event replayed: {r}");
    for (c, _) in customers {
        assert_eq!(seen(&sys, c).await.expect("the rebuilt page"), before[c], "{c}'s page as it was");
    }
    // two more rebuilds: the third purges generation 1 and keeps 2 (switched from)
    assert_eq!(rebuild(&sys, 0).await["valuesPurged"].as_u64(), Some(0));
    let third = rebuild(&sys, 0).await;
    assert_eq!(third["generation"].as_u64(), Some(3));
    assert!(third["valuesPurged"].as_u64().unwrap_or(0) > 0, "generation 1 purged: {third}");
    let keys: Vec<String> = bucket.keys().await.expect("keys").filter_map(|k| async { k.ok() }).collect().await;
    let of = |g: &str| keys.iter().filter(|k| k.starts_with(g)).count();
    assert_eq!((of("=g1."), of("=g2.") > 0, of("=g3.") > 0), (0, true, true), "generations kept");
    for (c, _) in customers {
        assert_eq!(seen(&sys, c).await.expect("the rebuilt page"), before[c], "{c}'s page after three rebuilds");
    }
    // and the rebuilt view keeps following events
    flow::report(&sys, "bob", "match-played", "bob-after").await;
    assert_eq!(settled(&sys, "bob", 8).await.entry_count, 8);
}

/// Every (entry count, points issued) a watcher saw, in order.
type Watched = Arc<std::sync::Mutex<Vec<(u64, i64)>>>;

fn watch(sys: &System, customer: &str) -> Watched {
    let seen: Watched = Arc::default();
    let (out, channel, customer) = (seen.clone(), sys.as_admin(&sys.mypage), customer.to_owned());
    tokio::spawn(async move {
        let mut stream = MyPageServiceClient::new(channel)
            .watch_my_page(pb::WatchMyPageRequest { customer_id: customer })
            .await
            .expect("watch")
            .into_inner();
        while let Some(Ok(r)) = stream.next().await {
            let p = r.page.unwrap_or_default();
            out.lock().unwrap().push((p.entry_count, p.points_issued));
        }
    });
    seen
}

fn backwards(steps: &[(u64, i64)]) -> Vec<((u64, i64), (u64, i64))> {
    steps.windows(2).filter(|w| w[1].0 < w[0].0 || w[1].1 < w[0].1).map(|w| (w[0], w[1])).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pages_never_go_backwards_while_the_view_is_rebuilt_under_load() {
    let sys = Arc::new(System::start().await);
    let customers: Vec<String> = (0..4).map(|i| format!("load-{i}")).collect();
    let watched: Vec<Watched> = customers.iter().map(|c| watch(&sys, c)).collect();
    let stop = Arc::new(AtomicBool::new(false));
    // the load: missions for every customer, each customer's one after another
    let load: Vec<_> = customers
        .iter()
        .map(|c| {
            let (sys, c, stop) = (sys.clone(), c.clone(), stop.clone());
            tokio::spawn(async move {
                let mut reported = 0;
                while !stop.load(Ordering::Relaxed) {
                    flow::report(&sys, &c, "match-played", &format!("{c}-{reported}")).await;
                    reported += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                reported
            })
        })
        .collect();
    // the reader: every page read again and again, its counts never lower than before
    let read = {
        let (sys, customers, stop) = (sys.clone(), customers.clone(), stop.clone());
        tokio::spawn(async move {
            let mut steps: Vec<Vec<(u64, i64)>> = vec![Vec::new(); customers.len()];
            while !stop.load(Ordering::Relaxed) {
                for (k, c) in customers.iter().enumerate() {
                    if let Ok(r) = get(&sys, c, 0, String::new()).await {
                        let p = r.page.unwrap_or_default();
                        steps[k].push((p.entry_count, p.points_issued));
                    }
                }
            }
            steps
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    // held caught up for 2 s before the switch: what arrives then must reach both
    // generations, or the new one misses it for good
    let first = rebuild(&sys, 2000).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let second = rebuild(&sys, 0).await;
    assert_eq!((first["generation"].as_u64(), second["generation"].as_u64()), (Some(1), Some(2)));
    eprintln!("rebuilds under load: {first} {second}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let mut reported = Vec::new();
    for l in load {
        reported.push(l.await.expect("the load"));
    }
    let reads = read.await.expect("the reader");
    eprintln!("missions reported during the rebuilds: {reported:?}; reads per customer: {}", reads[0].len());

    for (k, c) in customers.iter().enumerate() {
        assert!(reported[k] > 10, "{c}: load while rebuilding ({})", reported[k]);
        let page = settled(&sys, c, reported[k]).await;
        assert_eq!(page.points_issued, reported[k] as i64, "{c}: one point per mission, counted once");
        assert!(backwards(&reads[k]).is_empty(), "{c} read backwards: {:?}", backwards(&reads[k]));
        eventually(SETTLE, &format!("{c}'s watcher sees every mission"), || async {
            let last = watched[k].lock().unwrap().last().copied();
            (last == Some((reported[k] as u64, reported[k] as i64))).then_some(())
        })
        .await;
        let steps = watched[k].lock().unwrap().clone();
        assert!(backwards(&steps).is_empty(), "{c} watched backwards: {:?}", backwards(&steps));
    }
}
