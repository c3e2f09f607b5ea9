//! `gamectl up --database postgres`: two replicas of every role but the gateway, each on
//! its own port (`<role>-2` on base-port + 10 + offset), sharing the role's database and
//! durable consumers, all SERVING and all in endpoints.json; the gateway balances over
//! them. A flow of missions through the gateway is rewarded exactly once, and keeps being
//! accepted and rewarded when one replica of mission and one of reward are SIGKILLed (the
//! supervisor restarts them; meanwhile the other replica carries on).

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e::clients::MissionServiceClient;
use grpc_adapter::pb::mission::v1 as mission;
use serde_json::Value;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use e2e::up::{self, gamectl};
/// Every role `up` runs twice (all but the gateway), with its offset from the base port.
const REPLICATED: [(&str, u16); 8] = [
    ("mission", 1),
    ("reward", 2),
    ("wallet", 3),
    ("mypage", 4),
    ("gift", 5),
    ("notification", 6),
    ("auth", 7),
    ("ops", 8),
];
const PLAYERS: usize = 5;
const PACE: Duration = Duration::from_millis(100);

type Lines = Arc<Mutex<Vec<String>>>;

fn read_lines(from: impl Read + Send + 'static, into: Lines) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            into.lock().unwrap().push(line);
        }
    });
}

/// A base port whose ports for two replicas of every role (+0..=18) and NATS (+100) are free now.
fn pick_base_port() -> u16 {
    let free = |p: u16| TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], p))).is_ok();
    for _ in 0..200 {
        let base = 20_000 + (uuid::Uuid::new_v4().as_u128() % 10_000) as u16;
        if (0..=18).chain([100]).all(|o| free(base + o) && free(base + 200 + o)) {
            return base;
        }
    }
    panic!("no free base port");
}

/// `gamectl up`, what it printed; stopped (and its databases dropped) when dropped.
struct Up {
    child: Child,
    base: u16,
    stdout: Lines,
    stderr: Lines,
    data_dir: tempfile::TempDir,
    prefix: String,
}

impl Up {
    fn start() -> Self {
        let prefix = format!("gr{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let data_dir = tempfile::tempdir().expect("temp dir");
        let base = pick_base_port();
        let mut child = gamectl(data_dir.path())
            .args(["up", "--base-port", &base.to_string(), "--database", "postgres", "--database-prefix", &prefix])
            .env("DATABASE_URL", store_adapter::testing::postgres_server())
            // Twelve processes on the machine's PostgreSQL, which other tests share: the
            // children inherit a small pool each.
            .env("DATABASE_POOL_SIZE", "3")
            // The events a SIGKILLed replica had taken and not acknowledged come again to
            // the other after this (30 s by default).
            .env("CONSUMER_ACK_WAIT_SECONDS", "5")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gamectl up starts");
        let (stdout, stderr) = (Lines::default(), Lines::default());
        read_lines(child.stdout.take().expect("stdout"), stdout.clone());
        read_lines(child.stderr.take().expect("stderr"), stderr.clone());
        Self { child, base, stdout, stderr, data_dir, prefix }
    }

    fn printed(&self, line: impl Fn(&str) -> bool) -> bool {
        self.stdout.lock().unwrap().iter().any(|l| line(l))
    }

    fn transcript(&self) -> String {
        let err = self.stderr.lock().unwrap();
        format!(
            "--- stdout ---\n{}\n--- stderr (last 60 lines) ---\n{}",
            self.stdout.lock().unwrap().join("\n"),
            err[err.len().saturating_sub(60)..].join("\n")
        )
    }

    async fn wait_for(&self, what: &str, timeout: Duration, line: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + timeout;
        while !self.printed(&line) {
            assert!(Instant::now() < deadline, "{what} within {timeout:?}\n{}", self.transcript());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn ctl(&self, args: &[&str]) -> std::process::Output {
        gamectl(self.data_dir.path()).args(args).stdin(Stdio::null()).output().expect("gamectl runs")
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.ctl(&[&["--json"], args].concat());
        assert!(out.status.success(), "gamectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("json")
    }

    fn data(&self) -> PathBuf {
        std::fs::canonicalize(self.data_dir.path()).expect("data dir")
    }

    /// The live child of `up` listening on `port` (its `LISTEN_ADDR`).
    fn child_on(&self, port: u16) -> u32 {
        let needle = format!("LISTEN_ADDR=127.0.0.1:{port}\0");
        let found: Vec<u32> = std::fs::read_dir("/proc")
            .expect("/proc")
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let mut rest = stat[stat.rfind(')').map_or(0, |i| i + 1)..].split_whitespace();
                let (state, ppid) = (rest.next(), rest.next().and_then(|p| p.parse::<u32>().ok()));
                ppid == Some(self.child.id()) && state != Some("Z")
            })
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
            })
            .collect();
        assert_eq!(found.len(), 1, "one child of up listening on {port}: {found:?}");
        found[0]
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        up::stop(&mut self.child);
        up::drop_databases(&self.prefix);
    }
}

async fn serving(url: &str, service: &str) -> bool {
    let Ok(endpoint) = tonic::transport::Endpoint::from_shared(url.to_owned()) else { return false };
    let Ok(channel) = endpoint.connect_timeout(Duration::from_secs(1)).connect().await else { return false };
    let mut client = HealthClient::new(channel);
    let check = client.check(HealthCheckRequest { service: service.to_owned() });
    matches!(
        tokio::time::timeout(Duration::from_secs(2), check).await,
        Ok(Ok(r)) if r.get_ref().status == ServingStatus::Serving as i32
    )
}

fn health_name(role: &str) -> &'static str {
    contracts::services::by_role(role).map(|a| a.name).expect("an API of the contracts")
}

/// What the players did: every accepted mission's id, the calls that had to be repeated
/// (UNAVAILABLE, same request id), and every other failure.
#[derive(Default)]
struct Load {
    accepted: Vec<String>,
    retried: usize,
    failures: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gamectl_up_on_postgres_runs_two_replicas_of_every_role_and_survives_losing_one_of_mission_and_reward() {
    let began = Instant::now();
    let up = Up::start();
    up.wait_for("ready", Duration::from_secs(60), |l| l == "ready: all services SERVING").await;
    let ready_in = began.elapsed();
    let base = up.base;

    // Every replica in the ready table and endpoints.json, on its port, SERVING; the
    // gateway once.
    let endpoints: Value =
        serde_json::from_str(&std::fs::read_to_string(up.data().join("endpoints.json")).expect("endpoints.json"))
            .expect("json");
    let services: BTreeMap<String, String> =
        serde_json::from_value(endpoints["services"].clone()).expect("services by name");
    let mut expected = BTreeMap::from([("gateway".to_owned(), format!("http://127.0.0.1:{base}"))]);
    for (role, offset) in REPLICATED {
        expected.insert(role.to_owned(), format!("http://127.0.0.1:{}", base + offset));
        expected.insert(format!("{role}-2"), format!("http://127.0.0.1:{}", base + 10 + offset));
    }
    assert_eq!(services, expected, "every replica in endpoints.json");
    for (name, url) in &services {
        assert!(up.printed(|l| l.starts_with(&format!("{name} ")) && l.ends_with(url)), "{name} in the ready table");
        let role = name.trim_end_matches("-2");
        let health = if role == "gateway" { e2e::GATEWAY } else { health_name(role) };
        assert!(serving(url, health).await, "{name} SERVING at {url}");
    }
    let metrics: BTreeMap<String, String> = serde_json::from_value(endpoints["metrics"].clone()).expect("metrics");
    assert_eq!(metrics.get("reward-2"), Some(&format!("http://127.0.0.1:{}/metrics", base + 212)));
    let status = up.ctl(&["--json", "status"]);
    let said: Value = serde_json::from_slice(&status.stdout).expect("status json");
    let roles: Vec<&str> = said["roles"].as_array().expect("roles").iter().filter_map(|r| r["role"].as_str()).collect();
    assert!(roles.contains(&"mission-2") && roles.contains(&"reward-2"), "status shows every replica: {said}");

    // The players register (a game server's report for an id nobody registered is refused).
    for i in 0..PLAYERS {
        let registered = up.ctl(&["register", &format!("replica-player-{i}"), "--password", "correct horse battery"]);
        assert!(registered.status.success(), "{}", String::from_utf8_lossy(&registered.stderr));
    }
    // A game server's token, from the auth replicas through the gateway.
    let admin_password = std::fs::read_to_string(up.data().join("admin.password")).expect("admin.password");
    up.json(&["login", "admin", "--password", admin_password.trim()]);
    let created = up.json(&["service-account", "create", "replica-match"]);
    let secret = created["clientSecret"].as_str().expect("the secret").to_owned();
    let token_file = up.data().join("game-server.token").display().to_string();
    up.json(&["--token-file", &token_file, "login", "--service-account", "svc-replica-match", "--secret", &secret]);
    let token = std::fs::read_to_string(&token_file).expect("token").trim().to_owned();

    // Players report matches through the gateway; an UNAVAILABLE (a replica just died) is
    // repeated with the same request id, as a client does.
    let gateway =
        tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{base}")).expect("url").connect_lazy();
    let stop = Arc::new(AtomicBool::new(false));
    let load = Arc::new(Mutex::new(Load::default()));
    let players: Vec<_> = (0..PLAYERS)
        .map(|i| {
            let client = MissionServiceClient::new(e2e::with_token(gateway.clone(), &token));
            let (stop, load) = (stop.clone(), load.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let request = mission::AchieveMissionRequest {
                        customer_id: format!("replica-player-{i}"),
                        mission_code: "match-played".into(),
                        request_id: format!("replica-player-{i}-{n}"),
                    };
                    for attempt in 1..=20 {
                        match client.clone().achieve_mission(request.clone()).await {
                            Ok(r) => {
                                load.lock().unwrap().accepted.push(r.into_inner().mission.expect("mission").mission_id);
                                break;
                            }
                            Err(s) if s.code() == Code::Unavailable && attempt < 20 => {
                                load.lock().unwrap().retried += 1;
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                            Err(s) => {
                                load.lock().unwrap().failures.push(format!("{:?}: {}", s.code(), s.message()));
                                break;
                            }
                        }
                    }
                    tokio::time::sleep(PACE).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before_kill = load.lock().unwrap().accepted.len();
    assert!(before_kill > 0, "missions accepted before the kill\n{}", up.transcript());

    // SIGKILL the second mission replica and the first reward replica.
    let killed = Instant::now();
    for port in [base + 11, base + 2] {
        let pid = up.child_on(port);
        assert!(Command::new("kill").args(["-KILL", &pid.to_string()]).status().is_ok_and(|s| s.success()));
    }
    up.wait_for("mission-2 restarted", Duration::from_secs(10), |l| l.starts_with("mission-2 exited (signal 9)")).await;
    up.wait_for("reward restarted", Duration::from_secs(10), |l| l.starts_with("reward exited (signal 9)")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = load.lock().unwrap().accepted.len() - before_kill;
    // Back in service: the supervisor started them again.
    let deadline = Instant::now() + Duration::from_secs(20);
    for (port, role) in [(base + 11, "mission"), (base + 2, "reward")] {
        while !serving(&format!("http://127.0.0.1:{port}"), health_name(role)).await {
            assert!(Instant::now() < deadline, "{role} on {port} SERVING again\n{}", up.transcript());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let recovered_in = killed.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for p in players {
        p.await.expect("player");
    }
    let Load { accepted, retried, failures } = std::mem::take(&mut *load.lock().unwrap());

    // Every accepted mission published once and rewarded once (a second reward would be
    // a second event with its own id).
    let nats_url = endpoints["nats"].as_str().expect("nats url").to_owned();
    let seed = up.data().join("nats-auth").join(format!("{}.nk", e2e::NATS_OPERATOR));
    let (nats, _) = e2e::nats_connect_as(&nats_url, e2e::NATS_OPERATOR, Some(&seed)).await.expect("operator");
    let total = accepted.len() as u64;
    let settle = Instant::now();
    e2e::eventually(Duration::from_secs(30), "every accepted mission is rewarded", || async {
        (e2e::count_events(&nats, "REWARD", "game.reward.v1.allocated").await >= total).then_some(())
    })
    .await;
    let settled_in = settle.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let missions = e2e::count_events(&nats, "MISSION", "game.mission.v1.achieved").await;
    let rewards = e2e::count_events(&nats, "REWARD", "game.reward.v1.allocated").await;
    println!(
        "gamectl up --database postgres (two replicas of every role): ready in {ready_in:.1?}; {PLAYERS} players, \
         accepted {total} ({during} in the 2 s after SIGKILL of mission-2 and reward), repeated after UNAVAILABLE \
         {retried}, failed {} {:?}; both SERVING again {recovered_in:.1?} after the kill; all rewarded \
         {settled_in:.1?} after the load; missions published {missions}, rewards allocated {rewards}, events lost: {}, \
         duplicates: {}; test wall time {:.1?}",
        failures.len(),
        failures.iter().take(5).collect::<Vec<_>>(),
        total.saturating_sub(rewards),
        rewards.saturating_sub(total),
        began.elapsed(),
    );
    assert_eq!(failures, Vec::<String>::new(), "no call failed otherwise than UNAVAILABLE, and none for good");
    assert!(during > 0, "missions kept being accepted right after the kill");
    assert_eq!((missions, rewards), (total, total), "every accepted mission published and rewarded exactly once");
    // Both roles' databases are shared by their replicas: one each, on PostgreSQL.
    let sqlite = std::fs::read_dir(up.data_dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().ends_with(".db"));
    assert!(!sqlite, "no role keeps its data in SQLite");
}

#[test]
fn replicas_on_sqlite_are_refused_naming_the_flag() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = gamectl(dir.path())
        .args(["up", "--base-port", &pick_base_port().to_string(), "--replicas", "2"])
        .stdin(Stdio::null())
        .output()
        .expect("gamectl runs");
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("--replicas 2 needs --database postgres"), "{said}");
}
