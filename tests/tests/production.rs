//! Running it in production: readiness that follows the dependencies, the whole scenario
//! on PostgreSQL with replicas sharing the work, rolling updates behind the gateway with
//! zero failed requests and no event lost or doubled.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use e2e::api::{achieve, issued_reward, wallet_of};
use e2e::clients::*;
use e2e::{MISSION, MYPAGE, Options, REWARD, Service, SlowProxy, System, WALLET, eventually, free_port, with_token};
use grpc_adapter::pb::gift::v1 as gift;
use grpc_adapter::pb::mission::v1 as mission;
use grpc_adapter::pb::mypage::v1 as mypage;
use grpc_adapter::pb::reward::v1 as reward;
use grpc_adapter::pb::wallet::v1 as wallet;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const FLOW: Duration = Duration::from_secs(60);

async fn health(service: &Service, name: &str) -> Option<i32> {
    let mut h = HealthClient::new(service.channel());
    h.check(HealthCheckRequest { service: name.to_owned() }).await.ok().map(|r| r.get_ref().status)
}

async fn becomes(service: &Service, name: &str, status: ServingStatus, what: &str) {
    eventually(Duration::from_secs(20), what, || async {
        (health(service, name).await == Some(status as i32)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_database_and_nats_and_recovers_while_liveness_stays_up() {
    // mission's PostgreSQL behind a proxy the test can cut
    let db = e2e::TestDatabase::postgres();
    let server: http::Uri = db.url.parse().unwrap();
    let upstream = format!("{}:{}", server.host().unwrap(), server.port_u16().unwrap_or(5432));
    let proxy = SlowProxy::start(tokio::net::lookup_host(upstream).await.unwrap().next().unwrap());
    let through_proxy =
        db.url.replacen(server.authority().unwrap().as_str().rsplit('@').next().unwrap(), &proxy.addr.to_string(), 1);
    let files = tempfile::tempdir().unwrap();
    let sqlite = |n: &str| format!("sqlite://{}", files.path().join(format!("{n}.db")).display());
    let databases = Some([through_proxy, sqlite("reward"), sqlite("wallet"), sqlite("gift")]);
    let mut sys = System::start_with(Options { databases, ..Options::default() }).await;

    proxy.set_down(true);
    becomes(&sys.mission, MISSION, ServingStatus::NotServing, "NOT_SERVING without its database").await;
    assert_eq!(health(&sys.mission, "").await, Some(ServingStatus::Serving as i32), "alive all the same");
    proxy.set_down(false);
    becomes(&sys.mission, MISSION, ServingStatus::Serving, "SERVING again once the database is back").await;
    achieve(&sys, "c-ready", "daily-login", "").await;

    sys.nats.stop();
    becomes(&sys.mission, MISSION, ServingStatus::NotServing, "NOT_SERVING without NATS").await;
    becomes(&sys.mypage, MYPAGE, ServingStatus::NotServing, "mypage NOT_SERVING without NATS").await;
    assert_eq!(
        health(&sys.mission, "").await,
        Some(ServingStatus::Serving as i32),
        "an outage of NATS restarts nothing"
    );
    sys.nats.resume();
    becomes(&sys.mission, MISSION, ServingStatus::Serving, "SERVING again once NATS is back").await;
    becomes(&sys.wallet, WALLET, ServingStatus::Serving, "wallet SERVING again").await;
    issued_reward(&sys, "c-ready", "first-win").await;
}

/// Waits until each customer's missions all have exactly one reward, ISSUED in the wallet.
async fn all_rewarded(sys: &System, customers: &[String], per_customer: usize) {
    for c in customers {
        eventually(FLOW, &format!("{per_customer} issued rewards for {c}"), || async {
            let w = wallet_of(sys, c).await;
            (w.items.len() == per_customer).then_some(())
        })
        .await;
        let rewards = RewardServiceClient::new(sys.as_customer(&sys.reward, c))
            .list_rewards(reward::ListRewardsRequest { customer_id: c.clone(), ..Default::default() })
            .await
            .unwrap()
            .into_inner()
            .rewards;
        let mut missions: Vec<_> = rewards.iter().map(|r| r.mission_id.clone()).collect();
        missions.sort();
        missions.dedup();
        assert_eq!((rewards.len(), missions.len()), (per_customer, per_customer), "one reward per mission for {c}");
    }
}

fn handled(service: &Service, consumer: &str) -> usize {
    service.log().lines().filter(|l| l.contains("event handled") && l.contains(consumer)).count()
}

#[tokio::test]
async fn the_whole_scenario_on_postgresql_with_two_replicas_of_every_consumer() {
    let debug = ("RUST_LOG", "info,nats_adapter::consumer=debug".to_owned());
    let sys = System::start_with(Options {
        postgres: true,
        gateway: true,
        service_env: vec![debug.clone()],
        ..Options::default()
    })
    .await;
    // second replicas, on the same databases
    let second = |name: &'static str, svc: &Service, extra: Vec<(&'static str, String)>| {
        let mut env = sys.env(name, &sys.database_urls.get(name).cloned().unwrap_or_default());
        env.push(debug.clone());
        env.extend(extra);
        let _ = svc;
        Service::start(&format!("{name}-2"), name, &env, sys.dir.path())
    };
    let mission2 = second("mission", &sys.mission, vec![]);
    let reward2 = second("reward", &sys.reward, vec![]);
    let wallet2 = second("wallet", &sys.wallet, vec![("GIFT_URL", sys.gift.url())]);
    let mypage2 = second("mypage", &sys.mypage, vec![]);
    let notification2 =
        second("notification", &sys.notification, vec![("MAILBOX_DIR", sys.mailbox().display().to_string())]);
    for (s, n) in [(&mission2, MISSION), (&reward2, REWARD), (&wallet2, WALLET), (&mypage2, MYPAGE)] {
        s.wait_serving(n).await;
    }

    let customers: Vec<String> = (0..8).map(|i| format!("pg-{i}")).collect();
    // What the game server reports for each customer: every mission the rules allow once
    // today, and matches played.
    const CODES: [&str; 6] =
        ["daily-login", "tutorial-complete", "first-win", "weekly-streak", "match-played", "match-played"];
    let per_customer = CODES.len();
    let mut calls = Vec::new();
    for c in &customers {
        for (i, code) in CODES.iter().enumerate() {
            // alternate between the two mission replicas: both relays publish
            let target = if i % 2 == 0 { &sys.mission } else { &mission2 };
            let ch = sys.as_game_server(target);
            let c = c.clone();
            calls.push(async move {
                MissionServiceClient::new(ch)
                    .achieve_mission(mission::AchieveMissionRequest {
                        customer_id: c,
                        mission_code: (*code).into(),
                        request_id: format!("r{i}"),
                    })
                    .await
                    .expect("achieve")
            });
        }
    }
    futures::future::join_all(calls).await;
    all_rewarded(&sys, &customers, per_customer).await;
    let total = (customers.len() * per_customer) as u64;
    assert_eq!(
        sys.count_events("MISSION", "game.mission.v1.achieved").await,
        total,
        "no event lost or doubled by two relays"
    );
    assert_eq!(sys.count_events("REWARD", "game.reward.v1.allocated").await, total);
    // the wallet's last RewardIssued may still be on its way out of the outbox
    eventually(FLOW, "every RewardIssued published once", || async {
        (sys.count_events("WALLET", "game.wallet.v1.issued").await == total).then_some(())
    })
    .await;
    for (a, b, consumer) in [(&sys.reward, &reward2, "reward-allocate"), (&sys.wallet, &wallet2, "wallet-issue")] {
        let (x, y) = (handled(a, consumer), handled(b, consumer));
        if x + y != total as usize {
            eprintln!(
                "--- {} ---\n{}",
                a.name,
                a.log().lines().filter(|l| l.contains(consumer)).take(5).collect::<Vec<_>>().join("\n")
            );
        }
        assert_eq!(x + y, total as usize, "{consumer}: each event handled once across replicas");
        assert!(x > 0 && y > 0, "{consumer}: both replicas worked ({x}, {y})");
    }

    // exchange and use one reward per customer through the gateway; e-mails go out once
    for c in &customers {
        let token = sys.tokens.customer(c);
        let ch = || with_token(sys.gateway().channel(), &token);
        let item =
            wallet_of(&sys, c).await.items.into_iter().find(|i| i.points >= 10).expect("a reward worth a coffee");
        // UNAVAILABLE (a gift call past its deadline on a loaded machine, with retry-after)
        // changes nothing; a client tries again with the same request id, as this one does.
        let mut attempt = 0;
        let g = loop {
            let exchange = WalletServiceClient::new(ch())
                .exchange_reward(wallet::ExchangeRewardRequest {
                    customer_id: c.clone(),
                    reward_id: item.reward_id.clone(),
                    gift_code: "coffee".into(),
                    request_id: format!("x-{c}"),
                })
                .await;
            match exchange {
                Ok(r) => break r.into_inner().gift_id,
                Err(e) if e.code() == tonic::Code::Unavailable && attempt < 10 => {
                    attempt += 1;
                    eprintln!("exchange for {c}: {} (attempt {attempt}); trying again", e.message());
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => panic!("exchange for {c}: {e:?}"),
            }
        };
        GiftServiceClient::new(ch())
            .use_gift(gift::UseGiftRequest { gift_id: g, customer_id: c.clone() })
            .await
            .unwrap();
    }
    eventually(FLOW, "two e-mails per customer", || async {
        let files = std::fs::read_dir(sys.mailbox()).map(|d| d.count()).unwrap_or(0);
        (files == customers.len() * 2).then_some(())
    })
    .await;
    eventually(FLOW, "my page caught up on both replicas' work", || async {
        for c in &customers {
            let p = MyPageServiceClient::new(sys.as_customer(&sys.mypage, c))
                .get_my_page(mypage::GetMyPageRequest { customer_id: c.clone(), ..Default::default() })
                .await
                .ok()?
                .into_inner()
                .page?;
            let used = p.entries.iter().filter(|e| e.gift_status == mypage::GiftStatus::Used as i32).count();
            if p.entries.len() != per_customer || used != 1 {
                return None;
            }
        }
        Some(())
    })
    .await;
    // every replica of every role did all of it within its permissions on the bus
    assert_eq!(sys.bus_violations(), Vec::<String>::new());
    drop((mission2, reward2, wallet2, mypage2, notification2));
}

/// Steady load through the gateway until `stop`; counts sent and failed calls.
struct Load {
    sent: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Vec<String>>>,
}

impl Load {
    fn start<F, Fut>(workers: usize, call: F) -> Self
    where
        F: Fn(u64) -> Fut + Clone + Send + 'static,
        Fut: std::future::Future<Output = Result<(), tonic::Status>> + Send,
    {
        let (sent, failed, stop) =
            (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let tasks = (0..workers)
            .map(|_| {
                let (sent, failed, stop, call) = (sent.clone(), failed.clone(), stop.clone(), call.clone());
                tokio::spawn(async move {
                    let mut errors = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let n = sent.fetch_add(1, Ordering::Relaxed);
                        if let Err(e) = call(n).await {
                            failed.fetch_add(1, Ordering::Relaxed);
                            errors.push(format!("{:?}: {}", e.code(), e.message()));
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    errors
                })
            })
            .collect();
        Self { sent, failed, stop, tasks }
    }

    async fn finish(self) -> (u64, u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let mut errors = Vec::new();
        for t in self.tasks {
            errors.extend(t.await.unwrap());
        }
        (self.sent.load(Ordering::Relaxed), self.failed.load(Ordering::Relaxed), errors)
    }
}

/// Replaces `old` the way a RollingUpdate does: start the new replica on `port`, wait for
/// SERVING, SIGTERM the old one, let it drain and exit. Returns the new replica and the
/// port the old one freed.
async fn replace(
    old: &mut Service,
    port: u16,
    name: &str,
    health_name: &str,
    env: &[(&'static str, String)],
    dir: &std::path::Path,
) -> (Service, u16) {
    let mut env = env.to_vec();
    env.push(("LISTEN_ADDR", format!("127.0.0.1:{port}")));
    let new = Service::start(&format!("{name}-{port}"), name, &env, dir);
    new.wait_serving(health_name).await;
    let freed = old.addr.port();
    let code = tokio::task::block_in_place(|| old.stop());
    assert_eq!(code, Some(0), "{} exits cleanly after draining", old.name);
    (new, freed)
}

/// Two replicas of `name` on fixed ports `slots[0..2]`; `slots[2]` is free for a roll.
fn replicas(name: &str, slots: [u16; 3], env: &[(&'static str, String)], dir: &std::path::Path) -> Vec<Service> {
    slots[..2]
        .iter()
        .map(|port| {
            let mut env = env.to_vec();
            env.push(("LISTEN_ADDR", format!("127.0.0.1:{port}")));
            Service::start(&format!("{name}-{port}"), name, &env, dir)
        })
        .collect()
}

fn slot_urls(slots: [u16; 3]) -> String {
    slots.iter().map(|p| format!("http://127.0.0.1:{p}")).collect::<Vec<_>>().join(",")
}

/// A gateway whose upstream lists hold every address a replica may take (in Kubernetes:
/// the addresses a headless Service resolves to).
fn roll_gateway(sys: &System, overrides: &[(&'static str, String)]) -> Service {
    let mut env = sys.env("gateway", "");
    env.extend([
        ("MISSION_URL", sys.mission.url()),
        ("REWARD_URL", sys.reward.url()),
        ("WALLET_URL", sys.wallet.url()),
        ("MYPAGE_URL", sys.mypage.url()),
        ("GIFT_URL", sys.gift.url()),
        ("NOTIFICATION_URL", sys.notification.url()),
        ("AUTH_URL", sys.auth.url()),
        ("RATE_LIMIT_PER_SECOND", "100000".into()),
        ("RATE_LIMIT_BURST", "100000".into()),
    ]);
    env.extend(overrides.iter().cloned());
    Service::start("gateway-roll", "gateway", &env, sys.dir.path())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_mypage_and_wallet_behind_the_gateway_fails_no_request() {
    let drain = vec![("DRAIN_SECONDS", "1".to_owned())];
    let sys =
        System::start_with(Options { postgres: true, gateway: true, service_env: drain.clone(), ..Options::default() })
            .await;
    let (m_slots, w_slots) = ([free_port(), free_port(), free_port()], [free_port(), free_port(), free_port()]);
    let mut mypage_env = sys.env("mypage", "");
    mypage_env.extend(drain.clone());
    let mut wallet_env = sys.env("wallet", &sys.database_urls["wallet"]);
    wallet_env.extend(drain.clone());
    wallet_env.push(("GIFT_URL", sys.gift.url()));
    let dir = sys.dir.path().to_path_buf();
    let mut mypages = replicas("mypage", m_slots, &mypage_env, &dir);
    let mut wallets = replicas("wallet", w_slots, &wallet_env, &dir);
    for r in &mypages {
        r.wait_serving(MYPAGE).await;
    }
    for r in &wallets {
        r.wait_serving(WALLET).await;
    }
    let gateway = roll_gateway(&sys, &[("MYPAGE_URL", slot_urls(m_slots)), ("WALLET_URL", slot_urls(w_slots))]);
    gateway.wait_serving(e2e::GATEWAY).await;
    issued_reward(&sys, "roller", "daily-login").await;

    let (gw, token) = (gateway.channel(), sys.tokens.customer("roller"));
    let load = Load::start(4, move |n| {
        let (gw, t) = (gw.clone(), token.clone());
        async move {
            if n % 2 == 0 {
                let page = mypage::GetMyPageRequest { customer_id: "roller".into(), ..Default::default() };
                MyPageServiceClient::new(with_token(gw, &t)).get_my_page(page).await.map(drop)
            } else {
                let w = wallet::GetWalletRequest { customer_id: "roller".into(), ..Default::default() };
                WalletServiceClient::new(with_token(gw, &t)).get_wallet(w).await.map(drop)
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut rolled = Vec::new(); // the new replicas run until the end of the test
    let mut port = m_slots[2];
    for old in &mut mypages {
        let (new, freed) = replace(old, port, "mypage", MYPAGE, &mypage_env, &dir).await;
        rolled.push(new);
        port = freed;
    }
    let mut port = w_slots[2];
    for old in &mut wallets {
        let (new, freed) = replace(old, port, "wallet", WALLET, &wallet_env, &dir).await;
        rolled.push(new);
        port = freed;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (sent, failed, errors) = load.finish().await;
    eprintln!("ROLLOUT mypage+wallet: {sent} requests sent, {failed} failed");
    assert!(sent > 100, "the load ran ({sent})");
    assert_eq!(failed, 0, "no request failed during the roll: {errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_the_reward_consumer_loses_and_doubles_no_event() {
    let drain = vec![("DRAIN_SECONDS", "1".to_owned())];
    let mut sys =
        System::start_with(Options { postgres: true, gateway: true, service_env: drain.clone(), ..Options::default() })
            .await;
    let mut reward_env = sys.env("reward", &sys.database_urls["reward"]);
    reward_env.extend(drain);
    let dir = sys.dir.path().to_path_buf();
    let slots = [free_port(), free_port(), free_port()];
    let mut rewards = replicas("reward", slots, &reward_env, &dir);
    for r in &rewards {
        r.wait_serving(REWARD).await;
    }
    tokio::task::block_in_place(|| sys.reward.stop()); // only the two replicas consume now

    let customers: Vec<String> = (0..4).map(|i| format!("roll-{i}")).collect();
    let gw = sys.gateway().channel();
    // The game server reports matches played for four players, through the gateway.
    let token = sys.tokens.game_server(e2e::GAME_SERVER);
    let names = customers.clone();
    let load = Load::start(4, move |n| {
        let i = (n % 4) as usize;
        let (gw, t, c) = (gw.clone(), token.clone(), names[i].clone());
        async move {
            let m = mission::AchieveMissionRequest {
                customer_id: c,
                mission_code: "match-played".into(),
                request_id: format!("n{n}"),
            };
            MissionServiceClient::new(with_token(gw, &t)).achieve_mission(m).await.map(drop)
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut rolled = Vec::new();
    let mut port = slots[2];
    for old in &mut rewards {
        let (new, freed) = replace(old, port, "reward", REWARD, &reward_env, &dir).await;
        rolled.push(new);
        port = freed;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (sent, failed, errors) = load.finish().await;
    assert_eq!(failed, 0, "every mission was achieved: {errors:?}");
    // every accepted mission reaches the stream (the relay may still be publishing the last)
    let achieved = sent;
    eventually(FLOW, "every accepted mission is published", || async {
        (sys.count_events("MISSION", "game.mission.v1.achieved").await == achieved).then_some(())
    })
    .await;
    eventually(FLOW, "every achieved mission got its reward", || async {
        (sys.count_events("REWARD", "game.reward.v1.allocated").await == achieved).then_some(())
    })
    .await;
    // a reward allocated twice for a mission would be a second event with its own id
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sys.count_events("REWARD", "game.reward.v1.allocated").await, achieved, "none doubled");
    eprintln!(
        "ROLLOUT reward: {sent} missions achieved during the roll, {failed} failed, {achieved} rewards allocated once each"
    );
}
