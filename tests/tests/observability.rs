//! What an operator sees: every role's `/metrics` after a mission, consumer lag while a
//! role is down and `gamectl status` saying so, the breaker's metrics through a forced open.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use e2e::api::{achieve, issued_reward, wallet_of};
use e2e::clients::*;
use e2e::{GIFT, Options, REWARD, Service, System, eventually, with_token};
use grpc_adapter::pb::mission::v1 as mission;
use grpc_adapter::pb::wallet::v1 as wallet;
use metrics_adapter::scrape::{Scrape, fetch};

const FLOW: Duration = Duration::from_secs(30);

fn roles(sys: &System) -> Vec<(&'static str, &Service)> {
    let mut roles = vec![
        ("mission", &sys.mission),
        ("reward", &sys.reward),
        ("wallet", &sys.wallet),
        ("mypage", &sys.mypage),
        ("gift", &sys.gift),
        ("notification", &sys.notification),
        ("auth", &sys.auth),
    ];
    roles.extend(sys.gateway.as_ref().map(|g| ("gateway", g)));
    roles
}

async fn text(service: &Service) -> String {
    fetch(&service.metrics_url(), Duration::from_secs(5)).await.unwrap_or_else(|e| panic!("scrape: {e}"))
}

async fn scrape(service: &Service) -> Scrape {
    Scrape::parse(&text(service).await)
}

async fn scrape_all(sys: &System) -> BTreeMap<&'static str, Scrape> {
    let mut all = BTreeMap::new();
    for (role, service) in roles(sys) {
        all.insert(role, scrape(service).await);
    }
    all
}

/// The value of `name{labels}`, 0 when the series does not exist yet.
fn v(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    s.value(name, labels).unwrap_or(0.0)
}

/// endpoints.json as `gamectl up` writes it, for the system of the test.
fn write_endpoints(sys: &System, dir: &Path) {
    let (mut services, mut metrics) = (BTreeMap::new(), BTreeMap::new());
    for (role, service) in roles(sys) {
        services.insert(role, service.url());
        metrics.insert(role, service.metrics_url());
    }
    let doc = serde_json::json!({ "nats": sys.nats.url(), "services": services, "metrics": metrics });
    std::fs::write(dir.join("endpoints.json"), doc.to_string()).unwrap();
}

/// `gamectl status --json`: its exit code and what it printed.
fn gamectl_status(dir: &Path) -> (Option<i32>, serde_json::Value) {
    let out = std::process::Command::new(e2e::bin("gamectl"))
        .args(["--data-dir", &dir.display().to_string(), "status", "--json"])
        .output()
        .expect("run gamectl");
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("gamectl status --json: {e}: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code(), json)
}

fn problems(status: &serde_json::Value) -> String {
    status["problems"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_owned()).collect::<Vec<_>>().join("\n")
}

#[tokio::test]
async fn a_scrape_of_every_role_after_a_mission_shows_it_went_through_and_everything_the_dashboard_reads() {
    let sys = System::start_with(Options { gateway: true, ..Options::default() }).await;
    eventually(FLOW, "every role reports readiness 1", || async {
        scrape_all(&sys).await.values().all(|s| s.value("readiness", &[]) == Some(1.0)).then_some(())
    })
    .await;
    let before = scrape_all(&sys).await;

    let player = "c-metrics";
    MissionServiceClient::new(with_token(sys.gateway().channel(), &sys.tokens.customer(player)))
        .achieve_mission(mission::AchieveMissionRequest {
            customer_id: player.into(),
            mission_code: "daily-login".into(),
            request_id: "once".into(),
        })
        .await
        .expect("achieve through the gateway");
    eventually(FLOW, "the reward reaches the wallet", || async {
        (wallet_of(&sys, player).await.items.len() == 1).then_some(())
    })
    .await;

    let delta = |now: &BTreeMap<&str, Scrape>, role: &str, name: &str, labels: &[(&str, &str)]| {
        v(&now[role], name, labels) - v(&before[role], name, labels)
    };
    let achieved = [("grpc_method", "AchieveMission"), ("grpc_code", "OK")];
    let after = eventually(FLOW, "the counters show one mission, its events published, no lag", || async {
        let now = scrape_all(&sys).await;
        let settled = delta(&now, "mission", "outbox_published_total", &[]) == 2.0
            && delta(&now, "wallet", "outbox_published_total", &[]) == 1.0
            && delta(&now, "mission", "consumer_handled_total", &[("consumer", "mission-record-reward")]) == 1.0
            // Reported (by the stream's owner, once the durable exists) and caught up.
            && now["mission"].value("consumer_lag", &[("consumer", "reward-allocate")]) == Some(0.0)
            && now["mission"].value("consumer_ack_pending", &[("consumer", "reward-allocate")]) == Some(0.0)
            && now["reward"].value("consumer_lag", &[("consumer", "wallet-issue")]) == Some(0.0)
            && ["mission", "reward", "wallet"].iter().all(|r| v(&now[r], "outbox_pending", &[]) == 0.0);
        settled.then_some(now)
    })
    .await;
    // One call at the gateway, one at the mission service behind it.
    assert_eq!(delta(&after, "gateway", "grpc_server_handled_total", &achieved), 1.0);
    assert_eq!(delta(&after, "mission", "grpc_server_handled_total", &achieved), 1.0);
    assert_eq!(
        delta(&after, "gateway", "grpc_server_handling_seconds_count", &[("grpc_method", "AchieveMission")]),
        1.0
    );
    // MissionAchieved -> reward allocates once -> RewardAllocated -> the wallet issues once.
    let ok = |consumer| [("consumer", consumer), ("outcome", "ok")];
    assert_eq!(delta(&after, "reward", "consumer_handled_total", &ok("reward-allocate")), 1.0);
    assert_eq!(delta(&after, "wallet", "consumer_handled_total", &ok("wallet-issue")), 1.0);
    assert_eq!(delta(&after, "reward", "consumer_handle_seconds_count", &[("consumer", "reward-allocate")]), 1.0);
    assert_eq!(delta(&after, "reward", "outbox_published_total", &[]), 1.0);
    assert_eq!(
        v(&after["reward"], "consumer_handled_total", &[("consumer", "reward-allocate"), ("outcome", "retry")]),
        0.0
    );
    assert_eq!(v(&after["mission"], "outbox_oldest_age_seconds", &[]), 0.0);
    assert_eq!(v(&after["reward"], "deadletter_messages", &[]), 0.0);
    assert!(delta(&after, "mission", "db_write_batch_size_count", &[]) >= 1.0, "commits are counted");
    assert_eq!(after["gateway"].value("build_info", &[("version", env!("CARGO_PKG_VERSION"))]), Some(1.0));

    // Every metric the alerts and the dashboard read is in these scrapes, by the same
    // script that lists them (k8s/monitoring/metrics_used.py).
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (role, service) in roles(&sys) {
        let file = dir.path().join(format!("{role}.txt"));
        std::fs::write(&file, text(service).await).unwrap();
        files.push(file);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../k8s/monitoring/metrics_used.py");
    let check = std::process::Command::new("python3").arg(&script).args(&files).output().expect("python3");
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{said}{}", String::from_utf8_lossy(&check.stderr));
    assert!(said.contains("missing: 0"), "{said}");
}

#[tokio::test]
async fn with_the_reward_role_stopped_its_lag_grows_and_gamectl_status_says_unhealthy() {
    let mut sys = System::start().await;
    let dir = tempfile::tempdir().unwrap();
    write_endpoints(&sys, dir.path());
    let healthy = eventually(FLOW, "gamectl status exits 0 on the running system", || async {
        let (code, status) = gamectl_status(dir.path());
        (code == Some(0)).then_some(status)
    })
    .await;
    assert_eq!(healthy["healthy"], true);
    assert_eq!(healthy["roles"].as_array().unwrap().len(), 7);

    sys.reward.stop();
    for i in 0..3 {
        achieve(&sys, &format!("c-lag-{i}"), "daily-login", "").await;
    }
    // The mission role owns the stream: it keeps reporting the durable of the stopped role.
    eventually(FLOW, "consumer_lag of reward-allocate grows to 3", || async {
        (v(&scrape(&sys.mission).await, "consumer_lag", &[("consumer", "reward-allocate")]) >= 3.0).then_some(())
    })
    .await;
    let (code, status) = gamectl_status(dir.path());
    assert_eq!(code, Some(1), "{status:#}");
    assert_eq!(status["healthy"], false);
    assert!(problems(&status).contains("reward: unreachable"), "{status:#}");
    let lag = status["consumers"].as_array().unwrap().iter().find(|c| c["consumer"] == "reward-allocate").unwrap();
    assert!(lag["lag"].as_f64().unwrap() >= 3.0, "{lag}");
    let reward = status["roles"].as_array().unwrap().iter().find(|r| r["role"] == "reward").unwrap();
    assert_eq!(reward["reachable"], false);

    sys.reward.restart();
    sys.reward.wait_serving(REWARD).await;
    eventually(FLOW, "the lag drains and gamectl status exits 0 again", || async {
        let lag = v(&scrape(&sys.mission).await, "consumer_lag", &[("consumer", "reward-allocate")]);
        (lag == 0.0 && gamectl_status(dir.path()).0 == Some(0)).then_some(())
    })
    .await;
}

async fn exchange(
    sys: &System,
    customer: &str,
    reward_id: &str,
) -> Result<wallet::ExchangeRewardResponse, tonic::Status> {
    WalletServiceClient::new(sys.as_customer(&sys.wallet, customer))
        .exchange_reward(wallet::ExchangeRewardRequest {
            customer_id: customer.into(),
            reward_id: reward_id.into(),
            gift_code: "coffee".into(),
            request_id: String::new(),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn the_breaker_metrics_follow_a_forced_open_and_its_recovery() {
    let wallet_env = vec![
        ("BREAKER_MIN_CALLS", "3".to_owned()),
        ("BREAKER_OPEN_SECONDS", "2".to_owned()),
        ("BREAKER_HALF_OPEN_CALLS", "1".to_owned()),
    ];
    let mut sys = System::start_with(Options { wallet_env, ..Options::default() }).await;
    let state = |s: &Scrape, state| v(s, "breaker_state", &[("state", state)]);
    let to = |s: &Scrape, to| v(s, "breaker_transitions_total", &[("to", to)]);
    let closed = scrape(&sys.wallet).await;
    assert_eq!((state(&closed, "closed"), state(&closed, "open"), state(&closed, "half_open")), (1.0, 0.0, 0.0));
    assert_eq!((to(&closed, "open"), v(&closed, "breaker_rejected_total", &[])), (0.0, 0.0));

    let item = issued_reward(&sys, "c-breaker", "first-win").await;
    sys.gift.stop();
    for _ in 0..3 {
        assert_eq!(exchange(&sys, "c-breaker", &item.reward_id).await.unwrap_err().code(), tonic::Code::Unavailable);
    }
    let refused = exchange(&sys, "c-breaker", &item.reward_id).await.unwrap_err();
    assert!(refused.message().contains("try again"), "{}", refused.message());
    let open = scrape(&sys.wallet).await;
    assert_eq!((state(&open, "closed"), state(&open, "open"), state(&open, "half_open")), (0.0, 1.0, 0.0));
    assert_eq!(to(&open, "open"), 1.0);
    assert!(v(&open, "breaker_rejected_total", &[]) >= 1.0, "the call refused while open is counted");
    assert!(
        v(&open, "grpc_server_handled_total", &[("grpc_method", "ExchangeReward"), ("grpc_code", "Unavailable")])
            >= 4.0
    );
    let dir = tempfile::tempdir().unwrap();
    write_endpoints(&sys, dir.path());
    let (code, status) = gamectl_status(dir.path());
    assert_eq!(code, Some(1));
    assert!(problems(&status).contains("wallet: circuit breaker open"), "{status:#}");

    sys.gift.restart();
    sys.gift.wait_serving(GIFT).await;
    eventually(FLOW, "the exchange succeeds after the open period", || async {
        exchange(&sys, "c-breaker", &item.reward_id).await.ok()
    })
    .await;
    let recovered = scrape(&sys.wallet).await;
    assert_eq!((state(&recovered, "closed"), state(&recovered, "open")), (1.0, 0.0));
    assert!(to(&recovered, "half_open") >= 1.0 && to(&recovered, "closed") >= 1.0, "{recovered:?}");
}
