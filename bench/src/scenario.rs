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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use contracts::pb::mission::v1 as mission;
use contracts::pb::mypage::v1 as mypage;
use e2e::{Authed, GAME_SERVER, Options, Service, System, with_token};
use futures::StreamExt as _;
use mission::mission_service_client::MissionServiceClient;
use mypage::my_page_service_client::MyPageServiceClient;
use tonic::Code;
use tonic::transport::Channel;

use crate::cli::{Args, Plan};
use crate::drive::{Worker, closed_loop};
use crate::hist::{Outcome, Recorder, grpc};
use crate::procs;
use crate::progress::Progress;
use crate::report::{Meta, Results, ServiceFigures, table};

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
    if let Some(rounds) = args.compare_backends {
        return compare::run(&plan, rounds).await;
    }
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
        bus: match plan.nats_cluster {
            1 => "one nats-server".into(),
            n => format!("a {n}-node JetStream cluster, streams R{}", n.min(3)),
        },
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

/// The system as the bench runs it: the gateway in front with its limits lifted, the
/// wallet's breaker tripping after 3 failed calls; on PostgreSQL when `postgres`, on a
/// JetStream cluster of `nats_cluster` nodes when more than 1.
fn system_options(postgres: bool, nats_cluster: usize) -> Options {
    Options {
        gateway: true,
        postgres,
        nats_cluster,
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
    }
}

async fn phases(plan: &Plan, progress: &Progress, r: &mut Results) -> Result<(), String> {
    progress.phase("starting the system", Duration::from_secs(if plan.quick { 3 } else { 5 }));
    let mut sys = Arc::new(System::start_with(system_options(plan.postgres, plan.nats_cluster)).await);
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
    load::load(plan, progress, &sys, &events, &players, &accepted, r).await;

    // ------------------------------------------------------------ reads
    let players: Vec<Player> = players.lock().expect("players").clone();
    if players.is_empty() {
        return Err("no simulated player got through: see the service logs".into());
    }
    reads::reads(plan, progress, &sys, &players, r).await;
    r.whale = crate::whale::run(plan, progress, &sys).await;

    // ------------------------------------------------------------ AchieveMission, gateway vs direct
    progress.phase("AchieveMission: gateway vs direct vs JSON at the gateway", plan.short * 3);
    let (mut via, mut direct, mut json) = (Recorder::default(), Recorder::default(), Recorder::default());
    let (mut via_wall, mut direct_wall, mut json_wall) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for round in 0..2 {
        for (kind, rec, wall) in
            [("sg", &mut via, &mut via_wall), ("sd", &mut direct, &mut direct_wall), ("sj", &mut json, &mut json_wall)]
        {
            let (tag, each) = (format!("{kind}{round}"), plan.short / 2);
            let run = match kind {
                "sg" => closed_loop(player_workers(plan, &sys, &gw_url, &tag, None, &accepted), each, None).await,
                "sd" => {
                    let workers = player_workers(plan, &sys, &sys.mission.url(), &tag, None, &accepted);
                    closed_loop(workers, each, None).await
                }
                _ => closed_loop(json::json_workers(plan, &sys, &tag, &accepted), each, None).await,
            };
            rec.merge(&run.rec);
            *wall += run.wall;
        }
    }
    r.achieve_mission.gateway_short = via.summary(via_wall);
    r.achieve_mission.direct_short = direct.summary(direct_wall);
    r.achieve_mission.json_short = json.summary(json_wall);
    progress.phase("draining again", Duration::from_secs(2));
    let _ = drain(&events, &accepted, plan.drain_limit).await;

    // ------------------------------------------------------------ exchange through the breaker
    exchange::exchanges(plan, progress, &mut sys, &players, r).await?;

    // ------------------------------------------------------------ RSS at the end
    for (name, svc) in services(&sys) {
        if let Some(f) = r.services.iter_mut().find(|f| f.name == name) {
            f.rss_end_kib = svc.pid().and_then(procs::rss_kib);
        }
    }
    Ok(())
}

mod compare;
mod events;
mod exchange;
mod json;
mod load;
mod reads;
mod rpc_baselines;
use events::{Events, drain};
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
