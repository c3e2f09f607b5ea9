//! Several roles in one process (`gamectl serve --roles a,b`): each role keeps its own
//! address, database and bus credentials (its settings prefixed `<ROLE>__`), and the
//! system behaves as with one process per role.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use e2e::api::{achieve, missions, rewards, wallet_of};
use e2e::{MISSION, REWARD, System, eventually};
use grpc_adapter::pb::mission::v1 as mission;
use grpc_adapter::pb::reward::v1 as reward;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const FLOW: Duration = Duration::from_secs(30);

/// `gamectl serve --roles <roles>` with `env`; returns it and the addresses it printed.
fn serve_roles(roles: &str, env: &[(String, String)], log: &std::path::Path) -> (Child, Vec<SocketAddr>) {
    let mut child = e2e::serve_command()
        .args(["--roles", roles])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("SHUTDOWN_GRACE_SECONDS", "5")
        .env("READINESS_INTERVAL_SECONDS", "0.2")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(log).expect("log file")))
        .spawn()
        .expect("start gamectl serve --roles");
    let n = roles.split(',').count();
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("listening on ") {
                let _ = tx.send(addr.trim().parse::<SocketAddr>().expect("address"));
            }
        }
    });
    let addrs = (0..n)
        .map(|_| {
            rx.recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("{roles}: not listening; see {}", log.display()))
        })
        .collect();
    (child, addrs)
}

async fn serving(addr: SocketAddr, service: &str) -> bool {
    let Ok(channel) = tonic::transport::Channel::from_shared(format!("http://{addr}")).expect("url").connect().await
    else {
        return false;
    };
    let status = HealthClient::new(channel).check(HealthCheckRequest { service: service.to_owned() }).await;
    matches!(status, Ok(r) if r.get_ref().status == ServingStatus::Serving as i32)
}

fn accepts(addr: SocketAddr) -> bool {
    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// SIGTERM; the exit code, within 20 s.
fn stop(child: &mut Child) -> Option<i32> {
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    None
}

#[tokio::test]
async fn mission_and_reward_in_one_process_run_the_reward_flow_and_stop_together() {
    let mut sys = System::start().await;
    let customer = "c-one-process";
    let before = achieve(&sys, customer, "daily-login", "").await;
    // The two roles move from their own processes into one, on the same addresses and
    // databases: what the customer had stays, what they do next flows the same way.
    sys.mission.stop();
    sys.reward.stop();
    let mut env = Vec::new();
    for (role, svc) in [("mission", &sys.mission), ("reward", &sys.reward)] {
        let mut own = sys.env(role, &sys.database_urls[role]);
        own.push(("LISTEN_ADDR", svc.addr.to_string()));
        env.extend(own.into_iter().map(|(k, v)| (format!("{}__{k}", role.to_uppercase()), v)));
    }
    let log = sys.dir.path().join("mission-reward.log");
    let (mut both, addrs) = serve_roles("mission,reward", &env, &log);
    let mut listening = addrs.clone();
    listening.sort();
    let mut expected = vec![sys.mission.addr, sys.reward.addr];
    expected.sort();
    assert_eq!(listening, expected, "each role on its own address");
    eventually(FLOW, "mission and reward SERVING from one process", || async {
        (serving(sys.mission.addr, MISSION).await && serving(sys.reward.addr, REWARD).await).then_some(())
    })
    .await;

    let after = achieve(&sys, customer, "tutorial-complete", "").await;
    eventually(FLOW, "both missions rewarded, the rewards ISSUED in the wallet", || async {
        let m = missions(&sys, customer).await;
        let r = rewards(&sys, customer).await;
        let w = wallet_of(&sys, customer).await;
        let rewarded = m.iter().filter(|m| m.status == mission::MissionStatus::Rewarded as i32).count();
        let issued = r.iter().filter(|r| r.status == reward::RewardStatus::Issued as i32).count();
        (rewarded == 2 && issued == 2 && w.items.len() == 2).then_some(())
    })
    .await;
    let w = wallet_of(&sys, customer).await;
    let mut got: Vec<(&str, i64)> = w.items.iter().map(|i| (i.mission_id.as_str(), i.points)).collect();
    got.sort_unstable();
    let mut want = vec![(before.mission_id.as_str(), 10), (after.mission_id.as_str(), 20)];
    want.sort_unstable();
    assert_eq!(got, want, "one reward per mission, each worth its catalog points");

    assert_eq!(stop(&mut both), Some(0), "one SIGTERM stops both roles cleanly; see {}", log.display());
    assert!(!accepts(sys.mission.addr) && !accepts(sys.reward.addr), "both roles stopped listening");
}

#[test]
fn a_role_that_cannot_start_stops_the_whole_process_naming_its_setting() {
    let dir = tempfile::tempdir().unwrap();
    let db = |n: &str| format!("sqlite://{}", dir.path().join(format!("{n}.db")).display());
    let out = e2e::serve_command()
        .args(["--roles", "reward,mission"])
        .env("MISSION__MISSION_CATALOG", dir.path().join("missing.toml"))
        .env("MISSION__DATABASE_URL", db("mission"))
        .env("REWARD__DATABASE_URL", db("reward"))
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("NATS_URL", "nats://127.0.0.1:1")
        .stdin(Stdio::null())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error: MISSION_CATALOG"), "{stderr}");

    let out = e2e::serve_command().args(["--roles", "mission,billing"]).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unknown role \"billing\""), "{stderr}");
}
