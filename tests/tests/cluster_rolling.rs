//! A rolling restart on the cluster (three NATS nodes, streams R3, PostgreSQL): two
//! replicas of every role behind the gateway, each replaced one at a time the way a
//! RollingUpdate does (the new one SERVING first, then the old one SIGTERMed: NOT_SERVING,
//! drain, finish what it holds, hand back the events it had not taken), while 20 players
//! achieve missions through the gateway and two more log in again and again and read
//! their missions with the token they got. No request fails; every accepted mission is
//! rewarded exactly once. The auth service runs twice, sharing its database and signing
//! keys, and every process is given every auth address (`AUTH_URL`, `JWKS_URLS`,
//! `REVOCATION_URLS`); it is rolled first. The gateway runs twice too, the players'
//! client balancing between the gateways that are in service.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e::clients::{AuthServiceClient, MissionServiceClient};
use e2e::{Options, Service, System, eventually, free_port, with_token};
use grpc_adapter::pb::auth::v1 as auth;
use grpc_adapter::pb::mission::v1 as mission;
use tonic::transport::{Channel, Endpoint, channel::Change};

const PLAYERS: usize = 20;
const PACE: Duration = Duration::from_millis(200);
/// Players who log in again and again during the roll, and how often.
const LOGINS: usize = 2;
const LOGIN_PACE: Duration = Duration::from_millis(300);
const PASSWORD: &str = "correct horse battery";
/// Up to three processes of each of six roles on the machine's PostgreSQL, which other
/// tests share: a small pool each keeps them under its `max_connections` (100).
const POOL_SIZE: &str = "3";
/// Every accepted mission is rewarded within this, once the load stops.
const SETTLE: Duration = Duration::from_secs(30);

/// The roles rolled, each with its gRPC service (its health name).
const ROLES: [(&str, &str); 6] = [
    ("mission", e2e::MISSION),
    ("reward", e2e::REWARD),
    ("wallet", e2e::WALLET),
    ("mypage", e2e::MYPAGE),
    ("gift", e2e::GIFT),
    ("notification", e2e::NOTIFICATION),
];

/// Two replicas of a role on `slots[0..2]`; `slots[2]` is the spare a replacement takes.
struct Replicas {
    role: &'static str,
    health: &'static str,
    slots: [u16; 3],
    env: Vec<(&'static str, String)>,
    running: Vec<Service>,
}

impl Replicas {
    /// `auth`: where every replica of the auth service is ([`Self::auth_client_env`]).
    fn start(sys: &System, role: &'static str, health: &'static str, auth: &[(&'static str, String)]) -> Self {
        let mut extra = auth.to_vec();
        match role {
            "wallet" => extra.push(("GIFT_URL", sys.gift.url())),
            "notification" => extra.push(("MAILBOX_DIR", sys.mailbox().display().to_string())),
            _ => {}
        }
        Self::start_with(sys, role, health, extra)
    }

    fn start_with(sys: &System, role: &'static str, health: &'static str, extra: Vec<(&'static str, String)>) -> Self {
        let db = sys.database_urls.get(role).cloned().unwrap_or_default();
        let mut env = sys.env(role, &db);
        env.extend([("DRAIN_SECONDS", "1".into()), ("DATABASE_POOL_SIZE", POOL_SIZE.into())]);
        env.extend(extra);
        let slots = [free_port(), free_port(), free_port()];
        let running = slots[..2].iter().map(|port| start_on(role, *port, &env, sys)).collect();
        Self { role, health, slots, env, running }
    }

    fn urls(&self) -> String {
        self.each("")
    }

    /// `http://<slot><path>` of every slot (the spare included: a replacement comes up
    /// there), comma-separated.
    fn each(&self, path: &str) -> String {
        self.slots.iter().map(|p| format!("http://127.0.0.1:{p}{path}")).collect::<Vec<_>>().join(",")
    }

    /// What a process is given to reach these auth replicas: for its service token, the
    /// signing keys and the revocations.
    fn auth_client_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AUTH_URL", self.urls()),
            ("JWKS_URLS", self.each("/.well-known/jwks.json")),
            ("REVOCATION_URLS", self.each("/revocations")),
        ]
    }

    /// Replaces each replica in turn: the new one on the free slot, SERVING, then the old
    /// one stopped (SIGTERM) and its slot free for the next.
    async fn roll(&mut self, sys: &System, clients: Option<&Discovery>) -> Duration {
        let began = Instant::now();
        let mut spare = self.slots[2];
        for i in 0..self.running.len() {
            let new = start_on(self.role, spare, &self.env, sys);
            new.wait_serving(self.health).await;
            let old = &mut self.running[i];
            if let Some(d) = clients {
                // What a Service does with a pod's readiness: the new one in, the old one
                // out before it stops (in-flight calls on it finish).
                d.send(Change::Insert(spare, endpoint(spare))).await.expect("balance");
                d.send(Change::Remove(old.addr.port())).await.expect("balance");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            spare = old.addr.port();
            let code = tokio::task::block_in_place(|| old.stop());
            assert_eq!(code, Some(0), "{} exits cleanly after draining", old.name);
            self.running[i] = new;
        }
        began.elapsed()
    }
}

/// Where the players' client learns which gateways to balance between.
type Discovery = tokio::sync::mpsc::Sender<Change<u16, Endpoint>>;

fn endpoint(port: u16) -> Endpoint {
    Endpoint::from_shared(format!("http://127.0.0.1:{port}")).expect("url")
}

fn start_on(role: &str, port: u16, env: &[(&'static str, String)], sys: &System) -> Service {
    let mut env = env.to_vec();
    env.push(("LISTEN_ADDR", format!("127.0.0.1:{port}")));
    Service::start(&format!("{role}-{port}"), role, &env, sys.dir.path())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rolling_every_role_one_replica_at_a_time_on_the_cluster_fails_no_request() {
    let drain = vec![("DRAIN_SECONDS", "1".to_owned()), ("DATABASE_POOL_SIZE", POOL_SIZE.into())];
    let mut sys =
        System::start_with(Options { nats_cluster: 3, postgres: true, service_env: drain, ..Options::default() }).await;
    // Two auth replicas on the auth database and the signing keys of the one the system
    // started with; everything started from now on knows every auth address.
    let auth_db = sys.database_urls.get("auth").cloned().expect("auth database");
    let mut auths =
        Replicas::start_with(&sys, "auth", e2e::AUTH, e2e::auth_env(&auth_db, sys.dir.path(), &sys.secrets));
    let auth_env = auths.auth_client_env();
    let mut roles: Vec<Replicas> =
        ROLES.iter().map(|(role, health)| Replicas::start(&sys, role, health, &auth_env)).collect();
    for s in &auths.running {
        s.wait_serving(e2e::AUTH).await;
    }
    for r in &roles {
        for s in &r.running {
            s.wait_serving(r.health).await;
        }
    }
    // Only the two replicas of each role run (and consume) from now on; the gift service
    // the wallets call stays (exchanges are not part of this load).
    for s in [&mut sys.mission, &mut sys.reward, &mut sys.wallet, &mut sys.mypage, &mut sys.notification, &mut sys.auth]
    {
        tokio::task::block_in_place(|| s.stop());
    }
    let mut gateway_env = vec![
        ("MISSION_URL", roles[0].urls()),
        ("REWARD_URL", roles[1].urls()),
        ("WALLET_URL", roles[2].urls()),
        ("MYPAGE_URL", roles[3].urls()),
        ("GIFT_URL", roles[4].urls()),
        ("NOTIFICATION_URL", roles[5].urls()),
        ("RATE_LIMIT_PER_SECOND", "100000".into()),
        ("RATE_LIMIT_BURST", "100000".into()),
        // The logins come without a token, all from this machine.
        ("ANONYMOUS_RATE_PER_MINUTE", "100000".into()),
    ];
    gateway_env.extend(auth_env.iter().cloned());
    // Two gateways: one alone cannot be restarted without failing the calls that come
    // while it is down. The players' client balances between the gateways it is told
    // about (tonic's balance channel), as a Kubernetes Service balances between ready pods.
    let mut gateways = Replicas::start_with(&sys, "gateway", e2e::GATEWAY, gateway_env);
    for g in &gateways.running {
        g.wait_serving(e2e::GATEWAY).await;
    }
    let (balanced, discovery) = Channel::balance_channel::<u16>(8);
    for g in &gateways.running {
        discovery.send(Change::Insert(g.addr.port(), endpoint(g.addr.port()))).await.expect("balance");
    }

    // 20 players report matches through the gateway (the trusted game server's token).
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let token = sys.tokens.game_server(e2e::GAME_SERVER);
    let players: Vec<_> = (0..PLAYERS)
        .map(|i| {
            let client = MissionServiceClient::new(with_token(balanced.clone(), &token));
            let (stop, accepted, failures) = (stop.clone(), accepted.clone(), failures.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let request = mission::AchieveMissionRequest {
                        customer_id: format!("roller-{i}"),
                        mission_code: "match-played".into(),
                        request_id: format!("roller-{i}-{n}"),
                    };
                    match client.clone().achieve_mission(request).await {
                        Ok(r) => accepted.lock().unwrap().push(r.into_inner().mission.expect("mission").mission_id),
                        Err(s) => failures.lock().unwrap().push(format!("{:?}: {}", s.code(), s.message())),
                    }
                    tokio::time::sleep(PACE).await;
                }
            })
        })
        .collect();
    // Two players log in through the gateways again and again (a token from an auth
    // replica) and read their missions with it (checked with the keys the auth replicas
    // publish).
    let logins = Arc::new(Mutex::new(0usize));
    let mut loggers = Vec::new();
    for i in 0..LOGINS {
        let customer_id = format!("relogger-{i}");
        let register = auth::RegisterCustomerRequest { customer_id: customer_id.clone(), password: PASSWORD.into() };
        AuthServiceClient::new(balanced.clone()).register_customer(register).await.expect("registered");
        let (balanced, stop, logins, failures) = (balanced.clone(), stop.clone(), logins.clone(), failures.clone());
        loggers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let login = auth::IssueTokenRequest { customer_id: customer_id.clone(), password: PASSWORD.into() };
                let read = match AuthServiceClient::new(balanced.clone()).issue_token(login).await {
                    Ok(t) => {
                        let token = t.into_inner().access_token;
                        let list =
                            mission::ListMissionsRequest { customer_id: customer_id.clone(), ..Default::default() };
                        MissionServiceClient::new(with_token(balanced.clone(), &token))
                            .list_missions(list)
                            .await
                            .map(drop)
                    }
                    Err(s) => Err(s),
                };
                match read {
                    Ok(()) => *logins.lock().unwrap() += 1,
                    Err(s) => failures.lock().unwrap().push(format!("login: {:?}: {}", s.code(), s.message())),
                }
                tokio::time::sleep(LOGIN_PACE).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let began = Instant::now();
    let mut figures = Vec::new();
    let took = auths.roll(&sys, None).await;
    figures.push(format!("auth {took:.1?}"));
    for r in &mut roles {
        let took = r.roll(&sys, None).await;
        figures.push(format!("{} {took:.1?}", r.role));
    }
    let took = gateways.roll(&sys, Some(&discovery)).await;
    figures.push(format!("gateway {took:.1?}"));
    let rolled = began.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for p in players.into_iter().chain(loggers) {
        p.await.expect("player");
    }
    let logins = *logins.lock().unwrap();
    let accepted = std::mem::take(&mut *accepted.lock().unwrap());
    let failures = std::mem::take(&mut *failures.lock().unwrap());

    // Every accepted mission is published once and rewarded once: one RewardAllocated
    // each (a second reward would be a second event with its own id).
    let total = accepted.len() as u64;
    let settled = Instant::now();
    eventually(SETTLE, "every accepted mission is rewarded", || async {
        (sys.count_events("REWARD", "game.reward.v1.allocated").await >= total).then_some(())
    })
    .await;
    let settled_in = settled.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let missions = sys.count_events("MISSION", "game.mission.v1.achieved").await;
    let rewards = sys.count_events("REWARD", "game.reward.v1.allocated").await;
    println!(
        "rolling restart on the cluster (3 nodes, R3, PostgreSQL, two replicas of each role and of the gateway, \
         {PLAYERS} players, {LOGINS} logging in again and again): rolled in {rolled:.1?} ({}); requests {}, \
         accepted {total}, logged in and read {logins}, failed {} {:?}; \
         all rewarded {settled_in:.1?} after the load; missions published {missions}, rewards allocated {rewards}, \
         events lost: {}, duplicates: {}",
        figures.join(", "),
        accepted.len() + logins + failures.len(),
        failures.len(),
        failures.iter().take(5).collect::<Vec<_>>(),
        total.saturating_sub(rewards),
        rewards.saturating_sub(total),
    );
    assert!(total > 100, "the players kept achieving: {total}");
    assert!(logins > 20, "the players kept logging in: {logins}");
    assert_eq!(failures, Vec::<String>::new(), "no request failed at the gateway during the roll");
    assert_eq!((missions, rewards), (total, total), "every accepted mission published and rewarded exactly once");
}
