//! The run, phase by phase, against a whole system started here:
//! 1. start the system (gateway in front, rate limit lifted, breaker tripping after 3 calls);
//! 2. idle RSS of every service;
//! 3. raw baselines (unary echo direct and through a second gateway, health checks,
//!    JetStream, SQL commits);
//! 4. start-up time of one extra instance of each service, on a private NATS;
//! 5. end-to-end flow latency on the idle system;
//! 6. the load: players achieving missions through the gateway, while a few other players
//!    watch their page to time whole flows, and event counts, RSS and CPU are sampled;
//! 7. the drain of whatever backlog the load left;
//! 8. reads through the gateway and direct; AchieveMission through the gateway and direct;
//! 9. exchanges through the breaker: healthy, then with gift stopped (tripping, open).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use contracts::pb::mission::v1 as mission;
use contracts::pb::mypage::v1 as mypage;
use contracts::pb::notification::v1 as notification;
use contracts::pb::wallet::v1 as wallet;
use contracts::streams::{self, subject};
use e2e::{Authed, GAME_SERVER, Options, Service, System, with_token};
use futures::StreamExt as _;
use mission::mission_service_client::MissionServiceClient;
use mypage::my_page_service_client::MyPageServiceClient;
use notification::notification_service_client::NotificationServiceClient;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use wallet::wallet_service_client::WalletServiceClient;

use crate::baseline;
use crate::cli::{Args, Plan};
use crate::drive::{FnWorker, Run, Worker, closed_loop, paced_loop};
use crate::hist::{Outcome, Recorder, grpc};
use crate::procs;
use crate::progress::Progress;
use crate::report::*;

/// Notifications in the "large" echo answer: about 3 KB, like a wallet of 20 items.
pub const LARGE_ANSWER: usize = 20;

/// What the game server reports for a player, in order: each mission the default catalog
/// allows once (today, this week, ever), then matches played (unlimited). Every report is
/// accepted by the rules, so the load measures achievements, not refusals.
const CODES: [&str; 5] = ["daily-login", "tutorial-complete", "first-win", "weekly-streak", "match-played"];

/// The `n`th mission (from 0) the game server reports for one player.
fn code_for(n: u64) -> &'static str {
    CODES[usize::try_from(n).unwrap_or(usize::MAX).min(CODES.len() - 1)]
}

/// The one server executable: every role runs as `gamectl serve <role>`.
const BINARIES: [&str; 1] = ["gamectl"];

pub async fn run(args: Args) -> Result<(), String> {
    let plan = Plan::from_args(&args);
    let bin_dir = e2e::bin_dir();
    let missing: Vec<_> = BINARIES.iter().filter(|b| !bin_dir.join(b).exists()).collect();
    if !missing.is_empty() {
        let profile = if cfg!(debug_assertions) { "" } else { " --release" };
        return Err(format!(
            "the server executable {missing:?} is missing in {}: build it first with `cargo build{profile} --bins` \
             (or point GAME_BIN_DIR at them)",
            bin_dir.display()
        ));
    }
    std::fs::create_dir_all(&plan.out).map_err(|e| format!("{}: {e}", plan.out.display()))?;
    let mut r = Results { meta: meta(&plan), ..Results::default() };
    let progress = Progress::new(plan.planned());
    let outcome = phases(&plan, &progress, &mut r).await;
    progress.finish();
    if let Err(e) = &outcome {
        r.notes.push(format!("the run stopped early: {e}"));
    }
    let table = table(&r);
    println!("{table}");
    std::fs::write(plan.out.join("table.txt"), &table).map_err(|e| e.to_string())?;
    let json = serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?;
    std::fs::write(plan.out.join("bench.json"), json).map_err(|e| e.to_string())?;
    crate::chart::draw(&plan.out.join("latency.svg"), &r)?;
    println!("wrote {0}/bench.json, {0}/table.txt, {0}/latency.svg", plan.out.display());
    outcome
}

fn meta(plan: &Plan) -> Meta {
    let (cpu, cores, load) = procs::machine();
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    Meta {
        started_at: chrono::Utc::now().to_rfc3339(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        profile: if cfg!(debug_assertions) { "debug" } else { "release" }.into(),
        backend: if plan.postgres { "postgres" } else { "sqlite" }.into(),
        players: plan.players,
        rate: plan.rate,
        load_s: plan.load.as_secs_f64(),
        missions_per_player: plan.missions_per_player,
        quick: plan.quick,
        cpu,
        cores,
        load_average_at_start: load,
        git_commit: commit,
    }
}

/// Every service process of the system, by name.
fn services(sys: &System) -> Vec<(&'static str, &Service)> {
    let mut v = Vec::new();
    if let Some(g) = &sys.gateway {
        v.push(("gateway", g));
    }
    v.push(("auth", &sys.auth));
    v.extend([
        ("mission", &sys.mission),
        ("reward", &sys.reward),
        ("wallet", &sys.wallet),
        ("mypage", &sys.mypage),
        ("gift", &sys.gift),
        ("notification", &sys.notification),
    ]);
    v
}

fn channels(url: &str, n: usize) -> Vec<Channel> {
    (0..n).map(|_| Channel::from_shared(url.to_owned()).expect("url").connect_lazy()).collect()
}

async fn phases(plan: &Plan, progress: &Progress, r: &mut Results) -> Result<(), String> {
    progress.phase("starting the system", Duration::from_secs(if plan.quick { 3 } else { 5 }));
    let options = Options {
        gateway: true,
        postgres: plan.postgres,
        // Trip after 3 failed calls, and stay open for the whole measurement.
        wallet_env: vec![
            ("BREAKER_MIN_CALLS", "3".into()),
            ("BREAKER_OPEN_SECONDS", "3600".into()),
            ("BREAKER_HALF_OPEN_CALLS", "1".into()),
        ],
        // The simulated players are few customers calling fast, and one game server reports
        // for all of them: lift both limits.
        gateway_env: vec![
            ("RATE_LIMIT_PER_SECOND", "1000000000".into()),
            ("RATE_LIMIT_BURST", "1000000000".into()),
            ("GAME_SERVER_RATE_PER_SECOND", "1000000000".into()),
            ("GAME_SERVER_RATE_BURST", "1000000000".into()),
        ],
        ..Options::default()
    };
    let mut sys = Arc::new(System::start_with(options).await);
    r.notes.push(if std::env::var("E2E_METRICS").is_ok_and(|v| v == "off") {
        "metrics off (E2E_METRICS=off: no METRICS_ADDR, nothing recorded)".to_owned()
    } else {
        "metrics on (every role serves /metrics; nothing scrapes it during the run)".to_owned()
    });
    r.notes.push(
        "gateway started with RATE_LIMIT_PER_SECOND/BURST and GAME_SERVER_RATE_PER_SECOND/BURST = 1e9 (the \
         limits are not what is measured); wallet with BREAKER_MIN_CALLS=3, BREAKER_OPEN_SECONDS=3600"
            .into(),
    );
    r.notes.push(
        "AchieveMission: a game-server token reports for each player daily-login, tutorial-complete, first-win, \
         weekly-streak (each once, the rules checked through the slot key), then match-played (unlimited)"
            .into(),
    );
    r.notes.push(
        "services run with the harness's READINESS_INTERVAL_SECONDS=0.2: a first readiness probe that fails \
         is retried that much later, which start -> SERVING includes (the services' default is 1 s)"
            .into(),
    );

    // ------------------------------------------------------------ idle RSS
    tokio::time::sleep(if plan.quick { Duration::from_millis(500) } else { Duration::from_secs(2) }).await;
    for (name, svc) in services(&sys) {
        let pid = svc.pid();
        r.services.push(ServiceFigures {
            name: name.into(),
            rss_idle_kib: pid.and_then(procs::rss_kib),
            ..ServiceFigures::default()
        });
    }

    // ------------------------------------------------------------ baselines
    let private_nats = e2e::NatsServer::start();
    baselines(plan, progress, &sys, &private_nats, r).await?;

    // ------------------------------------------------------------ start-up times
    progress.phase("start-up time of each service", Duration::from_secs(if plan.quick { 3 } else { 8 }));
    startup_times(plan, &sys, &private_nats, r).await;
    drop(private_nats);

    // ------------------------------------------------------------ idle flow latency
    let gw_url = sys.gateway().url();
    let accepted = Arc::new(AtomicU64::new(0));
    progress.phase("end-to-end flow on the idle system", Duration::from_secs(if plan.quick { 1 } else { 3 }));
    let idle_start = Instant::now();
    let idle = sample_flows(
        sys.clone(),
        channels(&gw_url, 1).remove(0),
        "idle".into(),
        Instant::now() + Duration::from_secs(60),
        Some(plan.idle_flows),
        Duration::from_millis(20),
        accepted.clone(),
    )
    .await;
    r.flow.idle = idle.summary(idle_start.elapsed());

    // ------------------------------------------------------------ the load
    let events = Events::connect(&sys.nats).await?;
    let players = Arc::new(Mutex::new(Vec::<Player>::new()));
    load(plan, progress, &sys, &events, &players, &accepted, r).await;

    // ------------------------------------------------------------ reads
    let players: Vec<Player> = players.lock().expect("players").clone();
    if players.is_empty() {
        return Err("no simulated player got through: see the service logs".into());
    }
    reads(plan, progress, &sys, &players, r).await;
    r.whale = crate::whale::run(plan, progress, &sys).await;

    // ------------------------------------------------------------ AchieveMission, gateway vs direct
    progress.phase("AchieveMission: gateway vs direct", plan.short * 2);
    let (mut via, mut direct) = (Recorder::default(), Recorder::default());
    let (mut via_wall, mut direct_wall) = (Duration::ZERO, Duration::ZERO);
    for round in 0..2 {
        for (to_gateway, rec, wall) in [(true, &mut via, &mut via_wall), (false, &mut direct, &mut direct_wall)] {
            let url = if to_gateway { gw_url.clone() } else { sys.mission.url() };
            let tag = if to_gateway { "sg" } else { "sd" };
            let workers = player_workers(plan, &sys, &url, &format!("{tag}{round}"), None, &accepted);
            let run = closed_loop(workers, plan.short / 2, None).await;
            rec.merge(&run.rec);
            *wall += run.wall;
        }
    }
    r.achieve_mission.gateway_short = via.summary(via_wall);
    r.achieve_mission.direct_short = direct.summary(direct_wall);
    progress.phase("draining again", Duration::from_secs(2));
    let _ = drain(&events, &accepted, plan.drain_limit).await;

    // ------------------------------------------------------------ exchange through the breaker
    exchanges(plan, progress, &mut sys, &players, r).await?;

    // ------------------------------------------------------------ RSS at the end
    for (name, svc) in services(&sys) {
        if let Some(f) = r.services.iter_mut().find(|f| f.name == name) {
            f.rss_end_kib = svc.pid().and_then(procs::rss_kib);
        }
    }
    Ok(())
}

mod rpc_baselines;
use rpc_baselines::*;

// ================================================================ players and flows

/// A simulated customer and the token it calls with.
#[derive(Clone)]
pub struct Player {
    pub id: String,
    pub token: String,
}

/// A simulated player achieving missions; after `per_player` missions a new player takes
/// its place (so pages and wallets stay the size a real player's would).
struct PlayerWorker {
    sys: Arc<System>,
    prefix: String,
    per_player: u32,
    seq: u64,
    left: u32,
    n: u64,
    /// The game server reporting for every player of this worker.
    reporter: MissionServiceClient<Authed>,
    current: Option<String>,
    registry: Option<Arc<Mutex<Vec<Player>>>>,
    accepted: Arc<AtomicU64>,
}

impl PlayerWorker {
    fn next_player(&mut self) {
        let id = format!("{}-{}", self.prefix, self.seq);
        self.seq += 1;
        if let Some(reg) = &self.registry {
            let token = self.sys.tokens.customer(&id);
            reg.lock().expect("players").push(Player { id: id.clone(), token });
        }
        self.current = Some(id);
        self.left = self.per_player;
    }
}

impl Worker for PlayerWorker {
    fn call(&mut self) -> impl Future<Output = Option<Outcome>> + Send {
        if self.current.is_none() {
            self.next_player();
        }
        let done = self.per_player - self.left;
        self.left = self.left.saturating_sub(1);
        self.n += 1;
        let id = self.current.as_ref().expect("a player");
        let req = mission::AchieveMissionRequest {
            customer_id: id.clone(),
            mission_code: code_for(u64::from(done)).into(),
            request_id: uuid::Uuid::now_v7().to_string(),
        };
        let mut client = self.reporter.clone();
        let accepted = self.accepted.clone();
        async move {
            let r = client.achieve_mission(req).await;
            if r.is_ok() {
                accepted.fetch_add(1, Ordering::Relaxed);
            }
            Some(grpc(r))
        }
    }

    fn between(&mut self) {
        if self.left == 0 {
            self.next_player();
        }
    }
}

fn player_workers(
    plan: &Plan,
    sys: &Arc<System>,
    url: &str,
    tag: &str,
    registry: Option<&Arc<Mutex<Vec<Player>>>>,
    accepted: &Arc<AtomicU64>,
) -> Vec<PlayerWorker> {
    channels(url, plan.players)
        .into_iter()
        .enumerate()
        .map(|(i, channel)| PlayerWorker {
            sys: sys.clone(),
            reporter: MissionServiceClient::new(with_token(channel, &sys.tokens.game_server(GAME_SERVER))),
            prefix: format!("{tag}{i}"),
            per_player: plan.missions_per_player,
            seq: 0,
            left: 0,
            n: i as u64,
            current: None,
            registry: registry.cloned(),
            accepted: accepted.clone(),
        })
        .collect()
}

/// One player at a time watches its page through the gateway (`WatchMyPage`), achieves a
/// mission and times until the page shows that mission's reward ISSUED; then waits `pause`.
/// A new player every 25 flows.
async fn sample_flows(
    sys: Arc<System>,
    gateway: Channel,
    tag: String,
    until: Instant,
    max_flows: Option<usize>,
    pause: Duration,
    accepted: Arc<AtomicU64>,
) -> Recorder {
    let mut rec = Recorder::default();
    let mut flows = 0usize;
    let more = |flows: usize| Instant::now() < until && max_flows.is_none_or(|m| flows < m);
    let mut k = 0;
    'players: while more(flows) {
        let id = format!("{tag}-{k}");
        k += 1;
        let ch = with_token(gateway.clone(), &sys.tokens.customer(&id));
        let watch = MyPageServiceClient::new(ch.clone())
            .watch_my_page(mypage::WatchMyPageRequest { customer_id: id.clone() })
            .await;
        let mut stream = match watch {
            Ok(s) => s.into_inner(),
            Err(s) => {
                rec.record(Duration::ZERO, Err(s.code()));
                tokio::time::sleep(pause.max(Duration::from_millis(100))).await;
                continue;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(10), stream.next()).await; // the current page
        // The game server reports what the player did.
        let mut missions = MissionServiceClient::new(with_token(gateway.clone(), &sys.tokens.game_server(GAME_SERVER)));
        for n in 0..25 {
            if !more(flows) {
                break 'players;
            }
            flows += 1;
            let t0 = Instant::now();
            let achieved = missions
                .achieve_mission(mission::AchieveMissionRequest {
                    customer_id: id.clone(),
                    mission_code: code_for(n).into(),
                    request_id: uuid::Uuid::now_v7().to_string(),
                })
                .await;
            let mission_id = match achieved {
                Ok(m) => {
                    accepted.fetch_add(1, Ordering::Relaxed);
                    m.into_inner().mission.map(|m| m.mission_id).unwrap_or_default()
                }
                Err(s) => {
                    rec.record(t0.elapsed(), Err(s.code()));
                    tokio::time::sleep(pause).await;
                    continue;
                }
            };
            let limit = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                match tokio::time::timeout_at(limit, stream.next()).await {
                    Ok(Some(Ok(resp))) => {
                        let issued = resp.page.is_some_and(|p| {
                            p.entries.iter().any(|e| {
                                e.mission_id == mission_id && e.reward_status == mypage::RewardStatus::Issued as i32
                            })
                        });
                        if issued {
                            rec.record(t0.elapsed(), Ok(()));
                            break;
                        }
                    }
                    Ok(Some(Err(s))) => {
                        rec.record(t0.elapsed(), Err(s.code()));
                        continue 'players;
                    }
                    Ok(None) => {
                        rec.record(t0.elapsed(), Err(Code::Unavailable));
                        continue 'players;
                    }
                    Err(_) => {
                        rec.record(t0.elapsed(), Err(Code::DeadlineExceeded));
                        continue 'players;
                    }
                }
            }
            tokio::time::sleep(pause).await;
        }
    }
    rec
}

// ================================================================ event counts

/// Counts of the flow's events on the streams.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub achieved: u64,
    pub allocated: u64,
    pub issued: u64,
    pub rewarded: u64,
}

struct Events {
    js: async_nats::jetstream::Context,
}

impl Events {
    /// As the operator: the system's NATS lets no one else read every stream.
    async fn connect(nats: &e2e::NatsServer) -> Result<Self, String> {
        let (client, _) = nats.connect_as(e2e::NATS_OPERATOR).await.map_err(|e| format!("nats: {e}"))?;
        Ok(Self { js: async_nats::jetstream::new(client) })
    }

    /// Messages on `subject` in `stream` (an ephemeral consumer's pending count, as the
    /// harness counts them).
    async fn count(&self, stream: &str, subject: &str) -> u64 {
        use async_nats::jetstream::consumer::{AckPolicy, pull};
        let Ok(stream) = self.js.get_stream(stream).await else { return 0 };
        let Ok(mut consumer) = stream
            .create_consumer(pull::Config {
                filter_subject: subject.to_owned(),
                ack_policy: AckPolicy::None,
                inactive_threshold: Duration::from_secs(2),
                ..Default::default()
            })
            .await
        else {
            return 0;
        };
        consumer.info().await.map(|i| i.num_pending).unwrap_or(0)
    }

    async fn snapshot(&self) -> Counts {
        let (achieved, allocated, issued, rewarded) = futures::join!(
            self.count(streams::MISSION.name, subject::MISSION_ACHIEVED),
            self.count(streams::REWARD.name, subject::REWARD_ALLOCATED),
            self.count(streams::WALLET.name, subject::REWARD_ISSUED),
            self.count(streams::MISSION.name, subject::MISSION_REWARDED),
        );
        Counts { achieved, allocated, issued, rewarded }
    }
}

/// Waits until every accepted mission is rewarded; `None` after `limit`.
async fn drain(events: &Events, accepted: &AtomicU64, limit: Duration) -> Option<Counts> {
    let until = Instant::now() + limit;
    loop {
        let c = events.snapshot().await;
        if c.rewarded >= accepted.load(Ordering::Relaxed).max(c.achieved) {
            return Some(c);
        }
        if Instant::now() > until {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// ================================================================ the load

async fn load(
    plan: &Plan,
    progress: &Progress,
    sys: &Arc<System>,
    events: &Events,
    players: &Arc<Mutex<Vec<Player>>>,
    accepted: &Arc<AtomicU64>,
    r: &mut Results,
) {
    let gw_url = sys.gateway().url();
    let pace = plan.rate.map_or_else(String::new, |r| format!(", paced at {r:.0}/s"));
    progress.phase(&format!("load: {} players achieving missions through the gateway{pace}", plan.players), plan.load);
    let procs: Vec<(String, Option<u32>)> = services(sys)
        .into_iter()
        .map(|(n, s)| (n.to_owned(), s.pid()))
        .chain([
            ("nats-server".to_owned(), procs::nats_server(sys.nats.port)),
            ("bench (load generator)".to_owned(), Some(std::process::id())),
        ])
        .collect();
    let cpu_before: Vec<_> = procs.iter().map(|(_, p)| p.and_then(procs::cpu_time)).collect();
    let first = events.snapshot().await;
    let accepted_at_start = accepted.load(Ordering::Relaxed);
    let start = Instant::now();
    let until = start + plan.load;
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));

    // samplers of the whole flow
    let samplers: Vec<_> = (0..plan.samplers)
        .map(|i| {
            tokio::spawn(sample_flows(
                sys.clone(),
                channels(&gw_url, 1).remove(0),
                format!("w{i}"),
                until,
                None,
                Duration::from_millis(100),
                accepted.clone(),
            ))
        })
        .collect();

    // the monitor: event counts, RSS, live figures
    let monitor = {
        let (stop, done, accepted, progress) = (stop.clone(), done.clone(), accepted.clone(), progress.clone());
        let procs = procs.clone();
        let events = Events::connect(&sys.nats).await;
        let every = plan.sample_every;
        tokio::spawn(async move {
            let mut timeline = Vec::new();
            let mut peaks: BTreeMap<String, u64> = BTreeMap::new();
            let Ok(events) = events else { return (timeline, peaks) };
            let mut last = (Instant::now(), 0u64);
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(every).await;
                let c = events.snapshot().await;
                let t = start.elapsed().as_secs_f64();
                let mut rss = BTreeMap::new();
                for (name, pid) in &procs {
                    if let Some(kib) = pid.and_then(procs::rss_kib) {
                        let peak = peaks.entry(name.clone()).or_default();
                        *peak = (*peak).max(kib);
                        rss.insert(name.clone(), kib);
                    }
                }
                let calls = done.load(Ordering::Relaxed);
                let rate = (calls - last.1) as f64 / last.0.elapsed().as_secs_f64().max(1e-9);
                last = (Instant::now(), calls);
                let a = accepted.load(Ordering::Relaxed);
                progress.detail(format!(
                    "{rate:.0} AchieveMission/s, rewarded {} of {a}, backlog {}",
                    c.rewarded,
                    a.saturating_sub(c.rewarded)
                ));
                timeline.push(Sample {
                    t_s: t,
                    accepted: a,
                    achieved: c.achieved,
                    allocated: c.allocated,
                    issued: c.issued,
                    rewarded: c.rewarded,
                    rss_kib: rss,
                });
            }
            (timeline, peaks)
        })
    };

    let workers = player_workers(plan, sys, &gw_url, "p", Some(players), accepted);
    let run = paced_loop(workers, plan.load, Some(done), plan.rate).await;
    let drain_start = Instant::now();
    let load_s = run.wall.as_secs_f64();
    let end = events.snapshot().await;
    let accepted_at_end = accepted.load(Ordering::Relaxed);
    let cpu_after: Vec<_> = procs.iter().map(|(_, p)| p.and_then(procs::cpu_time)).collect();
    let mut flow = Recorder::default();
    for s in samplers {
        if let Ok(rec) = s.await {
            flow.merge(&rec);
        }
    }

    // the drain, still monitored
    progress.phase("draining the backlog", plan.drain_limit.min(Duration::from_secs(10)));
    let drained = drain(events, accepted, plan.drain_limit).await;
    let drain_s = drain_start.elapsed().as_secs_f64();
    let last = match drained {
        Some(c) => c,
        None => events.snapshot().await,
    };
    stop.store(true, Ordering::Relaxed);
    let (mut timeline, peaks) = monitor.await.unwrap_or_default();
    timeline.push(Sample {
        t_s: load_s,
        accepted: accepted_at_end,
        achieved: end.achieved,
        allocated: end.allocated,
        issued: end.issued,
        rewarded: end.rewarded,
        rss_kib: BTreeMap::new(),
    });
    timeline.insert(
        0,
        Sample {
            t_s: 0.0,
            accepted: accepted_at_start,
            achieved: first.achieved,
            allocated: first.allocated,
            issued: first.issued,
            rewarded: first.rewarded,
            rss_kib: BTreeMap::new(),
        },
    );
    timeline.push(Sample {
        t_s: load_s + drain_s,
        accepted: accepted.load(Ordering::Relaxed),
        achieved: last.achieved,
        allocated: last.allocated,
        issued: last.issued,
        rewarded: last.rewarded,
        rss_kib: BTreeMap::new(),
    });
    timeline.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));

    r.achieve_mission.gateway = run.summary();
    r.flow.under_load = flow.summary(run.wall);

    // CPU and RSS of every process over the load
    for (i, (name, _)) in procs.iter().enumerate() {
        let pct = match (cpu_before[i], cpu_after[i]) {
            (Some(a), Some(b)) => Some((b - a).as_secs_f64() / load_s.max(1e-9) * 100.0),
            _ => None,
        };
        match r.services.iter_mut().find(|f| &f.name == name) {
            Some(f) => {
                f.cpu_load_pct = pct;
                f.rss_peak_kib = peaks.get(name).copied();
            }
            None => r.other_processes.push(ProcessFigures {
                name: name.clone(),
                cpu_load_pct: pct,
                rss_peak_kib: peaks.get(name).copied(),
            }),
        }
    }

    // the sustained rate and the backlog
    let backlog = |s: &Sample| s.accepted.saturating_sub(s.rewarded) as f64;
    let half = load_s / 2.0;
    let at_half = timeline
        .iter()
        .filter(|s| s.t_s <= load_s)
        .min_by(|a, b| (a.t_s - half).abs().total_cmp(&(b.t_s - half).abs()))
        .cloned();
    let at_end = timeline.iter().rfind(|s| s.t_s <= load_s).cloned().unwrap_or_default();
    let s = &mut r.flow.sustained;
    s.load_s = load_s;
    s.accepted_at_start = accepted_at_start;
    s.accepted_at_end = accepted_at_end;
    s.rewarded_at_start = first.rewarded;
    s.published_at_end = end.achieved;
    s.allocated_at_end = end.allocated;
    s.issued_at_end = end.issued;
    s.rewarded_at_end = end.rewarded;
    s.accept_rate_per_s = (accepted_at_end - accepted_at_start) as f64 / load_s.max(1e-9);
    s.flow_rate_per_s = end.rewarded.saturating_sub(first.rewarded) as f64 / load_s.max(1e-9);
    s.backlog_at_end = accepted_at_end.saturating_sub(end.rewarded);
    if let Some(h) = at_half.filter(|h| load_s - h.t_s > 0.2) {
        let dt = load_s - h.t_s;
        s.flow_rate_second_half_per_s = end.rewarded.saturating_sub(h.rewarded) as f64 / dt;
        s.backlog_at_half = h.accepted.saturating_sub(h.rewarded);
        s.backlog_growth_per_s = (backlog(&at_end) - backlog(&h)) / dt;
    }
    // Growing: more than a second's worth of flow (or 50 missions) added over the second half.
    s.backlog_grew = s.backlog_growth_per_s * (load_s / 2.0) > (s.flow_rate_per_s).max(50.0);
    s.drain_s = drain_s;
    s.drained = drained.is_some();
    s.rewarded_final = last.rewarded;
    s.published_final = last.achieved;
    s.drain_rate_per_s = last.rewarded.saturating_sub(end.rewarded) as f64 / drain_s.max(1e-9);
    s.flow_rate_incl_drain_per_s = last.rewarded.saturating_sub(first.rewarded) as f64 / (load_s + drain_s).max(1e-9);
    r.flow.timeline = timeline;
}

// ================================================================ reads

type BoxedCall = std::pin::Pin<Box<dyn Future<Output = Option<Outcome>> + Send>>;

fn get_wallet(ch: Channel, p: &Player) -> BoxedCall {
    let mut c = WalletServiceClient::new(with_token(ch, &p.token));
    let req = wallet::GetWalletRequest { customer_id: p.id.clone(), ..Default::default() };
    Box::pin(async move { Some(grpc(c.get_wallet(req).await)) })
}

fn get_my_page(ch: Channel, p: &Player) -> BoxedCall {
    let mut c = MyPageServiceClient::new(with_token(ch, &p.token));
    let req = mypage::GetMyPageRequest { customer_id: p.id.clone(), ..Default::default() };
    Box::pin(async move { Some(grpc(c.get_my_page(req).await)) })
}

async fn reads(plan: &Plan, progress: &Progress, sys: &Arc<System>, players: &[Player], r: &mut Results) {
    let players: Arc<Vec<Player>> = Arc::new(players.iter().take(512).cloned().collect());
    progress.phase("reads: GetWallet and GetMyPage, gateway and direct", plan.short * 4);
    let gw = sys.gateway().url();
    let n = plan.players;
    // `n` clients, each reading the next player's own page or wallet with their token.
    let run = |url: String, read: fn(Channel, &Player) -> BoxedCall| {
        let players = players.clone();
        async move {
            let workers = channels(&url, n)
                .into_iter()
                .enumerate()
                .map(|(i, ch)| {
                    let players = players.clone();
                    let mut k = i;
                    FnWorker(move || {
                        let p = &players[k % players.len()];
                        k += n;
                        read(ch.clone(), p)
                    })
                })
                .collect();
            closed_loop(workers, plan.short, None).await.summary()
        }
    };
    let wallet_run = |url| run(url, get_wallet);
    let page_run = |url| run(url, get_my_page);
    r.reads.get_wallet_gateway = wallet_run(gw.clone()).await;
    r.reads.get_wallet_direct = wallet_run(sys.wallet.url()).await;
    r.reads.get_my_page_gateway = page_run(gw.clone()).await;
    r.reads.get_my_page_direct = page_run(sys.mypage.url()).await;
}

// ================================================================ exchange

#[derive(Clone)]
struct Candidate {
    customer: String,
    token: String,
    reward_id: String,
}

async fn exchange_once(ch: Channel, c: &Candidate) -> (Outcome, bool) {
    let mut w = WalletServiceClient::new(with_token(ch, &c.token));
    let r = w
        .exchange_reward(wallet::ExchangeRewardRequest {
            customer_id: c.customer.clone(),
            reward_id: c.reward_id.clone(),
            gift_code: "coffee".into(),
            request_id: uuid::Uuid::now_v7().to_string(),
        })
        .await;
    let retry_after = r.as_ref().err().is_some_and(|s| s.metadata().get("retry-after").is_some());
    (grpc(r), retry_after)
}

async fn breaker_state(sys: &System) -> String {
    let state = WalletServiceClient::new(sys.as_admin(&sys.wallet))
        .get_exchange_status(wallet::GetExchangeStatusRequest {})
        .await
        .map(|s| s.into_inner().breaker_state);
    match state {
        Ok(s) => wallet::BreakerState::try_from(s).map_or_else(|_| s.to_string(), |b| b.as_str_name().to_owned()),
        Err(e) => format!("unknown ({})", e.code()),
    }
}

async fn exchanges(
    plan: &Plan,
    progress: &Progress,
    sys: &mut Arc<System>,
    players: &[Player],
    r: &mut Results,
) -> Result<(), String> {
    progress.phase("exchange through the breaker, gift healthy", plan.exchange_time);
    let reserve = 8;
    let mut candidates = VecDeque::new();
    for p in players {
        if candidates.len() >= plan.exchanges + reserve {
            break;
        }
        let w = WalletServiceClient::new(with_token(sys.wallet.channel(), &p.token))
            .get_wallet(wallet::GetWalletRequest { customer_id: p.id.clone(), ..Default::default() })
            .await;
        if let Ok(w) = w {
            for item in w.into_inner().wallet.map(|w| w.items).unwrap_or_default() {
                // worth a coffee (a match played is worth 1 point)
                if item.status == wallet::WalletItemStatus::Issued as i32 && item.points >= 10 {
                    candidates.push_back(Candidate {
                        customer: p.id.clone(),
                        token: p.token.clone(),
                        reward_id: item.reward_id,
                    });
                }
            }
        }
    }
    if candidates.len() < 2 {
        return Err("no ISSUED reward to exchange".into());
    }
    let spare: Vec<Candidate> = candidates.split_off(candidates.len().saturating_sub(reserve).max(1)).into();
    candidates.truncate(plan.exchanges);
    let queue = Arc::new(Mutex::new(candidates));
    let gw = sys.gateway().url();
    let concurrency = 4;
    let workers: Vec<_> = channels(&gw, concurrency)
        .into_iter()
        .map(|ch| {
            let queue = queue.clone();
            FnWorker(move || {
                let next = queue.lock().expect("queue").pop_front();
                let ch = ch.clone();
                async move { Some(exchange_once(ch, &next?).await.0) }
            })
        })
        .collect();
    let e = &mut r.exchange;
    e.concurrency = concurrency;
    e.healthy_gateway = closed_loop(workers, plan.exchange_time, None).await.summary();

    progress.phase("exchange with gift stopped: tripping the breaker", Duration::from_secs(2));
    let s = Arc::get_mut(sys).ok_or("the system is still shared")?;
    tokio::task::block_in_place(|| s.gift.stop());
    let mut tripping = Recorder::default();
    let start = Instant::now();
    for i in 0..20 {
        let t = Instant::now();
        let (outcome, _) = exchange_once(sys.gateway().channel(), &spare[i % spare.len()]).await;
        tripping.record(t.elapsed(), outcome);
        if breaker_state(sys).await == "BREAKER_STATE_OPEN" {
            break;
        }
    }
    e.tripping_gateway = tripping.summary(start.elapsed());
    e.breaker_after_trip = breaker_state(sys).await;

    progress.phase("exchange with the breaker open: fast-fail", plan.exchange_time * 2);
    let open_run = |url: String| {
        let spare = spare.clone();
        async move {
            let retry_after = Arc::new(AtomicU64::new(0));
            let workers: Vec<_> = channels(&url, concurrency)
                .into_iter()
                .enumerate()
                .map(|(i, ch)| {
                    let (spare, retry_after) = (spare.clone(), retry_after.clone());
                    let mut k = i;
                    FnWorker(move || {
                        let c = spare[k % spare.len()].clone();
                        k += 1;
                        let (ch, retry_after) = (ch.clone(), retry_after.clone());
                        async move {
                            let (o, ra) = exchange_once(ch, &c).await;
                            if ra {
                                retry_after.fetch_add(1, Ordering::Relaxed);
                            }
                            Some(o)
                        }
                    })
                })
                .collect();
            let summary = closed_loop(workers, plan.exchange_time, None).await.summary();
            (summary, retry_after.load(Ordering::Relaxed))
        }
    };
    (e.open_gateway, e.open_with_retry_after) = open_run(gw.clone()).await;
    (e.open_direct, _) = open_run(sys.wallet.url()).await;
    e.breaker_at_end = breaker_state(sys).await;
    Ok(())
}
